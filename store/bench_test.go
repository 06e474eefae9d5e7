package store_test

import (
	"context"
	"testing"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/store/storetest"
)

// BenchmarkJournalAppend measures one journal append with the expected-
// sequence check: the durability cost of every step.
func BenchmarkJournalAppend(b *testing.B) {
	s, _ := storetest.Open(b)
	w := s.JournalFrom("run_bench", nil)
	ctx := context.Background()
	data := journal.ToolFinished{CallID: "call_1_0", Name: "step", Content: `{"ok":true}`}
	for b.Loop() {
		if _, err := w.Append(ctx, journal.TypeToolFinished, data); err != nil {
			b.Fatal(err)
		}
	}
}
