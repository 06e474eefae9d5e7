package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Batched direct gets (JetStream's DIRECT.GET with "batch"): up to a batch
// of a stream's messages on a subject filter in one request, without a
// consumer. Journal loads, history for followers and input reads use them,
// so reading costs no consumer on the server, however many readers there
// are.

// batchMux routes the many replies of batched direct gets to their
// requests over one wildcard subscription.
type batchMux struct {
	nc     *nats.Conn
	prefix string
	sub    *nats.Subscription
	mu     sync.Mutex
	reqs   map[string]chan *nats.Msg
}

func newBatchMux(nc *nats.Conn) (*batchMux, error) {
	m := &batchMux{nc: nc, prefix: "_INBOX.myriad." + nuid.Next() + ".", reqs: map[string]chan *nats.Msg{}}
	sub, err := nc.Subscribe(m.prefix+"*", func(msg *nats.Msg) {
		token := msg.Subject[len(m.prefix):]
		m.mu.Lock()
		ch := m.reqs[token]
		m.mu.Unlock()
		if ch != nil {
			ch <- msg
		}
	})
	if err != nil {
		return nil, err
	}
	// A batch of 256 large messages must not be cut as a slow consumer.
	_ = sub.SetPendingLimits(-1, -1)
	m.sub = sub
	return m, nil
}

func (m *batchMux) close() {
	if m.sub != nil {
		_ = m.sub.Unsubscribe()
	}
}

// storedMsg is one message a batched get returned.
type storedMsg struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
	Time    time.Time
}

type directBatchRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
	MultiLast []string   `json:"multi_last,omitempty"`
}

// readBatch returns the messages of stream on filter from sequence from
// on, at most limit of them, and whether more remain.
func (m *batchMux) readBatch(ctx context.Context, stream, filter string, from uint64, limit int) (msgs []storedMsg, more bool, err error) {
	return m.get(ctx, stream, directBatchRequest{Seq: max(from, 1), NextFor: filter, Batch: limit}, limit)
}

// readFrom returns the first message on filter stored at or after t (nil
// when none was).
func (m *batchMux) readFrom(ctx context.Context, stream, filter string, t time.Time) (*storedMsg, error) {
	msgs, _, err := m.get(ctx, stream, directBatchRequest{StartTime: &t, NextFor: filter, Batch: 1}, 1)
	if err != nil || len(msgs) == 0 {
		return nil, err
	}
	return &msgs[0], nil
}

// get sends one batched direct get and gathers its answers.
func (m *batchMux) get(ctx context.Context, stream string, r directBatchRequest, limit int) (msgs []storedMsg, more bool, err error) {
	filter := r.NextFor
	token := nuid.Next()
	ch := make(chan *nats.Msg, limit+1)
	m.mu.Lock()
	m.reqs[token] = ch
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.reqs, token)
		m.mu.Unlock()
	}()
	req, _ := json.Marshal(r)
	if err := m.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, m.prefix+token, req); err != nil {
		return nil, false, err
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-timeout.C:
			return nil, false, fmt.Errorf("read %s %s: no answer from the NATS server within 10s", stream, filter)
		case msg := <-ch:
			switch status := msg.Header.Get("Status"); status {
			case "":
			case "404":
				return msgs, false, nil // nothing (more) on the filter
			case "204":
				// End of batch: more remain if the server counted any.
				pending, _ := strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
				return msgs, pending > 0 && len(msgs) > 0, nil
			default:
				return nil, false, fmt.Errorf("read %s %s: %s %s", stream, filter, status, msg.Header.Get("Description"))
			}
			seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
			if err != nil {
				return nil, false, fmt.Errorf("read %s %s: a reply without a sequence", stream, filter)
			}
			ts, _ := time.Parse(time.RFC3339Nano, msg.Header.Get("Nats-Time-Stamp"))
			msgs = append(msgs, storedMsg{Seq: seq, Subject: msg.Header.Get("Nats-Subject"), Header: msg.Header, Data: msg.Data, Time: ts})
			timeout.Reset(10 * time.Second)
		}
	}
}

// readAll reads every message on filter from sequence from on (to upTo
// when not 0), up to limit messages (0: no limit).
func (m *batchMux) readAll(ctx context.Context, stream, filter string, from, upTo uint64, limit int) ([]storedMsg, error) {
	var out []storedMsg
	for {
		n := 256
		if limit > 0 && limit-len(out) < n {
			n = limit - len(out)
		}
		msgs, more, err := m.readBatch(ctx, stream, filter, from, n)
		if err != nil {
			return nil, err
		}
		// The server does not bound a batch by sequence: cut here.
		if upTo > 0 {
			for i, msg := range msgs {
				if msg.Seq > upTo {
					msgs, more = msgs[:i], false
					break
				}
			}
		}
		out = append(out, msgs...)
		if !more || len(msgs) == 0 || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		from = msgs[len(msgs)-1].Seq + 1
	}
}

// headerUint reads a numeric header (0 when absent).
func headerUint(h nats.Header, key string) uint64 {
	if h == nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(h.Get(key)), 10, 64)
	return n
}

// read reads the messages of stream on filter from sequence from on (to
// upTo when not 0), up to limit messages (0: no limit). A replicated
// stream takes no direct gets (a replica may lag, and a writer must see
// every input): there, each message is read from the stream's leader.
func (s *Store) read(ctx context.Context, stream jetstream.Stream, name, filter string, from, upTo uint64, limit int) ([]storedMsg, error) {
	if s.replicas() == 1 {
		return s.batches.readAll(ctx, name, filter, from, upTo, limit)
	}
	var out []storedMsg
	for seq := max(from, 1); limit == 0 || len(out) < limit; {
		// Each read has its own bound, as each write has (WriteTimeout),
		// and is asked again while the stream elects a leader.
		rctx, cancel := context.WithTimeout(ctx, WriteTimeout)
		var m *jetstream.RawStreamMsg
		err := attempts(rctx, func(ctx context.Context) (err error) {
			m, err = stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
			return err
		})
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s %s: %w", name, filter, err)
		}
		if upTo > 0 && m.Sequence > upTo {
			break
		}
		out = append(out, storedMsg{Seq: m.Sequence, Subject: m.Subject, Header: m.Header, Data: m.Data, Time: m.Time})
		seq = m.Sequence + 1
	}
	return out, nil
}
