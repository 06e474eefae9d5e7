package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// WriteTimeout bounds each write: what was not answered by then is taken
// as failed (and may have been stored: the next write's expected sequence
// tells).
const WriteTimeout = 5 * time.Second

// writeAttempt bounds one attempt of a write that may be sent again (see
// publish): long enough for a loaded leader, short against WriteTimeout.
const writeAttempt = 1500 * time.Millisecond

// publish stores a message in its stream and returns its sequence: a
// plain request with the headers set by the caller, and the server's
// answer read with a small struct. (The jetstream client's PublishMsg
// costs half as much again per message in this process, on every step of
// every run.)
//
// On a cluster, every write carries a message id and is sent again when
// its attempt goes unanswered or finds the stream without a leader (see
// attempts): the stream stores a message id once, so a second attempt of
// a write that was stored is answered with the first one's position.
// Without it, a write lost with its leader fails after WriteTimeout, and
// its run stops and is resumed from its journal.
func (s *Store) publish(ctx context.Context, msg *nats.Msg) (uint64, error) {
	if err := s.refuseWrite(); err != nil {
		return 0, err
	}
	// Every write has its own bound, whatever its caller's: a request
	// lost with the stream leader that took it (a node of a cluster
	// killed) is never answered, and a run's context may last minutes.
	ctx, cancel := context.WithTimeout(ctx, WriteTimeout)
	defer cancel()
	if s.replicas() == 1 {
		return s.publishOnce(ctx, msg)
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	if msg.Header.Get(jetstream.MsgIDHeader) == "" {
		// Fresh for each write (a caller that sends the same message
		// again means the same write), so that another writer's message
		// is never taken for this one.
		msg.Header.Set(jetstream.MsgIDHeader, nuid.Next())
	}
	var seq uint64
	err := attempts(ctx, func(ctx context.Context) (err error) {
		seq, err = s.publishOnce(ctx, msg)
		return err
	})
	return seq, err
}

// attempts runs op until it works, fails in a way another attempt cannot
// mend, or ctx ends; each attempt has writeAttempt. On a cluster, a stream
// leader that steps down or dies drops the requests it had not answered,
// and a stream without a leader answers 503 until it elects one (a moment
// after a stepdown, seconds after a death).
func attempts(ctx context.Context, op func(context.Context) error) error {
	for {
		attempt, cancel := context.WithTimeout(ctx, writeAttempt)
		err := op(attempt)
		cancel()
		if err == nil || !sendAgain(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(100 * time.Millisecond): // an election takes a moment
		case <-ctx.Done():
			return err
		}
	}
}

// sendAgain reports a write failure that a second attempt with the same
// message id may mend.
func sendAgain(err error) bool {
	return Temporary(err) || apiError(err, codeDuplicateInProcess)
}

// codeDuplicateInProcess is the server's answer to a message id whose
// first write it has not finished storing (JSStreamDuplicateMessageConflict).
const codeDuplicateInProcess jetstream.ErrorCode = 10158

// publishOnce sends a write once.
func (s *Store) publishOnce(ctx context.Context, msg *nats.Msg) (uint64, error) {
	resp, err := s.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		if err == nats.ErrNoResponders {
			err = fmt.Errorf("%w: no stream takes %s", jetstream.ErrNoStreamResponse, msg.Subject)
		}
		s.noteWrite(err)
		if full := s.refuseWrite(); full != nil {
			return 0, full // the write timed out because the disk is full
		}
		return 0, err
	}
	var ack struct {
		Error    *jetstream.APIError `json:"error"`
		Sequence uint64              `json:"seq"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("store: unreadable answer to a write on %s: %w", msg.Subject, err)
	}
	if ack.Error != nil {
		s.noteWrite(ack.Error)
		return 0, ack.Error
	}
	s.noteWrite(nil)
	return ack.Sequence, nil
}
