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
	return s.ring(ctx, &nats.Msg{Subject: queueSubject(id), Header: nats.Header{hdrKind: []string{hint}}})
}

// hdrEnqueued marks an entry Enqueue put on the queue with data (a ring
// has none).
const hdrEnqueued = "Myriad-Enqueued"

// Enqueue puts a new run on the work queue with its submission: the
// entry is the run's first input, so submitting is one write. rang is
// false when the run was on the queue already.
func (s *Store) Enqueue(ctx context.Context, id, kind string, submission []byte) (rang bool, err error) {
	return s.ring(ctx, &nats.Msg{Subject: queueSubject(id), Data: submission, Header: nats.Header{hdrKind: []string{kind}, hdrEnqueued: []string{"1"}}})
}

func (s *Store) ring(ctx context.Context, msg *nats.Msg) (rang bool, err error) {
	for attempt, wait := 0, 50*time.Millisecond; ; attempt, wait = attempt+1, wait*2 {
		_, err = s.publish(ctx, msg)
		if err == nil {
			return true, nil
		}
		if alreadyQueued(err) {
			return false, nil
		}
		if attempt == 3 || errors.Is(err, ErrUnavailable) {
			return false, fmt.Errorf("queue %s: %w", entityOf(msg.Subject), tooLarge(err))
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
	// Hint is the kind of input that rang it, or put it on the queue.
	Hint string
	// Data is what Enqueue put on the queue with the entity (a run's
	// submission).
	Data []byte
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

// Finish acknowledges the entry without waiting.
func (c *Claim) Finish() { _ = c.msg.Ack() }

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
	claim := &Claim{Entity: strings.TrimPrefix(msg.Subject(), queuePrefix), Hint: msg.Headers().Get(hdrKind), msg: msg}
	if msg.Headers().Get(hdrEnqueued) != "" {
		claim.Data = msg.Data()
	}
	return claim, nil
}

// Drain stops pulling; entries already pulled still come out of Next.
func (c *Claims) Drain() { c.it.Drain() }

// Stop stops at once.
func (c *Claims) Stop() { c.it.Stop() }

// ErrClosed ends an iterator that was stopped.
var ErrClosed = errors.New("store: closed")

// Queued returns the entry an entity has on the queue, waiting or held:
// its kind and what Enqueue put there (nil for a ring). ErrNotFound when
// it has none.
func (s *Store) Queued(ctx context.Context, id string) (kind string, data []byte, err error) {
	m, err := s.queueStream.GetLastMsgForSubject(ctx, queueSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", nil, ErrNotFound
	}
	if err != nil {
		return "", nil, fmt.Errorf("read the queue entry of %s: %w", id, err)
	}
	if m.Header.Get(hdrEnqueued) == "" {
		return m.Header.Get(hdrKind), nil, nil
	}
	return m.Header.Get(hdrKind), m.Data, nil
}

// QueuedEntries returns the entries on the queue put there with data
// (Enqueue), each with its entity.
func (s *Store) QueuedEntries(ctx context.Context, kind string) ([]InputMsg, error) {
	msgs, err := s.read(ctx, s.queueStream, QueueStream, queuePrefix+"*", 1, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("read the queue: %w", err)
	}
	var out []InputMsg
	for _, m := range msgs {
		if m.Header.Get(hdrKind) == kind && m.Header.Get(hdrEnqueued) != "" {
			out = append(out, InputMsg{Seq: m.Seq, To: entityOf(m.Subject), Kind: kind, Data: m.Data, Time: m.Time})
		}
	}
	return out, nil
}

// Backlog is the depth of the work queue.
type Backlog struct {
	// Waiting are the entries no worker has pulled yet, Taken those
	// pulled and not yet done.
	Waiting, Taken uint64
	// Oldest is when the oldest waiting entry was put on the queue (zero
	// when none waits): how far behind the workers are, for autoscalers.
	Oldest time.Time
	// Handed is the queue's position of the last entry handed to a
	// worker: how fast it moves is how fast workers take work.
	Handed uint64
}

// Backlog reads the depth of the work queue.
func (s *Store) Backlog(ctx context.Context) (Backlog, error) {
	info, err := s.queue.Info(ctx)
	if err != nil {
		return Backlog{}, fmt.Errorf("read the work queue: %w", err)
	}
	b := Backlog{Waiting: info.NumPending, Taken: uint64(info.NumAckPending), Handed: info.Delivered.Stream}
	if b.Waiting == 0 {
		return b, nil
	}
	// The first entry past the last one handed out waits longest (one
	// handed back to wait again is not counted: it was taken once).
	m, err := s.queueStream.GetMsg(ctx, info.Delivered.Stream+1, jetstream.WithGetMsgSubject(queuePrefix+">"))
	switch {
	case err == nil:
		b.Oldest = m.Time
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return b, fmt.Errorf("read the work queue's oldest entry: %w", err)
	}
	return b, nil
}
