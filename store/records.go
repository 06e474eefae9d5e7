package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Records and instance snapshots are projections: their writers derive
// them from journals, and readers read them; nothing reads them to decide
// what a run does.

// Record returns a run's record.
func (s *Store) Record(ctx context.Context, id string) ([]byte, error) {
	e, err := s.runs.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", id, err)
	}
	return e.Value(), nil
}

// PutRecord writes a run's record.
func (s *Store) PutRecord(ctx context.Context, id string, data []byte) error {
	_, err := s.publish(ctx, &nats.Msg{Subject: "$KV." + RunsBucket + "." + id, Data: data})
	if err != nil {
		return fmt.Errorf("write record %s: %w", id, tooLarge(err))
	}
	return nil
}

// CreateRecord writes a run's first record, unless it has one: then it
// does nothing. It does not wait for the server's answer.
func (s *Store) CreateRecord(id string, data []byte) {
	_, _ = s.js.PublishAsync("$KV."+RunsBucket+"."+id, data, jetstream.WithExpectLastSequencePerSubject(0))
}

// EnsureRecord is CreateRecord waiting for the server: when it returns
// nil, the run has a record.
func (s *Store) EnsureRecord(ctx context.Context, id string, data []byte) error {
	msg := &nats.Msg{Subject: "$KV." + RunsBucket + "." + id, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	_, err := s.publish(ctx, msg)
	if err != nil && !wrongLastSequence(err) {
		return fmt.Errorf("write record %s: %w", id, tooLarge(err))
	}
	return nil
}

// RecordsOf returns the records of many runs in one request (a run with
// no record has none in the map): a page of a listing reads its records
// at once. Records are read from any replica, as Record reads them.
func (s *Store) RecordsOf(ctx context.Context, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 1024) // the most one request answers
		subjects := make([]string, n)
		for i, id := range ids[:n] {
			subjects[i] = "$KV." + RunsBucket + "." + id
		}
		msgs, _, err := s.batches.get(ctx, "KV_"+RunsBucket, directBatchRequest{MultiLast: subjects, Batch: n}, n)
		if err != nil {
			return nil, fmt.Errorf("read records: %w", err)
		}
		for _, m := range msgs {
			if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				continue
			}
			out[entityOf(m.Subject)] = m.Data
		}
		ids = ids[n:]
	}
	return out, nil
}

// RecordIDs lists the ids of every run that has a record.
func (s *Store) RecordIDs(ctx context.Context) ([]string, error) {
	lister, err := s.runs.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for k := range lister.Keys() {
		ids = append(ids, k)
	}
	return ids, nil
}

// Snapshot returns an instance's snapshot.
func (s *Store) Snapshot(ctx context.Context, id string) ([]byte, error) {
	e, err := s.insts.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read instance %s: %w", id, err)
	}
	return e.Value(), nil
}

// PutSnapshot writes an instance's snapshot.
func (s *Store) PutSnapshot(ctx context.Context, id string, data []byte) error {
	_, err := s.insts.Put(ctx, id, data)
	s.noteWrite(err)
	if err != nil {
		return fmt.Errorf("write instance %s: %w", id, tooLarge(err))
	}
	return nil
}
