package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Inputs. Everything that changes a run or an instance — its submission,
// a new turn, a cancel, a decision, an answer, a resolution, a child's
// report, a timer — is one input: a message stored on the entity's input
// subject, in order. The entity's single writer takes inputs in order and
// journals what each did (journal.Event.InputSeq says how far it got), so
// an input is applied exactly once, or refused, whatever crashes.

const hdrKind = "Myriad-Kind"

// Input is a message to a run or an instance.
type Input struct {
	// To is the entity (run or instance id).
	To string
	// Kind says what the input is ("submit", "cancel", ...).
	Kind string
	Data []byte
	// MsgID deduplicates the input: a second input with the same id within
	// two minutes is not stored again.
	MsgID string
	// After, when set, refuses the input with ErrExists unless the
	// entity's newest input is at this position (nothing came between
	// what the sender read and this input).
	After *uint64
	// TTL, when set, removes the input after this long.
	TTL time.Duration
}

// InputMsg is a stored input.
type InputMsg struct {
	Seq  uint64
	To   string
	Kind string
	Data []byte
	Time time.Time
}

func (in Input) msg() *nats.Msg {
	m := &nats.Msg{Subject: inputSubject(in.To), Data: in.Data, Header: nats.Header{hdrKind: []string{in.Kind}}}
	if in.MsgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, in.MsgID)
	}
	if in.After != nil {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(*in.After, 10))
	}
	if in.TTL > 0 {
		m.Header.Set(jetstream.MsgTTLHeader, in.TTL.String())
	}
	return m
}

// Send stores an input and tells the entity's worker, if one holds it, that
// it is there. It returns the input's position. A duplicate (same MsgID)
// returns the first one's position.
func (s *Store) Send(ctx context.Context, in Input) (uint64, error) {
	seq, err := s.publish(ctx, in.msg())
	if err != nil {
		if in.After != nil && wrongLastSequence(err) {
			return 0, ErrExists
		}
		return 0, fmt.Errorf("send %s to %s: %w", in.Kind, in.To, tooLarge(err))
	}
	s.poke(in.To)
	return seq, nil
}

func idemSubject(key string) string {
	sum := sha256.Sum256([]byte(key))
	return idemPrefix + hex.EncodeToString(sum[:])
}

// KeyKind is the kind of an idempotency key's claim that holds a
// submission, as the router sees it: the router completes it.
const KeyKind = "key"

// ClaimKey claims an idempotency key for data (what it names: a
// submission, with KeyKind), atomically: the first claim of a key wins,
// for a day. A later claim fails with ErrExists and returns what the first
// stored. The router is handed every claim, so a claimant that dies right
// after is completed by it.
func (s *Store) ClaimKey(ctx context.Context, key, kind string, data []byte) (prior []byte, err error) {
	m := &nats.Msg{Subject: idemSubject(key), Data: data, Header: nats.Header{hdrKind: []string{kind}}}
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	m.Header.Set(jetstream.MsgTTLHeader, IdempotencyTTL.String())
	_, err = s.publish(ctx, m)
	if errors.Is(err, ErrUnavailable) {
		return nil, err
	}
	if err == nil {
		return nil, nil
	}
	if !wrongLastSequence(err) {
		return nil, fmt.Errorf("claim an idempotency key: %w", tooLarge(err))
	}
	prev, err := s.inputs.GetLastMsgForSubject(ctx, idemSubject(key))
	if err != nil {
		return nil, fmt.Errorf("read an idempotency key: %w", err)
	}
	return prev.Data, ErrExists
}

// Key returns what a claimed idempotency key holds, or ErrNotFound.
func (s *Store) Key(ctx context.Context, key string) ([]byte, error) {
	m, err := s.inputs.GetLastMsgForSubject(ctx, idemSubject(key))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read an idempotency key: %w", err)
	}
	return m.Data, nil
}

