package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/store"
)

// Start begins executing runs on this node: workers on the work queue, the
// router that rings entities with new inputs, and the hand of the timers.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.installSchedules(ctx); err != nil {
		return err
	}
	if err := e.backfillIndex(ctx); err != nil {
		return fmt.Errorf("index the runs stored before this version: %w", err)
	}
	workCtx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	e.stopWork = stop
	e.workDone = make(chan struct{})
	// Pull a little ahead of the free workers: every entry pulled is
	// heartbeated from the moment it arrives, so none is redelivered while
	// it waits here for a worker.
	claims, err := e.st.TakeWork(min(e.opts.Workers, 256))
	if err != nil {
		return err
	}
	deliveries, err := e.st.RouteInputs()
	if err != nil {
		claims.Stop()
		return err
	}
	fires, err := e.st.TakeFires()
	if err != nil {
		claims.Stop()
		deliveries.Stop()
		return err
	}
	stopPokes, err := e.st.OnPokes(e.onPoke)
	if err != nil {
		claims.Stop()
		deliveries.Stop()
		fires.Stop()
		return err
	}
	r := newRouter(e, deliveries)
	go r.run(workCtx)
	context.AfterFunc(workCtx, fires.Stop)
	go e.watchFires(workCtx, fires)
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	go e.heartbeat(hbCtx)
	go func() {
		defer close(e.workDone)
		defer stopHeartbeat()
		defer r.stop()
		defer stopPokes()
		e.serve(workCtx, claims)
	}()
	return nil
}

// serve hands claims to workers until the engine stops, then drains.
func (e *Engine) serve(workCtx context.Context, claims *store.Claims) {
	slots := make(chan struct{}, e.opts.Workers)
	// On stop, drain: no new pulls, and what is already buffered comes out
	// of Next to be handed back below rather than waiting out AckWait.
	context.AfterFunc(workCtx, claims.Drain)
	var inflight sync.WaitGroup
	for {
		c, err := claims.Next()
		if err != nil {
			if workCtx.Err() != nil || errors.Is(err, store.ErrClosed) {
				break
			}
			e.log.Warn("work queue", "err", err)
			continue
		}
		if workCtx.Err() != nil {
			c.Release()
			continue
		}
		e.hold(c)
		select {
		case slots <- struct{}{}:
		case <-workCtx.Done():
			e.release(c)
			c.Release()
			continue
		}
		inflight.Go(func() {
			defer func() { <-slots }()
			defer e.release(c)
			defer func() {
				// A panicking tool or provider must not take the node down;
				// the entity is offered again later.
				if p := recover(); p != nil {
					e.log.Error("run panicked", "run_id", c.Entity, "panic", p, "stack", string(debug.Stack()))
					c.Retry(10 * store.AckWait)
				}
			}()
			if isInstance(c.Entity) {
				e.workInstance(workCtx, c)
				return
			}
			e.workRun(workCtx, c)
		})
	}
	// Drain: let runs in flight reach their end or a step boundary, then
	// cut the rest; their journals let another worker resume them. The
	// heartbeat goes on until then, so nobody takes them over early.
	drained := make(chan struct{})
	go func() { inflight.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(e.opts.DrainTimeout):
		e.mu.Lock()
		for _, x := range e.active {
			x.interrupt(agent.ErrShutdown)
		}
		e.mu.Unlock()
		select {
		case <-drained:
		case <-time.After(e.opts.DrainTimeout):
			// A tool that ignores its context: give up on it. Its run is
			// resumed elsewhere once this process is gone.
			e.log.Warn("stopping with runs still in flight")
		}
	}
}

// Stop stops claiming runs, lets running steps finish (up to the drain
// timeout) and hands unfinished runs back to the queue for the next worker.
func (e *Engine) Stop() {
	if e.stopWork != nil {
		e.stopWork(agent.ErrShutdown)
		<-e.workDone
	}
	e.feed.close()
}

func (e *Engine) hold(c *store.Claim) {
	e.mu.Lock()
	e.held[c] = struct{}{}
	e.mu.Unlock()
}

func (e *Engine) release(c *store.Claim) {
	e.mu.Lock()
	delete(e.held, c)
	e.mu.Unlock()
}

// heartbeat tells JetStream that every entry this node holds is still
// being worked on, well within store.AckWait.
func (e *Engine) heartbeat(ctx context.Context) {
	t := time.NewTicker(store.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		claims := make([]*store.Claim, 0, len(e.held))
		for c := range e.held {
			claims = append(claims, c)
		}
		e.mu.Unlock()
		for _, c := range claims {
			c.Heartbeat()
		}
	}
}

// holder is this node's work on one entity: a shutdown interrupts it, and
// a poke tells it an input came.
type holder interface {
	interrupt(cause error)
	onPoke()
}

// onPoke hands a poke to the work on its entity on this node, if any.
func (e *Engine) onPoke(id string) {
	e.mu.Lock()
	h := e.active[id]
	e.mu.Unlock()
	if h != nil {
		h.onPoke()
	}
}

// activate registers this node's work on an entity; false when other work
// on it is active (a redelivery racing it: the active work answers for the
// entry).
func (e *Engine) activate(id string, h holder) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, busy := e.active[id]; busy {
		return false
	}
	e.active[id] = h
	return true
}

func (e *Engine) deactivate(id string, h holder) {
	e.mu.Lock()
	if e.active[id] == h {
		delete(e.active, id)
	}
	e.mu.Unlock()
}
