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
	return fmt.Sprintf("%s: %d runs wait on the work queue, past server.max_backlog (%d): retry in %s, or add workers or nodes",
		ErrOverloaded, e.Waiting, e.Limit, e.RetryAfter)
}

// Unwrap makes the error an ErrOverloaded.
func (e *OverloadedError) Unwrap() error { return ErrOverloaded }

// admitEvery bounds how often a node reads the backlog for admission.
const admitEvery = 250 * time.Millisecond

// admission is what a node last read of the backlog.
type admission struct {
	mu   sync.Mutex
	read time.Time
	last Backlog
	// rate is how many entries per second workers took between the last
	// two reads (0 until known).
	rate float64
}

// admit refuses a new run past the backlog limit. A backlog it cannot
// read does not refuse: the submission's own write meets the store's
// trouble and says so.
func (e *Engine) admit(ctx context.Context) error {
	limit := e.opts.MaxBacklog
	if limit <= 0 {
		return nil
	}
	b, rate, err := e.admission.backlog(ctx, e)
	if err != nil || b.Waiting <= uint64(limit) {
		return nil
	}
	retry := time.Minute
	if rate > 0 {
		retry = time.Duration(float64(b.Waiting-uint64(limit)) / rate * float64(time.Second))
	}
	return &OverloadedError{Waiting: b.Waiting, Limit: limit, RetryAfter: min(max(retry, time.Second), time.Minute).Round(time.Second)}
}

// backlog returns the backlog as read at most admitEvery ago, and the
// rate at which workers take entries.
func (a *admission) backlog(ctx context.Context, e *Engine) (Backlog, float64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if now.Sub(a.read) < admitEvery {
		return a.last, a.rate, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := e.st.Backlog(ctx)
	if err != nil {
		return b, 0, err
	}
	if !a.read.IsZero() && b.Handed >= a.last.Handed {
		a.rate = float64(b.Handed-a.last.Handed) / now.Sub(a.read).Seconds()
	}
	a.read, a.last = now, b
	return b, a.rate, nil
}
