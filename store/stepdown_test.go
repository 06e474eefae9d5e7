package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/store"
	"github.com/myriad-ai/myriad/store/storetest"
)

// A stream leader that steps down (its node restarting) drops the writes
// it had not answered. On a cluster, a journal append or an input is then
// sent again with its message id: every write lands once, none fails, and
// none waits out WriteTimeout.
func TestWritesOutliveALeaderSteppingDown(t *testing.T) {
	urls := storetest.StartCluster(t, 3)
	s := storetest.ConnectReplicated(t, urls[0], 3)
	nc, err := nats.Connect(urls[1])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	w := s.JournalFrom("run_s", nil)
	stepdowns := 0
	const entries = 300
	var slowest time.Duration
	for i := range entries {
		if i%50 == 25 {
			// Step the leaders down while writes are in flight.
			for _, stream := range []string{store.JournalStream, store.InputStream} {
				msg, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 5*time.Second)
				if err == nil && !json.Valid(msg.Data) {
					t.Fatalf("stepdown of %s: %s", stream, msg.Data)
				}
			}
			stepdowns++
		}
		began := time.Now()
		if _, err := w.Append(ctx, journal.TypeTimerFired, journal.TimerFired{}); err != nil {
			t.Fatalf("append %d (after %d stepdowns): %v", i, stepdowns, err)
		}
		if _, err := s.Send(ctx, store.Input{To: "run_s", Kind: "cancel", Data: []byte(`{}`)}); err != nil {
			t.Fatalf("input %d (after %d stepdowns): %v", i, stepdowns, err)
		}
		slowest = max(slowest, time.Since(began))
	}
	evs, err := s.LoadJournal(ctx, "run_s")
	if err != nil || len(evs) != entries {
		t.Fatalf("the journal has %d entries (%v), want %d", len(evs), err, entries)
	}
	ins, err := s.ReadInputs(ctx, "run_s", 0)
	if err != nil || len(ins) != entries {
		t.Fatalf("%d inputs (%v), want %d", len(ins), err, entries)
	}
	if slowest >= store.WriteTimeout {
		t.Errorf("a write took %v across a stepdown: it waited out WriteTimeout", slowest)
	}
	t.Logf("%d stepdowns; the slowest write took %v", stepdowns, slowest.Round(time.Millisecond))
}
