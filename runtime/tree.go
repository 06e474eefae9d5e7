package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/myriad-ai/myriad/journal"
)

// TreeEvent is a journal entry of a run or of one of its descendants, with
// the path of the run it belongs to ("triage/billing#2"), so a client can
// render the whole tree live.
type TreeEvent struct {
	journal.Event
	Path string `json:"path"`
}

// Tree tells which runs of a journal tree (bus.Tree) descend from one run,
// and their paths. Runs created in the same microsecond by other callers
// can share a tree token; they are told apart here. Not safe for concurrent
// use.
type Tree struct {
	rt      *Runtime
	paths   map[string]string // member run id → path
	outside map[string]bool
}

// NewTree starts a tree at root.
func (r *Runtime) NewTree(root *Record) *Tree {
	return &Tree{rt: r, paths: map[string]string{root.ID: root.PathOrAgent()}, outside: map[string]bool{}}
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

// Path returns the path of a run if it belongs to the tree. ev, when it
// is the run's run.started, saves a read of its record.
func (t *Tree) Path(ctx context.Context, runID string, ev *journal.Event) (string, bool) {
	if p, ok := t.paths[runID]; ok {
		return p, true
	}
	if t.outside[runID] {
		return "", false
	}
	// Walk up until a member or a root: a stream resumed mid-way may meet a
	// grandchild before (or without) its parent.
	var chain []string
	id := runID
	for range t.rt.opts.MaxDepth + 1 {
		var parent, path string
		if id == runID && ev != nil && ev.Type == journal.TypeRunStarted {
			var st journal.RunStarted
			if json.Unmarshal(ev.Data, &st) == nil {
				parent, path = st.Parent, st.Path
			}
		} else if rec, err := t.rt.Get(ctx, id); err == nil {
			parent, path = rec.Parent, rec.Path
		} else {
			for _, c := range chain {
				delete(t.paths, c) // unreadable for now: remember nothing
			}
			return "", false
		}
		t.paths[id] = path
		chain = append(chain, id)
		if _, member := t.paths[parent]; member && parent != "" && parent != id {
			return t.paths[runID], true
		}
		if parent == "" || t.outside[parent] {
			break
		}
		id = parent
	}
	for _, c := range chain {
		delete(t.paths, c)
		t.outside[c] = true
	}
	return "", false
}

// Asking reports whether a run waits for a person: an approval or an
// answer not yet given (a running run's tool call may ask too), or a
// resolution of a call in doubt.
func (rec *Record) Asking() bool {
	switch rec.Status {
	case StatusInDoubt:
		return true
	case StatusWaiting:
		return len(rec.PendingApprovals()) > 0 || len(rec.PendingInputs()) > 0
	case StatusRunning:
		// Its tool calls' questions (a running flow's own questions may
		// be stale until it parks: see settle).
		return slices.ContainsFunc(rec.PendingInputs(), func(q journal.InputRequested) bool { return q.Call != "" })
	}
	return false
}

// PendingApprovals are the run's approvals nobody has decided yet.
func (rec *Record) PendingApprovals() []journal.ApprovalRequested {
	var out []journal.ApprovalRequested
	for _, a := range rec.Approvals {
		if !slices.ContainsFunc(rec.Decisions, func(d journal.ApprovalDecided) bool { return d.ApprovalID == a.ApprovalID }) {
			out = append(out, a)
		}
	}
	return out
}

// PendingInputs are the run's questions nobody has answered yet.
func (rec *Record) PendingInputs() []journal.InputRequested {
	var out []journal.InputRequested
	for _, q := range rec.InputRequests {
		if !slices.ContainsFunc(rec.Inputs, func(in journal.InputReceived) bool { return in.Key == q.Key }) {
			out = append(out, q)
		}
	}
	return out
}

// Asking returns the runs of root's tree, root included, that wait for a
// person (see Record.Asking). It descends through runs at work (parked on
// their children, or running), reading the journal of each to find its
// open children, so its cost follows the part of the tree still at work.
func (r *Runtime) Asking(ctx context.Context, root *Record) ([]*Record, error) {
	var out []*Record
	var walk func(rec *Record, depth int) error
	walk = func(rec *Record, depth int) error {
		if rec.Asking() {
			out = append(out, rec)
		}
		if (rec.Status != StatusWaiting && rec.Status != StatusRunning) || depth > r.opts.MaxDepth {
			return nil
		}
		events, err := journal.Load(ctx, r.bus, rec.ID)
		if err != nil {
			return err
		}
		for _, id := range journal.OpenChildren(events) {
			child, err := r.Get(ctx, id)
			if errors.Is(err, ErrNotFound) {
				continue // spawned in the journal, record not written yet
			}
			if err != nil {
				return err
			}
			if err := walk(child, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(root, 0)
}
