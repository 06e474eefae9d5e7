// Package run describes runs as readers see them: a run's record — its
// status, output, usage and what it waits for — derived from its journal
// (Project), the journal entries and live messages a client follows, and
// the decisions people send. It is pure data: the engine writes runs, and
// the doors and the HTTP client read these types.
package run

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
)

// Status is where a run stands.
type Status string

// Run statuses.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusWaiting   Status = "waiting"
	StatusInDoubt   Status = "in_doubt"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
)

// Terminal reports whether a run in this status is over for good.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCanceled
}

// Statuses lists every status, for validation and docs.
var Statuses = []Status{StatusQueued, StatusRunning, StatusWaiting, StatusInDoubt, StatusCompleted, StatusFailed, StatusCanceled}

// What a waiting run waits for.
const (
	WaitApproval = "approval"
	WaitChildren = "children"
	WaitTimer    = "timer"
	WaitInput    = "input"
)

// RunError is why a run failed.
type RunError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Record is the summary of a run that readers see. It is a projection of
// the run's journal (Project): the engine keeps a copy at each settle, and
// nothing reads it to decide what the run does.
type Record struct {
	ID       string `json:"id"`
	Agent    string `json:"agent,omitempty"`
	Flow     string `json:"flow,omitempty"`
	Instance string `json:"instance,omitempty"`
	Input    string `json:"input"`
	// InputTruncated says Input was cut (see Record.Shrunk); the run's
	// run.started event has all of it, unless it was too large to journal.
	InputTruncated bool              `json:"input_truncated,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Status         Status            `json:"status"`
	Output         string            `json:"output,omitempty"`
	// OutputTruncated says Output was cut to MaxRecordOutput; the run's
	// run.completed event has all of it.
	OutputTruncated bool            `json:"output_truncated,omitempty"`
	OutputJSON      json.RawMessage `json:"output_json,omitempty"`
	Error           *RunError       `json:"error,omitempty"`
	Usage           model.Usage     `json:"usage"`
	// Cost is what the run spent in US dollars, by model and by tool, its
	// child runs' included; omitted when nothing it used has a price.
	Cost *journal.Cost `json:"cost,omitempty"`
	// Tools are the run's tool calls by tool, its child runs' included:
	// calls, failures and time. Counted when the run ends.
	Tools map[string]journal.ToolUse `json:"tools,omitempty"`
	// Steps is the number of journal entries the record reflects, and
	// Position the last one's position (its SSE event id).
	Steps     int        `json:"steps"`
	Position  uint64     `json:"position,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// InDoubt names the tool call that stopped the run.
	InDoubt *journal.RunInDoubt `json:"in_doubt,omitempty"`
	// Approvals are the calls a waiting run needs a person to decide on.
	Approvals []journal.ApprovalRequested `json:"approvals,omitempty"`
	// InputRequests are the questions the run asks that nobody answered.
	InputRequests []journal.InputRequested `json:"input_requests,omitempty"`
	// WaitingFor says what a waiting run waits for: WaitApproval,
	// WaitChildren, WaitTimer or WaitInput.
	WaitingFor string `json:"waiting_for,omitempty"`
	// WakeAt is when a waiting run wakes by itself (a timer, a deadline).
	WakeAt *time.Time `json:"wake_at,omitempty"`
	// Turn is the run's position among its instance's runs (1-based).
	Turn uint64 `json:"turn,omitempty"`
	// Parent, ParentCall, Path and Depth place a child run in its tree: the
	// run and call that started it, its path of agents
	// ("supervisor/researcher#2") and its depth (roots are 0).
	Parent     string `json:"parent,omitempty"`
	ParentCall string `json:"parent_call,omitempty"`
	Path       string `json:"path,omitempty"`
	Depth      int    `json:"depth,omitempty"`
}

// MaxRecordOutput caps the output kept in a record, so a record with a long
// input and a long output still fits one NATS message.
const MaxRecordOutput = 256 << 10

// Shrunk is a copy of the record small enough for a NATS server with a
// small max_payload: its input and output cut to n bytes each (and
// flagged so), its JSON output dropped when it is longer. The journal
// keeps them whole.
func (rec *Record) Shrunk(n int) *Record {
	small := *rec
	if len(small.Input) > n {
		small.Input, small.InputTruncated = CutText(small.Input, n), true
	}
	if len(small.Output) > n {
		small.Output, small.OutputTruncated = CutText(small.Output, n), true
	}
	if len(small.OutputJSON) > n {
		small.OutputJSON, small.OutputTruncated = nil, true
	}
	return &small
}

