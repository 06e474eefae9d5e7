package myriad_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
)

// Concurrent runs under one shared budget never spend more than it
// together: each priced call reserves its most likely-high cost first, and
// a call the budget cannot hold stops its run with budget_exceeded. The
// ledger settles to exactly what the runs' records say they spent.
func TestConcurrentRunsNeverSpendMoreThanTheirBudget(t *testing.T) {
	lookupURL := lookupAPI(t)
	// Usage is the scripted model's estimate (a token per four characters),
	// at a dime per thousand tokens: every call costs a little more than
	// the last, as the conversation grows.
	node := openProject(t, fmt.Sprintf(`
models:
  loop:
    provider: scripted
    max_tokens: 200
    prices: [{input: 100, output: 100}]
    rules: [{reply: {tool_calls: [{name: lookup, arguments: {}}]}}]
  small:
    provider: scripted
    prices: [{input: 100, output: 100}]
    rules: [{reply: {text: "summed up"}}]
  boss:
    provider: scripted
    prices: [{input: 100, output: 100}]
    rules:
      - when: {last_tool: helper}
        reply: {text: "done"}
      - reply: {tool_calls: [{name: helper, arguments: {task: "sum up"}}]}
tools:
  lookup: {type: http, url: %q, description: Looks up., price: 0.01}
agents:
  spender: {model: loop, tools: [lookup], max_turns: 1000}
  other: {model: loop, tools: [lookup], max_turns: 3}
  boss: {model: boss, sub_agents: [helper]}
  helper: {model: small}
flows:
  fetch: {start: [f], nodes: {f: {tool: lookup, output: r}}, output: r}
budgets:
  spenders: {agent: spender, usd: 0.75, window: 1d}
  tenants: {metadata_key: tenant, usd: 1, window: 1h}
`, lookupURL))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	submitAndWait := func(req engine.SubmitRequest) *run.Record {
		rec, _, err := node.Engine.Submit(ctx, req)
		if err != nil {
			t.Error(err)
			return nil
		}
		if rec, err = node.Engine.Wait(ctx, rec.ID); err != nil {
			t.Error(err)
			return nil
		}
		return rec
	}

	const runs = 8
	recs := make([]*run.Record, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() { recs[i] = submitAndWait(engine.SubmitRequest{Agent: "spender", Input: "go"}) })
	}
	wg.Wait()
	spent := 0.0
	for _, rec := range recs {
		if rec == nil {
			t.FailNow()
		}
		if rec.Status != run.StatusFailed || rec.Error.Code != "budget_exceeded" ||
			!strings.HasPrefix(rec.Error.Message, "budget exceeded: budget spenders has spent $") ||
			!strings.Contains(rec.Error.Message, "of $0.75 in the last 24h0m0s, and the next call may cost up to $") ||
			!strings.HasSuffix(rec.Error.Message, "(raise budgets.spenders.usd, or wait for the window to move on)") {
			t.Fatalf("run %s: %s %+v, want it stopped by the budget", rec.ID, rec.Status, rec.Error)
		}
		if rec.Cost != nil {
			spent += rec.Cost.USD
		}
	}
	if spent > 0.75 || spent < 0.5 {
		t.Fatalf("the runs spent $%.4f together under a budget of $0.75", spent)
	}
	ledger := budgetSpend(t, node.Engine, "spenders")
	if len(ledger) != 1 || math.Abs(ledger[""]-spent) > 1e-9 {
		t.Fatalf("ledger %v, want what the runs spent: %v", ledger, spent)
	}

	// Another agent is not kept by the spenders' budget.
	if rec := submitAndWait(engine.SubmitRequest{Agent: "other", Input: "go"}); rec.Status != run.StatusFailed || rec.Error.Code != "max_turns_exceeded" {
		t.Fatalf("%s %+v", rec.Status, rec.Error)
	}

	// Per tenant: a child run's calls count for its parent's tenant.
	rec := submitAndWait(engine.SubmitRequest{Agent: "boss", Input: "go", Metadata: map[string]string{"tenant": "acme"}})
	if rec.Status != run.StatusCompleted || rec.Cost.Models["small"] == 0 {
		t.Fatalf("%s %+v %+v", rec.Status, rec.Error, rec.Cost)
	}
	if got := budgetSpend(t, node.Engine, "tenants"); len(got) != 1 || math.Abs(got["acme"]-rec.Cost.USD) > 1e-9 {
		t.Fatalf("tenants %v, want acme at %v (the boss and its helper)", got, rec.Cost.USD)
	}
	// One tenant's spend does not stop another's: "other" runs for acme
	// until the tenant's dollar is gone, then globex starts afresh.
	for {
		rec = submitAndWait(engine.SubmitRequest{Agent: "other", Input: "go", Metadata: map[string]string{"tenant": "acme"}})
		if rec.Error != nil && rec.Error.Code == "budget_exceeded" {
			break
		}
	}
	if !strings.Contains(rec.Error.Message, `budget tenants (tenant "acme") has spent`) {
		t.Fatalf("message %q names neither the budget nor the tenant", rec.Error.Message)
	}
	if got := budgetSpend(t, node.Engine, "tenants"); got["acme"] > 1 {
		t.Fatalf("acme spent %v of 1", got["acme"])
	}
	if rec = submitAndWait(engine.SubmitRequest{Agent: "boss", Input: "go", Metadata: map[string]string{"tenant": "globex"}}); rec.Status != run.StatusCompleted {
		t.Fatalf("globex: %s %+v", rec.Status, rec.Error)
	}
	// A flow's tool node is kept by the tenant's budget too.
	if rec = submitAndWait(engine.SubmitRequest{Flow: "fetch", Input: "go", Metadata: map[string]string{"tenant": "initech"}}); rec.Status != run.StatusCompleted || rec.Cost == nil {
		t.Fatalf("flow: %s %+v", rec.Status, rec.Error)
	}
	if got := budgetSpend(t, node.Engine, "tenants"); math.Abs(got["initech"]-0.01) > 1e-9 {
		t.Fatalf("initech %v, want the flow's tool call, $0.01", got["initech"])
	}
}

// budgetSpend returns a budget's spend by metadata value.
func budgetSpend(t *testing.T, e *engine.Engine, name string) map[string]float64 {
	t.Helper()
	all, err := e.Budgets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range all {
		if b.Name == name {
			got := map[string]float64{}
			for _, s := range b.Spent {
				got[s.Value] = s.USD
			}
			return got
		}
	}
	t.Fatalf("no budget %s in %+v", name, all)
	return nil
}
