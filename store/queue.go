package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The work queue holds at most one entry per entity: an entity with work
// waiting (a new input) is rung; the worker that takes the entry owns the
// entity until it acknowledges the entry, heartbeating meanwhile. A ring
// while the entry is waiting or held is refused by the server: whoever
// holds it reads the entity's inputs before letting go.

// Ring puts an entity on the work queue. hint travels with the entry (the
// kind of input that rang it). rang is false when the entity was already
// on the queue, waiting or held.
func (s *Store) Ring(ctx context.Context, id, hint string) (rang bool, err error) {
	for attempt, wait := 0, 50*time.Millisecond; ; attempt, wait = attempt+1, wait*2 {
		_, err = s.js.PublishMsg(ctx, &nats.Msg{Subject: queueSubject(id), Data: []byte(hint)})
		s.noteWrite(err)
		if err == nil {
			return true, nil
		}
		if alreadyQueued(err) {
			return false, nil
		}
		if attempt == 3 {
			return false, fmt.Errorf("queue %s: %w", id, err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// alreadyQueued reports the server refusing a second entry for one entity.
func alreadyQueued(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "maximum messages per subject")
}

// Claim is a work queue entry a worker took: the entity is this worker's
// until it acknowledges or hands back the entry, as long as it heartbeats.
type Claim struct {
	// Entity is the run or instance to work on.
	Entity string
	// Hint is the kind of input that rang it ("submit" for a new run).
	Hint string
	msg  jetstream.Msg
}

// Delivered reports how many times the entry came (1 the first time).
func (c *Claim) Delivered() uint64 {
	meta, err := c.msg.Metadata()
	if err != nil {
		return 1
	}
	return meta.NumDelivered
}

// Done acknowledges the entry, and waits for the server to have it: the
// entity needs no worker now, and a ring right after finds the queue free.
func (c *Claim) Done(ctx context.Context) error { return c.msg.DoubleAck(ctx) }

// Release hands the entry back at once, for another worker.
func (c *Claim) Release() { _ = c.msg.Nak() }

// Retry hands the entry back, to come again after delay.
func (c *Claim) Retry(delay time.Duration) { _ = c.msg.NakWithDelay(delay) }

// Drop removes the entry for good (it names nothing that exists).
func (c *Claim) Drop() { _ = c.msg.Term() }

// Heartbeat tells the server the entry is still being worked on; it must
// come well within AckWait.
func (c *Claim) Heartbeat() { _ = c.msg.InProgress() }

// Claims hands out work queue entries to this node's workers.
type Claims struct{ it jetstream.MessagesContext }

// TakeWork starts pulling entries, at most ahead of them before workers take them.
// Short pull expiries: a pull the server and client disagree about then
// stalls claims for a couple of seconds at most.
func (s *Store) TakeWork(ahead int) (*Claims, error) {
	it, err := s.queue.Messages(jetstream.PullMaxMessages(ahead), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		return nil, err
	}
	return &Claims{it: it}, nil
}

// Next waits for the next entry. ErrClosed follows Drain or Stop.
func (c *Claims) Next() (*Claim, error) {
	msg, err := c.it.Next()
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	return &Claim{Entity: strings.TrimPrefix(msg.Subject(), queuePrefix), Hint: string(msg.Data()), msg: msg}, nil
}

// Drain stops pulling; entries already pulled still come out of Next.
func (c *Claims) Drain() { c.it.Drain() }

// Stop stops at once.
func (c *Claims) Stop() { c.it.Stop() }

// ErrClosed ends an iterator that was stopped.
var ErrClosed = errors.New("store: closed")
