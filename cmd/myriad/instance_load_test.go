package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/run"
)

// 100 turns sent at once to one instance by 16 clients all finish, in
// order, within 10 s: a turn starts as soon as the one before settles.
func TestHundredTurnsToOneInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	const turns, clients = 100, 16
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
	bin, err := plainBin()
	if err != nil {
		t.Fatal(err)
	}
	c := f.serveWith(bin).client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next := make(chan int, turns)
	for i := range turns {
		next <- i
	}
	close(next)
	began := time.Now()
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range next {
				ref, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "chat", Input: fmt.Sprintf("message %d", i), Instance: "busy"}, "")
				if err != nil {
					t.Errorf("turn %d: %v", i, err)
					continue
				}
				mu.Lock()
				ids = append(ids, ref.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	submitted := time.Since(began)
	seen := map[uint64]bool{}
	for _, id := range ids {
		wg.Go(func() {
			rec, err := c.Wait(ctx, id, 50*time.Second)
			if err != nil || rec.Status != run.StatusCompleted {
				t.Errorf("run %s: %v %v", id, statusOf(rec), err)
				return
			}
			mu.Lock()
			seen[rec.Turn] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(began)
	t.Logf("%d turns to one instance: submitted in %s, all completed in %s", turns, submitted.Round(time.Millisecond), took.Round(time.Millisecond))
	if len(seen) != turns {
		t.Errorf("%d distinct turn numbers for %d turns", len(seen), turns)
	}
	if took > 10*time.Second {
		t.Errorf("took %s (at most 10 s)", took)
	}
}
