// Package journal defines what a run's journal holds: its event types and
// their data, and the folds that read a run's state back from them.
//
// Every run has an append-only journal. Its single writer appends an Event for
// every step — the run starting, each model response, each tool call starting
// and finishing, each input it took (an approval, an answer, a child's
// report), the run ending — before the run goes on. A run's state is a fold
// over its journal: resuming a run, its record and what clients see are all
// read from it. This package is pure data; the store package keeps journals
// on JetStream and the engine package writes them.
package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/myriad-ai/myriad/model"
)

// ErrConflict means another writer appended to the journal first: this
// writer no longer owns the run and must stop.
var ErrConflict = errors.New("journal: another worker advanced this run")

// Event types, in the order a run usually produces them.
const (
	TypeRunStarted     = "run.started"
	TypeModelResponse  = "model.response"
	TypeToolStarted    = "tool.started"
	TypeToolFinished   = "tool.finished"
	TypeOutputRejected = "output.rejected"
	TypeRunInDoubt     = "run.in_doubt"
	TypeToolResolved   = "tool.resolved"
	TypeRunCompleted   = "run.completed"
	TypeRunFailed      = "run.failed"
	TypeRunCanceled    = "run.canceled"
	// TypeApprovalRequested parks a run for a person's decision on a call.
	TypeApprovalRequested = "approval.requested"
	// TypeApprovalDecided records that decision.
	TypeApprovalDecided = "approval.decided"
	// TypeRunWaiting parks a run until its child runs report back.
	TypeRunWaiting = "run.waiting"
	// TypeHandoff records an agent handing the conversation to another.
	TypeHandoff = "handoff"
	// TypeContextSummarized records the summary a parent made of its
	// conversation to pass on to a child run.
	TypeContextSummarized = "context.summarized"
	// Flow runs: a node starting and finishing, its children's reports,
	// and a person's input.
	TypeNodeStarted      = "node.started"
	TypeNodeFinished     = "node.finished"
	TypeChildrenReported = "children.reported"
	TypeInputRequested   = "input.requested"
	TypeInputReceived    = "input.received"
	// TypeContextLoaded records the context an agent was given at the start
	// of a run (MCP resources and prompts), so a resumed run sees the same.
	TypeContextLoaded = "context.loaded"
	// TypeCancelRequested records a cancel that reached a running run: it
	// ends as canceled at its next step, even if its worker dies first.
	TypeCancelRequested = "cancel.requested"
	// TypeTimerFired records a timer that woke a parked run.
	TypeTimerFired = "timer.fired"
	// TypeInputRefused records an input the run could not take (a decision
	// on an approval already decided, an answer to a question nobody asks).
	TypeInputRefused = "input.refused"
	// TypeInputWithdrawn closes a question a tool call asked when the call
	// ended (or its worker died) before anyone answered.
	TypeInputWithdrawn = "input.withdrawn"
	// Instance journals: a turn taken into the instance's queue, started,
	// and ended.
	TypeTurnQueued  = "turn.queued"
	TypeTurnStarted = "turn.started"
	TypeTurnEnded   = "turn.ended"
)

// Terminal reports whether an event type ends a run for good.
func Terminal(typ string) bool {
	return typ == TypeRunCompleted || typ == TypeRunFailed || typ == TypeRunCanceled
}

// Event is one journal entry.
type Event struct {
	// Seq is the JetStream sequence of the entry: unique and increasing across
	// all journals, so it doubles as the SSE event id.
	Seq uint64 `json:"seq"`
	// Step is the 1-based position of the entry in its run's journal.
	Step  int             `json:"step"`
	RunID string          `json:"run_id"`
	Type  string          `json:"type"`
	Time  time.Time       `json:"time"`
	Data  json.RawMessage `json:"data"`
	// InputSeq is the position of the last input (a message to the run:
	// its submission, a decision, a child's report, ...) the run had taken
	// when this entry was written. Inputs are taken in order and each one
	// is journaled (its effect, or input.refused), so an input at or below
	// InputSeq has been applied exactly once.
	InputSeq uint64 `json:"input_seq,omitempty"`
}

