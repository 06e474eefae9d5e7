package engine

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/myriad-ai/myriad/store"
)

// The router makes sure every stored input reaches a worker: it is handed
// each input once, by whichever node takes it (a durable consumer), and
// rings the input's entity on the work queue. If the entity's entry is
// already there — waiting for a worker, or held by one — the holder reads
// the input before it lets go, unless the input came just as it let go:
// so the router looks again a little later, and rings again until the
// entity's journal shows the input taken (or the entity has ended). A
// crash between storing an input and ringing, anywhere, leaves the input
// to the router: nothing accepted is left unread.

type router struct {
	e  *Engine
	d  *store.Deliveries
	mu sync.Mutex
	// waiting are deliveries whose ring found the entry there, by entity.
	waiting map[string]*held
	done    chan struct{}
	once    sync.Once
}

type held struct {
	ds    []*store.Delivery
	due   time.Time
	delay time.Duration
}

// Recheck delays: first soon (the holder usually took the input), then
// backing off, each look holding the deliveries well within
// store.RouteAckWait.
const (
	firstRecheck = 500 * time.Millisecond
	maxRecheck   = store.RouteAckWait * 2 / 5
)

func newRouter(e *Engine, d *store.Deliveries) *router {
	return &router{e: e, d: d, waiting: map[string]*held{}, done: make(chan struct{})}
}

func (r *router) stop() {
	r.once.Do(func() {
		close(r.done)
		r.d.Stop()
	})
}

func (r *router) run(ctx context.Context) {
	go r.recheck(ctx)
	for {
		d, err := r.d.Next()
		if err != nil {
			if errors.Is(err, store.ErrClosed) || ctx.Err() != nil {
				return
			}
			r.e.log.Warn("route inputs", "err", err)
			select {
			case <-r.done:
				return
			case <-time.After(100 * time.Millisecond): // not in a tight loop
			}
			continue
		}
		r.route(context.WithoutCancel(ctx), d)
	}
}

// route rings the entity of an input, and completes a submission whose
// submitter may have died between its writes.
func (r *router) route(ctx context.Context, d *store.Delivery) {
	var err error
	switch d.Kind {
	case kindSubmitTurn, kindClaim, kindDeleted:
		r.trace(d, "acknowledged: nothing to ring")
		d.Ack() // its instance starts it; a claim is only a claim
		return
	case store.KeyKind:
		var k keyedSubmission
		if json.Unmarshal(d.Data, &k) == nil && k.Submission != nil {
			err = r.e.complete(ctx, k)
		}
		if errors.Is(err, errInstanceMoved) && k.Key != "" {
			// Its submitter was refused (or died before sending): the
			// key may be used again.
			err = r.e.st.ReleaseKey(ctx, submitKey(k.Key), d.Data)
		}
		if errors.Is(err, ErrConflict) {
			err = nil // its run was deleted: nothing to complete
		}
		if err != nil {
			d.Retry(time.Second)
			return
		}
		d.Ack() // what it wrote is routed in turn
		return
	case kindTurn:
		// The run's own submission, in case its submitter died before
		// writing it.
		var t turnRequest
		if json.Unmarshal(d.Data, &t) == nil && t.Submission != nil {
			err = r.e.sendTurnSubmission(ctx, t.RunID, t.Submission)
			if err == nil {
				// Its record lets listings find it while it waits (its
				// submitter's write is not waited for).
				err = r.e.st.EnsureRecord(ctx, t.RunID, mustJSON(t.Submission.queued(t.RunID)))
			}
		}
		if err != nil {
			d.Retry(time.Second)
			return
		}
	}
	rang, err := r.e.st.Ring(ctx, d.To, d.Kind)
	switch {
	case err != nil:
		r.e.log.Warn("route input", "to", d.To, "err", err)
		d.Retry(time.Second)
	case rang:
		r.trace(d, "rang")
		d.Ack()
	default:
		r.trace(d, "held: the entity is on the queue")
		r.mu.Lock()
		h := r.waiting[d.To]
		if h == nil {
			h = &held{due: time.Now().Add(firstRecheck), delay: firstRecheck}
			r.waiting[d.To] = h
		}
		h.ds = append(h.ds, d)
		r.mu.Unlock()
	}
}

// recheck looks again at inputs whose entity was on the queue already.
func (r *router) recheck(ctx context.Context) {
	t := time.NewTicker(firstRecheck / 2)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		now := time.Now()
		r.mu.Lock()
		var due []string
		for id, h := range r.waiting {
			if !now.Before(h.due) {
				due = append(due, id)
			}
		}
		r.mu.Unlock()
		for _, id := range due {
			r.look(context.WithoutCancel(ctx), id)
		}
	}
}

// look acknowledges the waiting inputs of an entity that its journal shows
// taken, and rings it again for the others.
func (r *router) look(ctx context.Context, id string) {
	head, ok, err := r.e.st.LastJournal(ctx, id)
	if err != nil {
		return // try again next time
	}
	r.mu.Lock()
	h := r.waiting[id]
	var left []*store.Delivery
	for _, d := range h.ds {
		// Taken. (An input after the run's end is not: its worker, rung,
		// finds it moot, so every input meets the run's writer.)
		if ok && head.InputSeq >= d.Seq {
			r.trace(d, "acknowledged: taken", "taken_up_to", head.InputSeq)
			d.Ack()
			continue
		}
		left = append(left, d)
	}
	h.ds = left
	if len(left) == 0 {
		delete(r.waiting, id)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	rang, err := r.e.st.Ring(ctx, id, left[0].Kind)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && rang {
		for _, d := range h.ds {
			r.trace(d, "rang again")
			d.Ack()
		}
		delete(r.waiting, id)
		return
	}
	for _, d := range h.ds {
		r.trace(d, "held again", "err", err)
		d.Hold() // still ours
	}
	h.delay = min(2*h.delay, maxRecheck)
	h.due = time.Now().Add(h.delay)
}

// trace logs what the router did with an input, at debug level: the story
// of an input that no worker took.
func (r *router) trace(d *store.Delivery, what string, args ...any) {
	if r.e.log.Enabled(context.Background(), slog.LevelDebug) {
		r.e.log.Debug("route: "+what, append([]any{"to", d.To, "kind", d.Kind, "seq", d.Seq, "delivered", d.Delivered()}, args...)...)
	}
}
