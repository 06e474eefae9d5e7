package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/tool"
)

// Journal is where the loop records its steps: the run's journal, through
// the engine. Append must fail (with journal.ErrConflict) when the caller
// has lost ownership of the run.
type Journal interface {
	Append(ctx context.Context, typ string, data any) (journal.Event, error)
}

// Outcome is how a call to Resume ended.
type Outcome int

// Outcomes. Terminal ones have been journaled; InDoubt has been journaled
// too but the run may continue after a resolution; Stopped means nothing more
// may be written by this caller (ownership lost or shutdown).
const (
	Completed Outcome = iota
	Failed
	Canceled
	InDoubt
	Stopped
	// Waiting means the run is parked until a person decides on a call.
	Waiting
)

// Env is what a run needs from the runtime around it. All fields are
// optional: without Children, sub-agent calls fail; without Lookup,
// handoffs do.
type Env struct {
	// OnDelta receives streamed model text with the number of the turn it
	// belongs to. The model streams only for agents with Stream set.
	OnDelta func(turn int, d model.Delta)
	// OnEvent receives each event right after it is journaled.
	OnEvent func(journal.Event)
	// Children starts sub-agent runs and collects their reports.
	Children Children
	// Lookup finds an agent by name, for handoffs.
	Lookup func(name string) *Agent
	// OnProgress receives progress reported by running tool calls.
	OnProgress func(callID, toolName string, p tool.Progress)
	// Inputs takes the inputs that reached the run since it was resumed (a
	// child's report, an answer, a decision) and returns the entries that
	// journaled them, for the run to fold in; the engine journals them,
	// and resumes the run again if it parks without having asked.
	Inputs func(ctx context.Context) ([]journal.Event, error)
	// TraceParent is the trace context the run was started in (a caller's
	// traceparent), which its tool calls continue.
	TraceParent string
	// Ask puts a question from a running tool call to a person and waits
	// for the answer (see tool.Call.Ask); without it tools cannot ask.
	Ask func(ctx context.Context, callID, toolName string, q tool.Question) (json.RawMessage, error)
	// Messenger lets tool calls message agent instances as this run's
	// agent (tool.Call.Messenger); without it they cannot.
	Messenger tool.Messenger
	// Models finds a configured model by name, for runs forked to use
	// another model.
	Models func(name string) (ModelChoice, bool)
	// Budget holds each priced model and tool call's cost against the
	// budgets the run shares with others before the call is made.
	Budget Budget
	// Carry are metadata keys a child run takes from its parent whatever
	// its sub-agent's state says (those budgets are kept by).
	Carry []string
}

// turn is one model response and the results of the tool calls it asked for.
type turn struct {
	msg       model.Message
	started   map[string]journal.ToolStarted // by call id, the latest attempt
	finished  map[string]journal.ToolFinished
	resolved  map[string]journal.ToolResolved
	requested map[string]journal.ApprovalRequested // by call id
	decided   map[string]journal.ApprovalDecided   // by call id
	// agent is the agent that made this turn: its tools run the turn's calls.
	agent string
	// unconfirmed are child calls started since the run last parked: their
	// child runs may not have been spawned before a crash.
	unconfirmed map[string]bool
	handedOff   map[string]journal.Handoff // by call id
	childN      map[string]int             // a child call's number among its agent's calls, for paths
	summary     *journal.ContextSummarized
	cost        float64 // the model call's, in US dollars
}

func newTurn(msg model.Message, agentName string) *turn {
	return &turn{msg: msg, started: map[string]journal.ToolStarted{}, finished: map[string]journal.ToolFinished{},
		resolved: map[string]journal.ToolResolved{}, requested: map[string]journal.ApprovalRequested{},
		decided: map[string]journal.ApprovalDecided{}, agent: agentName, unconfirmed: map[string]bool{},
		handedOff: map[string]journal.Handoff{}, childN: map[string]int{}}
}

// state is the fold of a journal.
type state struct {
	start     journal.RunStarted
	startTime time.Time
	// clockFrom is when the run's timeout starts counting: its start,
	// moved later by the time it spent parked for a person (an approval,
	// a call in doubt), which does not count.
	clockFrom time.Time
	// parkedAt is when the run parked for a person, zero when it is not.
	parkedAt time.Time
	turns    []*turn
	rejects  []string // output.rejected reasons after the last turn
	usage    model.Usage
	// childCost is what the children that reported spent.
	childCost float64
	inDoubt   bool
	terminal  string
	// agent holds the conversation: the start agent, or the last handoff's.
	agent string
	// children counts the child runs started, in all and by agent.
	children   int
	childCalls map[string]int
	// byChild locates the call of each child run.
	byChild map[string]childCall
	// lastType is the type of the journal's last entry.
	lastType string
	// context is the text of the agent's context sources, once loaded.
	context       []journal.ContextItem
	contextLoaded bool
}

// park marks the run parked for a person at t (the timeout's clock stops).
func (s *state) park(t time.Time) {
	if s.parkedAt.IsZero() {
		s.parkedAt = t
	}
}

