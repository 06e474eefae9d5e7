package a2aserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2asrv"
	"github.com/nats-io/nats.go"

	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/runtime"
)

// Run metadata keys that tie a run to the A2A task it is.
const (
	metaEndpoint = "a2a.agent"
	metaContext  = "a2a.context_id"
	metaMessage  = "a2a.message_id"
)

// metaEvent is the status-update metadata key naming the journal entry an
// update reports ({"type", "path", "run_id", "seq"}).
const metaEvent = "myriad"

// endpoint is one published agent or flow: an a2asrv.RequestHandler over
// its runs.
type endpoint struct {
	s           *Server
	name        string
	description string
	flow        bool
	rpc         http.Handler
}

var _ a2asrv.RequestHandler = (*endpoint)(nil)

// run returns the run a task id names, if it is a task of this endpoint.
func (e *endpoint) run(ctx context.Context, id a2a.TaskID) (*runtime.Record, error) {
	if !runtime.ValidRunID(string(id)) {
		return nil, fmt.Errorf("%w: %q", a2a.ErrTaskNotFound, id)
	}
	rec, err := e.s.rt.Get(ctx, string(id))
	if errors.Is(err, runtime.ErrNotFound) || err == nil && rec.Metadata[metaEndpoint] != e.name {
		return nil, fmt.Errorf("%w: no task %s at agent %s", a2a.ErrTaskNotFound, id, e.name)
	}
	return rec, err
}

// OnGetTask answers tasks/get.
func (e *endpoint) OnGetTask(ctx context.Context, q *a2a.TaskQueryParams) (*a2a.Task, error) {
	rec, err := e.run(ctx, q.ID)
	if err != nil {
		return nil, err
	}
	task, err := e.task(ctx, rec)
	if err != nil {
		return nil, err
	}
	if q.HistoryLength != nil && *q.HistoryLength < len(task.History) {
		task.History = task.History[len(task.History)-max(*q.HistoryLength, 0):]
	}
	return task, nil
}

// OnCancelTask answers tasks/cancel: the run is canceled, children
// included, and the answer waits a moment for it to end.
func (e *endpoint) OnCancelTask(ctx context.Context, p *a2a.TaskIDParams) (*a2a.Task, error) {
	rec, err := e.run(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if rec.Status.Terminal() {
		return nil, fmt.Errorf("%w: task %s is %s", a2a.ErrTaskNotCancelable, p.ID, rec.Status)
	}
	if rec, err = e.s.rt.Cancel(ctx, rec.ID); err != nil {
		return nil, internal(err)
	}
	if !rec.Status.Terminal() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if done, err := e.s.rt.Wait(wctx, rec.ID); err == nil {
			rec = done
		}
	}
	return e.task(ctx, rec)
}

// OnSendMessage answers message/send: by default when the task ends or
// needs input; at once when the client sets blocking: false.
func (e *endpoint) OnSendMessage(ctx context.Context, params *a2a.MessageSendParams) (a2a.SendMessageResult, error) {
	rec, after, err := e.start(ctx, params)
	if err != nil {
		return nil, err
	}
	task, err := e.task(ctx, rec)
	if err != nil || params.Config != nil && params.Config.Blocking != nil && !*params.Config.Blocking {
		return task, err
	}
	for ev, err := range e.follow(ctx, rec, task, after) {
		if err != nil {
			return nil, err
		}
		apply(task, ev)
	}
	return task, nil
}

// OnSendMessageStream answers message/stream: the task, then its status
// updates until it ends or needs input.
func (e *endpoint) OnSendMessageStream(ctx context.Context, params *a2a.MessageSendParams) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		rec, after, err := e.start(ctx, params)
		if err != nil {
			yield(nil, err)
			return
		}
		e.stream(ctx, rec, after, yield)
	}
}

