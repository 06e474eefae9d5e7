package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/store"
)

// The feed: one journal feed per node (store.Feed), shared by everyone on
// the node who follows a run or a tree — SSE clients, A2A and MCP streams,
// waits, commands awaiting their verdict. Each follower has a bounded
// buffer; a follower too slow to keep up is cut with a resumable error
// (SlowFollowerError) instead of slowing the others down.

// followerBuffer is how many entries and live messages a follower holds.
const followerBuffer = 1024

// liveBuffer is how many live messages the node's feed holds before it
// drops some (live messages are best effort; the journal has everything).
const liveBuffer = 1 << 16

type feed struct {
	st  *store.Store
	log *slog.Logger

	mu     sync.Mutex
	sf     *store.Feed
	pos    uint64 // the last entry handed out
	runs   map[string]map[*follower]struct{}
	trees  map[string]map[*follower]struct{}
	live   map[string]*liveRef
	closed bool
}

type liveRef struct {
	n    int
	stop func()
}

func newFeed(st *store.Store, log *slog.Logger) *feed {
	return &feed{st: st, log: log, runs: map[string]map[*follower]struct{}{}, trees: map[string]map[*follower]struct{}{},
		live: map[string]*liveRef{}}
}

// follower receives what the feed has for one run or one tree.
type follower struct {
	fd   *feed
	run  string
	tree string
	live bool
	// from is the last entry the feed handed out when the follower came:
	// it receives every entry after it.
	from uint64
	ch   chan store.FeedItem
	cut  chan struct{}
	once sync.Once
	why  error // why it was cut
}

// follow registers a follower of a run (or, with tree set, of every run of
// a tree), with the runs' live messages if live.
func (fd *feed) follow(ctx context.Context, run, tree string, live bool) (*follower, error) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.closed {
		return nil, ErrStopped
	}
	if fd.sf == nil {
		seq, err := fd.st.JournalsSeq(ctx)
		if err != nil {
			return nil, err
		}
		sf, err := fd.st.OpenFeed(ctx, seq, liveBuffer)
		if err != nil {
			return nil, err
		}
		fd.sf, fd.pos = sf, seq
		go fd.dispatch(sf)
	}
	f := &follower{fd: fd, run: run, tree: tree, live: live, from: fd.pos, ch: make(chan store.FeedItem, followerBuffer), cut: make(chan struct{})}
	key, m := run, fd.runs
	if tree != "" {
		key, m = tree, fd.trees
	}
	if m[key] == nil {
		m[key] = map[*follower]struct{}{}
	}
	m[key][f] = struct{}{}
	if live {
		t := tree
		if t == "" {
			t = store.Tree(run)
		}
		ref := fd.live[t]
		if ref == nil {
			stop, err := fd.sf.FollowLive(t)
			if err != nil {
				delete(m[key], f)
				return nil, err
			}
			ref = &liveRef{stop: stop}
			fd.live[t] = ref
		}
		ref.n++
	}
	return f, nil
}

// dispatch hands each entry and live message to its followers.
func (fd *feed) dispatch(sf *store.Feed) {
	ctx := context.Background()
	for {
		it, err := sf.Next(ctx)
		if err != nil {
			fd.mu.Lock()
			closed := fd.closed
			fd.mu.Unlock()
			if closed || errors.Is(err, store.ErrClosed) {
				return
			}
			fd.log.Warn("journal feed", "err", err)
			time.Sleep(100 * time.Millisecond) // the consumer mends itself
			continue
		}
		fd.mu.Lock()
		var runID string
		if it.Entry != nil {
			fd.pos = it.Entry.Seq
			runID = it.Entry.RunID
		} else {
			runID = it.Live.RunID
		}
		fd.deliver(fd.runs[runID], it)
		fd.deliver(fd.trees[store.Tree(runID)], it)
		fd.mu.Unlock()
	}
}

func (fd *feed) deliver(followers map[*follower]struct{}, it store.FeedItem) {
	for f := range followers {
		if it.Live != nil && !f.live {
			continue
		}
		select {
		case f.ch <- it:
		default:
			f.cutLocked()
		}
	}
}

// close stops the feed, and ends every follower with ErrStopped.
func (fd *feed) close() {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.closed = true
	if fd.sf != nil {
		fd.sf.Stop()
	}
	for _, m := range []map[string]map[*follower]struct{}{fd.runs, fd.trees} {
		for _, fs := range m {
			for f := range fs {
				f.endLocked(ErrStopped)
			}
		}
	}
}

// ErrStopped ends what follows runs on an engine that stopped.
var ErrStopped = errors.New("the engine has stopped")

// close unregisters the follower.
func (f *follower) close() {
	f.fd.mu.Lock()
	defer f.fd.mu.Unlock()
	f.unregisterLocked()
}

func (f *follower) unregisterLocked() {
	key, m := f.run, f.fd.runs
	if f.tree != "" {
		key, m = f.tree, f.fd.trees
	}
	if _, ok := m[key][f]; !ok {
		return
	}
	delete(m[key], f)
	if len(m[key]) == 0 {
		delete(m, key)
	}
	if f.live {
		t := f.tree
		if t == "" {
			t = store.Tree(f.run)
		}
		if ref := f.fd.live[t]; ref != nil {
			if ref.n--; ref.n == 0 {
				ref.stop()
				delete(f.fd.live, t)
			}
		}
	}
}

// cutLocked drops a follower that fell behind.
func (f *follower) cutLocked() { f.endLocked(errCut) }

func (f *follower) endLocked(why error) {
	f.unregisterLocked()
	f.once.Do(func() {
		f.why = why
		close(f.cut)
	})
}

// SlowFollowerError ends a watch that fell too far behind the journal:
// watch again after After (an SSE client reconnects with Last-Event-ID).
type SlowFollowerError struct {
	After uint64
}

func (e *SlowFollowerError) Error() string {
	return fmt.Sprintf("this stream fell behind and was cut; resume after event %d (Last-Event-ID)", e.After)
}

// errCut is a follower's buffer overflowing.
var errCut = errors.New("cut")

// next waits for the follower's next item.
func (f *follower) next(ctx context.Context) (store.FeedItem, error) {
	select {
	case it := <-f.ch:
		return it, nil
	default:
	}
	select {
	case it := <-f.ch:
		return it, nil
	case <-f.cut:
		return store.FeedItem{}, f.why
	case <-ctx.Done():
		return store.FeedItem{}, ctx.Err()
	}
}

// verdict waits up to wait for the run's entry that took input seq, or
// for the run's end. nil means neither came in time.
func (f *follower) verdict(seq uint64, wait time.Duration) (*journal.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		it, err := f.next(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil
		}
		if err != nil {
			return nil, nil // cut: the command was sent; the caller reads the run
		}
		if ev := it.Entry; ev != nil && (ev.InputSeq >= seq || journal.Terminal(ev.Type)) {
			return ev, nil
		}
	}
}
