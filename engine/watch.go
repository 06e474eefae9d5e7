package engine

import (
	"context"
	"encoding/json"
	"errors"
	"iter"

	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// WatchOptions say what to watch.
type WatchOptions struct {
	// Run is the run to watch.
	Run string
	// Tree adds the run's descendants (child runs, flow nodes' agents),
	// each entry with its run's path.
	Tree bool
	// After starts after this journal position (an SSE Last-Event-ID): 0
	// watches from the run's start.
	After uint64
	// FromNow skips what happened before the watch began.
	FromNow bool
	// Live adds the runs' live messages: streamed model text and tool
	// progress, not journaled.
	Live bool
}

// historyPage is how many entries a watch reads at once while it catches
// up.
const historyPage = 256

// Watch yields a run's journal entries (and, with Tree, its descendants')
// from its start or from a position, then each new one as it is written,
// until ctx ends; with Live, live messages come in between, in order. It
// never ends by itself: callers stop at the entry they wait for (the run's
// end, a question). A watch that falls too far behind yields a
// *SlowFollowerError: watch again after its position.
func (e *Engine) Watch(ctx context.Context, o WatchOptions) iter.Seq2[run.Update, error] {
	return func(yield func(run.Update, error) bool) {
		f, err := e.Follow(ctx, o.Run, o.Tree, o.Live)
		if err != nil {
			yield(run.Update{}, err)
			return
		}
		defer f.Close()
		for u, err := range f.Watch(ctx, o.After, o.FromNow) {
			if !yield(u, err) || err != nil {
				return
			}
		}
	}
}

// Following keeps what a run's journal (and live messages) carry from the
// moment it began, for the watch that follows: a door that follows a run
// before submitting it misses none of its streamed text.
type Following struct {
	e    *Engine
	id   string
	tree bool
	f    *follower
}

// Follow starts following a run, which need not exist yet. Close it.
func (e *Engine) Follow(ctx context.Context, runID string, tree, live bool) (*Following, error) {
	var token string
	if tree {
		token = store.Tree(runID)
	}
	f, err := e.feed.follow(ctx, runID, token, live)
	if err != nil {
		return nil, err
	}
	return &Following{e: e, id: runID, tree: tree, f: f}, nil
}

// Close stops following.
func (fw *Following) Close() { fw.f.close() }

// Watch yields what Engine.Watch does, from journal position after (or,
// with fromNow, from when following began). Use it once.
func (fw *Following) Watch(ctx context.Context, after uint64, fromNow bool) iter.Seq2[run.Update, error] {
	return func(yield func(run.Update, error) bool) {
		e, f := fw.e, fw.f
		root, err := e.Get(ctx, fw.id)
		if err != nil {
			yield(run.Update{}, err)
			return
		}
		filter := store.JournalFilter{ID: fw.id}
		if fw.tree {
			filter = store.JournalFilter{Tree: store.Tree(fw.id)}
		}
		members := e.newTree(root)
		last := after
		if fromNow {
			last = max(last, f.from)
		}
		// Catch up from the store up to where following began, then follow
		// the feed: it has every entry after f.from, with the live messages
		// in between in the order they came.
		for last < f.from {
			page, err := e.st.ReadJournals(ctx, filter, last, f.from, historyPage)
			if err != nil {
				yield(run.Update{}, err)
				return
			}
			for i := range page {
				ev := &page[i]
				last = ev.Seq
				if path, ok := members.path(ctx, ev.RunID, ev); ok {
					if !yield(run.Update{Event: &run.TreeEvent{Event: *ev, Path: path}}, nil) {
						return
					}
				}
			}
			if len(page) < historyPage {
				break
			}
		}
		for {
			it, err := f.next(ctx)
			if errors.Is(err, errCut) {
				yield(run.Update{}, &SlowFollowerError{After: last})
				return
			}
			if errors.Is(err, ErrStopped) {
				yield(run.Update{}, err)
				return
			}
			if err != nil {
				return // ctx ended
			}
			if ev := it.Entry; ev != nil {
				if ev.Seq <= last {
					continue
				}
				last = ev.Seq
				if path, ok := members.path(ctx, ev.RunID, ev); ok {
					if !yield(run.Update{Event: &run.TreeEvent{Event: *ev, Path: path}}, nil) {
						return
					}
				}
				continue
			}
			var head struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(it.Live.Data, &head) != nil || head.Type == "" {
				continue
			}
			if path, ok := members.path(ctx, it.Live.RunID, nil); ok {
				if !yield(run.Update{Live: &run.LiveEvent{Type: head.Type, RunID: it.Live.RunID, Path: path, Data: it.Live.Data}}, nil) {
					return
				}
			}
		}
	}
}

// Position is the journal position of the newest entry of a run's tree
// (or of the run alone): watching after it yields only what happens from
// now on.
func (e *Engine) Position(ctx context.Context, runID string, tree bool) (uint64, error) {
	filter := store.JournalFilter{ID: runID}
	if tree {
		filter = store.JournalFilter{Tree: store.Tree(runID)}
	}
	return e.st.LastJournalSeq(ctx, filter)
}
