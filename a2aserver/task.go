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

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
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
func (e *endpoint) run(ctx context.Context, id a2a.TaskID) (*run.Record, error) {
	if !engine.ValidRunID(string(id)) {
		return nil, fmt.Errorf("%w: %s", a2a.ErrTaskNotFound, run.Quote(string(id)))
	}
	rec, err := e.s.rt.Get(ctx, string(id))
	if errors.Is(err, engine.ErrNotFound) || err == nil && rec.Metadata[metaEndpoint] != e.name {
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

// OnSendMessage answers message/send: by default when the task ends, needs
// input, or waits for an operator (an approval, a call in doubt: that may
// take days, and the task's status says where to act); at once when the
// client sets blocking: false.
func (e *endpoint) OnSendMessage(ctx context.Context, params *a2a.MessageSendParams) (a2a.SendMessageResult, error) {
	rec, after, f, err := e.startListening(ctx, params)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	task, err := e.task(ctx, rec)
	if err != nil || params.Config != nil && params.Config.Blocking != nil && !*params.Config.Blocking || rec.Asking() {
		return task, err
	}
	for ev, err := range e.follow(ctx, f, rec, task, after) {
		if err != nil {
			return nil, err
		}
		apply(task, ev)
		if e.operatorNeeded(ev) {
			task.Status = ev.(*a2a.TaskStatusUpdateEvent).Status // what the client is to know
			return task, nil
		}
	}
	return task, nil
}

// operatorNeeded reports a status update that says the task waits for an
// operator: an approval (unless clients decide them) or a call in doubt.
func (e *endpoint) operatorNeeded(ev a2a.Event) bool {
	st, ok := ev.(*a2a.TaskStatusUpdateEvent)
	if !ok {
		return false
	}
	about, _ := st.Metadata[metaEvent].(map[string]any)
	switch about["type"] {
	case journal.TypeApprovalRequested:
		return !e.s.opts.ClientApprovals
	case journal.TypeRunInDoubt:
		return true
	}
	return false
}

// OnSendMessageStream answers message/stream: the task, then its status
// updates until it ends or needs input.
func (e *endpoint) OnSendMessageStream(ctx context.Context, params *a2a.MessageSendParams) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		rec, after, f, err := e.startListening(ctx, params)
		if err != nil {
			yield(nil, err)
			return
		}
		defer f.Close()
		e.stream(ctx, f, rec, after, yield)
	}
}

// startListening is start, following the run tree from before the run
// exists: its first streamed text may come before a watch begun after
// submitting. Close f.
func (e *endpoint) startListening(ctx context.Context, params *a2a.MessageSendParams) (rec *run.Record, after uint64, f *engine.Following, err error) {
	id := engine.NewRunID()
	if f, err = e.listen(ctx, id); err != nil {
		return nil, 0, nil, err
	}
	if rec, after, err = e.start(ctx, params, id); err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if rec.ID != id { // an earlier task: a retry, or an answer
		f.Close()
		if f, err = e.listen(ctx, rec.ID); err != nil {
			return nil, 0, nil, err
		}
	}
	return rec, after, f, nil
}

// OnResubscribeToTask answers tasks/resubscribe: the task as it stands,
// then what happens from now on.
func (e *endpoint) OnResubscribeToTask(ctx context.Context, p *a2a.TaskIDParams) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		if !engine.ValidRunID(string(p.ID)) {
			yield(nil, fmt.Errorf("%w: %s", a2a.ErrTaskNotFound, run.Quote(string(p.ID))))
			return
		}
		// Listening, the position, then the task: nothing falls between.
		f, err := e.listen(ctx, string(p.ID))
		if err != nil {
			yield(nil, err)
			return
		}
		defer f.Close()
		after, err := e.s.rt.Position(ctx, string(p.ID), true)
		if err != nil {
			yield(nil, internal(err))
			return
		}
		rec, err := e.run(ctx, p.ID)
		if err != nil {
			yield(nil, err)
			return
		}
		e.stream(ctx, f, rec, after, yield)
	}
}

