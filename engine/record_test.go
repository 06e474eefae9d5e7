package engine

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
	"github.com/myriad-ai/myriad/store/storetest"
)

// A run's ended record is written by its settle alone, last: a worker
// that finds it skips the settle (settledBefore). The lazy "running"
// write, firing while a settle waits on a store electing a leader, once
// wrote the ended record early, and the retried settle never told the
// run's instance that its turn had ended.
func TestOnlyTheSettleWritesAnEndedRecord(t *testing.T) {
	st, _ := storetest.Open(t)
	e, err := New(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	x := &execution{e: e, id: NewRunID()}
	status := func() run.Status {
		t.Helper()
		data, err := st.Record(ctx, x.id)
		if errors.Is(err, store.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		var rec run.Record
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		return rec.Status
	}
	for _, step := range []struct {
		status run.Status
		final  bool
		want   run.Status
	}{
		{run.StatusRunning, false, run.StatusRunning},
		{run.StatusCompleted, false, run.StatusRunning}, // the lazy write, after the end
		{run.StatusCompleted, true, run.StatusCompleted},
		{run.StatusRunning, false, run.StatusCompleted}, // nothing earlier overwrites the settle's
	} {
		if err := x.writeRecord(ctx, &run.Record{ID: x.id, Status: step.status, Steps: 3}, step.final); err != nil {
			t.Fatal(err)
		}
		if got := status(); got != step.want {
			t.Fatalf("after writing %s (final %v) the record says %q, want %s", step.status, step.final, got, step.want)
		}
	}
}
