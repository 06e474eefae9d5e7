package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
	// queue holds what the follower has not taken yet, up to
	// followerBuffer items; it grows only as far as the follower lags, so
	// an idle follower costs little. ready says the queue has something.
	qmu   sync.Mutex
	queue []store.FeedItem
	ready chan struct{}
	cut   chan struct{}
	once  sync.Once
	why   error // why it was cut
	// notify, when set, is called (under the feed's lock) when an item
	// is queued or the follower is cut (see Following.Stream).
	notify atomic.Pointer[func()]
}

func (f *follower) setNotify(fn func()) { f.notify.Store(&fn) }

func (f *follower) notified() {
	if fn := f.notify.Load(); fn != nil {
		(*fn)()
	}
}

// pending reports items queued.
func (f *follower) pending() bool {
	f.qmu.Lock()
	defer f.qmu.Unlock()
	return len(f.queue) > 0
}

// cutBy is why the follower was cut, nil if it was not.
func (f *follower) cutBy() error {
	select {
	case <-f.cut:
		return f.why
	default:
		return nil
	}
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
	f := &follower{fd: fd, run: run, tree: tree, live: live, from: fd.pos, ready: make(chan struct{}, 1), cut: make(chan struct{})}
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
		if !f.push(it) {
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
	f.notified()
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

// push queues an item for the follower; false if its queue is full.
func (f *follower) push(it store.FeedItem) bool {
	f.qmu.Lock()
	full := len(f.queue) >= followerBuffer
	if !full {
		f.queue = append(f.queue, it)
	}
	f.qmu.Unlock()
	if !full {
		select {
		case f.ready <- struct{}{}:
		default:
		}
		f.notified()
	}
	return !full
}

// pop takes the follower's next item, if it has one.
func (f *follower) pop() (store.FeedItem, bool) {
	f.qmu.Lock()
	defer f.qmu.Unlock()
	if len(f.queue) == 0 {
		return store.FeedItem{}, false
	}
	it := f.queue[0]
	f.queue[0] = store.FeedItem{}
	f.queue = f.queue[1:]
	if len(f.queue) == 0 {
		f.queue = nil // let the backing array go
	}
	return it, true
}

// next waits for the follower's next item. What was queued before a cut
// is still handed out; the cut comes after.
func (f *follower) next(ctx context.Context) (store.FeedItem, error) {
	for {
		if it, ok := f.pop(); ok {
			return it, nil
		}
		select {
		case <-f.ready:
		case <-f.cut:
			if it, ok := f.pop(); ok {
				return it, nil
			}
			return store.FeedItem{}, f.why
		case <-ctx.Done():
			return store.FeedItem{}, ctx.Err()
		}
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

// followers counts the followers registered now.
func (fd *feed) followers() int {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	n := 0
	for _, m := range []map[string]map[*follower]struct{}{fd.runs, fd.trees} {
		for _, fs := range m {
			n += len(fs)
		}
	}
	return n
}