func (e *endpoint) stream(ctx context.Context, f *engine.Following, rec *run.Record, after uint64, yield func(a2a.Event, error) bool) {
	task, err := e.task(ctx, rec)
	if err != nil {
		yield(nil, err)
		return
	}
	// The client has its own message: repeating a long input here could
	// make an SSE line longer than readers take.
	first := *task
	first.History = nil
	if !yield(&first, nil) {
		return
	}
	if state := task.Status.State; state.Terminal() || state == a2a.TaskStateInputRequired {
		// Over already (or waiting for the client): say so as the final
		// update every stream ends with.
		yield(&a2a.TaskStatusUpdateEvent{TaskID: task.ID, ContextID: task.ContextID, Status: task.Status, Final: true}, nil)
		return
	}
	for ev, err := range e.follow(ctx, f, rec, task, after) {
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
func (e *endpoint) start(ctx context.Context, params *a2a.MessageSendParams, id string) (rec *run.Record, after uint64, err error) {
	if params == nil || params.Message == nil {
		return nil, 0, fmt.Errorf("%w: message: missing", a2a.ErrInvalidParams)
	}
	msg := params.Message
	if msg.ID == "" {
		return nil, 0, fmt.Errorf("%w: message.messageId: missing (a unique id the client makes; a retry sends the same one)", a2a.ErrInvalidParams)
	}
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
	sub := engine.SubmitRequest{ID: id, Input: input,
		Metadata: map[string]string{metaEndpoint: e.name, metaContext: contextID, metaMessage: msg.ID}}
	// The caller's trace context goes with the run (a Myriad caller sends
	// it in the message metadata).
	if tp, ok := msg.Metadata["traceparent"].(string); ok && tool.ValidTraceParent(tp) {
		sub.Metadata["traceparent"] = tp
	}
	sub.IdempotencyKey = "a2a/" + e.name + "/" + msg.ID
	if e.flow {
		sub.Flow, sub.State = e.name, state
	} else {
		sub.Agent, sub.Instance = e.name, instanceOf(contextID)
		if err := e.contextFree(ctx, sub.Instance, msg.ID); err != nil {
			return nil, 0, err
		}
	}
	rec, created, err := e.s.rt.Submit(ctx, sub)
	if err != nil {
		return nil, 0, submitError(err)
	}
	if created {
		return rec, 0, nil // its whole journal is news
	}
	// A retry of a message: the task as it stands, then what comes next.
	if after, err = e.s.rt.Position(ctx, rec.ID, true); err != nil {
		return nil, 0, internal(err)
	}
	if rec, err = e.s.rt.Get(ctx, rec.ID); err != nil {
		return nil, 0, internal(err)
	}
	return rec, after, nil
}

// contextFree refuses a new message in a context whose current task asks
// the client something: the new turn would wait behind that one, which
// waits for the client, until the client gave up.
func (e *endpoint) contextFree(ctx context.Context, instance, messageID string) error {
	in, err := e.s.rt.GetInstance(ctx, e.name, instance)
	if err != nil || in == nil || in.Current == "" {
		return nil // a new context, an idle one (or one unreadable now: the turn queues)
	}
	cur, err := e.s.rt.Get(ctx, in.Current)
	if err != nil || cur.Metadata[metaMessage] == messageID {
		return nil
	}
	asking, err := e.s.rt.Asking(ctx, cur)
	if err != nil || len(e.asks(asking)) == 0 {
		return nil
	}
	return fmt.Errorf("%w: task %s of this context waits for input: answer it (a message with taskId %s) or cancel it before sending another",
		a2a.ErrInvalidParams, cur.ID, cur.ID)
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
// an approval (when clients may decide them), or the answer to a flow's
// question, anywhere in the task's tree of runs. A reply sent again (the
// same messageId) changes nothing and follows the task again.
func (e *endpoint) answer(ctx context.Context, msg *a2a.Message) (*run.Record, uint64, error) {
	rec, err := e.run(ctx, msg.TaskID)
	if err != nil {
		return nil, 0, err
	}
	if msg.ContextID != "" && msg.ContextID != rec.Metadata[metaContext] {
		return nil, 0, fmt.Errorf("%w: task %s is in context %s, not %s", a2a.ErrInvalidParams, rec.ID, rec.Metadata[metaContext], msg.ContextID)
	}
	// Follow from here: what comes after the answer is news.
	after, err := e.s.rt.Position(ctx, rec.ID, true)
	if err != nil {
		return nil, 0, internal(err)
	}
	// A reply sent again answers nothing more; one that failed answered
	// nothing, and may be sent again.
	if _, err := e.s.rt.Once(ctx, "a2a-reply/"+e.name+"/"+msg.ID, func() error { return e.reply(ctx, rec, msg) }); err != nil {
		return nil, 0, err
	}
	if rec, err = e.s.rt.Get(ctx, rec.ID); err != nil {
		return nil, 0, internal(err)
	}
	return rec, after, nil
}

func (e *endpoint) reply(ctx context.Context, rec *run.Record, msg *a2a.Message) error {
	if rec.Status.Terminal() {
		return fmt.Errorf("%w: task %s is %s: send a new message (without taskId) to start another", a2a.ErrInvalidParams, rec.ID, rec.Status)
	}
	asking, err := e.s.rt.Asking(ctx, rec)
	if err != nil {
		return internal(err)
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
	all := e.asks(asking)
	var match []ask
	var names []string
	for _, a := range all {
		switch {
		case a.Approval != nil:
			names = append(names, "approval_id "+a.Approval.ApprovalID)
			if r.Key == "" && (r.ApprovalID == "" || r.ApprovalID == a.Approval.ApprovalID) {
				match = append(match, a)
			}
		case a.Input != nil:
			names = append(names, "key "+a.Input.Key)
			if r.ApprovalID == "" && (r.Key == "" || r.Key == a.Input.Key) {
				match = append(match, a)
			}
		}
	}
	switch {
	case len(names) == 0:
		return fmt.Errorf("%w: task %s asks the client for nothing (it is %s): follow it with tasks/resubscribe, or cancel it", a2a.ErrInvalidParams, rec.ID, rec.Status)
	case len(match) == 0:
		return fmt.Errorf("%w: task %s asks for none of that (it asks: %s)", a2a.ErrInvalidParams, rec.ID, strings.Join(names, ", "))
	case len(match) > 1:
		return fmt.Errorf("%w: task %s asks several things: name one in a data part (%s)", a2a.ErrInvalidParams, rec.ID, strings.Join(names, ", "))
	}
	a := match[0]
	if a.Approval != nil {
		d := run.Decision{Decision: r.Decision, Reason: r.Reason, Arguments: r.Arguments}
		if d.Decision == "" {
			d.Decision = decisionOf(said)
		}
		if d.Decision == "" {
			return fmt.Errorf("%w: task %s asks to approve a call of %s: reply approve or deny (text, or a data part {\"decision\": \"approve\"})", a2a.ErrInvalidParams, rec.ID, a.Approval.Name)
		}
		_, err = e.s.rt.Decide(ctx, a.RunID, a.Approval.ApprovalID, d)
	} else {
		value := r.Value
		switch {
		case len(value) > 0:
		case said == "" && data != nil:
			value = data
		case said != "" && json.Valid([]byte(said)) && !wantsString(a.Input.Schema):
			value = json.RawMessage(said)
		default:
			value, _ = json.Marshal(said)
		}
		_, err = e.s.rt.ProvideInput(ctx, a.RunID, a.Input.Key, value)
	}
	if err != nil {
		return submitError(err)
	}
	return nil
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
	case errors.Is(err, engine.ErrInvalid), errors.Is(err, engine.ErrUnknownAgent), errors.Is(err, engine.ErrTooLarge):
		return fmt.Errorf("%w: %w", a2a.ErrInvalidParams, err)
	case errors.Is(err, engine.ErrConflict):
		return fmt.Errorf("%w: %w", a2a.ErrInvalidRequest, err)
	case errors.Is(err, engine.ErrNotFound):
		return fmt.Errorf("%w: %w", a2a.ErrTaskNotFound, err)
	}
	return internal(err)
}

// internal keeps the cause in the error's data; the SDK would otherwise
// answer a bare "internal error".
func internal(err error) error { return fmt.Errorf("%w: %w", a2a.ErrInternalError, err) }
