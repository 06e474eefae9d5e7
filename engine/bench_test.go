package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
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
