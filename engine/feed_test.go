package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
)

// A follower that does not keep up is cut with the position it reached,
// and a watch from there has the rest: nothing is lost.
func TestSlowFollowerIsCutWithItsPosition(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}})
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	w := b.JournalFrom(rec.ID, nil)
	mustAppend(t, w, 0, journal.TypeRunStarted, journal.RunStarted{Agent: "worker", Input: "go"})
	f, err := rt.Follow(ctx, rec.ID, false, false)
	if err != nil {
		t.Fatal(err)
	}
	const entries = 1500 // more than a follower holds
	for range entries {
		mustAppend(t, w, 0, journal.TypeTimerFired, journal.TimerFired{})
	}
	mustAppend(t, w, 0, journal.TypeRunCompleted, journal.RunCompleted{Output: "hi"})
	// Another follower, keeping up, has seen the end: the feed has handed
	// everything out to both.
	until(t, rt, rec.ID, journal.TypeRunCompleted)
	var last uint64
	var slow *engine.SlowFollowerError
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got := 0
	for u, err := range f.Watch(ctx, 0, false) {
		if err != nil {
			if !errors.As(err, &slow) {
				t.Fatalf("after %d entries: %v", got, err)
			}
			break
		}
		got++
		last = u.Event.Seq
	}
	f.Close()
	if slow == nil || slow.After != last || got >= entries+2 {
		t.Fatalf("not cut where it was: %d entries, last %d, %+v", got, last, slow)
	}
	// Resume after its position: the rest, to the end.
	for u, err := range rt.Watch(ctx, engine.WatchOptions{Run: rec.ID, After: slow.After}) {
		if err != nil {
			t.Fatal(err)
		}
		if u.Event.Seq <= last {
			t.Fatalf("entry %d again after %d", u.Event.Seq, last)
		}
		last = u.Event.Seq
		got++
		if u.Event.Type == journal.TypeRunCompleted {
			break
		}
	}
	if got != entries+2 {
		t.Fatalf("%d entries in all, want %d", got, entries+2)
	}
}

// Stream hands out what Watch would, in order, from the engine's side,
// and stops when told.
func TestStreamHandsOutEveryEntryInOrder(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, threeToolRules)}})
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	w := b.JournalFrom(rec.ID, nil)
	mustAppend(t, w, 0, journal.TypeRunStarted, journal.RunStarted{Agent: "worker", Input: "go"})
	f, err := rt.Follow(ctx, rec.ID, false, false)
	if err != nil {
		t.Fatal(err)
	}
	updates := make(chan run.Update, 64)
	if err := f.Stream(ctx, 0, func(u run.Update, err error) bool {
		if err != nil {
			t.Errorf("stream: %v", err)
			close(updates)
			return false
		}
		updates <- u
		if journal.Terminal(u.Event.Type) {
			close(updates)
			return false
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		mustAppend(t, w, 0, journal.TypeTimerFired, journal.TimerFired{})
	}
	mustAppend(t, w, 0, journal.TypeRunCanceled, journal.RunCanceled{})
	var types []string
	var last uint64
	for u := range updates {
		if u.Event.Seq <= last {
			t.Fatalf("out of order: %d after %d", u.Event.Seq, last)
		}
		last = u.Event.Seq
		types = append(types, u.Event.Type)
	}
	if len(types) != 12 || types[0] != journal.TypeRunStarted || types[11] != journal.TypeRunCanceled {
		t.Fatalf("streamed %v", types)
	}
}
