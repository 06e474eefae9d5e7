package run

import (
	"encoding/json"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/tool"
)

// TreeEvent is a journal entry of a run or of one of its descendants, with
// the path of the run it belongs to ("triage/billing#2"), so a client can
// render the whole tree live.
type TreeEvent struct {
	journal.Event
	Path string `json:"path"`
}

// Live event types: what a running run shows live, not journaled.
const (
	LiveDelta    = "model.delta"
	LiveProgress = "tool.progress"
)

// Delta is streamed model text (LiveDelta).
type Delta struct {
	// Type is "model.delta".
	Type  string `json:"type"`
	RunID string `json:"run_id"`
	Path  string `json:"path"`
	Turn  int    `json:"turn"`
	Text  string `json:"text"`
}

// ToolProgress is progress a running tool call reports (LiveProgress).
type ToolProgress struct {
	// Type is "tool.progress".
	Type   string `json:"type"`
	RunID  string `json:"run_id"`
	Path   string `json:"path"`
	CallID string `json:"call_id"`
	Tool   string `json:"tool"`
	tool.Progress
}

// Resolution decides what to do with a run in doubt.
type Resolution struct {
	Action string `json:"action"`
	Result string `json:"result,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Decision is a person's answer to an approval.
type Decision struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	// Arguments replace the model's arguments when approving with edits.
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// PendingApproval is one call waiting for a person.
type PendingApproval struct {
	RunID string `json:"run_id"`
	// Agent is the agent that asked (after a handoff, not the run's first).
	Agent string `json:"agent"`
	journal.ApprovalRequested
}

// Filter selects runs to list.
type Filter struct {
	Agent  string
	Flow   string
	Status Status
	// Parent keeps the children of one run; Roots keeps runs that have no
	// parent.
	Parent string
	Roots  bool
	// Instance keeps the turns of the agent instances with this key.
	Instance string
	// Metadata keeps runs whose metadata has each of these keys with its
	// value.
	Metadata map[string]string
	// From and To keep runs created at or after From and before To (zero:
	// no bound).
	From, To time.Time
	Limit    int
	// Cursor is the last id of the previous page.
	Cursor string
}

// Keeps reports whether a run passes the filter (its paging aside).
func (f *Filter) Keeps(rec *Record) bool {
	switch {
	case f.Agent != "" && rec.Agent != f.Agent, f.Flow != "" && rec.Flow != f.Flow,
		f.Status != "" && rec.Status != f.Status, f.Parent != "" && rec.Parent != f.Parent,
		f.Roots && rec.Parent != "", f.Instance != "" && rec.Instance != f.Instance,
		!f.From.IsZero() && rec.CreatedAt.Before(f.From), !f.To.IsZero() && !rec.CreatedAt.Before(f.To):
		return false
	}
	for k, v := range f.Metadata {
		if got, ok := rec.Metadata[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Update is one thing a watch of a run yields: a journal entry, or a live
// message.
type Update struct {
	Event *TreeEvent
	Live  *LiveEvent
}

// LiveEvent is a live message of a run: LiveDelta or LiveProgress.
type LiveEvent struct {
	Type  string
	RunID string
	Path  string
	// Data is the message as published (a Delta or a ToolProgress).
	Data json.RawMessage
}
