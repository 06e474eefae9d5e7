package engine

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"sync/atomic"

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
// with fromNow, from when following began). Use it once (or Stream).
func (fw *Following) Watch(ctx context.Context, after uint64, fromNow bool) iter.Seq2[run.Update, error] {
	return func(yield func(run.Update, error) bool) {
		w, err := fw.watcher(ctx, after, fromNow)
		if err != nil {
			yield(run.Update{}, err)
			return
		}
		if !w.catchUp(ctx, yield) {
			return
		}
		for {
			it, err := fw.f.next(ctx)
			if err != nil {
				if err = w.ended(err); err != nil {
					yield(run.Update{}, err)
				}
				return
			}
			if u, ok := w.update(ctx, it); ok && !yield(u, nil) {
				return
			}
		}
	}
}

// Stream does what Watch does without holding a goroutine while nothing
// happens: it catches up in the caller's goroutine, then returns, and
// hands every later update to send from a goroutine that runs only while
// there is something to send, in order. A door that serves thousands of
// idle followers (SSE) uses it. The stream ends when send returns false,
// or after send is given an error (a cut, the engine stopping); either
// way it closes the Following. Use it once (or Watch).
func (fw *Following) Stream(ctx context.Context, after uint64, send func(run.Update, error) bool) error {
	w, err := fw.watcher(ctx, after, false)
	if err != nil {
		return err
	}
	if !w.catchUp(ctx, send) {
		fw.Close()
		return nil
	}
	s := &streamer{fw: fw, w: w, send: send}
	fw.f.setNotify(s.kick)
	s.kick() // for what came while catching up
	return nil
}

// streamer drains a Following for Stream.
type streamer struct {
	fw      *Following
	w       *watcher
	send    func(run.Update, error) bool
	running atomic.Bool
	over    atomic.Bool
}

// kick makes sure a goroutine drains the follower (called by the feed
// with its lock held: it must not block).
func (s *streamer) kick() {
	if !s.over.Load() && s.running.CompareAndSwap(false, true) {
		go s.drain()
	}
}

func (s *streamer) drain() {
	ctx := context.Background()
	for {
		if it, ok := s.fw.f.pop(); ok {
			if u, ok := s.w.update(ctx, it); ok && !s.send(u, nil) {
				s.end()
				return
			}
			continue
		}
		if why := s.fw.f.cutBy(); why != nil {
			if err := s.w.ended(why); err != nil {
				s.send(run.Update{}, err)
			}
			s.end()
			return
		}
		s.running.Store(false)
		// Something may have come between the last look and now.
		if !s.fw.f.pending() && s.fw.f.cutBy() == nil || !s.running.CompareAndSwap(false, true) {
			return
		}
	}
}

func (s *streamer) end() {
	s.over.Store(true)
	s.fw.Close()
}

// watcher turns what a follower receives into updates: entries of the
// run (or its tree's members, with their paths) after the last one
// handed out, and live messages.
type watcher struct {
	e       *Engine
	filter  store.JournalFilter
	members *tree
	from    uint64 // where following began
	last    uint64 // the last entry handed out
}

func (fw *Following) watcher(ctx context.Context, after uint64, fromNow bool) (*watcher, error) {
	root, err := fw.e.Get(ctx, fw.id)
	if err != nil {
		return nil, err
	}
	w := &watcher{e: fw.e, filter: store.JournalFilter{ID: fw.id}, members: fw.e.newTree(root), from: fw.f.from, last: after}
	if fw.tree {
		w.filter = store.JournalFilter{Tree: store.Tree(fw.id)}
	}
	if fromNow {
		w.last = max(w.last, w.from)
	}
	return w, nil
}

// catchUp yields what the store has up to where following began (the
// feed has every entry after it, with the live messages in between in
// the order they came). false: yield said stop, or it was given an error.
func (w *watcher) catchUp(ctx context.Context, yield func(run.Update, error) bool) bool {
	for w.last < w.from {
		page, err := w.e.readJournals(ctx, w.filter, w.last, w.from, historyPage)
		if err != nil {
			yield(run.Update{}, err)
			return false
		}
		for i := range page {
			ev := &page[i]
			w.last = ev.Seq
			if path, ok := w.members.path(ctx, ev.RunID, ev); ok {
				if !yield(run.Update{Event: &run.TreeEvent{Event: *ev, Path: path}}, nil) {
					return false
				}
			}
		}
		if len(page) < historyPage {
			break
		}
	}
	return true
}

// update is the update an item of the feed makes, if any.
func (w *watcher) update(ctx context.Context, it store.FeedItem) (run.Update, bool) {
	if ev := it.Entry; ev != nil {
		if ev.Seq <= w.last {
			return run.Update{}, false
		}
		w.last = ev.Seq
		path, ok := w.members.path(ctx, ev.RunID, ev)
		if !ok {
			return run.Update{}, false
		}
		return run.Update{Event: &run.TreeEvent{Event: *ev, Path: path}}, true
	}
	var head struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(it.Live.Data, &head) != nil || head.Type == "" {
		return run.Update{}, false
	}
	path, ok := w.members.path(ctx, it.Live.RunID, nil)
	if !ok {
		return run.Update{}, false
	}
	return run.Update{Live: &run.LiveEvent{Type: head.Type, RunID: it.Live.RunID, Path: path, Data: it.Live.Data}}, true
}

// ended maps why a follower ended onto what its watcher says: nil when
// its context ended (the caller left).
func (w *watcher) ended(err error) error {
	switch {
	case errors.Is(err, errCut):
		return &SlowFollowerError{After: w.last}
	case errors.Is(err, ErrStopped):
		return err
	}
	return nil
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