// ReleaseKey forgets the claim of a key that holds data: what it named did
// not happen, and may be tried again. A later claim of the key (made after
// this one was released by someone else) is kept.
func (s *Store) ReleaseKey(ctx context.Context, key string, data []byte) error {
	m, err := s.inputs.GetLastMsgForSubject(ctx, idemSubject(key))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read an idempotency key: %w", err)
	}
	if !bytes.Equal(m.Data, data) {
		return nil // claimed again since
	}
	// Up to and including this claim: one made meanwhile stays.
	return s.inputs.Purge(ctx, jetstream.WithPurgeSubject(idemSubject(key)), jetstream.WithPurgeSequence(m.Sequence+1))
}

// ReadInputs returns an entity's inputs after position after, in order.
func (s *Store) ReadInputs(ctx context.Context, id string, after uint64) ([]InputMsg, error) {
	msgs, err := s.read(ctx, s.inputs, InputStream, inputSubject(id), after+1, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("read the inputs of %s: %w", id, err)
	}
	out := make([]InputMsg, len(msgs))
	for i, m := range msgs {
		out[i] = InputMsg{Seq: m.Seq, To: id, Kind: m.Header.Get(hdrKind), Data: m.Data, Time: m.Time}
	}
	return out, nil
}

// LastInputSeq is the position of an entity's newest input (0: none).
func (s *Store) LastInputSeq(ctx context.Context, id string) (uint64, error) {
	m, err := s.inputs.GetLastMsgForSubject(ctx, inputSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return m.Sequence, nil
}

// poke tells the worker holding an entity that an input was stored: core
// NATS, after the store acknowledged it, so the worker's read finds it.
// Best effort: a lost poke is made up for by the router.
func (s *Store) poke(id string) { _ = s.nc.Publish(pokeSubject(id), nil) }

// OnPokes calls fn with the entity of every input stored from now on,
// until stop: one subscription per node, for the writers it holds. fn runs
// on one goroutine, one call at a time, and must not block.
func (s *Store) OnPokes(fn func(id string)) (stop func(), err error) {
	sub, err := s.nc.Subscribe(pokePrefix+"*", func(m *nats.Msg) { fn(m.Subject[len(pokePrefix):]) })
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	return func() { _ = sub.Unsubscribe() }, nil
}

// Delivery is an input handed to the router, with the means to
// acknowledge it.
type Delivery struct {
	InputMsg
	msg jetstream.Msg
}

// Ack marks the delivery handled.
func (d *Delivery) Ack() { _ = d.msg.Ack() }

// Retry hands the delivery back, to come again after delay.
func (d *Delivery) Retry(delay time.Duration) { _ = d.msg.NakWithDelay(delay) }

// Hold tells the server the delivery is still being handled.
func (d *Delivery) Hold() { _ = d.msg.InProgress() }

// Deliveries hands every stored input to the router, once, whatever node
// takes it.
type Deliveries struct{ it jetstream.MessagesContext }

// RouteInputs starts delivering stored inputs to this node's router.
func (s *Store) RouteInputs() (*Deliveries, error) {
	it, err := s.router.Messages(jetstream.PullMaxMessages(256), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		return nil, err
	}
	return &Deliveries{it: it}, nil
}

// Next waits for the next delivery.
func (d *Deliveries) Next() (*Delivery, error) {
	msg, err := d.it.Next()
	if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, err
	}
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Nak()
		return nil, err
	}
	return &Delivery{InputMsg: InputMsg{Seq: meta.Sequence.Stream, To: entityOf(msg.Subject()), Kind: msg.Headers().Get(hdrKind),
		Data: msg.Data(), Time: meta.Timestamp}, msg: msg}, nil
}

// Stop stops the deliveries; those not acknowledged come again elsewhere.
func (d *Deliveries) Stop() { d.it.Stop() }

// Delivered reports how many times a delivery came (1 the first time).
func (d *Delivery) Delivered() uint64 {
	meta, err := d.msg.Metadata()
	if err != nil {
		return 1
	}
	return meta.NumDelivered
}