// unpark restarts the timeout's clock at t: the time parked is not counted.
func (s *state) unpark(t time.Time) {
	if !s.parkedAt.IsZero() && t.After(s.parkedAt) {
		s.clockFrom = s.clockFrom.Add(t.Sub(s.parkedAt))
	}
	s.parkedAt = time.Time{}
}

// deadline is when a run's timeout runs out, seen at now: a run still
// parked (resumed while it waits for a person) has its clock stopped.
func (s *state) deadline(timeout time.Duration, now time.Time) time.Time {
	from := s.clockFrom
	if !s.parkedAt.IsZero() && now.After(s.parkedAt) {
		from = from.Add(now.Sub(s.parkedAt))
	}
	return from.Add(timeout)
}

// fold derives the loop's state from a run's journal.
func fold(events []journal.Event) (*state, error) {
	s := &state{childCalls: map[string]int{}, byChild: map[string]childCall{}}
	for _, ev := range events {
		if err := s.apply(ev); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// childCall locates the sub-agent call that started a child run.
type childCall struct {
	turn int
	call string
}

// apply folds one journal entry.
func (s *state) apply(ev journal.Event) error {
	var err error
	s.lastType = ev.Type
	switch ev.Type {
	case journal.TypeRunStarted:
		err = json.Unmarshal(ev.Data, &s.start)
		s.startTime, s.clockFrom = ev.Time, ev.Time
		s.agent = s.start.Agent
	case journal.TypeModelResponse:
		var r journal.ModelResponse
		err = json.Unmarshal(ev.Data, &r)
		s.turns = append(s.turns, newTurn(r.Message, s.agent))
		s.turns[len(s.turns)-1].cost = r.CostUSD
		s.usage = s.usage.Add(r.Usage)
		s.rejects = nil
	case journal.TypeToolStarted:
		var r journal.ToolStarted
		if err = json.Unmarshal(ev.Data, &r); err == nil && len(s.turns) > 0 {
			t := s.turns[len(s.turns)-1]
			t.started[r.CallID] = r
			// A resolution covers one attempt: if the retry dies too,
			// the call is in doubt again.
			delete(t.resolved, r.CallID)
			if r.ChildRunID != "" {
				s.children++
				s.childCalls[r.Name]++
				t.unconfirmed[r.CallID] = true
				t.childN[r.CallID] = s.childCalls[r.Name]
				s.byChild[r.ChildRunID] = childCall{turn: len(s.turns) - 1, call: r.CallID}
			}
		}
	case journal.TypeToolFinished:
		var r journal.ToolFinished
		if err = json.Unmarshal(ev.Data, &r); err == nil && len(s.turns) > 0 {
			s.turns[len(s.turns)-1].finished[r.CallID] = r
		}
	case journal.TypeChildrenReported:
		var r journal.ChildrenReported
		if err = json.Unmarshal(ev.Data, &r); err == nil {
			for _, rep := range r.Reports {
				s.childReported(rep)
			}
		}
	case journal.TypeRunWaiting:
		if len(s.turns) > 0 {
			clear(s.turns[len(s.turns)-1].unconfirmed)
		}
		var w journal.RunWaiting
		if json.Unmarshal(ev.Data, &w) == nil && len(w.Approvals) > 0 {
			s.park(ev.Time)
		}
	case journal.TypeContextLoaded:
		var r journal.ContextLoaded
		if err = json.Unmarshal(ev.Data, &r); err == nil {
			s.context, s.contextLoaded = r.Items, true
		}
	case journal.TypeHandoff:
		var r journal.Handoff
		if err = json.Unmarshal(ev.Data, &r); err == nil && len(s.turns) > 0 {
			s.turns[len(s.turns)-1].handedOff[r.CallID] = r
			s.agent = r.To
		}
	case journal.TypeContextSummarized:
		var r journal.ContextSummarized
		if err = json.Unmarshal(ev.Data, &r); err == nil && len(s.turns) > 0 {
			s.turns[len(s.turns)-1].summary = &r
			s.usage = s.usage.Add(r.Usage)
		}
	case journal.TypeToolResolved:
		var r journal.ToolResolved
		if err = json.Unmarshal(ev.Data, &r); err == nil && len(s.turns) > 0 {
			s.turns[len(s.turns)-1].resolved[r.CallID] = r
		}
		s.inDoubt = false
		s.unpark(ev.Time)
	case journal.TypeRunInDoubt:
		s.inDoubt = true
		s.park(ev.Time)
	case journal.TypeApprovalRequested:
		var r journal.ApprovalRequested
		if err = json.Unmarshal(ev.Data, &r); err == nil && len(s.turns) > 0 {
			s.turns[len(s.turns)-1].requested[r.CallID] = r
		}
	case journal.TypeApprovalDecided:
		var r journal.ApprovalDecided
		if err = json.Unmarshal(ev.Data, &r); err == nil && len(s.turns) > 0 {
			s.turns[len(s.turns)-1].decided[r.CallID] = r
		}
		s.unpark(ev.Time)
	case journal.TypeOutputRejected:
		var r journal.OutputRejected
		err = json.Unmarshal(ev.Data, &r)
		s.rejects = append(s.rejects, r.Reason)
	case journal.TypeRunCompleted, journal.TypeRunFailed, journal.TypeRunCanceled:
		s.terminal = ev.Type
	}
	if err != nil {
		return fmt.Errorf("journal step %d (%s): %w", ev.Step, ev.Type, err)
	}
	return nil
}

// spent is what the run has spent so far, in US dollars: its model and
// tool calls, and the children that reported.
func (s *state) spent() float64 {
	usd := s.childCost
	for _, t := range s.turns {
		usd += t.cost
		if t.summary != nil {
			usd += t.summary.CostUSD
		}
		for _, f := range t.finished {
			usd += f.CostUSD
		}
	}
	return usd
}

// childReported makes a child's report the result of the call that
// started it: what it answered, or why it did not.
func (s *state) childReported(rep journal.ChildReport) {
	at, ok := s.byChild[rep.RunID]
	if !ok {
		return
	}
	t := s.turns[at.turn]
	if _, done := t.finished[at.call]; done {
		return
	}
	name := t.started[at.call].Name
	f := journal.ToolFinished{CallID: at.call, Name: name, ChildRunID: rep.RunID, Content: rep.Output}
	switch rep.Status {
	case "completed":
	case "canceled":
		f.IsError, f.Content = true, fmt.Sprintf("the %s run was canceled", name)
	default:
		f.IsError, f.Content = true, fmt.Sprintf("the %s run failed: %s", name, rep.Error)
	}
	if len(f.Content) > MaxToolResultBytes {
		f.Content = f.Content[:MaxToolResultBytes] + "\n[truncated]"
	}
	t.finished[at.call] = f
	s.usage = s.usage.Add(rep.Usage)
	if rep.Cost != nil {
		s.childCost += rep.Cost.USD
	}
}

// Messages rebuilds the conversation a run has had so far: history, input,
// and each turn with its tool results in call order.
func Messages(events []journal.Event) ([]model.Message, error) {
	s, err := fold(events)
	if err != nil {
		return nil, err
	}
	return s.messages(""), nil
}

func (s *state) messages(instructions string) []model.Message {
	msgs := make([]model.Message, 0, 2+len(s.start.History)+3*len(s.turns))
	for _, c := range s.context {
		if instructions != "" {
			instructions += "\n\n"
		}
		instructions += c.Text
	}
	if instructions != "" {
		msgs = append(msgs, model.Message{Role: model.RoleSystem, Content: instructions})
	}
	msgs = append(msgs, s.start.History...)
	msgs = append(msgs, model.Message{Role: model.RoleUser, Content: s.start.Input})
	for _, t := range s.turns {
		msgs = append(msgs, t.msg)
		for _, c := range t.msg.ToolCalls {
			if f, ok := t.finished[c.ID]; ok {
				msgs = append(msgs, model.Message{Role: model.RoleTool, ToolCallID: c.ID, Name: c.Name, Content: f.Content, IsError: f.IsError})
			}
		}
	}
	for _, r := range s.rejects {
		msgs = append(msgs, model.Message{Role: model.RoleUser, Content: "Your answer was rejected: " + r + ". Answer again with JSON that matches the schema."})
	}
	return msgs
}

// runner carries one Resume call.
type runner struct {
	a     *Agent
	j     Journal
	env   Env
	runID string
	mu    sync.Mutex // serialises appends from parallel tool calls
	s     *state
	ts    *toolset // the tools of r.a the current turn was offered
	// model and instructions are what r.a calls the model with: its own,
	// or those its run was forked with.
	model        ModelChoice
	instructions string
}

// pick sets the model and instructions of r.a: the agent's own, or, for
// the agent a forked run started with, those the fork changed.
func (r *runner) pick() error {
	r.model, r.instructions = r.a.ownModel(), r.a.Instructions
	f := r.s.start.Fork
	if f == nil || r.a.Name != r.s.start.Agent {
		return nil
	}
	if f.Instructions != "" {
		r.instructions = f.Instructions
	}
	if f.Model != "" {
		var ok bool
		if r.env.Models != nil {
			r.model, ok = r.env.Models(f.Model)
		}
		if !ok {
			return fmt.Errorf("the run was forked to use model %q, which is not defined on this node", f.Model)
		}
	}
	return nil
}

func (r *runner) append(ctx context.Context, typ string, data any) (journal.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev, err := r.j.Append(ctx, typ, data)
	if err == nil {
		r.s.lastType = typ
		if r.env.OnEvent != nil {
			r.env.OnEvent(ev)
		}
	}
	return ev, err
}

// lookup finds the agent called name: this one, or one handoffs reach.
func (r *runner) lookup(name string) *Agent {
	if name == "" || name == r.a.Name {
		return r.a
	}
	if r.env.Lookup == nil {
		return nil
	}
	return r.env.Lookup(name)
}

// Resume continues a run from its journal. events is everything journaled so
// far and must begin with run.started. ctx carries the run's cancellation:
// a cause of ErrCanceled ends the run as canceled; ErrShutdown (or any other
// cause) stops it without journaling so that another worker can resume it.
func (a *Agent) Resume(ctx context.Context, runID string, events []journal.Event, j Journal, env Env) (Outcome, error) {
	s, err := fold(events)
	if err != nil {
		return Stopped, err
	}
	if s.terminal != "" {
		return outcomeOf(s.terminal), nil
	}
	if s.startTime.IsZero() {
		return Stopped, errors.New("journal does not begin with run.started")
	}
	if s.inDoubt {
		// Parked already: only a resolution (tool.resolved) moves it on.
		return InDoubt, nil
	}
	r := &runner{a: a, j: j, env: env, runID: runID, s: s}
	// The last turn's calls belong to the agent that made it, even if it
	// handed the conversation over in that turn.
	holder := s.agent
	if n := len(s.turns); n > 0 {
		holder = s.turns[n-1].agent
	}
	if r.a = r.lookup(holder); r.a == nil {
		r.a, r.ts = a, a.current()
		return r.fail(ctx, s, CodeUnknownAgent, fmt.Sprintf("the run was handed to agent %q, which is not defined on this node", holder))
	}
	r.ts = r.a.current()
	if err := r.pick(); err != nil {
		return r.fail(ctx, s, CodeModel, err.Error())
	}
	if len(r.a.Context) > 0 && !s.contextLoaded && len(s.turns) == 0 {
		// Read once, at the start, and journaled: a resumed run sees the
		// context the first attempt saw.
		loaded := journal.ContextLoaded{}
		for _, src := range r.a.Context {
			text, err := src.Load(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return r.interrupted(ctx, s)
				}
				return r.fail(ctx, s, CodeContext, redact.Text(fmt.Sprintf("context %s: %v", src.Name(), err)))
			}
			loaded.Items = append(loaded.Items, journal.ContextItem{Source: src.Name(), Text: text})
		}
		if _, err := r.append(ctx, journal.TypeContextLoaded, loaded); err != nil {
			return Stopped, err
		}
		s.context, s.contextLoaded = loaded.Items, true
	}
	if a.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, s.deadline(a.Timeout, time.Now()), errTimeout)
		defer cancel()
	}
	return r.loop(ctx, s)
}

