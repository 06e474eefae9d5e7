package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publish stores a message in its stream and returns its sequence: a
// plain request with the headers set by the caller, and the server's
// answer read with a small struct. (The jetstream client's PublishMsg
// costs half as much again per message in this process, on every step of
// every run.)
// WriteTimeout bounds each write: what was not answered by then is taken
// as failed (and may have been stored: the next write's expected sequence
// tells).
const WriteTimeout = 5 * time.Second

func (s *Store) publish(ctx context.Context, msg *nats.Msg) (uint64, error) {
	if err := s.refuseWrite(); err != nil {
		return 0, err
	}
	// Every write has its own bound, whatever its caller's: a request
	// lost with the stream leader that took it (a node of a cluster
	// killed) is never answered, and a run's context may last minutes.
	ctx, cancel := context.WithTimeout(ctx, WriteTimeout)
	defer cancel()
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
