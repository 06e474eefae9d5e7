package main_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/api/client"
	"github.com/myriad-ai/myriad/run"
)

// Under load: 16 clients submit 1,000 turns over 100 instances, each with
// an idempotency key, retrying until the server accepts; the server is
// killed -9 three times meanwhile. Every run the server stored — whether
// or not its client heard back — settles within a minute of the last
// restart (in practice within seconds), each key made one run, and every
// instance takes a new turn.
func TestKillDuringSubmissionsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	const (
		submissions = 1000
		instances   = 100
		clients     = 16
	)
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, config: filepath.Join(dir, "myriad.yaml")}
	if err := os.WriteFile(f.config, []byte(`
models:
  fast: {provider: scripted, rules: [{reply: {text: "noted: {{.Input}}"}}]}
agents:
  chat: {model: fast}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A plain build: the race detector's slowdown would hide how fast
	// the node recovers (the other crash tests run a race build).
	bin, err := plainBin()
	if err != nil {
		t.Fatal(err)
	}
	var current atomic.Pointer[proc]
	current.Store(f.serveWith(bin))

	var accepted atomic.Int64
	var ids sync.Map // run id → submission, as the clients heard
	progress := make(chan int64, submissions)
	next := make(chan int, submissions)
	for n := range submissions {
		next <- n
	}
	close(next)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for n := range next {
				req := apitype.CreateRunRequest{Agent: "chat", Input: "message " + strconv.Itoa(n),
					Instance: fmt.Sprintf("customer-%d", n%instances), Metadata: map[string]string{"n": strconv.Itoa(n)}}
				for attempt := 0; ; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					ref, err := current.Load().client().Submit(ctx, req, fmt.Sprintf("load-%d", n))
					cancel()
					if err == nil {
						ids.Store(ref.ID, strconv.Itoa(n))
						break
					}
					var apiErr *client.Error
					if errors.As(err, &apiErr) && apiErr.Status < 500 && apiErr.Status != 429 {
						t.Errorf("submission %d refused: %v", n, err)
						break
					}
					if attempt == 200 {
						t.Errorf("submission %d never accepted: %v", n, err)
						break
					}
					time.Sleep(50 * time.Millisecond) // the server is restarting: a client backs off
				}
				progress <- accepted.Add(1)
			}
		})
	}
	// Kill at a quarter, half and three quarters of the way.
	var lastRestart time.Time
	for _, at := range []int64{250, 500, 750} {
		for n := range progress {
			if n >= at {
				break
			}
		}
		current.Load().kill(t)
		current.Store(f.serveWith(bin))
		lastRestart = time.Now()
		t.Logf("killed and restarted after %d accepted submissions", at)
	}
	wg.Wait()
	c := current.Load().client()

	// Every run settles: those the clients heard of, and those stored
	// that they did not.
	listed := listAll(t, c)
	for _, r := range listed {
		ids.LoadOrStore(r.ID, r.Metadata["n"])
	}
	var runs []*run.Record
	ids.Range(func(id, n any) bool {
		runs = append(runs, &run.Record{ID: id.(string), Metadata: map[string]string{"n": n.(string)}})
		return true
	})
	deadline := lastRestart.Add(60 * time.Second)
	var stuck atomic.Int64
	work := make(chan *run.Record, len(runs))
	for _, r := range runs {
		work <- r
	}
	close(work)
	var waits sync.WaitGroup
	for range clients {
		waits.Go(func() {
			for r := range work {
				ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(5*time.Second))
				rec, err := c.Wait(ctx, r.ID, min(time.Until(deadline).Round(time.Second)+time.Second, time.Minute))
				cancel()
				if err != nil || rec.Status != run.StatusCompleted {
					if stuck.Add(1) <= 5 {
						t.Errorf("run %s (submission %s): %v %v", r.ID, r.Metadata["n"], statusOf(rec), err)
					}
				}
			}
		})
	}
	waits.Wait()
	if n := stuck.Load(); n > 0 {
		t.Fatalf("%d runs not completed 60 s after the last restart", n)
	}
	settled := time.Since(lastRestart)
	t.Logf("all %d runs completed %.1f s after the last restart (%d listed before)", len(runs), settled.Seconds(), len(listed))
	// What the killed node held comes back within the queue's and the
	// router's ack waits (3 s, 5 s); the rest is work. (Before those were
	// short, this took 30 s.)
	if settled > 20*time.Second {
		t.Errorf("the runs took %.1f s to complete after the last restart, want under 20 s", settled.Seconds())
	}

	// One run per key, and each listed.
	seen := map[string]bool{}
	for _, r := range listAll(t, c) {
		if seen[r.Metadata["n"]] {
			t.Errorf("submission %s made two runs", r.Metadata["n"])
		}
		seen[r.Metadata["n"]] = true
	}
	if len(seen) != submissions || len(runs) != submissions {
		t.Errorf("%d submissions listed, %d runs known, want %d", len(seen), len(runs), submissions)
	}

	// Every instance takes a new turn.
	var turns sync.WaitGroup
	for i := range instances {
		turns.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ref, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "chat", Input: "one more", Instance: fmt.Sprintf("customer-%d", i)}, "")
			if err != nil {
				t.Errorf("instance %d: %v", i, err)
				return
			}
			rec, err := c.Wait(ctx, ref.ID, 25*time.Second)
			if err != nil || rec.Status != run.StatusCompleted || rec.Turn != submissions/instances+1 {
				t.Errorf("instance %d's new turn: %v turn %d, %v", i, statusOf(rec), turnOf(rec), err)
			}
		})
	}
	turns.Wait()
}

func statusOf(rec *run.Record) run.Status {
	if rec == nil {
		return ""
	}
	return rec.Status
}

func turnOf(rec *run.Record) uint64 {
	if rec == nil {
		return 0
	}
	return rec.Turn
}

func listAll(t *testing.T, c *client.Client) []*run.Record {
	t.Helper()
	var runs []*run.Record
	cursor := ""
	for {
		page, err := c.List(context.Background(), run.Filter{Agent: "chat", Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, page.Runs...)
		if cursor = page.NextCursor; cursor == "" {
			return runs
		}
	}
}
