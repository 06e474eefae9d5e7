package journal

import (
	"bytes"
	"encoding/json"

	"github.com/myriad-ai/myriad/model"
)

// PendingApprovals lists the approvals of a run's last model turn that have
// no decision yet.
func PendingApprovals(events []Event) []ApprovalRequested {
	var pending []ApprovalRequested
	decided := map[string]bool{}
	for i := len(events) - 1; i >= 0 && events[i].Type != TypeModelResponse; i-- {
		switch events[i].Type {
		case TypeApprovalDecided:
			var d ApprovalDecided
			if json.Unmarshal(events[i].Data, &d) == nil {
				decided[d.ApprovalID] = true
			}
		case TypeApprovalRequested:
			var a ApprovalRequested
			if json.Unmarshal(events[i].Data, &a) == nil && !decided[a.ApprovalID] {
				pending = append([]ApprovalRequested{a}, pending...)
			}
		}
	}
	return pending
}

// OpenQuestions lists the questions of a run nobody has answered: a flow's
// ask nodes, and the questions of its running tool calls (until the call
// ends: input.withdrawn). A run that ended asks nothing.
func OpenQuestions(events []Event) []InputRequested {
	var asked []InputRequested
	closed := map[string]bool{}
	for _, ev := range events {
		switch ev.Type {
		case TypeInputRequested:
			var q InputRequested
			if json.Unmarshal(ev.Data, &q) == nil {
				asked = append(asked, q)
			}
		case TypeInputReceived:
			var a InputReceived
			if json.Unmarshal(ev.Data, &a) == nil {
				closed[a.Key] = true
			}
		case TypeInputWithdrawn:
			var w InputWithdrawn
			if json.Unmarshal(ev.Data, &w) == nil {
				closed[w.Key] = true
			}
		case TypeRunCompleted, TypeRunFailed, TypeRunCanceled:
			return nil
		}
	}
	var out []InputRequested
	for _, q := range asked {
		if !closed[q.Key] {
			out = append(out, q)
		}
	}
	return out
}

// Usage is what a run's models used, its children's included.
func Usage(events []Event) (u model.Usage) {
	for _, ev := range events {
		switch ev.Type {
		case TypeModelResponse:
			var d ModelResponse
			if json.Unmarshal(ev.Data, &d) == nil {
				u = u.Add(d.Usage)
			}
		case TypeContextSummarized:
			var d ContextSummarized
			if json.Unmarshal(ev.Data, &d) == nil {
				u = u.Add(d.Usage)
			}
		case TypeChildrenReported:
			var d ChildrenReported
			if json.Unmarshal(ev.Data, &d) == nil {
				for _, rep := range d.Reports {
					u = u.Add(rep.Usage)
				}
			}
		}
	}
	return u
}

// InputSeq is the position of the last input a journal has taken.
func InputSeq(events []Event) uint64 {
	var seq uint64
	for _, ev := range events {
		seq = max(seq, ev.InputSeq)
	}
	return seq
}

// Copied is how many entries after a fork's run.started were copied from
// its source (0 for a run that is no fork): the fork did not make those
// calls, so its usage counts nothing of them.
func Copied(events []Event) int {
	if len(events) == 0 || events[0].Type != TypeRunStarted || !bytes.Contains(events[0].Data, []byte(`"fork":`)) {
		return 0
	}
	var d struct {
		Fork *Fork `json:"fork"`
	}
	if json.Unmarshal(events[0].Data, &d) != nil || d.Fork == nil {
		return 0
	}
	return max(min(d.Fork.Step, len(events))-1, 0)
}
