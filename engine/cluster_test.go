package engine_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// Two nodes on one external NATS server share the work queue.
func TestTwoNodesShareTheQueue(t *testing.T) {
	url := storetest.StartServer(t)
	done := map[string]int{}
	finished := make(chan string, 64)
	var nodes []*engine.Engine
	for _, name := range []string{"a", "b"} {
		b := storetest.Connect(t, url)
		rt, err := engine.New(b, engine.Options{Workers: 4,
			Agents:   map[string]*agent.Agent{"worker": {Model: scriptedModel(t, threeToolRules), Tools: []tool.Tool{&recorder{name: "step"}}}},
			OnFinish: func(*run.Record, engine.RunStats) { finished <- name }})
		if err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		nodes = append(nodes, rt)
	}
	ctx := context.Background()
	const runs = 40
	for range runs {
		if _, _, err := nodes[0].Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"}); err != nil {
			t.Fatal(err)
		}
	}
	timeout := time.After(30 * time.Second)
	for range runs {
		select {
		case n := <-finished:
			done[n]++
		case <-timeout:
			t.Fatalf("finished only %v", done)
		}
	}
	if done["a"] == 0 || done["b"] == 0 {
		t.Errorf("one node did all the work: %v", done)
	}
}

// A node that stops heartbeating (its connection is gone) loses its runs to
// another node, which resumes them from the journal.
func TestAnotherNodeTakesOverADeadNodesRun(t *testing.T) {
	url := storetest.StartServer(t)
	gate := make(chan struct{})
	defer close(gate)
	slow := &recorder{name: "step", idempotent: true, block: gate, entered: make(chan string, 1)}
	b1 := storetest.Connect(t, url)
	n1, err := engine.New(b1, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: scriptedModel(t, threeToolRules), Tools: []tool.Tool{slow}}}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n1)
	ctx := context.Background()
	rec, _, err := n1.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	firstKey := <-slow.entered
	b1.Close() // node 1 dies mid tool call: no more heartbeats, no more appends

	fast := &recorder{name: "step", idempotent: true}
	b2 := storetest.Connect(t, url)
	n2, err := engine.New(b2, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: scriptedModel(t, threeToolRules), Tools: []tool.Tool{fast}}}})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	start(t, n2)
	if rec = wait(t, n2, rec.ID); rec.Status != run.StatusCompleted {
		t.Fatalf("status %s %+v", rec.Status, rec.Error)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("takeover took %s, want within 5s", took)
	}
	keys := fast.Keys()
	// The idempotent call node 1 started is retried with its key; two more follow.
	if len(keys) != 3 || keys[0] != firstKey {
		t.Fatalf("node 2 calls %v, want a retry of %s then two more", keys, firstKey)
	}
	evs, err := b2.LoadJournal(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	attempts := 0
	for _, ev := range evs {
		if ev.Type == journal.TypeToolStarted {
			attempts++
		}
	}
	if attempts != 4 {
		t.Errorf("tool.started entries %d, want 4 (3 calls + 1 retry)", attempts)
	}
}

// A step larger than the server's max_payload cannot be journaled however
// often it is retried: the run fails with payload_too_large instead.
func TestOversizedStepFailsTheRun(t *testing.T) {
	url := storetest.StartServerWith(t, server.Options{MaxPayload: 32 << 10})
	b := storetest.Connect(t, url)
	big := &recorder{name: "step", idempotent: true, result: strings.Repeat("x", 64<<10)}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, threeToolRules), Tools: []tool.Tool{big}}})
	start(t, rt)
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusFailed || rec.Error.Code != agent.CodeTooLarge {
		t.Fatalf("got %s %+v", rec.Status, rec.Error)
	}
}

// On a three-server cluster with every stream replicated three times, two
// nodes connected to different servers run a tool-calling agent to the
// end, and either node reads the run and its journal.
func TestReplicatedClusterRunsToTheEnd(t *testing.T) {
	urls := storetest.StartCluster(t, 3)
	finished := make(chan string, 16)
	var nodes []*engine.Engine
	for i := range 2 {
		st := storetest.ConnectReplicated(t, urls[i], 3)
		rt, err := engine.New(st, engine.Options{Workers: 2,
			Agents:   map[string]*agent.Agent{"worker": {Model: scriptedModel(t, threeToolRules), Tools: []tool.Tool{&recorder{name: "step", idempotent: true}}}},
			OnFinish: func(r *run.Record, _ engine.RunStats) { finished <- r.ID }})
		if err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		nodes = append(nodes, rt)
	}
	ctx := context.Background()
	const runs = 6
	ids := map[string]bool{}
	for i := range runs {
		rec, _, err := nodes[i%2].Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
		if err != nil {
			t.Fatal(err)
		}
		ids[rec.ID] = true
	}
	timeout := time.After(60 * time.Second)
	for range runs {
		select {
		case id := <-finished:
			delete(ids, id)
		case <-timeout:
			t.Fatalf("runs not finished: %v", ids)
		}
	}
	recs, _, err := nodes[1].List(ctx, run.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		got, err := nodes[0].Get(ctx, r.ID)
		if err != nil || got.Status != run.StatusCompleted {
			t.Fatalf("run %s on the other node: %+v, %v", r.ID, got, err)
		}
		events, err := nodes[0].Events(ctx, r.ID)
		if err != nil || lastTypeOf(events) != journal.TypeRunCompleted {
			t.Fatalf("journal of %s: %d entries, %v", r.ID, len(events), err)
		}
	}
	if len(recs) != runs {
		t.Fatalf("listed %d runs, want %d", len(recs), runs)
	}
}

func lastTypeOf(events []journal.Event) string {
	if len(events) == 0 {
		return ""
	}
	return events[len(events)-1].Type
}

// Runs on two nodes under one shared budget never spend more than it
// together: each node's writes fail when the other node wrote the ledger
// since, and it reads it again.
func TestTwoNodesKeepOneBudget(t *testing.T) {
	url := storetest.StartServer(t)
	budget := []engine.Budget{{Name: "all", USD: 0.05, Window: time.Hour}}
	var nodes []*engine.Engine
	for range 2 {
		rt, err := engine.New(storetest.Connect(t, url), engine.Options{Workers: 4, Budgets: budget,
			Agents: map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {tool_calls: [{name: step, arguments: {}}]}`),
				Tools: []tool.Tool{&recorder{name: "step", idempotent: true}}, MaxTurns: 1000,
				Prices: model.Prices{{Input: 10, Output: 10}}, MaxOutputTokens: 20}}})
		if err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		nodes = append(nodes, rt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ids []string
	for i := range 8 {
		rec, _, err := nodes[i%2].Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	spent := 0.0
	for _, id := range ids {
		rec, err := nodes[0].Wait(ctx, id)
		if err != nil || rec.Error == nil || rec.Error.Code != agent.CodeBudget {
			t.Fatalf("%+v %v: want every run stopped by the budget", rec, err)
		}
		if rec.Cost != nil {
			spent += rec.Cost.USD
		}
	}
	all, err := nodes[1].Budgets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if spent > 0.05 || spent < 0.04 || len(all[0].Spent) != 1 || math.Abs(all[0].Spent[0].USD-spent) > 1e-9 {
		t.Fatalf("the runs spent $%v under a budget of $0.05; the ledger says %+v", spent, all)
	}
}
