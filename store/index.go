package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The runs index: one small entry per run, in the order the runs were
// created (IndexStream, a subject per run). Listing reads it back from
// the newest entry a window at a time, so a page of runs costs about its
// size, however many runs are stored. An entry is written once (the
// server refuses a second one for the same run): by the submitter without
// waiting for the answer, and again by the worker that starts the run, in
// case the first was lost. A read model may trail the writes by a moment,
// so the index is read from any replica (direct gets), unlike journals.

// IndexStream is the runs index.
const IndexStream = "MYRIAD_INDEX"

const indexPrefix = "myriad.index."

func indexSubject(id string) string { return indexPrefix + Tree(id) + "." + id }
func treeIndex(tree string) string  { return indexPrefix + tree + ".*" }

// IndexEntry is a run's entry in the index.
type IndexEntry struct {
	// Seq is the entry's position: later runs have higher ones.
	Seq  uint64
	ID   string
	Data []byte
}

// AddToIndex writes a run's entry unless it has one. It does not wait for
// the server's answer.
func (s *Store) AddToIndex(id string, data []byte) {
	_, _ = s.js.PublishAsync(indexSubject(id), data, jetstream.WithExpectLastSequencePerSubject(0))
}

// EnsureIndexed writes a run's entry unless it has one, and waits.
func (s *Store) EnsureIndexed(ctx context.Context, id string, data []byte) error {
	msg := &nats.Msg{Subject: indexSubject(id), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	if _, err := s.publish(ctx, msg); err != nil && !wrongLastSequence(err) {
		return fmt.Errorf("index run %s: %w", id, tooLarge(err))
	}
	return nil
}

// IndexBefore returns the entries at positions before before (0: from the
// newest), newest first: the entries of one window of at most n positions
// (fewer when runs were deleted), and the position to read on from; more
// is false once the window reached the oldest entry.
func (s *Store) IndexBefore(ctx context.Context, before uint64, n int) (entries []IndexEntry, next uint64, more bool, err error) {
	info, err := s.index.Info(ctx)
	if err != nil {
		return nil, 0, false, fmt.Errorf("read the runs index: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if before == 0 || before > last+1 {
		before = last + 1
	}
	if info.State.Msgs == 0 || before <= first {
		return nil, 0, false, nil
	}
	from := first
	if before-first > uint64(n) {
		from = before - uint64(n)
	}
	// No subject filter: the stream holds the index alone, and a filter
	// that matches every subject costs the server a count over them all.
	msgs, err := s.batches.readAll(ctx, IndexStream, "", from, before-1, 0)
	if err != nil {
		return nil, 0, false, fmt.Errorf("read the runs index: %w", err)
	}
	for _, m := range slices.Backward(msgs) {
		entries = append(entries, IndexEntry{Seq: m.Seq, ID: entityOf(m.Subject), Data: m.Data})
	}
	return entries, from, from > first, nil
}

// IndexPosition returns the position of a run's entry; ErrNotFound when it
// has none.
func (s *Store) IndexPosition(ctx context.Context, id string) (uint64, error) {
	m, err := s.index.GetLastMsgForSubject(ctx, indexSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("read the runs index: %w", err)
	}
	return m.Sequence, nil
}

// IndexAfter returns the position of the first entry written at or after
// t (0 when none was).
func (s *Store) IndexAfter(ctx context.Context, t time.Time) (uint64, error) {
	m, err := s.batches.readFrom(ctx, IndexStream, "", t)
	if err != nil || m == nil {
		return 0, err
	}
	return m.Seq, nil
}

// TreeIndex returns the ids of the runs of a tree that the index holds.
func (s *Store) TreeIndex(ctx context.Context, tree string) ([]string, error) {
	msgs, err := s.batches.readAll(ctx, IndexStream, treeIndex(tree), 1, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("read the runs index: %w", err)
	}
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, entityOf(m.Subject))
	}
	return ids, nil
}

