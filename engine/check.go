package engine

import (
	"encoding/json"
	"fmt"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
)

// Checks of commands against a run's journal. The doors run them before
// sending a command, so an obvious mistake is answered at once; the run's
// writer runs them again when it takes the command, because the run may
// have moved on in between. A refusal is a *refusal: Invalid when the
// command could never be taken, a conflict with the run's state otherwise.

// refusal is why a command cannot be taken.
type refusal struct {
	invalid bool
	reason  string
}

func (r *refusal) Error() string { return r.reason }

func (r *refusal) code() string {
	if r.invalid {
		return "invalid"
	}
	return "conflict"
}

// asError maps a refusal onto the engine's errors.
func (r *refusal) asError() error {
	if r.invalid {
		return fmt.Errorf("%w: %s", ErrInvalid, r.reason)
	}
	return fmt.Errorf("%w: %s", ErrConflict, r.reason)
}

func conflictf(format string, args ...any) *refusal {
	return &refusal{reason: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) *refusal {
	return &refusal{invalid: true, reason: fmt.Sprintf(format, args...)}
}

// checkDecision finds the pending approval a decision is about.
func (e *Engine) checkDecision(id string, events []journal.Event, d decision) (*journal.ApprovalRequested, *refusal) {
	if prior := decidedBefore(events, d.ApprovalID); prior != nil {
		how := prior.Decision
		if prior.ByDefault {
			how += " (its deadline's default)"
		}
		return nil, conflictf("approval %q of run %s is decided already: %s; a decision is taken once", d.ApprovalID, id, how)
	}
	if journal.Terminal(lastType(events)) {
		return nil, conflictf("run %s has ended: it has no pending approval %s", id, run.Quote(d.ApprovalID))
	}
	pending := journal.PendingApprovals(events)
	var ask *journal.ApprovalRequested
	for i := range pending {
		if pending[i].ApprovalID == d.ApprovalID {
			ask = &pending[i]
		}
	}
	if ask == nil {
		ids := make([]string, len(pending))
		for i, p := range pending {
			ids[i] = p.ApprovalID
		}
		return nil, conflictf("run %s has no pending approval %s (pending: %s)", id, run.Quote(d.ApprovalID), orNone(ids))
	}
	if len(d.Arguments) > 0 {
		a := e.agents[ask.Agent]
		if a == nil {
			a = e.agents[runStartedOf(events).Agent]
		}
		if a != nil {
			if err := a.ValidateArguments(ask.Name, d.Arguments); err != nil {
				return nil, invalidf("arguments: %v", err)
			}
		}
	}
	return ask, nil
}

// decidedBefore returns the decision an approval had, if any.
func decidedBefore(events []journal.Event, approvalID string) *journal.ApprovalDecided {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Type != journal.TypeApprovalDecided {
			continue
		}
		var d journal.ApprovalDecided
		if json.Unmarshal(events[i].Data, &d) == nil && d.ApprovalID == approvalID {
			return &d
		}
	}
	return nil
}

// checkAnswer finds the open question an answer is for and checks the
// value.
func (e *Engine) checkAnswer(id string, events []journal.Event, a answer) (*journal.InputRequested, *refusal) {
	open := journal.OpenQuestions(events)
	q := findQuestion(open, a.Key)
	if q == nil {
		keys := make([]string, len(open))
		for i, o := range open {
			keys[i] = o.Key
		}
		status := project(id, nil, events).Status
		return nil, conflictf("run %s is %s and asks nothing at %s (it asks: %s)", id, status, run.Quote(a.Key), orNone(keys))
	}
	if q.Call != "" {
		if err := checkToolAnswer(q, a.Value); err != nil {
			return nil, invalidf("value: %v", err)
		}
	} else if f := e.flows[runStartedOf(events).Flow]; f != nil {
		if err := f.ValidateInput(q.Node, a.Value); err != nil {
			return nil, invalidf("value: %v", err)
		}
	}
	return q, nil
}

// checkResolution finds the call in doubt a resolution is about.
func checkResolution(id string, events []journal.Event) (*journal.RunInDoubt, *refusal) {
	if len(events) == 0 {
		return nil, conflictf("run %s is queued, not in_doubt", id)
	}
	last := run.LastState(events)
	if last.Type != journal.TypeRunInDoubt {
		return nil, conflictf("run %s is %s, not in_doubt", id, project(id, nil, events).Status)
	}
	var d journal.RunInDoubt
	_ = json.Unmarshal(last.Data, &d)
	return &d, nil
}

// checkToolAnswer checks the answer to a tool call's question: "decline"
// or "cancel", or a value its schema accepts, so a bad answer is refused
// to the person (who can answer again) rather than passed to the server.
func checkToolAnswer(q *journal.InputRequested, value json.RawMessage) error {
	var word string
	if json.Unmarshal(value, &word) == nil && (word == "decline" || word == "cancel") {
		return nil
	}
	if len(q.Schema) == 0 {
		return nil
	}
	s, err := tool.CompileSchema(q.Schema)
	if err != nil {
		return nil // the server's schema is its own business; it checks
	}
	if err := s.Validate(value); err != nil {
		return fmt.Errorf("%v (or answer \"decline\" or \"cancel\")", err)
	}
	return nil
}
