package engine

import (
	"context"
	"encoding/json"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// tree tells which runs of a journal tree (store.Tree) descend from one
// run, and their paths. Runs created in the same microsecond by other
// callers can share a tree token; they are told apart here. Not safe for
// concurrent use.
type tree struct {
	e       *Engine
	paths   map[string]string // member run id → path
	outside map[string]bool
}

func (e *Engine) newTree(root *run.Record) *tree {
	return &tree{e: e, paths: map[string]string{root.ID: root.PathOrAgent()}, outside: map[string]bool{}}
}

// path returns the path of a run if it belongs to the tree. ev, when it is
// the run's run.started, saves a read of its record.
func (t *tree) path(ctx context.Context, runID string, ev *journal.Event) (string, bool) {
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
	for range t.e.opts.MaxDepth + 1 {
		var parent, path string
		if id == runID && ev != nil && ev.Type == journal.TypeRunStarted {
			var st journal.RunStarted
			if json.Unmarshal(ev.Data, &st) == nil {
				parent, path = st.Parent, st.Path
			}
		} else if rec, err := t.e.Get(ctx, id); err == nil {
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
