package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/tool"
)

// ContextScope is what a sub-agent's run is given of its parent's run.
type ContextScope string

// Context scopes.
const (
	// ContextTask gives the child only the task the parent's model wrote
	// (the default): the smallest context, and the parent's model decides
	// what the child needs to know.
	ContextTask ContextScope = "task"
	// ContextHistory gives the child the parent's whole conversation so far,
	// then the task.
	ContextHistory ContextScope = "history"
	// ContextSummary has the parent's model summarize its conversation first
	// (a journaled model call) and gives the child that summary and the task.
	ContextSummary ContextScope = "summary"
)

// ContextScopes lists the scopes, for validation and docs.
var ContextScopes = []ContextScope{ContextTask, ContextHistory, ContextSummary}

// SubAgent is another agent this agent's model may call like a tool. Each
// call is a child run with its own journal, linked to its parent; calls in
// one model turn run in parallel, and the parent waits for them parked,
// holding no worker.
type SubAgent struct {
	// Agent names the agent to call; the tool has the same name.
	Agent string
	// Description tells the model when to call it (default: the agent's own).
	Description string
	// Context is what the child sees of the parent's run.
	Context ContextScope
	// State names metadata keys of the parent run passed to the child, both
	// as metadata and at the top of its input.
	State []string
}

// Handoff lets this agent's model transfer the conversation to another
// agent with a tool named transfer_to_<agent>. The run and its instance
// carry on with the receiving agent.
type Handoff struct {
	Agent       string
	Description string
}

// HandoffTool is the name of the tool that hands off to an agent.
func HandoffTool(agentName string) string { return "transfer_to_" + agentName }

// ChildRun is a child run a parent asks the runtime to start.
type ChildRun struct {
	ID         string
	Agent      string
	Input      string
	History    []model.Message
	Metadata   map[string]string
	Parent     string
	ParentCall string
	Path       string
	Depth      int
}

// Children starts child runs: the engine. Their reports come back as the
// run's inputs (Env.Inputs), journaled as children.reported.
type Children interface {
	// ChildID is the id of the child run started for a parent's call; the
	// same arguments always give the same id.
	ChildID(parentID, callID string) string
	// Spawn starts a child run. Spawning a run that exists already does
	// nothing, so a resumed parent may spawn again.
	Spawn(ctx context.Context, c ChildRun) error
}

// DefaultMaxChildren caps the child runs one run may start.
const DefaultMaxChildren = 100

var taskSchema = json.RawMessage(`{"type":"object","properties":{"task":{"type":"string","description":"What the agent should do, with everything it needs to know"}},"required":["task"],"additionalProperties":false}`)

var handoffSchema = json.RawMessage(`{"type":"object","properties":{"reason":{"type":"string","description":"Why the conversation is handed over"}},"additionalProperties":false}`)

// teamSpecs describes the sub-agents and handoffs to the model.
func (a *Agent) teamSpecs() error {
	a.subs = make(map[string]*SubAgent, len(a.SubAgents))
	a.team = nil
	for i := range a.SubAgents {
		sa := &a.SubAgents[i]
		if sa.Context == "" {
			sa.Context = ContextTask
		}
		if _, dup := a.subs[sa.Agent]; dup {
			return fmt.Errorf("agent %s: sub-agent %q listed twice", a.Name, sa.Agent)
		}
		a.subs[sa.Agent] = sa
		desc := sa.Description
		if desc == "" {
			desc = fmt.Sprintf("Ask the %s agent to do a task; it answers with its result.", sa.Agent)
		}
		a.team = append(a.team, model.ToolSpec{Name: sa.Agent, Description: desc, Parameters: taskSchema})
	}
	a.handoffs = make(map[string]string, len(a.Handoffs))
	for _, h := range a.Handoffs {
		name := HandoffTool(h.Agent)
		if _, dup := a.handoffs[name]; dup {
			return fmt.Errorf("agent %s: handoff to %q listed twice", a.Name, h.Agent)
		}
		a.handoffs[name] = h.Agent
		desc := h.Description
		if desc == "" {
			desc = fmt.Sprintf("Transfer the conversation to the %s agent, which then answers the user.", h.Agent)
		}
		a.team = append(a.team, model.ToolSpec{Name: name, Description: desc, Parameters: handoffSchema})
	}
	return nil
}

