package engine

import (
	"encoding/json"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
)

// Input kinds. Every change to a run or an instance is one of these
// messages (see store.Input), taken in order by the entity's writer.
const (
	// kindSubmit creates a run.
	kindSubmit = "submit"
	// kindSubmitTurn creates a run that is a turn of an instance: it
	// starts when the instance says (kindStart), not when it is rung.
	kindSubmitTurn = "submit.turn"
	// kindStart starts an instance's turn with the conversation so far.
	kindStart   = "start"
	kindCancel  = "cancel"
	kindDecide  = "decide"
	kindAnswer  = "answer"
	kindResolve = "resolve"
	// kindReport is a child run's outcome, sent to its parent.
	kindReport = "report"
	kindTimer  = "timer"
	// kindTurn asks an instance for a turn; kindEnded tells it a turn
	// ended.
	kindTurn  = "turn"
	kindEnded = "ended"
	// kindClaim is an idempotency key claimed by Once.
	kindClaim = "claim"
	// kindDeleted marks a run deleted, for as long as an idempotency key
	// may name it: a retry of the submission that made it must not make
	// it again.
	kindDeleted = "deleted"
)

// kindNoun names an input kind in words, for messages: "the decision".
func kindNoun(kind string) string {
	switch kind {
	case kindSubmit, kindSubmitTurn:
		return "the submission"
	case kindStart:
		return "the turn's start"
	case kindDecide:
		return "the decision"
	case kindResolve:
		return "the resolution"
	case kindTurn:
		return "the turn"
	case kindEnded:
		return "the end of a turn"
	}
	return "the " + kind
}

// submission is what a run is submitted with: its first input.
type submission struct {
	Agent    string            `json:"agent,omitempty"`
	Flow     string            `json:"flow,omitempty"`
	Input    string            `json:"input"`
	State    json.RawMessage   `json:"state,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Instance is the key of the agent instance the run is a turn of, and
	// InstanceID that instance's entity.
	Instance   string `json:"instance,omitempty"`
	InstanceID string `json:"instance_id,omitempty"`
	// Parent, ParentCall, Path, Depth and History place a child run.
	Parent     string          `json:"parent,omitempty"`
	ParentCall string          `json:"parent_call,omitempty"`
	Path       string          `json:"path,omitempty"`
	Depth      int             `json:"depth,omitempty"`
	History    []model.Message `json:"history,omitempty"`
	Submitted  time.Time       `json:"submitted"`
	// Fork makes the run a fork of another (see Engine.Fork).
	Fork *journal.Fork `json:"fork,omitempty"`
}

// startTurn is what an instance gives the turn it starts.
type startTurn struct {
	// Submission is the run's, which its instance has had since the turn
	// came.
	Submission *submission     `json:"submission,omitempty"`
	Turn       uint64          `json:"turn"`
	History    []model.Message `json:"history,omitempty"`
	// HistoryDropped counts the earlier messages History leaves out.
	HistoryDropped int `json:"history_dropped,omitempty"`
	// Agent holds the conversation (after a handoff in an earlier turn).
	Agent string `json:"agent,omitempty"`
	// Input replaces the run's own (an interrupting turn carries the
	// inputs of the turns it canceled).
	Input string `json:"input,omitempty"`
	// Refuse fails the turn at once with this reason (a busy instance
	// that rejects concurrent input, a turn too large to start), and Code
	// with this error code (instance_busy when empty).
	Refuse string `json:"refuse,omitempty"`
	Code   string `json:"code,omitempty"`
}

type cancelRequest struct {
	Reason string `json:"reason,omitempty"`
}

type decision struct {
	ApprovalID string `json:"approval_id"`
	run.Decision
}

type answer struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

type timerFired struct {
	At time.Time `json:"at"`
}

// turnRequest asks an instance for a turn.
type turnRequest struct {
	RunID      string      `json:"run_id"`
	Submission *submission `json:"submission"`
}

// turnEnded tells an instance how its turn ended.
type turnEnded = journal.TurnEnded

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are marshaled here
	}
	return b
}

// queued is the record of a run submitted and not started.
func (sub *submission) queued(id string) *run.Record {
	return &run.Record{ID: id, Agent: sub.Agent, Flow: sub.Flow, Instance: sub.Instance, Input: sub.Input, Metadata: sub.Metadata,
		Status: run.StatusQueued, CreatedAt: sub.Submitted, Parent: sub.Parent, ParentCall: sub.ParentCall, Path: sub.Path, Depth: sub.Depth}
}

// project derives a run's record from its journal, and from its
// submission (when known) for what a journal not started cannot say.
func project(id string, sub *submission, events []journal.Event) *run.Record {
	var queued *run.Record
	if sub != nil {
		queued = sub.queued(id)
	}
	return run.Project(id, queued, events)
}
