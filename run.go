package myriad

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// RunError is a run that ended without completing: it failed, was
// canceled, or waits for a person (an approval, an answer, an operator's
// resolution).
type RunError struct {
	RunID  string
	Status run.Status
	// Code and Message say why a failed run failed.
	Code    string
	Message string
	// WaitingFor says what a waiting run waits for (run.WaitApproval,
	// run.WaitInput).
	WaitingFor string
}

func (e *RunError) Error() string {
	switch {
	case e.Code != "":
		return fmt.Sprintf("run %s %s: %s: %s", e.RunID, e.Status, e.Code, e.Message)
	case e.Status == run.StatusWaiting:
		return fmt.Sprintf("run %s is waiting for %s: it needs a person (Engine.PendingApprovals and Decide, or ProvideInput)", e.RunID, e.WaitingFor)
	case e.Status == run.StatusInDoubt:
		return fmt.Sprintf("run %s is in doubt: an operator must resolve a tool call (Engine.Resolve)", e.RunID)
	}
	return fmt.Sprintf("run %s %s", e.RunID, e.Status)
}

// runError is the RunError of a record that did not complete, or nil.
func runError(rec *run.Record) error {
	if rec.Status == run.StatusCompleted {
		return nil
	}
	e := &RunError{RunID: rec.ID, Status: rec.Status, WaitingFor: rec.WaitingFor}
	if rec.Error != nil {
		e.Code, e.Message = rec.Error.Code, rec.Error.Message
	}
	return e
}

// Ask runs an agent on an input and returns its answer: the output of a
// run that completed, or a *RunError. Given an address ("support/eu/customer-42")
// instead of an agent's name, it asks that instance: the run is the next
// turn of its conversation. ctx bounds the wait.
func (n *Node) Ask(ctx context.Context, agentName, input string) (string, error) {
	req := engine.SubmitRequest{Agent: agentName, Input: input}
	if strings.Contains(agentName, "/") {
		to, err := engine.ParseAddress(agentName)
		if err != nil {
			return "", err
		}
		req.Agent, req.Instance = to.Agent, to.Key
	}
	rec, _, err := n.Engine.Submit(ctx, req)
	if err != nil {
		return "", err
	}
	if rec, err = n.Engine.Wait(ctx, rec.ID); err != nil {
		return "", err
	}
	if err := runError(rec); err != nil {
		return "", err
	}
	return rec.Output, nil
}

// Run submits a run and yields what happens in it — every journal entry
// (its children's too, each with its path) and, for agents that stream,
// their text as it comes — until the run completes, or stops: a run that
// fails, is canceled, or waits for a person ends with a *RunError. Leaving
// the loop early leaves the run running; it is durable either way.
func (n *Node) Run(ctx context.Context, req engine.SubmitRequest) iter.Seq2[run.Update, error] {
	return func(yield func(run.Update, error) bool) {
		req.ID = engine.NewRunID()
		// Follow first: none of its streamed text is missed.
		f, err := n.Engine.Follow(ctx, req.ID, true, true)
		if err != nil {
			yield(run.Update{}, err)
			return
		}
		defer f.Close()
		if _, _, err := n.Engine.Submit(ctx, req); err != nil {
			yield(run.Update{}, err)
			return
		}
		for u, err := range f.Watch(ctx, 0, false) {
			if err != nil {
				yield(run.Update{}, err)
				return
			}
			if !yield(u, nil) {
				return
			}
			if ev := u.Event; ev != nil && ev.RunID == req.ID && mayStop(ev.Type) {
				rec, err := n.Engine.Get(ctx, req.ID)
				if err != nil {
					yield(run.Update{}, err)
					return
				}
				if stopped(rec) {
					if err := runError(rec); err != nil {
						yield(run.Update{}, err)
					}
					return
				}
			}
		}
	}
}

// mayStop reports an entry after which a run may do nothing by itself.
func mayStop(typ string) bool {
	return journal.Terminal(typ) || typ == journal.TypeRunInDoubt || typ == journal.TypeRunWaiting
}

// stopped reports a run that ended, or waits for a person.
func stopped(rec *run.Record) bool {
	return rec.Status.Terminal() || rec.Status == run.StatusInDoubt ||
		rec.Status == run.StatusWaiting && (rec.WaitingFor == run.WaitApproval || rec.WaitingFor == run.WaitInput)
}

// Send sends a message to an agent instance ("research/lab-1/alice"),
// activating it if it is new, and returns the run of the turn it makes
// once the message is stored: durable, not waited for.
func (n *Node) Send(ctx context.Context, to, text string) (runID string, err error) {
	addr, err := engine.ParseAddress(to)
	if err != nil {
		return "", err
	}
	rec, err := n.Engine.Send(ctx, engine.Message{To: addr, Text: text})
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

// Broadcast sends a message to every instance a pattern matches:
// "research/lab-1/*" (the research agent's instances under lab-1),
// "*/lab-1/*" (every agent's), "research/*" (all of research's). It
// returns the runs of the turns it made.
func (n *Node) Broadcast(ctx context.Context, pattern, text string) ([]string, error) {
	return n.Engine.Broadcast(ctx, pattern, engine.Message{Text: text}, nil)
}