// childInput builds what a child run is given for one call, and measures
// nothing itself: tests read the child's run.started to see its context.
func (r *runner) childRun(s *state, sa *SubAgent, c model.ToolCall, n int, summary string) (ChildRun, error) {
	var args struct {
		Task string `json:"task"`
	}
	if err := json.Unmarshal(c.Arguments, &args); err != nil || strings.TrimSpace(args.Task) == "" {
		return ChildRun{}, fmt.Errorf("call %s with a non-empty \"task\"", sa.Agent)
	}
	parentPath := s.start.Path
	if parentPath == "" {
		parentPath = s.start.Agent
	}
	// Call ids are unique within a turn only (providers may number them
	// per response), so the turn is part of the child's identity.
	callKey := fmt.Sprintf("%d/%s", len(s.turns), c.ID)
	child := ChildRun{
		ID: r.env.Children.ChildID(r.runID, callKey), Agent: sa.Agent, Input: args.Task,
		Parent: r.runID, ParentCall: callKey, Depth: s.start.Depth + 1,
		Path: fmt.Sprintf("%s/%s#%d", parentPath, sa.Agent, n),
	}
	// The child's calls continue this run's trace.
	child.Metadata = map[string]string{"traceparent": tool.TraceParent(r.env.TraceParent, r.runID, r.runID+"/"+callKey)}
	for _, k := range r.env.Carry {
		if v, ok := s.start.Metadata[k]; ok {
			child.Metadata[k] = v
		}
	}
	var lines []string
	if len(sa.State) > 0 {
		keys := append([]string(nil), sa.State...)
		sort.Strings(keys)
		for _, k := range keys {
			if v, ok := s.start.Metadata[k]; ok {
				child.Metadata[k] = v
				lines = append(lines, k+": "+v)
			}
		}
	}
	switch sa.Context {
	case ContextHistory:
		child.History = s.historyBefore(len(s.turns) - 1)
	case ContextSummary:
		lines = append(lines, "Summary of the conversation so far: "+summary)
	}
	if len(lines) > 0 {
		child.Input = "Context:\n" + strings.Join(lines, "\n") + "\n\nTask: " + args.Task
	}
	return child, nil
}

// historyBefore is the conversation before turn i (0-based): the run's
// history and input and the turns before it, with their tool results.
func (s *state) historyBefore(i int) []model.Message {
	cut := *s
	cut.turns = s.turns[:i]
	cut.rejects = nil
	return cut.messages("")
}

const summarizePrompt = "Summarize the conversation above for a colleague who will help with it: the user's goal, the facts established, and what is still open. Be brief and do not call tools."

// summarize asks the run's model for a summary of its conversation before
// the current turn, to hand to a child with ContextSummary.
func (r *runner) summarize(ctx context.Context, s *state) (string, model.Usage, error) {
	msgs := s.historyBefore(len(s.turns) - 1)
	msgs = append(msgs, model.Message{Role: model.RoleUser, Content: summarizePrompt})
	req := &model.Request{Messages: msgs, MaxTokens: r.model.MaxOutputTokens}
	hold, err := r.reserve(ctx, r.model.estimate(req, time.Now()))
	if err != nil {
		return "", model.Usage{}, err
	}
	resp, err := r.model.Provider.Generate(ctx, req, nil)
	if err != nil {
		hold.Settle(context.WithoutCancel(ctx), 0)
		return "", model.Usage{}, err
	}
	hold.Settle(context.WithoutCancel(ctx), r.model.Prices.Cost(resp.Usage, time.Now()))
	return resp.Message.Content, resp.Usage, nil
}

// ErrSpawnRefused marks a child run the runtime will not start (too deep,
// unknown agent): the call fails, rather than the parent.
var ErrSpawnRefused = errors.New("child run refused")

// handOff journals a handoff call: the conversation passes to another agent
// at the next model call. Only the first handoff of a turn counts.
func (r *runner) handOff(ctx context.Context, s *state, t *turn, c model.ToolCall) error {
	to := r.a.handoffs[c.Name]
	f := journal.ToolFinished{CallID: c.ID, Name: c.Name}
	_, done := t.handedOff[c.ID]
	switch {
	case done:
		f.Content = fmt.Sprintf("Transferred to %s.", to)
	case len(t.handedOff) > 0:
		f.IsError, f.Content = true, "ignored: this turn already handed the conversation over"
	case r.lookup(to) == nil:
		f.IsError, f.Content = true, fmt.Sprintf("agent %s is not defined on this node", to)
	default:
		var args struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(c.Arguments, &args)
		h := journal.Handoff{CallID: c.ID, From: r.a.Name, To: to, Reason: args.Reason}
		if _, err := r.append(ctx, journal.TypeHandoff, h); err != nil {
			return err
		}
		t.handedOff[c.ID] = h
		s.agent = to
		f.Content = fmt.Sprintf("Transferred to %s.", to)
	}
	if _, err := r.append(ctx, journal.TypeToolFinished, f); err != nil {
		return err
	}
	t.finished[c.ID] = f
	return nil
}

// finishCall journals a call's result without running anything.
func (r *runner) finishCall(ctx context.Context, t *turn, f journal.ToolFinished) error {
	if _, err := r.append(ctx, journal.TypeToolFinished, f); err != nil {
		return err
	}
	t.finished[f.CallID] = f
	return nil
}