var errTimeout = errors.New("run timeout")

// journalError marks a failed append, as opposed to a failed model call.
type journalError struct{ err error }

func (e journalError) Error() string { return e.err.Error() }
func (e journalError) Unwrap() error { return e.err }

func outcomeOf(terminal string) Outcome {
	switch terminal {
	case journal.TypeRunCompleted:
		return Completed
	case journal.TypeRunCanceled:
		return Canceled
	}
	return Failed
}

func (r *runner) fail(ctx context.Context, s *state, code, msg string) (Outcome, error) {
	if _, err := r.append(context.WithoutCancel(ctx), journal.TypeRunFailed, journal.RunFailed{Code: code, Message: msg, Usage: s.usage}); err != nil {
		return Stopped, err
	}
	return Failed, nil
}

// interrupted journals the end a canceled context calls for.
func (r *runner) interrupted(ctx context.Context, s *state) (Outcome, error) {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ErrCanceled):
		if _, err := r.append(context.WithoutCancel(ctx), journal.TypeRunCanceled, journal.RunCanceled{Reason: CancelReason(cause), Usage: s.usage}); err != nil {
			return Stopped, err
		}
		return Canceled, nil
	case errors.Is(cause, errTimeout):
		return r.fail(ctx, s, CodeTimeout, fmt.Sprintf("run exceeded its timeout of %s (raise agents.%s.timeout)", r.a.Timeout, r.a.Name))
	}
	return Stopped, cause
}

