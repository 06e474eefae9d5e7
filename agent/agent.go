// Package agent defines an agent and runs its model ↔ tools loop.
//
// The loop is durable because it is a fold over the run's journal: Resume
// rebuilds the conversation from the events already recorded, then carries on
// from there, appending each new step before it acts on it. A model response
// found in the journal is never requested again; a tool call with a recorded
// result is never executed again; a call that started but did not finish is
// retried with the same idempotency key only if its tool is idempotent, and
// otherwise stops the run in doubt.
package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/policy"
	"github.com/myriad-ai/myriad/tool"
)

// Agent is an agent definition.
type Agent struct {
	Name         string
	Description  string
	Instructions string
	// ModelName is the configured name of the model, for events and errors.
	ModelName string
	Model     model.Provider
	// Prices are the model's; each model call's cost is journaled with it.
	Prices model.Prices
	Tools  []tool.Tool
	// ToolPrice, when set, says what one call of a tool costs in US dollars
	// (0: free or unknown); each call's cost is journaled with its result.
	ToolPrice func(tool string) float64
	// MaxTurns bounds the model calls of one run.
	MaxTurns int
	// Timeout bounds a run's wall time, measured from its journaled start.
	Timeout time.Duration
	// TokenBudget bounds a run's tokens; 0 means no limit.
	TokenBudget int
	// CostBudget bounds what a run spends, its children included, in US
	// dollars at its models' and tools' prices; 0 means no limit.
	CostBudget float64
	// MaxOutputTokens is the model's cap on an answer, if it has one: a
	// model call's cost is reserved against shared budgets (Env.Budget)
	// as if its answer were this long (0: DefaultMaxOutputTokens).
	MaxOutputTokens int
	// OutputSchema, when set, makes the final answer JSON validated against it.
	OutputSchema *tool.Schema
	// Stream asks the model to stream its answers.
	Stream bool
	// HistoryLimit caps the messages an instance of this agent keeps between
	// runs (0: the runtime's default).
	HistoryLimit int
	// RejectBusy makes a run submitted to an instance that has an unfinished
	// run fail with a conflict instead of queueing behind it.
	RejectBusy bool
	// InterruptBusy makes a run submitted to a busy instance cancel the
	// instance's unfinished runs and carry their input with its own.
	InterruptBusy bool
	// SubAgents are agents the model may call like tools, each call a child run.
	SubAgents []SubAgent
	// Handoffs are agents the model may hand the conversation to.
	Handoffs []Handoff
	// MaxChildren caps the child runs one run starts (default
	// DefaultMaxChildren).
	MaxChildren int
	// MaxConcurrent caps the runs of this agent one node executes at once
	// (0: no cap but the node's workers).
	MaxConcurrent int
	// Messaging bounds what this agent's tool calls may message (the
	// send_message, ask_agent and broadcast_message tools).
	Messaging Messaging
	// Approvals are approval rules by tool name, over what the tools ask
	// for themselves (tool.Info.NeedsApproval).
	Approvals map[string]ApprovalRule

	// Sources are sets of tools that may change while the process runs
	// (an MCP server's, when it announces a new list).
	Sources []tool.Source
	// Context is text read when a run starts and given to the model with
	// the instructions (MCP resources and prompts).
	Context []tool.ContextSource

	subs     map[string]*SubAgent
	handoffs map[string]string // tool name → agent
	team     []model.ToolSpec  // sub-agent and handoff tools

	mu  sync.Mutex // serialises rebuilds of set
	set atomic.Pointer[toolset]
}

// Messaging bounds the messages an agent's runs send to agent instances.
type Messaging struct {
	// To are the addresses and patterns ("research/*", "*/team-a/*",
	// "support/customer-42") its runs may message; empty allows every
	// instance.
	To []string
	// AskTimeout bounds how long an ask_agent call waits for its answer
	// (0: the runtime's default).
	AskTimeout time.Duration
	// MaxBroadcast caps the recipients of one broadcast_message call (0:
	// the runtime's default).
	MaxBroadcast int
}

// toolset is what the model may call, built from Tools, Sources and the
// team; a new one replaces it when a source changes.
type toolset struct {
	tools    map[string]*boundTool
	specs    []model.ToolSpec
	versions []uint64 // of Sources, when built
}

type boundTool struct {
	tool   tool.Tool
	info   tool.Info
	schema *tool.Schema
}

// Init checks the definition and prepares its tools. Call it once before use.
func (a *Agent) Init() error {
	if a.Model == nil {
		return fmt.Errorf("agent %s: no model", a.Name)
	}
	if a.MaxTurns <= 0 {
		a.MaxTurns = 10
	}
	if a.MaxChildren <= 0 {
		a.MaxChildren = DefaultMaxChildren
	}
	if err := a.teamSpecs(); err != nil {
		return err
	}
	ts, err := a.buildToolset()
	if err != nil {
		return err
	}
	a.set.Store(ts)
	return nil
}