// spawnChildren starts a child run for each sub-agent call of the turn that
// has none yet, journaling each start before spawning it, and spawns again
// the children started since the run last parked (a crash may have come
// between the journal and the spawn; spawning is idempotent).
func (r *runner) spawnChildren(ctx context.Context, s *state, t *turn, calls []model.ToolCall) error {
	for _, c := range calls {
		sa := r.a.subs[c.Name]
		if r.env.Children == nil {
			if err := r.finishCall(ctx, t, journal.ToolFinished{CallID: c.ID, Name: c.Name, IsError: true,
				Content: "sub-agents need the Myriad runtime; this run has none"}); err != nil {
				return err
			}
			continue
		}
		st, started := t.started[c.ID]
		if started {
			if !t.unconfirmed[c.ID] {
				continue
			}
			child, err := r.childRun(s, sa, c, t.childN[c.ID], summaryOf(t))
			if err == nil {
				child.ID = st.ChildRunID
				err = r.env.Children.Spawn(ctx, child)
			}
			if errors.Is(err, ErrSpawnRefused) {
				// Refused now (a rolling deploy, a lower max_depth): the
				// call fails rather than waiting for a child that is not there.
				if err := r.finishCall(ctx, t, journal.ToolFinished{CallID: c.ID, Name: c.Name, IsError: true,
					ChildRunID: child.ID, Content: redact.Text(err.Error())}); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			continue
		}
		if s.children >= r.a.MaxChildren {
			if err := r.finishCall(ctx, t, journal.ToolFinished{CallID: c.ID, Name: c.Name, IsError: true,
				Content: fmt.Sprintf("this run has started its limit of %d sub-agent runs (raise agents.%s.max_children)", r.a.MaxChildren, r.a.Name)}); err != nil {
				return err
			}
			continue
		}
		if sa.Context == ContextSummary && t.summary == nil {
			text, usage, err := r.summarize(ctx, s)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err := r.finishCall(ctx, t, journal.ToolFinished{CallID: c.ID, Name: c.Name, IsError: true,
					Content: fmt.Sprintf("could not summarize the conversation for %s: %v", sa.Agent, err)}); err != nil {
					return err
				}
				continue
			}
			sum := journal.ContextSummarized{CallID: c.ID, Summary: text, Usage: usage, ModelName: r.model.Name,
				CostUSD: r.model.Prices.Cost(usage, time.Now())}
			if _, err := r.append(context.WithoutCancel(ctx), journal.TypeContextSummarized, sum); err != nil {
				return err
			}
			t.summary = &sum
			s.usage = s.usage.Add(usage)
		}
		n := s.childCalls[c.Name] + 1
		child, err := r.childRun(s, sa, c, n, summaryOf(t))
		if err != nil {
			if err := r.finishCall(ctx, t, journal.ToolFinished{CallID: c.ID, Name: c.Name, IsError: true, Content: redact.Text(err.Error())}); err != nil {
				return err
			}
			continue
		}
		st = journal.ToolStarted{CallID: c.ID, Name: c.Name, Arguments: c.Arguments, Idempotent: true, Attempt: 1, ChildRunID: child.ID}
		if _, err := r.appendStart(ctx, &st); err != nil {
			return err
		}
		t.started[c.ID] = st
		t.unconfirmed[c.ID] = true
		t.childN[c.ID] = n
		s.children++
		s.childCalls[c.Name] = n
		if err := r.env.Children.Spawn(ctx, child); err != nil {
			if !errors.Is(err, ErrSpawnRefused) {
				return err
			}
			if err := r.finishCall(ctx, t, journal.ToolFinished{CallID: c.ID, Name: c.Name, IsError: true,
				ChildRunID: child.ID, Content: redact.Text(err.Error())}); err != nil {
				return err
			}
		}
	}
	return nil
}

func summaryOf(t *turn) string {
	if t.summary == nil {
		return ""
	}
	return t.summary.Summary
}

// collectChildren takes the reports of children that reached the run (the
// engine journals them) and returns the child runs still pending, in call
// order.
func (r *runner) collectChildren(ctx context.Context, s *state, t *turn, calls []model.ToolCall) ([]string, error) {
	if r.env.Inputs != nil {
		evs, err := r.env.Inputs(ctx)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if err := s.apply(ev); err != nil {
				return nil, err
			}
		}
	}
	var left []string
	for _, c := range calls {
		if _, done := t.finished[c.ID]; done {
			continue
		}
		if st, ok := t.started[c.ID]; ok && st.ChildRunID != "" {
			left = append(left, st.ChildRunID)
		}
	}
	return left, nil
}

// Holder returns the agent holding a run's conversation: the agent it
// started with, or the receiver of its last handoff.
func Holder(events []journal.Event) string {
	var holder string
	for _, ev := range events {
		switch ev.Type {
		case journal.TypeRunStarted:
			var st journal.RunStarted
			if json.Unmarshal(ev.Data, &st) == nil {
				holder = st.Agent
			}
		case journal.TypeHandoff:
			var h journal.Handoff
			if json.Unmarshal(ev.Data, &h) == nil {
				holder = h.To
			}
		}
	}
	return holder
}