func (r *runner) loop(ctx context.Context, s *state) (Outcome, error) {
	for {
		if ctx.Err() != nil {
			return r.interrupted(ctx, s)
		}
		var last *turn
		if n := len(s.turns); n > 0 {
			last = s.turns[n-1]
		}
		if last != nil && len(last.msg.ToolCalls) > 0 {
			done, out, err := r.runTools(ctx, s, last)
			if !done {
				return out, err
			}
		} else if last != nil && len(s.rejects) == 0 {
			out, retry, err := r.finish(ctx, s, last)
			if !retry {
				return out, err
			}
			continue
		}
		if s.agent != r.a.Name {
			next := r.lookup(s.agent)
			if next == nil {
				return r.fail(ctx, s, CodeUnknownAgent, fmt.Sprintf("the run was handed to agent %q, which is not defined on this node", s.agent))
			}
			r.a, r.ts = next, next.current()
			if err := r.pick(); err != nil {
				return r.fail(ctx, s, CodeModel, err.Error())
			}
		}
		if len(s.turns) >= r.a.MaxTurns {
			return r.fail(ctx, s, CodeMaxTurns, fmt.Sprintf("the model did not give a final answer within %d %s (raise agents.%s.max_turns)", r.a.MaxTurns, map[bool]string{true: "turn", false: "turns"}[r.a.MaxTurns == 1], r.a.Name))
		}
		if r.a.TokenBudget > 0 && s.usage.Total() >= r.a.TokenBudget {
			return r.fail(ctx, s, CodeTokenBudget, fmt.Sprintf("the run used %d tokens, its budget is %d (raise agents.%s.token_budget)", s.usage.Total(), r.a.TokenBudget, r.a.Name))
		}
		if spent := s.spent(); r.a.CostBudget > 0 && spent >= r.a.CostBudget {
			return r.fail(ctx, s, CodeCostBudget, fmt.Sprintf("the run spent $%.4f, its budget is $%.4f (raise agents.%s.cost_budget)", spent, r.a.CostBudget, r.a.Name))
		}
		if err := r.callModel(ctx, s); err != nil {
			var je journalError
			var be budgetError
			if errors.As(err, &be) {
				return r.fail(ctx, s, CodeBudget, be.Error())
			}
			if errors.As(err, &je) {
				// Not the model's fault: the journal refused the step, so
				// this worker must stop and let the run be resumed.
				return Stopped, je.err
			}
			if ctx.Err() != nil {
				return r.interrupted(ctx, s)
			}
			// Credentials in an endpoint's URL must not reach the journal.
			return r.fail(ctx, s, CodeModel, redact.Text(fmt.Sprintf("model %s: %v", r.model.Name, err)))
		}
	}
}

