package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/store"
	"github.com/myriad-ai/myriad/store/storetest"
)

func TestJournalAppendsInOrderAndRefusesASecondWriter(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	w := s.JournalFrom("run_a", nil)
	if _, err := w.Append(ctx, journal.TypeRunStarted, journal.RunStarted{Agent: "a", Input: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AppendFor(ctx, 7, journal.TypeModelResponse, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{journal.TypeToolStarted, journal.TypeToolStarted} {
		if _, err := w.Append(ctx, typ, map[string]any{}); err != nil {
			t.Fatal(err)
		}
	}
	if evs := w.Events(); evs[1].Step != 2 || evs[3].Step != 4 || evs[3].Seq <= evs[2].Seq {
		t.Fatalf("steps and sequences: %+v", evs)
	}
	// A second writer that read the journal before those appends loses.
	stale := s.JournalFrom("run_a", w.Events()[:1])
	if _, err := stale.AppendFor(ctx, 9, journal.TypeRunFailed, journal.RunFailed{}); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("stale writer: %v", err)
	}
	if stale.InputSeq() != 0 {
		t.Fatalf("a failed append took its input: position %d", stale.InputSeq())
	}
	got, err := s.LoadJournal(ctx, "run_a")
	if err != nil || len(got) != 4 || got[3].InputSeq != 7 || got[0].InputSeq != 0 {
		t.Fatalf("load: %d entries %+v %v", len(got), got, err)
	}
	head, ok, err := s.LastJournal(ctx, "run_a")
	if err != nil || !ok || head.Type != journal.TypeToolStarted || head.InputSeq != 7 || head.Seq != got[3].Seq {
		t.Fatalf("head %+v %v %v", head, ok, err)
	}
}

func TestReadingManyEntriesAndTrees(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	root := "run_0123456789abcdef0123aaaaaaaa"
	child := "run_0123456789abcdef0123bbbbbbbbbbbbbbbb"
	other := "run_fffffffffffffffffffaaaaaaaaa"
	ws := map[string]*store.Journal{root: s.JournalFrom(root, nil), child: s.JournalFrom(child, nil), other: s.JournalFrom(other, nil)}
	for i := range 700 {
		for _, id := range []string{root, child, other} {
			if _, err := ws[id].Append(ctx, "x", i); err != nil {
				t.Fatal(err)
			}
		}
	}
	evs, err := s.LoadJournal(ctx, root)
	if err != nil || len(evs) != 700 || evs[699].Step != 700 {
		t.Fatalf("load 700: %d %v", len(evs), err)
	}
	tree, err := s.ReadJournals(ctx, store.JournalFilter{Tree: store.Tree(root)}, 0, 0, 0)
	if err != nil || len(tree) != 1400 {
		t.Fatalf("tree: %d %v", len(tree), err)
	}
	some, err := s.ReadJournals(ctx, store.JournalFilter{Tree: store.Tree(root)}, tree[9].Seq, 0, 5)
	if err != nil || len(some) != 5 || some[0].Seq != tree[10].Seq {
		t.Fatalf("a page after an entry: %d %v", len(some), err)
	}
	upTo, err := s.ReadJournals(ctx, store.JournalFilter{Tree: store.Tree(root)}, tree[9].Seq, tree[300].Seq, 0)
	if err != nil || len(upTo) != 291 || upTo[290].Seq != tree[300].Seq {
		t.Fatalf("entries up to one: %d %v", len(upTo), err)
	}
	none, err := s.LoadJournal(ctx, "run_nothing")
	if err != nil || len(none) != 0 {
		t.Fatalf("empty journal: %v %v", none, err)
	}
}

func TestInputsAreOrderedConditionalAndIdempotent(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	seq, err := s.Send(ctx, store.Input{To: "run_x", Kind: "submit", Data: []byte("one")})
	if err != nil {
		t.Fatal(err)
	}
	none := uint64(0)
	if _, err := s.Send(ctx, store.Input{To: "run_x", Kind: "submit", Data: []byte("two"), After: &none}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("an input after nothing, to an entity with inputs: %v", err)
	}
	c1, _ := s.Send(ctx, store.Input{To: "run_x", Kind: "report", MsgID: "report/child"})
	c2, _ := s.Send(ctx, store.Input{To: "run_x", Kind: "report", MsgID: "report/child"})
	if c1 != c2 {
		t.Fatalf("a duplicate report was stored again: %d %d", c1, c2)
	}
	ins, err := s.ReadInputs(ctx, "run_x", 0)
	if err != nil || len(ins) != 2 || ins[0].Seq != seq || ins[0].Kind != "submit" || string(ins[0].Data) != "one" || ins[1].Kind != "report" {
		t.Fatalf("inputs %+v %v", ins, err)
	}
	if after, _ := s.ReadInputs(ctx, "run_x", ins[0].Seq); len(after) != 1 {
		t.Fatalf("after the first: %+v", after)
	}
	// An idempotency key is claimed once; a second claim reads the first.
	if prior, err := s.ClaimKey(ctx, "k", "claim", []byte("run_y")); err != nil || prior != nil {
		t.Fatal(prior, err)
	}
	if prior, err := s.ClaimKey(ctx, "k", "claim", []byte("run_z")); !errors.Is(err, store.ErrExists) || string(prior) != "run_y" {
		t.Fatalf("the key again: %q %v", prior, err)
	}
	if err := s.ReleaseKey(ctx, "k", []byte("run_y")); err != nil {
		t.Fatal(err)
	}
	if prior, err := s.ClaimKey(ctx, "k", "claim", []byte("run_w")); err != nil || prior != nil {
		t.Fatalf("a released key: %q %v", prior, err)
	}
	// Releasing a claim that is no longer the key's keeps the new one.
	if err := s.ReleaseKey(ctx, "k", []byte("run_y")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Key(ctx, "k"); err != nil || string(got) != "run_w" {
		t.Fatalf("the key after a stale release: %q %v", got, err)
	}
	if _, err := s.Key(ctx, "nokey"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unclaimed key: %v", err)
	}
}

func TestTheQueueHoldsOneEntryPerEntity(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	if rang, err := s.Ring(ctx, "run_q", "submit"); err != nil || !rang {
		t.Fatal(rang, err)
	}
	if rang, err := s.Ring(ctx, "run_q", "cancel"); err != nil || rang {
		t.Fatalf("a second ring: %v %v", rang, err)
	}
	claims, err := s.TakeWork(4)
	if err != nil {
		t.Fatal(err)
	}
	defer claims.Stop()
	c, err := claims.Next()
	if err != nil || c.Entity != "run_q" || c.Hint != "submit" {
		t.Fatalf("claim %+v %v", c, err)
	}
	if rang, _ := s.Ring(ctx, "run_q", "x"); rang {
		t.Fatal("rang while the entry is held")
	}
	if err := c.Done(ctx); err != nil {
		t.Fatal(err)
	}
	if rang, err := s.Ring(ctx, "run_q", "again"); err != nil || !rang {
		t.Fatalf("a ring after the entry was done: %v %v", rang, err)
	}
}

func TestPokesComeAfterTheInputIsStored(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	found := make(chan int, 100)
	stop, err := s.OnPokes(func(id string) {
		if id != "run_p" {
			return
		}
		go func() {
			ins, _ := s.ReadInputs(ctx, "run_p", 0)
			found <- len(ins)
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := s.Send(ctx, store.Input{To: "run_p", Kind: "answer", Data: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatal(err)
		}
		if n := <-found; n < i+1 {
			t.Fatalf("poke %d found %d inputs", i, n)
		}
	}
}

func TestTheDataDirectoryIsLocked(t *testing.T) {
	_, dir := storetest.Open(t)
	if _, err := store.Open(context.Background(), store.Options{DataDir: dir}); err == nil {
		t.Fatal("a second store opened the same directory")
	}
	_ = filepath.Join
}

func TestEncodedEntriesDecode(t *testing.T) {
	for _, ev := range []journal.Event{
		{Step: 1, RunID: "run_0123", Type: journal.TypeRunStarted, Time: time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.UTC), Data: []byte(`{"input":"é \"quoted\" \u2028"}`)},
		{Step: 99, RunID: "ins_ab", Type: journal.TypeTurnEnded, Time: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), Data: []byte(`null`), InputSeq: 77},
	} {
		got, err := journal.Decode(5, store.EncodeEntryForTest(&ev))
		ev.Seq = 5
		if err != nil || got.Step != ev.Step || got.RunID != ev.RunID || got.Type != ev.Type || !got.Time.Equal(ev.Time) ||
			string(got.Data) != string(ev.Data) || got.InputSeq != ev.InputSeq || got.Seq != 5 {
			t.Errorf("%+v -> %+v %v", ev, got, err)
		}
		want, _ := json.Marshal(&ev)
		var a, b map[string]any
		_ = json.Unmarshal(want, &a)
		_ = json.Unmarshal(store.EncodeEntryForTest(&ev), &b)
		a["seq"], b["seq"] = 0.0, 0.0
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("not the JSON encoding of an event:\n%s\n%s", want, store.EncodeEntryForTest(&ev))
		}
	}
}

// On a replicated cluster, inputs and journals are read from the streams'
// leaders (no direct gets, which a lagging replica could answer).
func TestReplicatedStoreReadsWhatItWrites(t *testing.T) {
	urls := storetest.StartCluster(t, 3)
	s := storetest.ConnectReplicated(t, urls[1], 3)
	ctx := context.Background()
	if _, err := s.Send(ctx, store.Input{To: "run_r", Kind: "cancel", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	ins, err := s.ReadInputs(ctx, "run_r", 0)
	if err != nil || len(ins) != 1 || ins[0].Kind != "cancel" {
		t.Fatalf("inputs %+v %v", ins, err)
	}
	w := s.JournalFrom("run_r", nil)
	for range 3 {
		if _, err := w.Append(ctx, journal.TypeTimerFired, journal.TimerFired{}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.LoadJournal(ctx, "run_r")
	if err != nil || len(evs) != 3 {
		t.Fatalf("journal %d %v", len(evs), err)
	}
	if rang, err := s.Enqueue(ctx, "run_r", "submit", []byte(`{"input":"x"}`)); err != nil || !rang {
		t.Fatalf("enqueue %v %v", rang, err)
	}
	if kind, data, err := s.Queued(ctx, "run_r"); err != nil || kind != "submit" || string(data) != `{"input":"x"}` {
		t.Fatalf("queued %q %s %v", kind, data, err)
	}
}
