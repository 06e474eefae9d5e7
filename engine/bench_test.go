package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// BenchmarkSession runs sessions of 4 model calls and 3 tool calls end to
// end on an embedded NATS with file storage, one after another: the time per
// op is a session's latency through the durable runtime with no model or
// tool latency at all.
func BenchmarkSession(b *testing.B) {
	bs, _ := storetest.Open(b)
	m := scriptedModel(b, threeToolRules)
	rt, err := engine.New(bs, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{&recorder{name: "step", idempotent: true}}}}, Workers: 4})
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer rt.Stop()
	sessions(b, rt)
}

// BenchmarkMapReduce100 runs a flow that maps over 100 items (one child
// agent run each) and reduces them, on an embedded NATS with file storage:
// the time per op is the whole fan-out and gather.
func BenchmarkMapReduce100(b *testing.B) {
	bs, _ := storetest.Open(b)
	m := scriptedModel(b, `- reply: {text: "ok {{.Input}}"}`)
	flows := map[string]*flow.Flow{"digest": {
		State: map[string]flow.Key{"out": {Merge: flow.Append}},
		Start: []string{"map"},
		Nodes: map[string]*flow.Node{
			"map":    {Map: "state.docs", Agent: "worker", Output: "out", Next: []string{"reduce"}},
			"reduce": {Agent: "worker", Input: "reduce {{len .state.out}}", Output: "digest"},
		},
	}}
	rt, err := engine.New(bs, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: m}}, Flows: flows})
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer rt.Stop()
	docs := make([]string, 100)
	for i := range docs {
		docs[i] = fmt.Sprintf("doc %d", i)
	}
	state, _ := json.Marshal(map[string]any{"docs": docs})
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Flow: "digest", Input: "go", State: state})
		if err != nil {
			b.Fatal(err)
		}
		if rec, err = rt.Wait(ctx, rec.ID); err != nil || rec.Status != run.StatusCompleted {
			b.Fatalf("%v %v", rec, err)
		}
	}
}

// BenchmarkSessionBudgeted is BenchmarkSession with priced model calls kept
// by a shared budget: each of the 4 model calls reserves and settles in
// the budget's ledger (two compare-and-set writes), the price of budgets.
func BenchmarkSessionBudgeted(b *testing.B) {
	bs, _ := storetest.Open(b)
	m := scriptedModel(b, threeToolRules)
	worker := &agent.Agent{Model: m, Tools: []tool.Tool{&recorder{name: "step", idempotent: true}},
		Prices: model.Prices{{Input: 1, Output: 1}}, MaxOutputTokens: 100}
	rt, err := engine.New(bs, engine.Options{Agents: map[string]*agent.Agent{"worker": worker}, Workers: 4,
		Budgets: []engine.Budget{{Name: "all", USD: 1e9, Window: time.Hour}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer rt.Stop()
	sessions(b, rt)
}

// sessions runs a session of the worker agent per op, one after another.
func sessions(b *testing.B, rt *engine.Engine) {
	ctx := context.Background()
	for b.Loop() {
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
		if err != nil {
			b.Fatal(err)
		}
		if rec, err = rt.Wait(ctx, rec.ID); err != nil || rec.Status != run.StatusCompleted {
			b.Fatalf("%v %v", rec, err)
		}
	}
}

// BenchmarkListAtScale times GET /v1/runs' engine call, a page of 50, over
// a store holding MYRIAD_BENCH_RUNS runs (default 100,000; the issue's
// figure is 1,000,000): records and index entries written directly, as
// the runs' submitters and writers would have left them, a tenth of them
// by agent "b", one in a hundred still running. Sub-benchmarks: the first
// page, a page from a cursor in the middle, a page of one agent, and a
// status filter few runs pass.
func BenchmarkListAtScale(b *testing.B) {
	n := 100_000
	if v := os.Getenv("MYRIAD_BENCH_RUNS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	bs, dir := storetest.Open(b)
	ctx := context.Background()
	began := time.Now()
	var middle string
	for i := range n {
		id := engine.NewRunID()
		agentName, status := "a", run.StatusCompleted
		if i%10 == 0 {
			agentName = "b"
		}
		if i%100 == 0 {
			status = run.StatusRunning
		}
		created := time.Now().UTC()
		rec, _ := json.Marshal(run.Record{ID: id, Agent: agentName, Status: status, Input: "a question of some length, as users ask them",
			Output: "an answer of some length, as models give them", CreatedAt: created, Steps: 6})
		bs.CreateRecord(id, rec)
		bs.AddToIndex(id, []byte(fmt.Sprintf(`{"agent":%q,"created":%q}`, agentName, created.Format(time.RFC3339Nano))))
		if i == n/2 {
			middle = id
		}
		if (i+1)%100_000 == 0 {
			b.Logf("%d runs stored (%.0f/s)", i+1, float64(i+1)/time.Since(began).Seconds())
		}
	}
	rt, err := engine.New(bs, engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	// The asynchronous writes have landed once the index holds them all.
	for {
		page, _, err := rt.List(ctx, run.Filter{Limit: 1})
		if err == nil && len(page) == 1 {
			if u, err := rt.Storage(ctx); err == nil && u.Runs == uint64(n) {
				b.Logf("%d runs stored in %v; %s on disk", n, time.Since(began).Round(time.Millisecond), du(dir))
				break
			}
		}
		time.Sleep(100 * time.Millisecond) // the server's acknowledgements trail
	}
	for _, bc := range []struct {
		name string
		f    run.Filter
	}{
		{"first-page", run.Filter{Limit: 50}},
		{"from-the-middle", run.Filter{Limit: 50, Cursor: middle}},
		{"one-agent", run.Filter{Limit: 50, Agent: "b"}},
		{"status-running", run.Filter{Limit: 50, Status: run.StatusRunning}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				page, _, err := rt.List(ctx, bc.f)
				if err != nil || len(page) == 0 {
					b.Fatalf("%d runs, %v", len(page), err)
				}
			}
		})
	}
}

// du is the size of the files under dir.
func du(dir string) string {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return fmt.Sprintf("%.1f MiB", float64(total)/(1<<20))
}