func (r *runner) callModel(ctx context.Context, s *state) error {
	r.ts = r.a.current() // a source may have changed its tools since
	// The model's cap goes with every request: what a budget reserves
	// for an answer is a ceiling only if the provider is told it.
	req := &model.Request{Messages: s.messages(r.instructions), Tools: r.ts.specs, MaxTokens: r.model.MaxOutputTokens}
	if r.a.OutputSchema != nil {
		req.OutputSchema = r.a.OutputSchema.Raw()
	}
	var sink func(model.Delta)
	var firstToken time.Duration
	began := time.Now()
	if r.a.Stream {
		turn, onDelta := len(s.turns)+1, r.env.OnDelta
		sink = func(d model.Delta) {
			if firstToken == 0 {
				firstToken = max(time.Since(began), time.Microsecond)
			}
			if onDelta != nil {
				onDelta(turn, d)
			}
		}
	}
	hold, err := r.reserve(ctx, r.model.estimate(req, began))
	if err != nil {
		return err
	}
	resp, err := r.model.Provider.Generate(ctx, req, sink)
	if err != nil {
		hold.Settle(context.WithoutCancel(ctx), 0)
		return err
	}
	resp.Message.Role = model.RoleAssistant
	uniqueCallIDs(resp.Message.ToolCalls, len(s.turns)+1)
	rec := journal.ModelResponse{Turn: len(s.turns) + 1, Message: resp.Message, Usage: resp.Usage,
		Model: resp.Model, ModelName: r.model.Name, StopReason: resp.StopReason, DurationMS: msSince(began),
		FirstTokenMS: float64(firstToken.Microseconds()) / 1000, CostUSD: r.model.Prices.Cost(resp.Usage, time.Now())}
	hold.Settle(context.WithoutCancel(ctx), rec.CostUSD)
	// The answer is paid for: journal it even if the run was canceled meanwhile.
	if _, err := r.append(context.WithoutCancel(ctx), journal.TypeModelResponse, rec); err != nil {
		return journalError{err}
	}
	s.turns = append(s.turns, newTurn(resp.Message, r.a.Name))
	s.turns[len(s.turns)-1].cost = rec.CostUSD
	s.usage = s.usage.Add(resp.Usage)
	s.rejects = nil
	return nil
}

// finish ends the run with the last turn's answer, or rejects it when it
// does not match the output schema (retry is then true).
func (r *runner) finish(ctx context.Context, s *state, last *turn) (out Outcome, retry bool, err error) {
	done := journal.RunCompleted{Output: last.msg.Content, Usage: s.usage}
	if r.a.OutputSchema != nil {
		raw := json.RawMessage(extractJSON(last.msg.Content))
		if verr := r.a.OutputSchema.Validate(raw); verr != nil {
			reason := fmt.Sprintf("output does not match the schema: %v", verr)
			if _, err := r.append(ctx, journal.TypeOutputRejected, journal.OutputRejected{Reason: reason}); err != nil {
				return Stopped, false, err
			}
			s.rejects = append(s.rejects, reason)
			return 0, true, nil
		}
		done.JSON = raw
	}
	if _, err := r.append(context.WithoutCancel(ctx), journal.TypeRunCompleted, done); err != nil {
		return Stopped, false, err
	}
	return Completed, false, nil
}