// Decode parses a journal entry stored at stream sequence seq.
func Decode(seq uint64, data []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return Event{}, fmt.Errorf("journal: corrupt entry %d: %w", seq, err)
	}
	ev.Seq = seq
	return ev, nil
}

// RunStarted opens a journal.
type RunStarted struct {
	Agent    string `json:"agent,omitempty"`
	Instance string `json:"instance,omitempty"`
	Input    string `json:"input"`
	// InputTruncated says Input was cut: the whole was too large for a
	// journal entry (the run then fails with payload_too_large).
	InputTruncated bool              `json:"input_truncated,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	// History is the instance's conversation before this run, fixed at start so
	// a resumed run sees exactly what the first attempt saw. A child run's
	// history is the part of its parent's conversation it was given.
	History []model.Message `json:"history,omitempty"`
	// HistoryDropped counts the earlier messages of the instance's
	// conversation that History leaves out (its history_limit, or the
	// bound on its size).
	HistoryDropped int `json:"history_dropped,omitempty"`
	// Parent, ParentCall, Path and Depth place a child run in its tree: the
	// run and tool call that started it, its path of agents
	// ("supervisor/researcher#2"), and how deep it is (roots are 0).
	Parent     string `json:"parent,omitempty"`
	ParentCall string `json:"parent_call,omitempty"`
	Path       string `json:"path,omitempty"`
	Depth      int    `json:"depth,omitempty"`
	// Flow names the flow a flow run executes (Agent is then empty), and
	// State is the initial state it was given.
	Flow  string          `json:"flow,omitempty"`
	State json.RawMessage `json:"state,omitempty"`
	// Submitted is when the run was accepted.
	Submitted time.Time `json:"submitted,omitzero"`
	// Turn is the run's position among its instance's runs (1-based).
	Turn uint64 `json:"turn,omitempty"`
	// InstanceAgent is the instance's own agent, when another agent holds
	// its conversation (a handoff in an earlier turn) and so runs it.
	InstanceAgent string `json:"instance_agent,omitempty"`
	// Refused, when set, fails the run as it starts (a turn its instance
	// refused, an input too large to journal): run.failed follows with
	// it, and a worker that finds run.started alone writes it.
	Refused *RunFailed `json:"refused,omitempty"`
	// Fork, when set, makes the run a fork: its journal goes on with the
	// entries of another run after its run.started, up to a step.
	Fork *Fork `json:"fork,omitempty"`
}

// Fork says what a forked run copies: the entries of run From up to step
// Step (its run.started being step 1), with one tool result changed if
// ToolResult says so.
type Fork struct {
	From       string          `json:"from"`
	Step       int             `json:"step"`
	ToolResult *ForkToolResult `json:"tool_result,omitempty"`
	// Instructions and Model, when set, replace the agent's own for the
	// rest of the run (while the run's own agent holds it).
	Instructions string `json:"instructions,omitempty"`
	Model        string `json:"model,omitempty"`
}

// ForkToolResult replaces what a tool call returned, in a fork.
type ForkToolResult struct {
	CallID  string `json:"call_id"`
	Content string `json:"content"`
	IsError bool   `json:"is_error,omitempty"`
}

// ModelResponse records a finished model call.
type ModelResponse struct {
	Turn    int           `json:"turn"`
	Message model.Message `json:"message"`
	Usage   model.Usage   `json:"usage"`
	// Model is the model the provider says answered; ModelName the
	// configured name the agent called (a key of models:).
	Model      string  `json:"model,omitempty"`
	ModelName  string  `json:"model_name,omitempty"`
	StopReason string  `json:"stop_reason,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	// FirstTokenMS is how long the first streamed piece of the answer
	// took (streamed calls only).
	FirstTokenMS float64 `json:"first_token_ms,omitempty"`
	// CostUSD is what the call cost at the model's price then, in US
	// dollars (omitted when the model has no price).
	CostUSD float64 `json:"cost_usd,omitempty"`
}

