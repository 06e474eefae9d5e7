package store

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Atomic batch publish (NATS 2.12) against single appends, for the four
// entries of a model response and its three tool starts: measured to
// decide whether a step's entries go in one batch (docs/benchmarks.md).
// Both write to a file stream of the embedded server, with the
// expected-sequence check on the first message.

func benchStream(b *testing.B, atomic bool) *Store {
	b.Helper()
	s, err := Open(context.Background(), Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	if _, err := s.js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"},
		Storage: jetstream.FileStorage, AllowAtomicPublish: atomic}); err != nil {
		b.Fatal(err)
	}
	return s
}

const stepEntries = 4

func BenchmarkStepSingleAppends(b *testing.B) {
	s := benchStream(b, false)
	ctx := context.Background()
	data := make([]byte, 300)
	var last uint64
	for b.Loop() {
		for range stepEntries {
			m := &nats.Msg{Subject: "bench.run", Data: data, Header: nats.Header{}}
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
			seq, err := s.publish(ctx, m)
			if err != nil {
				b.Fatal(err)
			}
			last = seq
		}
	}
}

func BenchmarkStepAtomicBatch(b *testing.B) {
	s := benchStream(b, true)
	ctx := context.Background()
	data := make([]byte, 300)
	var last uint64
	n := 0
	for b.Loop() {
		n++
		id := "b" + strconv.Itoa(n)
		for i := 1; i <= stepEntries; i++ {
			m := &nats.Msg{Subject: "bench.run", Data: data, Header: nats.Header{}}
			m.Header.Set("Nats-Batch-Id", id)
			m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i))
			if i == 1 {
				m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
			}
			if i < stepEntries {
				if err := s.nc.PublishMsg(m); err != nil {
					b.Fatal(err)
				}
				continue
			}
			m.Header.Set("Nats-Batch-Commit", "1")
			seq, err := s.publish(ctx, m)
			if err != nil {
				b.Fatal(err)
			}
			last = seq
		}
	}
}