// runTools executes the calls of the last turn that have no result yet.
// done is false when the run must stop (in doubt, failed, lost).
func (r *runner) runTools(ctx context.Context, s *state, t *turn) (done bool, out Outcome, err error) {
	var jobs []job
	var children, handoffs []model.ToolCall
	var waiting bool
	for i, c := range t.msg.ToolCalls {
		if _, ok := t.finished[c.ID]; ok {
			continue
		}
		if _, ok := r.a.subs[c.Name]; ok {
			children = append(children, c)
			continue
		}
		if _, ok := r.a.handoffs[c.Name]; ok {
			handoffs = append(handoffs, c)
			continue
		}
		if d, ok := t.decided[c.ID]; ok && d.Decision == journal.Approve && len(d.Arguments) > 0 {
			c.Arguments = d.Arguments // approved with edits, for every attempt
		}
		prev, wasStarted := t.started[c.ID]
		bt := r.ts.tools[c.Name]
		if res, ok := t.resolved[c.ID]; ok && wasStarted {
			switch res.Action {
			case journal.ResolveSkip:
				// The call in doubt was most likely made: it is paid for.
				f := journal.ToolFinished{CallID: c.ID, Name: c.Name, Content: res.Result, CostUSD: r.price(c.Name, true)}
				if _, err := r.append(ctx, journal.TypeToolFinished, f); err != nil {
					return false, Stopped, err
				}
				t.finished[c.ID] = f
				continue
			case journal.ResolveFail:
				msg := fmt.Sprintf("tool call %s (%s) was in doubt and an operator failed the run", c.ID, c.Name)
				if res.Reason != "" {
					msg += ": " + res.Reason
				}
				out, err := r.fail(ctx, s, CodeResolvedFail, msg)
				return false, out, err
			}
			// retry: run it again below with the same key.
		} else if wasStarted && bt != nil && !bt.info.Idempotent {
			rec := journal.RunInDoubt{CallID: c.ID, Name: c.Name,
				Reason: fmt.Sprintf("tool %s is not idempotent and its call started (step key %s) but never finished; resolve with retry, skip or fail", c.Name, prev.IdempotencyKey)}
			if _, err := r.append(ctx, journal.TypeRunInDoubt, rec); err != nil {
				return false, Stopped, err
			}
			return false, InDoubt, nil
		}
		if !wasStarted && bt != nil {
			ask, asked := t.requested[c.ID]
			d, decided := t.decided[c.ID]
			needs, why := asked || decided, ""
			if !needs {
				needs, why = r.a.needsApproval(bt, c)
			}
			if needs && !decided {
				if !asked {
					ask = journal.ApprovalRequested{ApprovalID: fmt.Sprintf("%d-%d", len(s.turns), i), CallID: c.ID, Name: c.Name,
						Arguments: c.Arguments, Reason: why, Agent: r.a.Name}
					if rule := r.a.Approvals[c.Name]; rule.Timeout > 0 {
						deadline := time.Now().Add(rule.Timeout).UTC()
						ask.Deadline, ask.OnTimeout = &deadline, rule.onTimeout()
					}
					if _, err := r.append(ctx, journal.TypeApprovalRequested, ask); err != nil {
						return false, Stopped, err
					}
					t.requested[c.ID] = ask
				}
				if ask.Deadline == nil || time.Now().Before(*ask.Deadline) {
					waiting = true
					continue
				}
				// Nobody decided in time: the default decision applies.
				d = journal.ApprovalDecided{ApprovalID: ask.ApprovalID, CallID: c.ID, Decision: ask.OnTimeout, ByDefault: true,
					Reason: fmt.Sprintf("no decision by %s", ask.Deadline.Format(time.RFC3339))}
				if _, err := r.append(ctx, journal.TypeApprovalDecided, d); err != nil {
					return false, Stopped, err
				}
				t.decided[c.ID] = d
			}
			switch {
			case !needs:
			case d.Decision == journal.Deny:
				f := journal.ToolFinished{CallID: c.ID, Name: c.Name, IsError: true, Content: "a person denied this call"}
				if d.ByDefault {
					f.Content = "nobody decided on this call in time, so it was denied by default"
				} else if d.Reason != "" {
					f.Content += ": " + d.Reason
				}
				if _, err := r.append(ctx, journal.TypeToolFinished, f); err != nil {
					return false, Stopped, err
				}
				t.finished[c.ID] = f
				continue
			}
		}
		jobs = append(jobs, job{call: c, started: prev})
	}
	if waiting {
		// Nothing of this turn runs until every call that needs approval
		// has a decision: the run parks.
		if s.lastType != journal.TypeRunWaiting {
			w := journal.RunWaiting{}
			for _, a := range t.requested {
				if _, ok := t.decided[a.CallID]; !ok {
					w.Approvals = append(w.Approvals, a.ApprovalID)
				}
			}
			sort.Strings(w.Approvals)
			if _, err := r.append(ctx, journal.TypeRunWaiting, w); err != nil {
				return false, Stopped, err
			}
		}
		return false, Waiting, nil
	}
	for _, c := range handoffs {
		if err := r.handOff(ctx, s, t, c); err != nil {
			return false, Stopped, err
		}
	}
	if len(children) > 0 {
		if err := r.spawnChildren(ctx, s, t, children); err != nil {
			if ctx.Err() != nil {
				out, err := r.interrupted(ctx, s)
				return false, out, err
			}
			return false, Stopped, err
		}
	}
	if len(jobs) > 0 {
		if done, out, err := r.runJobs(ctx, s, t, jobs); !done {
			return false, out, err
		}
	}
	if len(children) > 0 {
		pending, err := r.collectChildren(ctx, s, t, children)
		if err != nil {
			if ctx.Err() != nil {
				out, err := r.interrupted(ctx, s)
				return false, out, err
			}
			return false, Stopped, err
		}
		if len(pending) > 0 {
			if s.lastType != journal.TypeRunWaiting {
				w := journal.RunWaiting{Children: pending}
				if r.a.Timeout > 0 {
					// Wake at the deadline even if a child never reports.
					deadline := s.deadline(r.a.Timeout, time.Now()).UTC()
					w.Until = &deadline
				}
				if _, err := r.append(ctx, journal.TypeRunWaiting, w); err != nil {
					return false, Stopped, err
				}
				clear(t.unconfirmed)
			}
			return false, Waiting, nil
		}
	}
	return true, 0, nil
}

