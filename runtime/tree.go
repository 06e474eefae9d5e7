package runtime

import (
	"context"
	"encoding/json"

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