// OnResubscribeToTask answers tasks/resubscribe: the task as it stands,
// then what happens from now on.
func (e *endpoint) OnResubscribeToTask(ctx context.Context, p *a2a.TaskIDParams) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		if !runtime.ValidRunID(string(p.ID)) {
			yield(nil, fmt.Errorf("%w: %q", a2a.ErrTaskNotFound, p.ID))
			return
		}
		// The position first, then the task: nothing falls between them.
		after, err := journal.TreeSeq(ctx, e.s.rt.Bus(), bus.Tree(string(p.ID)))
		if err != nil {
			yield(nil, internal(err))
			return
		}
		rec, err := e.run(ctx, p.ID)
		if err != nil {
			yield(nil, err)
			return
		}
		e.stream(ctx, rec, after, yield)
	}
}

func (e *endpoint) stream(ctx context.Context, rec *runtime.Record, after uint64, yield func(a2a.Event, error) bool) {
	task, err := e.task(ctx, rec)
	if err != nil {
		yield(nil, err)
		return
	}
	if !yield(task, nil) {
		return
	}
	for ev, err := range e.follow(ctx, rec, task, after) {
		if !yield(ev, err) || err != nil {
			return
		}
	}
}

// OnGetTaskPushConfig: push notifications are not supported.
func (e *endpoint) OnGetTaskPushConfig(context.Context, *a2a.GetTaskPushConfigParams) (*a2a.TaskPushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

// OnListTaskPushConfig: push notifications are not supported.
func (e *endpoint) OnListTaskPushConfig(context.Context, *a2a.ListTaskPushConfigParams) ([]*a2a.TaskPushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

// OnSetTaskPushConfig: push notifications are not supported.
func (e *endpoint) OnSetTaskPushConfig(context.Context, *a2a.TaskPushConfig) (*a2a.TaskPushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

// OnDeleteTaskPushConfig: push notifications are not supported.
func (e *endpoint) OnDeleteTaskPushConfig(context.Context, *a2a.DeleteTaskPushConfigParams) error {
	return a2a.ErrPushNotificationNotSupported
}

// OnGetExtendedAgentCard: the public card says everything.
func (e *endpoint) OnGetExtendedAgentCard(context.Context) (*a2a.AgentCard, error) {
	return nil, a2a.ErrAuthenticatedExtendedCardNotConfigured
}

// start submits the run a message asks for, or gives a waiting task the
// answer a message carries. after is the journal position from which the
// caller follows the task.
func (e *endpoint) start(ctx context.Context, params *a2a.MessageSendParams) (rec *runtime.Record, after uint64, err error) {
	if params == nil || params.Message == nil {
		return nil, 0, fmt.Errorf("%w: message: missing", a2a.ErrInvalidParams)
	}
	msg := params.Message
	if msg.TaskID != "" {
		return e.answer(ctx, msg)
	}
	input, state, err := e.content(msg)
	if err != nil {
		return nil, 0, err
	}
	contextID := msg.ContextID
	if contextID == "" {
		contextID = a2a.NewContextID()
	}
	sub := runtime.SubmitRequest{Input: input,
		Metadata: map[string]string{metaEndpoint: e.name, metaContext: contextID, metaMessage: msg.ID}}
	if msg.ID != "" {
		sub.IdempotencyKey = "a2a/" + e.name + "/" + msg.ID
	}
	if e.flow {
		sub.Flow, sub.State = e.name, state
	} else {
		sub.Agent, sub.Instance = e.name, instanceOf(contextID)
	}
	rec, created, err := e.s.rt.Submit(ctx, sub)
	if err != nil {
		return nil, 0, submitError(err)
	}
	if created {
		return rec, 0, nil // its whole journal is news
	}
	// A retry of a message: the task as it stands, then what comes next.
	if after, err = journal.TreeSeq(ctx, e.s.rt.Bus(), bus.Tree(rec.ID)); err != nil {
		return nil, 0, internal(err)
	}
	if rec, err = e.s.rt.Get(ctx, rec.ID); err != nil {
		return nil, 0, internal(err)
	}
	return rec, after, nil
}

// instanceKey is what runtime accepts as an instance key.
var instanceKey = regexp.MustCompile(`^[A-Za-z0-9_=-][A-Za-z0-9_=.-]{0,99}$`)

// instanceOf maps an A2A context onto the agent instance that keeps its
// conversation, apart from instances the HTTP API names.
func instanceOf(contextID string) string {
	if instanceKey.MatchString(contextID) {
		return "a2a." + contextID
	}
	sum := sha256.Sum256([]byte(contextID))
	return "a2a.h" + hex.EncodeToString(sum[:16])
}

// content turns a message's parts into a run's input and, for a flow, its
// initial state (the first data part).
func (e *endpoint) content(msg *a2a.Message) (input string, state json.RawMessage, err error) {
	var text []string
	for i, p := range msg.Parts {
		switch p := p.(type) {
		case a2a.TextPart:
			text = append(text, p.Text)
		case a2a.DataPart:
			data, _ := json.Marshal(p.Data)
			if e.flow && state == nil {
				state = data
				continue
			}
			text = append(text, string(data))
		case a2a.FilePart:
			uri, ok := p.File.(a2a.FileURI)
			if !ok {
				return "", nil, fmt.Errorf("%w: parts[%d]: file bytes are not accepted: send text, data, or a file URI", a2a.ErrUnsupportedContentType, i)
			}
			text = append(text, fmt.Sprintf("[file %s (%s): %s]", uri.Name, uri.MimeType, uri.URI))
		}
	}
	input = strings.Join(text, "\n")
	if strings.TrimSpace(input) == "" && state != nil {
		input = string(state) // a flow started with data only
	}
	if strings.TrimSpace(input) == "" {
		return "", nil, fmt.Errorf("%w: message: no text, data or file part to work on", a2a.ErrInvalidParams)
	}
	return input, state, nil
}

// reply is what a message answering an input-required task may carry in a
// data part; a text part alone is the answer (or "approve"/"deny").
type reply struct {
	Decision   string          `json:"decision"`
	Reason     string          `json:"reason"`
	Arguments  json.RawMessage `json:"arguments"`
	ApprovalID string          `json:"approval_id"`
	Key        string          `json:"key"`
	Value      json.RawMessage `json:"value"`
}

// answer applies a message sent to an input-required task: a decision on
// an approval, or the answer to a flow's question, anywhere in the task's
// tree of runs.
func (e *endpoint) answer(ctx context.Context, msg *a2a.Message) (*runtime.Record, uint64, error) {
	rec, err := e.run(ctx, msg.TaskID)
	if err != nil {
		return nil, 0, err
	}
	if rec.Status.Terminal() {
		return nil, 0, fmt.Errorf("%w: task %s is %s: send a new message (without taskId) to start another", a2a.ErrUnsupportedOperation, rec.ID, rec.Status)
	}
	// Follow from here: what comes after the answer is news.
	after, err := journal.TreeSeq(ctx, e.s.rt.Bus(), bus.Tree(rec.ID))
	if err != nil {
		return nil, 0, internal(err)
	}
	asking, err := e.s.rt.Asking(ctx, rec)
	if err != nil {
		return nil, 0, internal(err)
	}
	var text []string
	var r reply
	var data json.RawMessage
	for _, p := range msg.Parts {
		switch p := p.(type) {
		case a2a.TextPart:
			text = append(text, p.Text)
		case a2a.DataPart:
			data, _ = json.Marshal(p.Data)
			_ = json.Unmarshal(data, &r)
		}
	}
	said := strings.TrimSpace(strings.Join(text, "\n"))
	type ask struct {
		run      *runtime.Record
		approval *journal.ApprovalRequested
		input    *journal.InputRequested
	}
	var asks []ask
	var names []string
	for _, w := range asking {
		if w.Status == runtime.StatusInDoubt {
			return nil, 0, fmt.Errorf("%w: run %s (%s) is in doubt about a call of %s: an operator resolves it with POST /v1/runs/%s/resolve",
				a2a.ErrUnsupportedOperation, w.ID, w.PathOrAgent(), w.InDoubt.Name, w.ID)
		}
		for _, a := range w.PendingApprovals() {
			if r.ApprovalID == "" || r.ApprovalID == a.ApprovalID {
				asks = append(asks, ask{run: w, approval: &a})
			}
			names = append(names, "approval_id "+a.ApprovalID)
		}
		for _, q := range w.PendingInputs() {
			if r.Key == "" || r.Key == q.Key {
				asks = append(asks, ask{run: w, input: &q})
			}
			names = append(names, "key "+q.Key)
		}
	}
	switch {
	case len(names) == 0:
		return nil, 0, fmt.Errorf("%w: task %s asks for nothing (it is %s): follow it with tasks/resubscribe, or cancel it", a2a.ErrUnsupportedOperation, rec.ID, rec.Status)
	case len(asks) == 0:
		return nil, 0, fmt.Errorf("%w: task %s asks for none of that (it asks: %s)", a2a.ErrInvalidParams, rec.ID, strings.Join(names, ", "))
	case len(asks) > 1:
		return nil, 0, fmt.Errorf("%w: task %s asks several things: name one in a data part (%s)", a2a.ErrInvalidParams, rec.ID, strings.Join(names, ", "))
	}
	a := asks[0]
	if a.approval != nil {
		d := runtime.Decision{Decision: r.Decision, Reason: r.Reason, Arguments: r.Arguments}
		if d.Decision == "" {
			d.Decision = decisionOf(said)
		}
		if d.Decision == "" {
			return nil, 0, fmt.Errorf("%w: task %s asks to approve a call of %s: reply approve or deny (text, or a data part {\"decision\": \"approve\"})", a2a.ErrInvalidParams, rec.ID, a.approval.Name)
		}
		_, err = e.s.rt.Decide(ctx, a.run.ID, a.approval.ApprovalID, d)
	} else {
		value := r.Value
		switch {
		case len(value) > 0:
		case said == "" && data != nil:
			value = data
		case said != "" && json.Valid([]byte(said)) && !wantsString(a.input.Schema):
			value = json.RawMessage(said)
		default:
			value, _ = json.Marshal(said)
		}
		_, err = e.s.rt.ProvideInput(ctx, a.run.ID, a.input.Key, value)
	}
	if err != nil {
		return nil, 0, submitError(err)
	}
	if rec, err = e.s.rt.Get(ctx, rec.ID); err != nil {
		return nil, 0, internal(err)
	}
	return rec, after, nil
}

func decisionOf(text string) string {
	switch strings.ToLower(strings.TrimRight(text, ".! ")) {
	case "approve", "approved", "yes", "y", "ok":
		return journal.Approve
	case "deny", "denied", "no", "n", "reject":
		return journal.Deny
	}
	return ""
}

func wantsString(schema json.RawMessage) bool {
	var s struct {
		Type any `json:"type"`
	}
	return len(schema) == 0 || json.Unmarshal(schema, &s) == nil && (s.Type == nil || s.Type == "string")
}

// submitError maps a runtime error onto an A2A error.
func submitError(err error) error {
	switch {
	case errors.Is(err, runtime.ErrInvalid), errors.Is(err, runtime.ErrUnknownAgent):
		return fmt.Errorf("%w: %w", a2a.ErrInvalidParams, err)
	case errors.Is(err, runtime.ErrConflict):
		return fmt.Errorf("%w: %w", a2a.ErrInvalidRequest, err)
	case errors.Is(err, runtime.ErrNotFound):
		return fmt.Errorf("%w: %w", a2a.ErrTaskNotFound, err)
	}
	return internal(err)
}

// internal keeps the cause in the error's data; the SDK would otherwise
// answer a bare "internal error".
func internal(err error) error { return fmt.Errorf("%w: %w", a2a.ErrInternalError, err) }

// task is the A2A view of a run.
func (e *endpoint) task(ctx context.Context, rec *runtime.Record) (*a2a.Task, error) {
	t := &a2a.Task{ID: a2a.TaskID(rec.ID), ContextID: rec.Metadata[metaContext],
		Metadata: map[string]any{"run_id": rec.ID}}
	user := &a2a.Message{ID: rec.Metadata[metaMessage], Role: a2a.MessageRoleUser, ContextID: t.ContextID, TaskID: t.ID,
		Parts: a2a.ContentParts{a2a.TextPart{Text: rec.Input}}}
	t.History = []*a2a.Message{user}
	at := rec.CreatedAt
	switch rec.Status {
	case runtime.StatusQueued:
		t.Status.State = a2a.TaskStateSubmitted
		if rec.StartedAt != nil {
			t.Status.State = a2a.TaskStateWorking // queued again after a wait
		}
	case runtime.StatusRunning:
		t.Status.State = a2a.TaskStateWorking
	case runtime.StatusWaiting, runtime.StatusInDoubt:
		t.Status.State = a2a.TaskStateWorking
		asking, err := e.s.rt.Asking(ctx, rec)
		if err != nil {
			return nil, internal(err)
		}
		if len(asking) > 0 {
			t.Status = inputRequired(t, asking[0])
		}
	case runtime.StatusCompleted:
		t.Status.State = a2a.TaskStateCompleted
		t.Artifacts = []*a2a.Artifact{result(rec.Output, rec.OutputJSON)}
		t.History = append(t.History, e.agentMessage(t, rec.Output))
	case runtime.StatusFailed:
		t.Status.State = a2a.TaskStateFailed
		if rec.Error != nil {
			t.Status.Message = e.agentMessage(t, rec.Error.Code+": "+rec.Error.Message)
		}
	case runtime.StatusCanceled:
		t.Status.State = a2a.TaskStateCanceled
	}
	if rec.EndedAt != nil {
		at = *rec.EndedAt
	} else if rec.StartedAt != nil {
		at = *rec.StartedAt
	}
	t.Status.Timestamp = &at
	return t, nil
}

func (e *endpoint) agentMessage(t a2a.TaskInfoProvider, text string) *a2a.Message {
	return a2a.NewMessageForTask(a2a.MessageRoleAgent, t, a2a.TextPart{Text: text})
}

// result is a run's output as the task's artifact: the text, and the
// structured output as a data part when the agent has an output schema.
func result(output string, structured json.RawMessage) *a2a.Artifact {
	art := &a2a.Artifact{ID: "result", Name: "result", Parts: a2a.ContentParts{a2a.TextPart{Text: output}}}
	var obj map[string]any
	if len(structured) > 0 && json.Unmarshal(structured, &obj) == nil && obj != nil {
		art.Parts = append(art.Parts, a2a.DataPart{Data: obj})
	}
	return art
}

// inputRequired is the status of a task whose run w waits for a person:
// the question in words, and in a data part what to reply with.
func inputRequired(t a2a.TaskInfoProvider, w *runtime.Record) a2a.TaskStatus {
	var text string
	data := map[string]any{"run_id": w.ID, "path": w.PathOrAgent()}
	switch {
	case w.Status == runtime.StatusInDoubt:
		text = fmt.Sprintf("%s stopped in doubt about a call of %s: an operator resolves it with POST /v1/runs/%s/resolve.", w.PathOrAgent(), w.InDoubt.Name, w.ID)
		data["in_doubt"] = w.InDoubt
	case len(w.PendingApprovals()) > 0:
		a := w.PendingApprovals()[0]
		text, data["approval"] = approvalText(w.PathOrAgent(), a), a
	default:
		q := w.PendingInputs()[0]
		text, data["input"] = q.Prompt, q
	}
	now := time.Now().UTC()
	return a2a.TaskStatus{State: a2a.TaskStateInputRequired, Timestamp: &now,
		Message: a2a.NewMessageForTask(a2a.MessageRoleAgent, t, a2a.TextPart{Text: text}, a2a.DataPart{Data: data})}
}

func approvalText(path string, a journal.ApprovalRequested) string {
	return fmt.Sprintf("%s wants to call %s with %s. Reply approve or deny.", path, a.Name, a.Arguments)
}

// apply folds a streamed event into a task, so a blocking send answers
// with what the stream would have ended on.
func apply(t *a2a.Task, ev a2a.Event) {
	switch ev := ev.(type) {
	case *a2a.TaskStatusUpdateEvent:
		if ev.Final || ev.Status.State != a2a.TaskStateWorking || t.Status.State == a2a.TaskStateSubmitted {
			t.Status = ev.Status
		}
	case *a2a.TaskArtifactUpdateEvent:
		t.Artifacts = []*a2a.Artifact{ev.Artifact}
		for _, p := range ev.Artifact.Parts {
			if text, ok := p.(a2a.TextPart); ok {
				t.History = append(t.History, a2a.NewMessageForTask(a2a.MessageRoleAgent, t, text))
			}
		}
	}
}

// follow yields a task's events from journal position after: a status
// update per journal entry of the run tree (and per piece of streamed
// text), then the result and a final status when the run ends, or a final
// input-required status when a run of the tree waits for a person.
func (e *endpoint) follow(ctx context.Context, root *runtime.Record, task *a2a.Task, after uint64) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		if task.Status.State.Terminal() || task.Status.State == a2a.TaskStateInputRequired {
			return // nothing more will happen without the client
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rt := e.s.rt
		// Streamed model text is live, beside the journal: subscribe first.
		live := make(chan *nats.Msg, 256)
		if sub, err := rt.Bus().NC.ChanSubscribe(bus.LiveSubject(root.ID), live); err == nil {
			defer func() { _ = sub.Unsubscribe() }()
		}
		events := make(chan journal.Event, 64)
		errc := make(chan error, 1)
		go func() {
			errc <- journal.FollowTree(ctx, rt.Bus(), bus.Tree(root.ID), after, func(ev journal.Event) bool {
				select {
				case events <- ev:
					return true
				case <-ctx.Done():
					return false
				}
			})
			close(events)
		}()
		tree := rt.NewTree(root)
		status := func(state a2a.TaskState, final bool, msg *a2a.Message, meta map[string]any) *a2a.TaskStatusUpdateEvent {
			ev := a2a.NewStatusUpdateEvent(task, state, msg)
			ev.Final, ev.Metadata = final, meta
			return ev
		}
		delta := func(m *nats.Msg) bool {
			var d runtime.Delta
			if json.Unmarshal(m.Data, &d) != nil || d.Type != runtime.LiveDelta {
				return true
			}
			return yield(status(a2a.TaskStateWorking, false, e.agentMessage(task, d.Text),
				map[string]any{metaEvent: map[string]any{"type": d.Type, "path": d.Path, "run_id": d.RunID}}), nil)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-live:
				if !delta(m) {
					return
				}
			case ev, ok := <-events:
				// Text streamed before this entry is already queued in live
				// (one connection delivers in order): it goes first.
				for drained := false; !drained; {
					select {
					case m := <-live:
						if !delta(m) {
							return
						}
					default:
						drained = true
					}
				}
				if !ok {
					err := <-errc
					if err == nil || ctx.Err() != nil {
						return
					}
					yield(nil, internal(err))
					return
				}
				path, member := tree.Path(ctx, ev.RunID, &ev)
				if !member {
					continue
				}
				meta := map[string]any{metaEvent: map[string]any{"type": ev.Type, "path": path, "run_id": ev.RunID, "seq": ev.Seq}}
				var out []a2a.Event
				done := false
				switch {
				case ev.RunID == root.ID && ev.Type == journal.TypeRunCompleted:
					var c journal.RunCompleted
					_ = json.Unmarshal(ev.Data, &c)
					art := a2a.NewArtifactEvent(task)
					art.Artifact, art.LastChunk = result(c.Output, c.JSON), true
					out, done = []a2a.Event{art, status(a2a.TaskStateCompleted, true, nil, meta)}, true
				case ev.RunID == root.ID && ev.Type == journal.TypeRunFailed:
					var f journal.RunFailed
					_ = json.Unmarshal(ev.Data, &f)
					out, done = []a2a.Event{status(a2a.TaskStateFailed, true, e.agentMessage(task, f.Code+": "+f.Message), meta)}, true
				case ev.RunID == root.ID && ev.Type == journal.TypeRunCanceled:
					out, done = []a2a.Event{status(a2a.TaskStateCanceled, true, nil, meta)}, true
				case ev.Type == journal.TypeApprovalRequested || ev.Type == journal.TypeInputRequested || ev.Type == journal.TypeRunInDoubt:
					// Replayed questions were answered already; a live one
					// ends the stream until the client answers.
					if w, err := e.waitAsking(ctx, ev); err == nil && w != nil {
						out, done = []a2a.Event{&a2a.TaskStatusUpdateEvent{TaskID: task.ID, ContextID: task.ContextID,
							Status: inputRequired(task, w), Final: true, Metadata: meta}}, true
					} else {
						out = []a2a.Event{status(a2a.TaskStateWorking, false, e.agentMessage(task, path+": "+ev.Type), meta)}
					}
				default:
					out = []a2a.Event{status(a2a.TaskStateWorking, false, e.agentMessage(task, describe(path, ev)), meta)}
				}
				if done && ev.RunID == root.ID {
					// The journal ends the run before its record says so:
					// let the record catch up, so a tasks/get that follows
					// the final event agrees with it.
					wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, _ = rt.Wait(wctx, root.ID)
					cancel()
				}
				for _, o := range out {
					if !yield(o, nil) {
						return
					}
				}
				if done {
					return
				}
			}
		}
	}
}

// waitAsking returns the run of a question's journal entry if the
// question is still open. The entry is written before the run parks, so
// the record may take a moment to say so.
func (e *endpoint) waitAsking(ctx context.Context, ev journal.Event) (*runtime.Record, error) {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rec, err := e.s.rt.Wait(wctx, ev.RunID)
	if err != nil {
		return nil, err
	}
	if !rec.Asking() {
		return nil, nil
	}
	open := false
	switch ev.Type {
	case journal.TypeApprovalRequested:
		var a journal.ApprovalRequested
		_ = json.Unmarshal(ev.Data, &a)
		for _, p := range rec.PendingApprovals() {
			open = open || p.ApprovalID == a.ApprovalID
		}
	case journal.TypeInputRequested:
		var q journal.InputRequested
		_ = json.Unmarshal(ev.Data, &q)
		for _, p := range rec.PendingInputs() {
			open = open || p.Key == q.Key
		}
	case journal.TypeRunInDoubt:
		open = rec.Status == runtime.StatusInDoubt
	}
	if !open {
		return nil, nil
	}
	return rec, nil
}

// describe says in a few words what a journal entry records.
func describe(path string, ev journal.Event) string {
	switch ev.Type {
	case journal.TypeToolStarted:
		var t journal.ToolStarted
		if json.Unmarshal(ev.Data, &t) == nil {
			return path + ": calling " + t.Name
		}
	case journal.TypeToolFinished:
		var t journal.ToolFinished
		if json.Unmarshal(ev.Data, &t) == nil {
			return path + ": " + t.Name + " answered"
		}
	case journal.TypeModelResponse:
		var m journal.ModelResponse
		if json.Unmarshal(ev.Data, &m) == nil && m.Message.Content != "" && len(m.Message.ToolCalls) == 0 {
			return path + ": " + m.Message.Content
		}
	}
	return path + ": " + ev.Type
}