// CutText cuts s to at most n bytes on a character boundary, saying how
// long it was.
func CutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	note := fmt.Sprintf("… (cut: %d bytes in all)", len(s))
	end := max(n-len(note), 0)
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + note
}

// Quote quotes a name a caller sent for an error message, cut to 200
// bytes: a megabyte of name is not echoed back.
func Quote(name string) string { return strconv.Quote(CutText(name, 200)) }

// CutWords cuts every word of an error message (a run of bytes without
// spaces) longer than 200 bytes to 200. It is for messages written by a
// library that echoes a caller's name whole.
func CutWords(msg string) string {
	if len(msg) <= 200 {
		return msg
	}
	var b strings.Builder
	for len(msg) > 0 {
		end := strings.IndexAny(msg, " \t\n")
		if end < 0 {
			end = len(msg)
		}
		b.WriteString(CutText(msg[:end], 200))
		if end < len(msg) {
			b.WriteByte(msg[end])
			end++
		}
		msg = msg[end:]
	}
	return b.String()
}

// PathOrAgent is the run's path, which for a root run is its agent (or
// flow).
func (rec *Record) PathOrAgent() string {
	switch {
	case rec.Path != "":
		return rec.Path
	case rec.Flow != "":
		return rec.Flow
	}
	return rec.Agent
}

// PendingApprovals are the run's approvals nobody has decided yet.
func (rec *Record) PendingApprovals() []journal.ApprovalRequested {
	if rec.Status.Terminal() {
		return nil
	}
	return rec.Approvals
}

// PendingInputs are the run's questions nobody has answered yet.
func (rec *Record) PendingInputs() []journal.InputRequested {
	if rec.Status.Terminal() {
		return nil
	}
	return rec.InputRequests
}

// Asking reports whether a run waits for a person: an approval or an
// answer not yet given (a running run's tool call may ask too), or a
// resolution of a call in doubt.
func (rec *Record) Asking() bool {
	switch rec.Status {
	case StatusInDoubt:
		return true
	case StatusWaiting:
		return len(rec.Approvals) > 0 || len(rec.InputRequests) > 0
	case StatusRunning:
		return slices.ContainsFunc(rec.InputRequests, func(q journal.InputRequested) bool { return q.Call != "" })
	}
	return false
}

// HowToGoOn says, for a run that waits for a person, how a person lets
// it go on through the HTTP API.
func (rec *Record) HowToGoOn() string {
	if rec.Status == StatusInDoubt {
		return fmt.Sprintf("resolve it with POST /v1/runs/%s/resolve", rec.ID)
	}
	if pending := rec.PendingApprovals(); len(pending) > 0 {
		return fmt.Sprintf("decide with POST /v1/runs/%s/approvals/%s and a body like {\"decision\":\"approve\"} (GET /v1/runs/%s lists the %s it waits for)",
			rec.ID, pending[0].ApprovalID, rec.ID, plural(len(pending), "approval"))
	}
	return fmt.Sprintf("answer with POST /v1/runs/%s/input (GET /v1/runs/%s lists its questions in input_requests)", rec.ID, rec.ID)
}

// plural says n things in words: "1 approval", "2 approvals".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// Settled reports a run that needs someone to act (or nothing more): a run
// waiting for its own children or a timer is still at work.
func (rec *Record) Settled() bool {
	return rec.Status.Terminal() || rec.Status == StatusInDoubt ||
		rec.Status == StatusWaiting && rec.WaitingFor != WaitChildren && rec.WaitingFor != WaitTimer
}

