package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Admission. Past server.max_backlog runs waiting on the work queue, a
// node refuses new submissions with ErrOverloaded: a refusal the client
// retries later costs nothing, where a queue that grows without bound
// ends with the store's disk full and every run late. Only new runs are
// refused: a retry with an idempotency key that made a run gets that run,
// and a run's own work (children, inputs, commands, schedules) goes on.
//
// The depth is the cluster's, read from the work queue's consumer, so
// every node refuses alike. Reading it is one request to the store: a
// node reads it at most every admitEvery and shares the answer among the
// submissions meanwhile.

// ErrOverloaded refuses a submission while the work queue holds more
// runs than server.max_backlog; OverloadedError says when to retry.
var ErrOverloaded = errors.New("overloaded")

// OverloadedError is a submission refused past the backlog limit.
type OverloadedError struct {
	Waiting uint64
	Limit   int
	// RetryAfter is when the backlog should be back under the limit at
	// the rate workers have been taking runs (a hint, 1 s to 1 min).
	RetryAfter time.Duration
}

func (e *OverloadedError) Error() string {
	return fmt.Sprintf("%s: %d runs wait on the work queue, as many as server.max_backlog (%d) allows: retry in %s, or add workers or nodes",
		ErrOverloaded, e.Waiting, e.Limit, e.RetryAfter)
}

// Unwrap makes the error an ErrOverloaded.
func (e *OverloadedError) Unwrap() error { return ErrOverloaded }

// admitEvery bounds how often a node reads the backlog for admission;
// admitRecheck how often it reads it again while at the limit by its own
// count.
const (
	admitEvery   = 250 * time.Millisecond
	admitRecheck = 20 * time.Millisecond
)

// admission is what a node last read of the backlog, and the runs it
// admitted since.
type admission struct {
	mu   sync.Mutex
	read time.Time
	last Backlog
	// admitted counts the runs this node let in since the reading: a
	// burst within admitEvery counts against the limit too.
	admitted uint64
	// rate is how many entries per second workers took, measured over
	// rateEvery at least (0 until known); from and handed are where the
	// current measurement began.
	rate   float64
	from   time.Time
	handed uint64
}

// rateEvery is the least span the take rate is measured over: shorter
// spans see a run or none, and Retry-After would swing.
const rateEvery = 5 * time.Second

// admit refuses a new run past the backlog limit. A backlog it cannot
// read does not refuse: the submission's own write meets the store's
// trouble and says so.
func (e *Engine) admit(ctx context.Context) error {
	limit := e.opts.MaxBacklog
	if limit <= 0 {
		return nil
	}
	a := &e.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.refresh(ctx, e, admitEvery); err != nil {
		return nil
	}
	waiting := a.last.Waiting + a.admitted
	if waiting >= uint64(limit) {
		// At the limit by this node's count: the workers may have taken
		// the runs it let in since. Read again (not more often than
		// admitRecheck), so that a burst is refused only when runs wait.
		if err := a.refresh(ctx, e, admitRecheck); err != nil {
			return nil
		}
		waiting = a.last.Waiting + a.admitted
	}
	if waiting < uint64(limit) {
		a.admitted++
		return nil
	}
	retry := time.Minute
	if a.rate > 0 {
		retry = time.Duration(float64(waiting-uint64(limit)+1) / a.rate * float64(time.Second))
	}
	return &OverloadedError{Waiting: waiting, Limit: limit, RetryAfter: min(max(retry, time.Second), time.Minute).Round(time.Second)}
}

// refresh reads the backlog if the reading is older than maxAge.
func (a *admission) refresh(ctx context.Context, e *Engine, maxAge time.Duration) error {
	now := time.Now()
	if now.Sub(a.read) < maxAge {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := e.st.Backlog(ctx)
	if err != nil {
		return err
	}
	switch {
	case a.from.IsZero() || b.Handed < a.handed:
		a.from, a.handed = now, b.Handed
	case now.Sub(a.from) >= rateEvery:
		a.rate = float64(b.Handed-a.handed) / now.Sub(a.from).Seconds()
		a.from, a.handed = now, b.Handed
	}
	a.read, a.last, a.admitted = now, b, 0
	return nil
}