// IndexSize reports how many runs the index holds.
func (s *Store) IndexSize(ctx context.Context) (uint64, error) {
	info, err := s.index.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the runs index: %w", err)
	}
	return info.State.Msgs, nil
}

// indexConfig is the runs index's stream.
func (s *Store) indexConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        IndexStream,
		Description: "Myriad's runs index: an entry per run, in the order they were created",
		Subjects:    []string{indexPrefix + ">"},
		Storage:     s.storage(),
		Replicas:    s.replicas(),
		AllowDirect: true,
		// One entry per run.
		MaxMsgsPerSubject: 1,
	}
}

// DeleteTree deletes a run tree: the index entries first (listings stop
// showing it), then each run's record, then the tree's journals and
// inputs. ids are the tree's runs. Each step may repeat: a delete cut
// short is finished by deleting again.
func (s *Store) DeleteTree(ctx context.Context, tree string, ids []string) error {
	if err := s.index.Purge(ctx, jetstream.WithPurgeSubject(treeIndex(tree))); err != nil {
		return fmt.Errorf("delete the index entries of %s: %w", tree, err)
	}
	// Purged from the bucket's stream, not deleted through the bucket: a
	// deleted key keeps a marker.
	records, err := s.js.Stream(ctx, "KV_"+RunsBucket)
	if err != nil {
		return fmt.Errorf("delete the records of %s: %w", tree, err)
	}
	for _, id := range ids {
		if err := records.Purge(ctx, jetstream.WithPurgeSubject("$KV."+RunsBucket+"."+id)); err != nil {
			return fmt.Errorf("delete the record of %s: %w", id, err)
		}
		if err := s.DropTimers(ctx, id); err != nil {
			return fmt.Errorf("delete the timers of %s: %w", id, err)
		}
	}
	if err := s.journal.Purge(ctx, jetstream.WithPurgeSubject(treeJournals(tree))); err != nil {
		return fmt.Errorf("delete the journals of %s: %w", tree, err)
	}
	if err := s.inputs.Purge(ctx, jetstream.WithPurgeSubject(inputPrefix+tree+".*")); err != nil {
		return fmt.Errorf("delete the inputs of %s: %w", tree, err)
	}
	return nil
}

// Usage is what the store holds, in messages and bytes, by stream.
type Usage struct {
	Streams []StreamUsage `json:"streams"`
	// Runs counts the runs the index holds.
	Runs uint64 `json:"runs"`
	// Bytes sums the streams' bytes (one copy: a cluster keeps Replicas).
	Bytes    uint64 `json:"bytes"`
	Replicas int    `json:"replicas"`
}

// StreamUsage is one stream's share.
type StreamUsage struct {
	Name     string `json:"name"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
}

// Usage reads what every stream and bucket holds.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	u := Usage{Replicas: s.replicas()}
	for name := range s.js.StreamNames(ctx).Name() {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			return u, fmt.Errorf("read stream %s: %w", name, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return u, fmt.Errorf("read stream %s: %w", name, err)
		}
		u.Streams = append(u.Streams, StreamUsage{Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes})
		u.Bytes += info.State.Bytes
		if name == IndexStream {
			u.Runs = info.State.Msgs
		}
	}
	slices.SortFunc(u.Streams, func(a, b StreamUsage) int { return strings.Compare(a.Name, b.Name) })
	return u, nil
}

// IndexAfterPosition returns up to n entries after position after, oldest
// first.
func (s *Store) IndexAfterPosition(ctx context.Context, after uint64, n int) ([]IndexEntry, error) {
	msgs, err := s.batches.readAll(ctx, IndexStream, "", after+1, 0, n)
	if err != nil {
		return nil, fmt.Errorf("read the runs index: %w", err)
	}
	entries := make([]IndexEntry, 0, len(msgs))
	for _, m := range msgs {
		entries = append(entries, IndexEntry{Seq: m.Seq, ID: entityOf(m.Subject), Data: m.Data})
	}
	return entries, nil
}