// errCut marks a tool call cut short by the run's context: its outcome
// is unknown, and it stays started and unfinished in the journal.
var errCut = errors.New("tool call cut short")

type job struct {
	call    model.ToolCall
	started journal.ToolStarted
}

// runJobs executes tool calls in parallel, each journaled as started first.
func (r *runner) runJobs(ctx context.Context, s *state, t *turn, jobs []job) (done bool, out Outcome, err error) {
	holds, err := r.reserveTools(ctx, jobs)
	if err != nil {
		var be budgetError
		if errors.As(err, &be) {
			out, err := r.fail(ctx, s, CodeBudget, be.Error())
			return false, out, err
		}
		return false, Stopped, err
	}
	// Journal every start before any call runs, so a crash mid-batch leaves
	// each call either clearly not started or clearly started.
	for i := range jobs {
		c := jobs[i].call
		st := journal.ToolStarted{CallID: c.ID, Name: c.Name, Arguments: c.Arguments, Attempt: jobs[i].started.Attempt + 1}
		if bt := r.ts.tools[c.Name]; bt != nil {
			st.Idempotent = bt.info.Idempotent
		}
		if jobs[i].started.IdempotencyKey != "" {
			st.IdempotencyKey = jobs[i].started.IdempotencyKey
		}
		if _, err := r.appendStart(ctx, &st); err != nil {
			settleAll(ctx, holds[i:], 0)
			return false, Stopped, err
		}
		t.started[c.ID] = st
		jobs[i].started = st
	}
	results := make([]journal.ToolFinished, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i := range jobs {
		run := func() {
			var cut bool
			results[i], cut = r.callTool(ctx, jobs[i].call, jobs[i].started)
			// A call cut short may have been made: it stays paid for.
			holds[i].Settle(context.WithoutCancel(ctx), max(results[i].CostUSD, r.price(jobs[i].call.Name, cut)))
			if cut {
				// The call was cut short: its outcome is unknown, so leave it
				// started-but-unfinished for the resume logic to judge.
				errs[i] = errCut
				return
			}
			// The tool answered: keep its result even if the run is being
			// canceled or the worker stopped meanwhile.
			_, errs[i] = r.append(context.WithoutCancel(ctx), journal.TypeToolFinished, results[i])
		}
		if len(jobs) == 1 {
			run()
			break
		}
		wg.Go(run)
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case err == nil:
			t.finished[jobs[i].call.ID] = results[i]
		case errors.Is(err, errCut):
		default:
			// Its result could not be journaled (even if the error is a
			// timeout): stop, and let the run be resumed from its journal.
			// Going on would call the model without the result.
			return false, Stopped, err
		}
	}
	if ctx.Err() != nil {
		out, err := r.interrupted(ctx, s)
		return false, out, err
	}
	return true, 0, nil
}

// reserveTools holds the price of each priced call before any starts;
// if one is refused, none is held.
func (r *runner) reserveTools(ctx context.Context, jobs []job) ([]Reservation, error) {
	holds := make([]Reservation, 0, len(jobs))
	for _, j := range jobs {
		hold, err := r.reserve(ctx, r.price(j.call.Name, true))
		if err != nil {
			settleAll(ctx, holds, 0)
			return nil, err
		}
		holds = append(holds, hold)
	}
	return holds, nil
}

// price is what one call of a tool costs; only a call that was made
// costs anything.
func (r *runner) price(name string, made bool) float64 {
	if !made || r.a.ToolPrice == nil || r.ts.tools[name] == nil {
		return 0
	}
	return r.a.ToolPrice(name)
}