// ToolStarted is written before a tool runs.
type ToolStarted struct {
	CallID         string          `json:"call_id"`
	Name           string          `json:"name"`
	Arguments      json.RawMessage `json:"arguments"`
	IdempotencyKey string          `json:"idempotency_key"`
	Idempotent     bool            `json:"idempotent"`
	// Attempt counts executions of this call; above 1 means a retry on resume.
	Attempt int `json:"attempt"`
	// ChildRunID is the run a call to a sub-agent started.
	ChildRunID string `json:"child_run_id,omitempty"`
}

// ToolFinished is written after a tool returns.
type ToolFinished struct {
	CallID     string  `json:"call_id"`
	Name       string  `json:"name"`
	Content    string  `json:"content"`
	IsError    bool    `json:"is_error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	// SpanID is the span the call's W3C traceparent named to the tool (its
	// trace's execute_tool span), when the tool was called.
	SpanID string `json:"span_id,omitempty"`
	// CostUSD is the tool's price per call, when it was called and has one.
	CostUSD float64 `json:"cost_usd,omitempty"`
	// ChildRunID is the child run of a sub-agent call that could not
	// start (its result is then the reason); a child's own result comes in
	// children.reported.
	ChildRunID string `json:"child_run_id,omitempty"`
}

// OutputRejected records a final answer that failed the output schema; the
// model is asked again.
type OutputRejected struct {
	Reason string `json:"reason"`
}

// RunInDoubt stops a run whose non-idempotent tool call started but never
// finished: nobody knows whether its side effect happened.
type RunInDoubt struct {
	CallID string `json:"call_id"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Resolution actions for a run in doubt.
const (
	ResolveRetry = "retry"
	ResolveSkip  = "skip"
	ResolveFail  = "fail"
)

// ToolResolved records an operator's decision on a call in doubt.
type ToolResolved struct {
	CallID string `json:"call_id"`
	Action string `json:"action"`
	// Result is the tool result to use when Action is skip.
	Result string `json:"result,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// RunCompleted ends a successful run.
type RunCompleted struct {
	Output string          `json:"output"`
	JSON   json.RawMessage `json:"json,omitempty"`
	Usage  model.Usage     `json:"usage"`
}

// RunFailed ends a failed run.
type RunFailed struct {
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Usage   model.Usage `json:"usage"`
}

// RunCanceled ends a canceled run.
type RunCanceled struct {
	Reason string      `json:"reason,omitempty"`
	Usage  model.Usage `json:"usage"`
}

// Approval decisions.
const (
	Approve = "approve"
	Deny    = "deny"
)

// ApprovalRequested parks a run until a person decides on a tool call that
// needs approval. Nothing has run yet.
type ApprovalRequested struct {
	ApprovalID string          `json:"approval_id"`
	CallID     string          `json:"call_id"`
	Name       string          `json:"name"`
	Arguments  json.RawMessage `json:"arguments"`
	// Reason says why the call needs approval (the condition that held).
	Reason string `json:"reason,omitempty"`
	// Agent is the agent that made the call: after a handoff, not the
	// run's first agent.
	Agent string `json:"agent,omitempty"`
	// Deadline, when set, is when OnTimeout (approve or deny) applies if
	// nobody has decided.
	Deadline  *time.Time `json:"deadline,omitempty"`
	OnTimeout string     `json:"on_timeout,omitempty"`
}

// ApprovalDecided records a person's decision on a requested call.
type ApprovalDecided struct {
	ApprovalID string `json:"approval_id"`
	CallID     string `json:"call_id"`
	Decision   string `json:"decision"`
	// Arguments, when set with approve, replace the model's arguments.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	// ByDefault marks the decision a deadline applied, nobody having decided.
	ByDefault bool `json:"by_default,omitempty"`
}

// RunWaiting parks a run: until its children report back, a timer, a
// person's answers or decisions.
type RunWaiting struct {
	Children []string `json:"children,omitempty"`
	// Approvals are the approvals of the turn nobody has decided yet.
	Approvals []string `json:"approvals,omitempty"`
	// Until is when a sleeping flow node wakes the run.
	Until *time.Time `json:"until,omitempty"`
	// Inputs are the flow nodes waiting for a person's input.
	Inputs []string `json:"inputs,omitempty"`
}

// Reasons names what the run waits for: approval, input, children, or
// timer (a sleeping flow node). Until is a deadline, not a reason of its
// own, when the run waits for something else (an approval's deadline, the
// run's timeout while its children work).
func (w RunWaiting) Reasons() []string {
	var out []string
	if len(w.Approvals) > 0 {
		out = append(out, "approval")
	}
	if len(w.Inputs) > 0 {
		out = append(out, "input")
	}
	if len(w.Children) > 0 {
		out = append(out, "children")
	}
	if len(out) == 0 && w.Until != nil {
		out = append(out, "timer")
	}
	return out
}

// Handoff records an agent transferring the run's conversation to another
// agent, which carries on from the next model call.
type Handoff struct {
	CallID string `json:"call_id"`
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason,omitempty"`
}

// ContextSummarized is a summary of a run's conversation, made by its model
// to give a child run the gist instead of the whole history.
type ContextSummarized struct {
	CallID  string      `json:"call_id"`
	Summary string      `json:"summary"`
	Usage   model.Usage `json:"usage"`
	// ModelName and CostUSD are the summarizing call's model and cost, as
	// on model.response.
	ModelName string  `json:"model_name,omitempty"`
	CostUSD   float64 `json:"cost_usd,omitempty"`
}

// NodeStarted records a flow node starting. Key ("node#visit") names this
// run of the node; Children are the child runs it started; Until is when a
// sleeping node wakes.
type NodeStarted struct {
	Node     string     `json:"node"`
	Visit    int        `json:"visit"`
	Key      string     `json:"key"`
	Items    int        `json:"items,omitempty"`
	Children []string   `json:"children,omitempty"`
	Until    *time.Time `json:"until,omitempty"`
}

// NodeFinished records a flow node's result and the nodes it leads to.
type NodeFinished struct {
	Node       string          `json:"node"`
	Visit      int             `json:"visit"`
	Key        string          `json:"key"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	Next       []string        `json:"next,omitempty"`
	DurationMS float64         `json:"duration_ms"`
	// Tool and CostUSD are a tool node's tool and what its calls cost.
	Tool    string  `json:"tool,omitempty"`
	CostUSD float64 `json:"cost_usd,omitempty"`
}

// ChildReport is one child run's outcome.
type ChildReport struct {
	RunID string `json:"run_id"`
	// CallID is the parent's call (turn/call id) that started the child.
	CallID string      `json:"call_id,omitempty"`
	Status string      `json:"status"`
	Output string      `json:"output,omitempty"`
	Error  string      `json:"error,omitempty"`
	Usage  model.Usage `json:"usage"`
	// Cost is the child's, its own children's included.
	Cost *Cost `json:"cost,omitempty"`
	// Tools are the child's tool calls by tool, its own children's included.
	Tools map[string]ToolUse `json:"tools,omitempty"`
}

// ChildrenReported records child reports a run took, in one entry however
// many came together.
type ChildrenReported struct {
	Reports []ChildReport `json:"reports"`
}

// InputRequested parks a flow node until a person answers.
type InputRequested struct {
	Node   string          `json:"node"`
	Key    string          `json:"key"`
	Prompt string          `json:"prompt"`
	Schema json.RawMessage `json:"schema,omitempty"`
	// Call is the tool call that asks, for a question a running call asks
	// (an MCP server's elicitation); empty for a flow's ask node. Such a
	// question is open only while its call runs.
	Call string `json:"call,omitempty"`
}

// InputReceived records the answer.
type InputReceived struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
	// ByDefault marks the default answer of a question nobody answered in time.
	ByDefault bool `json:"by_default,omitempty"`
}

// OpenChildren lists the child runs a journal started that have not
// reported back — sub-agent calls and flow nodes alike. When a run ends,
// the runtime cancels them.
func OpenChildren(events []Event) []string {
	open := map[string]bool{}
	var order []string
	start := func(id string) {
		if !open[id] {
			open[id] = true
			order = append(order, id)
		}
	}
	for _, ev := range events {
		switch ev.Type {
		case TypeToolStarted:
			if !bytes.Contains(ev.Data, []byte(`"child_run_id"`)) {
				continue // a plain tool call: nothing to decode
			}
			var d ToolStarted
			if json.Unmarshal(ev.Data, &d) == nil && d.ChildRunID != "" {
				start(d.ChildRunID)
			}
		case TypeNodeStarted:
			var d NodeStarted
			if json.Unmarshal(ev.Data, &d) == nil {
				for _, id := range d.Children {
					start(id)
				}
			}
		case TypeToolFinished:
			if !bytes.Contains(ev.Data, []byte(`"child_run_id"`)) {
				continue
			}
			var d ToolFinished
			if json.Unmarshal(ev.Data, &d) == nil && d.ChildRunID != "" {
				delete(open, d.ChildRunID)
			}
		case TypeChildrenReported:
			var d ChildrenReported
			if json.Unmarshal(ev.Data, &d) == nil {
				for _, rep := range d.Reports {
					delete(open, rep.RunID)
				}
			}
		}
	}
	var out []string
	for _, id := range order {
		if open[id] {
			out = append(out, id)
		}
	}
	return out
}

// ContextLoaded is the text of an agent's context sources, read once.
type ContextLoaded struct {
	Items []ContextItem `json:"items"`
}

// ContextItem is one source's text.
type ContextItem struct {
	Source string `json:"source"`
	Text   string `json:"text"`
}

// CancelRequested records a cancel that reached a running run.
type CancelRequested struct {
	Reason string `json:"reason,omitempty"`
}

// TimerFired records a timer that woke a parked run.
type TimerFired struct {
	At time.Time `json:"at"`
}

// InputRefused records an input the run could not take, and why. The
// caller that sent it is told the reason.
type InputRefused struct {
	// Seq is the input's position (the entry's InputSeq).
	Seq  uint64 `json:"seq"`
	Kind string `json:"kind"`
	// Code is "invalid" for an input that could never be taken (an answer
	// its schema refuses), "conflict" for one the run's state refuses.
	Code   string `json:"code"`
	Reason string `json:"reason"`
	// RunID is the run of a turn an instance refused: the run is told
	// (see the instance's start input), and told again after a crash.
	RunID string `json:"run_id,omitempty"`
}

// InputWithdrawn closes an unanswered question of a tool call.
type InputWithdrawn struct {
	Key    string `json:"key"`
	Reason string `json:"reason,omitempty"`
}

// TurnQueued records a run an instance took into its queue of turns.
type TurnQueued struct {
	RunID string `json:"run_id"`
	// Input is the turn's input when Submission is absent; else the
	// submission's input is the turn's.
	Input string `json:"input,omitempty"`
	// Submission is the run's, as the instance starts it.
	Submission json.RawMessage `json:"submission,omitempty"`
	// Interrupts are the earlier unfinished turns this one cancels
	// (concurrent_input: interrupt).
	Interrupts []string `json:"interrupts,omitempty"`
	// Rejected says the turn was refused because the instance was busy
	// (concurrent_input: reject).
	Rejected string `json:"rejected,omitempty"`
}

// TurnStarted records an instance starting its next turn.
type TurnStarted struct {
	RunID string `json:"run_id"`
	Turn  uint64 `json:"turn"`
	// Input is the turn's input when it is not its queued turn's: the
	// inputs of interrupted turns it carries, then its own.
	Input string `json:"input,omitempty"`
}

// TurnEnded records a turn's end and what it added to the conversation.
type TurnEnded struct {
	RunID  string `json:"run_id"`
	Status string `json:"status"`
	// Messages are the turn's new messages (its input, the answers and
	// tool results), present when the turn completed.
	Messages []model.Message `json:"messages,omitempty"`
	// Replace says Messages replace the conversation: the turn alone
	// outgrew what an instance keeps, and Messages are its newest part.
	Replace bool `json:"replace,omitempty"`
	// Active is the agent holding the conversation after the turn (a
	// handoff), empty for the instance's own agent.
	Active string `json:"active,omitempty"`
}