// buildToolset binds the agent's tools as they are now.
func (a *Agent) buildToolset() (*toolset, error) {
	ts := &toolset{tools: map[string]*boundTool{}}
	all := append([]tool.Tool(nil), a.Tools...)
	for _, src := range a.Sources {
		ts.versions = append(ts.versions, src.Version())
		all = append(all, src.Tools()...)
	}
	for _, t := range all {
		info := t.Info()
		if err := tool.CheckName(info.Name); err != nil {
			return nil, fmt.Errorf("agent %s: %w", a.Name, err)
		}
		if _, dup := ts.tools[info.Name]; dup {
			return nil, fmt.Errorf("agent %s: tool %q listed twice", a.Name, info.Name)
		}
		if _, clash := a.subs[info.Name]; clash {
			return nil, fmt.Errorf("agent %s: sub-agent %q has the name of one of its tools", a.Name, info.Name)
		}
		s, err := tool.CompileSchema(info.Schema)
		if err != nil {
			return nil, fmt.Errorf("agent %s: tool %s: %w", a.Name, info.Name, err)
		}
		ts.tools[info.Name] = &boundTool{tool: t, info: info, schema: s}
		ts.specs = append(ts.specs, model.ToolSpec{Name: info.Name, Description: info.Description, Parameters: s.Raw()})
	}
	ts.specs = append(ts.specs, a.team...)
	return ts, nil
}

// current returns the agent's tools, rebuilt first if a source changed.
// A source whose new tools do not bind (a bad schema) keeps the old set.
func (a *Agent) current() *toolset {
	ts := a.set.Load()
	if !ts.stale(a.Sources) {
		return ts
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if ts = a.set.Load(); !ts.stale(a.Sources) {
		return ts
	}
	next, err := a.buildToolset()
	if err != nil {
		return ts
	}
	a.set.Store(next)
	return next
}

func (ts *toolset) stale(sources []tool.Source) bool {
	for i, src := range sources {
		if src.Version() != ts.versions[i] {
			return true
		}
	}
	return false
}

// ModelChoice is a configured model an agent calls: a run forked with
// another model calls that one instead (Env.Models).
type ModelChoice struct {
	Name            string
	Provider        model.Provider
	Prices          model.Prices
	MaxOutputTokens int
}

// ownModel is the model the agent is defined with.
func (a *Agent) ownModel() ModelChoice {
	return ModelChoice{Name: a.ModelName, Provider: a.Model, Prices: a.Prices, MaxOutputTokens: a.MaxOutputTokens}
}

// Error codes a run can fail with.
const (
	CodeMaxTurns    = "max_turns_exceeded"
	CodeTimeout     = "timeout"
	CodeTokenBudget = "token_budget_exceeded"
	CodeCostBudget  = "cost_budget_exceeded"
	// CodeBudget is a run stopped by a budget shared with other runs
	// (budgets: in the config), before a call that could exceed it.
	CodeBudget       = "budget_exceeded"
	CodeModel        = "model_error"
	CodeUnknownAgent = "unknown_agent"
	CodeResolvedFail = "failed_by_operator"
	CodeTooLarge     = "payload_too_large"
	CodeContext      = "context_unavailable"
)

// Cancellation causes the runtime passes to Resume's context.
// CanceledBecause is the cause a run's context is canceled with, saying
// why: the run ends as canceled with this reason. It is ErrCanceled.
type CanceledBecause string

func (c CanceledBecause) Error() string        { return "run canceled: " + string(c) }
func (c CanceledBecause) Is(target error) bool { return target == ErrCanceled }

// CancelReason says why a run whose context was canceled with cause was
// canceled.
func CancelReason(cause error) string {
	var c CanceledBecause
	if errors.As(cause, &c) && c != "" {
		return string(c)
	}
	return "canceled by request"
}

var (
	// ErrCanceled means a user asked to cancel the run: it ends as canceled.
	// Tools see it as tool.ErrRunCanceled.
	ErrCanceled = tool.ErrRunCanceled
	// ErrShutdown means the worker is stopping: the run is left for another
	// worker to resume, and nothing is journaled.
	ErrShutdown = errors.New("worker shutting down")
)

// ValidateArguments checks arguments against a tool's schema.
func (a *Agent) ValidateArguments(toolName string, args json.RawMessage) error {
	bt := a.current().tools[toolName]
	if bt == nil {
		return fmt.Errorf("agent %s has no tool %q", a.Name, toolName)
	}
	return bt.schema.Validate(args)
}

// ApprovalRule says when calls of one tool need a person's approval, and
// what happens if nobody decides in time.
type ApprovalRule struct {
	// When, if set, asks only for calls where it holds; nil asks always.
	When *policy.Condition
	// Timeout, if set, applies OnTimeout ("approve" or "deny", the default)
	// when nobody has decided by then.
	Timeout   time.Duration
	OnTimeout string
}

func (r ApprovalRule) onTimeout() string {
	if r.OnTimeout == journal.Approve {
		return journal.Approve
	}
	return journal.Deny
}

// needsApproval decides whether a call must wait for a person, and why.
func (a *Agent) needsApproval(bt *boundTool, c model.ToolCall) (bool, string) {
	rule, ok := a.Approvals[c.Name]
	switch {
	case !ok:
		return bt.info.NeedsApproval, ""
	case rule.When == nil:
		return true, ""
	}
	holds, err := rule.When.Holds(c.Name, c.Arguments)
	if err != nil {
		// A policy fails closed.
		return true, fmt.Sprintf("the approval condition %s could not be decided: %v", rule.When, err)
	}
	if holds {
		return true, "approval condition: " + rule.When.String()
	}
	return bt.info.NeedsApproval, ""
}

// CurrentTools describes the tools the agent offers its model now: its own,
// and those of its sources as they last announced them.
func (a *Agent) CurrentTools() []tool.Info {
	ts := a.current()
	out := make([]tool.Info, 0, len(ts.tools))
	for _, sp := range ts.specs {
		if bt, ok := ts.tools[sp.Name]; ok {
			out = append(out, bt.info)
		}
	}
	return out
}