func settleAll(ctx context.Context, holds []Reservation, usd float64) {
	for _, h := range holds {
		h.Settle(context.WithoutCancel(ctx), usd)
	}
}

// appendStart journals a tool start; a first attempt's idempotency key is
// derived from the step it is journaled at.
func (r *runner) appendStart(ctx context.Context, st *journal.ToolStarted) (journal.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.IdempotencyKey == "" {
		if w, ok := r.j.(interface{ Steps() int }); ok {
			st.IdempotencyKey = fmt.Sprintf("%s/%d", r.runID, w.Steps()+1)
		} else {
			st.IdempotencyKey = r.runID + "/" + st.CallID
		}
	}
	ev, err := r.j.Append(ctx, journal.TypeToolStarted, st)
	if err == nil {
		r.s.lastType = journal.TypeToolStarted
		if r.env.OnEvent != nil {
			r.env.OnEvent(ev)
		}
	}
	return ev, err
}

// callTool runs one call. cut reports a call interrupted by the run's
// context, whose outcome is unknown.
func (r *runner) callTool(ctx context.Context, c model.ToolCall, st journal.ToolStarted) (f journal.ToolFinished, cut bool) {
	began := time.Now()
	f = journal.ToolFinished{CallID: c.ID, Name: c.Name}
	defer func() {
		// A panicking tool is a failed call, not a crashed node.
		if p := recover(); p != nil {
			f.IsError, f.Content, cut = true, fmt.Sprintf("tool %s panicked: %v", c.Name, p), false
		}
	}()
	bt := r.ts.tools[c.Name]
	switch {
	case bt == nil:
		f.IsError = true
		f.Content = fmt.Sprintf("unknown tool %q: this agent's tools are %s", c.Name, r.toolList())
	default:
		if err := bt.schema.Validate(c.Arguments); err != nil {
			f.IsError = true
			f.Content = fmt.Sprintf("invalid arguments for %s: %v", c.Name, err)
			break
		}
		call := &tool.Call{RunID: r.runID, ID: c.ID, Arguments: c.Arguments, IdempotencyKey: st.IdempotencyKey,
			TraceParent: tool.TraceParent(r.env.TraceParent, r.runID, st.IdempotencyKey)}
		f.SpanID = call.TraceParent[36:52]
		if r.a.ToolPrice != nil {
			f.CostUSD = r.a.ToolPrice(c.Name)
		}
		if on := r.env.OnProgress; on != nil {
			call.Progress = func(p tool.Progress) {
				p.Message = redact.Text(p.Message)
				on(c.ID, c.Name, p)
			}
		}
		call.Messenger = r.env.Messenger
		if ask := r.env.Ask; ask != nil {
			call.Ask = func(ctx context.Context, q tool.Question) (json.RawMessage, error) { return ask(ctx, c.ID, c.Name, q) }
		}
		res, err := bt.tool.Call(ctx, call)
		if err != nil {
			if ctx.Err() != nil {
				return f, true
			}
			f.IsError = true
			f.Content = err.Error()
		} else {
			f.Content, f.IsError = res.Content, res.IsError
		}
		// Whatever the tool, credentials in a URL reach neither the
		// journal nor the model.
		f.Content = redact.Text(f.Content)
	}
	if len(f.Content) > MaxToolResultBytes {
		f.Content = fmt.Sprintf("%s\n[truncated: the result was %d bytes; only the first %d are shown]", f.Content[:MaxToolResultBytes], len(f.Content), MaxToolResultBytes)
	}
	f.DurationMS = msSince(began)
	return f, false
}

// MaxToolResultBytes caps a tool result journaled and shown to the model:
// more would not help a model and could outgrow a journal entry.
const MaxToolResultBytes = 256 << 10

func (r *runner) toolList() string {
	if len(r.ts.specs) == 0 {
		return "none"
	}
	s := ""
	for i, sp := range r.ts.specs {
		if i > 0 {
			s += ", "
		}
		s += sp.Name
	}
	return s
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// extractJSON tolerates a JSON answer wrapped in a Markdown code fence.
func extractJSON(s string) string {
	b := []byte(s)
	start, end := -1, -1
	for i, c := range b {
		if c == '{' || c == '[' {
			start = i
			break
		}
	}
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '}' || b[i] == ']' {
			end = i
			break
		}
	}
	if start < 0 || end < start {
		return s
	}
	return s[start : end+1]
}

// uniqueCallIDs gives every tool call of a turn a distinct, non-empty id:
// results are matched to calls by id, so a provider that repeats or omits
// ids would otherwise lose a call on resume.
func uniqueCallIDs(calls []model.ToolCall, turn int) {
	seen := make(map[string]bool, len(calls))
	for i := range calls {
		for n := 0; calls[i].ID == "" || seen[calls[i].ID]; n++ {
			calls[i].ID = fmt.Sprintf("call_%d_%d", turn, i+n*len(calls))
		}
		seen[calls[i].ID] = true
	}
}