// Project derives a run's record from its journal. queued, when set, is
// the record of the run as it was submitted: what a journal that has not
// started yet cannot say.
func Project(id string, queued *Record, events []journal.Event) *Record {
	rec := &Record{ID: id, Status: StatusQueued}
	if queued != nil {
		cp := *queued
		rec = &cp
	}
	var started bool
	for _, ev := range events {
		rec.Steps, rec.Position = ev.Step, ev.Seq
		switch ev.Type {
		case journal.TypeRunStarted:
			var st journal.RunStarted
			if json.Unmarshal(ev.Data, &st) != nil {
				continue
			}
			started = true
			t := ev.Time
			rec.StartedAt = &t
			rec.Agent, rec.Flow, rec.Input, rec.Metadata = st.Agent, st.Flow, st.Input, st.Metadata
			rec.InputTruncated = st.InputTruncated
			rec.Instance, rec.Turn = st.Instance, st.Turn
			if st.InstanceAgent != "" {
				rec.Agent = st.InstanceAgent
			}
			rec.Parent, rec.ParentCall, rec.Path, rec.Depth = st.Parent, st.ParentCall, st.Path, st.Depth
			if !st.Submitted.IsZero() {
				rec.CreatedAt = st.Submitted
			} else if rec.CreatedAt.IsZero() {
				rec.CreatedAt = ev.Time
			}
		case journal.TypeRunInDoubt:
			var d journal.RunInDoubt
			if json.Unmarshal(ev.Data, &d) == nil {
				rec.InDoubt = &d
			}
		case journal.TypeToolResolved:
			rec.InDoubt = nil
		}
	}
	if len(events) == 0 {
		return rec
	}
	last := LastState(events)
	if !started && !journal.Terminal(last.Type) {
		// A journal without its run.started (unreadable) still says
		// when the run ended.
		return rec
	}
	rec.Status, rec.WaitingFor, rec.WakeAt = StatusRunning, "", nil
	rec.Cost = journal.CostOf(events)
	// A fork's copied entries are its source's work, not its own.
	copied := events[1 : 1+journal.Copied(events)]
	own := events
	if len(copied) > 0 {
		own = append([]journal.Event{events[0]}, events[1+len(copied):]...)
	}
	if journal.Terminal(last.Type) {
		rec.Tools = journal.ToolUseOf(own)
	}

	switch last.Type {
	case journal.TypeRunCompleted:
		var d journal.RunCompleted
		_ = json.Unmarshal(last.Data, &d)
		rec.Status, rec.Output, rec.OutputJSON, rec.Usage = StatusCompleted, d.Output, d.JSON, d.Usage
		if len(rec.Output) > MaxRecordOutput {
			rec.Output, rec.OutputTruncated = rec.Output[:MaxRecordOutput], true
			if len(rec.OutputJSON) > MaxRecordOutput {
				rec.OutputJSON = nil
			}
		}
	case journal.TypeRunFailed:
		var d journal.RunFailed
		_ = json.Unmarshal(last.Data, &d)
		rec.Status, rec.Usage = StatusFailed, d.Usage
		rec.Error = &RunError{Code: d.Code, Message: d.Message}
	case journal.TypeRunCanceled:
		var d journal.RunCanceled
		_ = json.Unmarshal(last.Data, &d)
		rec.Status, rec.Usage = StatusCanceled, d.Usage
	}
	if rec.Status.Terminal() {
		if len(copied) > 0 {
			rec.Usage = rec.Usage.Sub(journal.Usage(copied))
		}
		t := last.Time
		rec.EndedAt = &t
		rec.InDoubt = nil
		return rec
	}
	rec.Usage = journal.Usage(own)
	rec.InputRequests = journal.OpenQuestions(events)
	switch last.Type {
	case journal.TypeRunInDoubt:
		rec.Status = StatusInDoubt
	case journal.TypeRunWaiting:
		var d journal.RunWaiting
		_ = json.Unmarshal(last.Data, &d)
		rec.Status, rec.WakeAt = StatusWaiting, d.Until
		if len(d.Approvals) > 0 {
			rec.waitApprovals(events)
			break
		}
		switch {
		case len(d.Children) > 0:
			rec.WaitingFor = WaitChildren
		case len(d.Inputs) > 0:
			rec.WaitingFor = WaitInput // WakeAt, if set, is its deadline
		default:
			rec.WaitingFor = WaitTimer
		}
	case journal.TypeApprovalDecided:
		// A decision while others of the turn are still undecided.
		rec.waitApprovals(events)
	}
	if rec.Status != StatusInDoubt {
		rec.InDoubt = nil
	}
	return rec
}

// waitApprovals marks a run parked on the undecided approvals of its turn.
func (rec *Record) waitApprovals(events []journal.Event) {
	pending := journal.PendingApprovals(events)
	if len(pending) == 0 {
		return
	}
	rec.Status, rec.WaitingFor, rec.Approvals, rec.WakeAt = StatusWaiting, WaitApproval, pending, nil
	for _, p := range pending {
		// The first deadline wakes the run to apply its default.
		if p.Deadline != nil && (rec.WakeAt == nil || p.Deadline.Before(*rec.WakeAt)) {
			rec.WakeAt = p.Deadline
		}
	}
}

// LastState is the last entry that says where a run stands: entries that
// record an input the run refused, a timer that fired or a question
// withdrawn leave it where it was.
func LastState(events []journal.Event) journal.Event {
	for i := len(events) - 1; i > 0; i-- {
		switch events[i].Type {
		case journal.TypeInputRefused, journal.TypeTimerFired, journal.TypeInputWithdrawn:
			continue
		}
		return events[i]
	}
	return events[0]
}
