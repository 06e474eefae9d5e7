package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
)

// Listing reads the runs index: pages newest first, cursors that go on
// where the last page ended, filters on what never changes and on status,
// and a bound on how many runs one request looks at.
func TestListPagesThroughTheIndex(t *testing.T) {
	b, _ := storetest.Open(t)
	m := scriptedModel(t, `- reply: {text: done}`)
	rt := newRuntime(t, b, map[string]*agent.Agent{"a": {Model: m}, "b": {Model: m}})
	ctx := context.Background()
	var ids []string // oldest first
	submit := func(i int) {
		name := "a"
		if i%3 == 0 {
			name = "b"
		}
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: name, Input: fmt.Sprint(i), Metadata: map[string]string{"n": fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	for i := range 20 {
		submit(i)
	}
	start(t, rt)
	for _, id := range ids {
		wait(t, rt, id)
	}
	rt.Stop()
	for i := 20; i < 30; i++ {
		submit(i) // queued: no workers now
	}

	// Every run, newest first, in pages of 7.
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, next, err := rt.List(ctx, run.Filter{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range page {
			got = append(got, rec.ID)
		}
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("the pages never end")
		}
		cursor = next
	}
	if len(got) != len(ids) {
		t.Fatalf("listed %d runs, want %d: %v\n%v", len(got), len(ids), got, ids)
	}
	for i, id := range got {
		if want := ids[len(ids)-1-i]; id != want {
			t.Fatalf("run %d listed is %s, want %s (newest first)", i, id, want)
		}
	}

	for _, tc := range []struct {
		name string
		f    run.Filter
		want int
	}{
		{"agent", run.Filter{Agent: "b", Limit: 100}, 10},
		{"agent, exactly a page", run.Filter{Agent: "b", Limit: 10}, 10},
		{"metadata", run.Filter{Metadata: map[string]string{"n": "4"}, Limit: 100}, 1},
		{"queued", run.Filter{Status: run.StatusQueued, Limit: 100}, 10},
		{"completed", run.Filter{Status: run.StatusCompleted, Limit: 100}, 20},
		{"completed runs of b", run.Filter{Agent: "b", Status: run.StatusCompleted, Limit: 100}, 7},
	} {
		page, next, err := rt.List(ctx, tc.f)
		if err != nil || len(page) != tc.want || next != "" {
			t.Errorf("%s: %d runs (next %q) %v, want %d", tc.name, len(page), next, err, tc.want)
		}
	}

	// A cursor whose run was deleted since goes on from its time.
	if err := rt.Delete(ctx, ids[15]); err != nil {
		t.Fatal(err)
	}
	page, next, err := rt.List(ctx, run.Filter{Limit: 100, Cursor: ids[15]})
	if err != nil || len(page) != 15 || page[0].ID != ids[14] || next != "" {
		t.Fatalf("after a deleted cursor: %d runs, next %q, %v", len(page), next, err)
	}

	// A filter few runs pass looks at a bounded number of runs, and says
	// where to go on.
	defer func(n int) { engine.ListScanLimit = n }(engine.ListScanLimit)
	engine.ListScanLimit = 12
	page, next, err = rt.List(ctx, run.Filter{Status: run.StatusCompleted, Limit: 100})
	if err != nil || len(page) != 2 || next != ids[len(ids)-12] {
		t.Fatalf("a bounded scan: %d runs, next %q, %v; want 2 and %s", len(page), next, err, ids[len(ids)-12])
	}
	page, next, err = rt.List(ctx, run.Filter{Status: run.StatusCompleted, Limit: 100, Cursor: next})
	if err != nil || len(page) != 12 || next != ids[len(ids)-25] { // ids[15] deleted
		t.Fatalf("the next bounded scan: %d runs, next %q, %v", len(page), next, err)
	}
}

// The retention sweep deletes the ended root runs past their agent's
// retention, or the default, and keeps the others.
func TestRetentionDeletesOldRuns(t *testing.T) {
	b, _ := storetest.Open(t)
	m := scriptedModel(t, `- reply: {text: done}`)
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"a": {Model: m}, "b": {Model: m}},
		Retention: engine.Retention{Default: time.Hour, Agents: map[string]time.Duration{"b": 3 * time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	ids := map[string][]string{}
	for _, name := range []string{"a", "b", "a"} {
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: name, Input: "go"})
		if err != nil {
			t.Fatal(err)
		}
		wait(t, rt, rec.ID)
		ids[name] = append(ids[name], rec.ID)
	}
	listed := func() int {
		t.Helper()
		page, _, err := rt.List(ctx, run.Filter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(page)
	}
	for _, step := range []struct {
		after time.Duration
		left  int
	}{{30 * time.Minute, 3}, {2 * time.Hour, 1}, {4 * time.Hour, 0}} {
		if err := engine.Sweep(rt, time.Now().Add(step.after)); err != nil {
			t.Fatal(err)
		}
		if got := listed(); got != step.left {
			t.Fatalf("%v on: %d runs left, want %d", step.after, got, step.left)
		}
	}
	for _, id := range append(ids["a"], ids["b"]...) {
		if _, err := rt.Get(ctx, id); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("run %s after its retention: %v", id, err)
		}
	}
}

// A store from before the index has records and no index entries: the
// first node that starts indexes them, oldest first.
func TestRunsStoredBeforeTheIndexAreIndexed(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		id := engine.NewRunID()
		rec := fmt.Sprintf(`{"id":%q,"agent":"a","status":"completed","created_at":"2026-11-0%dT10:00:00Z"}`, id, i+1)
		if err := b.PutRecord(ctx, id, []byte(rec)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rt := newRuntime(t, b, map[string]*agent.Agent{"a": {Model: scriptedModel(t, `- reply: {text: done}`)}})
	start(t, rt)
	page, _, err := rt.List(ctx, run.Filter{Limit: 10})
	if err != nil || len(page) != 3 || page[0].ID != ids[2] || page[2].ID != ids[0] {
		t.Fatalf("listed %v %v, want the three runs newest first", page, err)
	}
}
