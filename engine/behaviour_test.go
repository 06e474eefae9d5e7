package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

func TestInstanceKeepsConversationAndOrder(t *testing.T) {
	b, _ := storetest.Open(t)
	m := scriptedModel(t, `
- when: {last_user: "^remember (?P<x>\\w+)"}
  reply: {text: "ok, {{.Match.x}}"}
- when: {last_user: "^what"}
  reply: {text: "turn {{.Turn}}"}
`)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: m}})
	ctx := context.Background()
	// Submit all three before any worker runs, so order is the queue's job.
	var ids []string
	for _, in := range []string{"remember blue", "what did I say?", "what now?"} {
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: in, Instance: "worker/alice"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	start(t, rt)
	var outs []string
	for _, id := range ids {
		outs = append(outs, wait(t, rt, id).Output)
	}
	// The turn number counts the assistant messages of the whole instance
	// conversation, so it proves the history reached each run in order.
	if got := strings.Join(outs, " | "); got != "ok, blue | turn 2 | turn 3" {
		t.Fatalf("outputs %q", got)
	}
	in, err := rt.GetInstance(ctx, "worker", "alice")
	if err != nil || in.Done != 3 || len(in.Messages) != 6 {
		t.Fatalf("instance %+v %v", in, err)
	}
	// Keys are paths: "other/alice" is a key of worker's, "worker/alice"
	// the address of the instance above.
	for _, key := range []string{"other//alice", "other/.alice", "/alice", "alice/"} {
		if _, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "x", Instance: key}); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("key %q: %v", key, err)
		}
	}
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "what again", Instance: "worker/alice"})
	if err != nil || wait(t, rt, rec.ID).Output != "turn 4" {
		t.Fatalf("worker/alice: %v", err)
	}
}

// A run canceled while it waits for a worker never runs: the worker that
// takes it journals its end.
func TestCanceledQueuedRunNeverRuns(t *testing.T) {
	b, _ := storetest.Open(t)
	gate := make(chan struct{})
	step := &recorder{name: "step", block: gate, idempotent: true, entered: make(chan string, 3)}
	m := scriptedModel(t, threeToolRules)
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{step}}}, Workers: 1, CommandWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	busy, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	<-step.entered // the only worker is busy
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err = rt.Cancel(ctx, rec.ID); err != nil || rec.Status != run.StatusQueued {
		t.Fatalf("cancel while queued: %+v %v", rec, err)
	}
	calls := m.calls.Load()
	close(gate)
	if got := wait(t, rt, rec.ID); got.Status != run.StatusCanceled {
		t.Fatalf("record %s", got.Status)
	}
	if got := strings.Join(eventTypes(t, rt, rec.ID), " "); got != "run.started run.canceled" {
		t.Fatalf("journal %q", got)
	}
	if wait(t, rt, busy.ID); m.calls.Load() != calls+3 {
		t.Fatalf("the canceled run called the model: %d calls after the cancel, want 3 (the busy run's)", m.calls.Load()-calls)
	}
}

func TestCancelRunningRun(t *testing.T) {
	b, _ := storetest.Open(t)
	gate := make(chan struct{})
	step := &recorder{name: "step", block: gate, idempotent: true}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, threeToolRules), Tools: []tool.Tool{step}}})
	start(t, rt)
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	until(t, rt, rec.ID, journal.TypeToolStarted)
	if _, err := rt.Cancel(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusCanceled {
		t.Fatalf("status %s", rec.Status)
	}
}

func TestLimitsEndRunsWithClearErrors(t *testing.T) {
	loop := `
- reply:
    tool_calls: [{name: step, arguments: {n: 1}}]
`
	schema, err := tool.CompileSchema(json.RawMessage(`{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		rules    string
		agent    *agent.Agent
		wantCode string
		wantMsg  string
	}{
		{"max turns", loop, &agent.Agent{MaxTurns: 3}, agent.CodeMaxTurns, "agents.worker.max_turns"},
		{"token budget", loop, &agent.Agent{TokenBudget: 1}, agent.CodeTokenBudget, "agents.worker.token_budget"},
		{"model error", `- reply: {error: "boom", error_status: 400}`, &agent.Agent{}, agent.CodeModel, "boom"},
		{"output schema never met", `- reply: {text: "not json"}`, &agent.Agent{MaxTurns: 2, OutputSchema: schema}, agent.CodeMaxTurns, "max_turns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := storetest.Open(t)
			a := tc.agent
			a.Model = scriptedModel(t, tc.rules)
			a.Tools = []tool.Tool{&recorder{name: "step"}}
			rt := newRuntime(t, b, map[string]*agent.Agent{"worker": a})
			start(t, rt)
			rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "worker", Input: "go"})
			if err != nil {
				t.Fatal(err)
			}
			rec = wait(t, rt, rec.ID)
			if rec.Status != run.StatusFailed || rec.Error.Code != tc.wantCode || !strings.Contains(rec.Error.Message, tc.wantMsg) {
				t.Fatalf("got %s %+v, want failed %s mentioning %q", rec.Status, rec.Error, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func TestStructuredOutputIsValidated(t *testing.T) {
	b, _ := storetest.Open(t)
	schema, _ := tool.CompileSchema(json.RawMessage(`{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`))
	m := scriptedModel(t, `
- when: {last_user: "rejected"}
  reply: {text: "{\"answer\": \"fixed\"}"}
- reply: {text: "{\"wrong\": 1}"}
`)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: m, OutputSchema: schema}})
	start(t, rt)
	rec, _, _ := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "worker", Input: "go"})
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted || string(rec.OutputJSON) != `{"answer":"fixed"}` {
		t.Fatalf("%s %s %+v", rec.Status, rec.OutputJSON, rec.Error)
	}
	if got := strings.Join(eventTypes(t, rt, rec.ID), " "); !strings.Contains(got, journal.TypeOutputRejected) {
		t.Errorf("journal lacks the rejection: %s", got)
	}
}

func TestSchemaViolationGoesBackToTheModel(t *testing.T) {
	b, _ := storetest.Open(t)
	m := scriptedModel(t, `
- when: {last_tool: step}
  reply: {text: "tool said: {{.LastToolResult}}"}
- reply:
    tool_calls: [{name: step, arguments: {n: "not a number"}}]
`)
	step := &recorder{name: "step"}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{step}}})
	start(t, rt)
	rec, _, _ := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "worker", Input: "go"})
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted || !strings.Contains(rec.Output, "invalid arguments for step") {
		t.Fatalf("%s %q", rec.Status, rec.Output)
	}
	if len(step.Keys()) != 0 {
		t.Errorf("tool ran with invalid arguments")
	}
}

func TestIdempotentSubmission(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}})
	ctx := context.Background()
	a, created, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "x", IdempotencyKey: "order-1"})
	if err != nil || !created {
		t.Fatal(err)
	}
	again, created, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "x", IdempotencyKey: "order-1"})
	if err != nil || created || again.ID != a.ID {
		t.Fatalf("repeat: %v %v %v", again.ID, created, err)
	}
	other, _, _ := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "x", IdempotencyKey: "order-2"})
	if other.ID == a.ID {
		t.Fatal("different keys gave one run")
	}
	if _, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "nope", Input: "x"}); !errors.Is(err, engine.ErrUnknownAgent) || !strings.Contains(err.Error(), "known: worker") {
		t.Errorf("unknown agent: %v", err)
	}
	// A retry after the agent was renamed away still gets its run; a new
	// key does not.
	renamed := newRuntime(t, b, map[string]*agent.Agent{"helper": {Model: scriptedModel(t, `- reply: {text: hi}`)}})
	again, created, err = renamed.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "x", IdempotencyKey: "order-1"})
	if err != nil || created || again.ID != a.ID {
		t.Fatalf("repeat after a configuration change: %v %v %v", again, created, err)
	}
	if _, _, err := renamed.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "x", IdempotencyKey: "order-3"}); !errors.Is(err, engine.ErrUnknownAgent) {
		t.Errorf("new key for an unknown agent: %v", err)
	}
}

func TestRunSurvivesRestartOfTheBus(t *testing.T) {
	b, dir := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}})
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "worker", Input: "x"})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	// An accepted run is never lost: a new process on the same data runs it.
	b2 := storetest.Reopen(t, dir)
	rt2 := newRuntime(t, b2, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}})
	start(t, rt2)
	if rec = wait(t, rt2, rec.ID); rec.Status != run.StatusCompleted {
		t.Fatalf("%s", rec.Status)
	}
}

// A worker that died after journaling a run's end but before settling it
// leaves a terminal journal and a queued record: the run's queue entry,
// delivered again, settles it.
func TestUnsettledEndIsSettled(t *testing.T) {
	b, _ := storetest.Open(t)
	agents := map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}}
	id := prejournal(t, b, agents, "x",
		appendEv(t, journal.TypeModelResponse, journal.ModelResponse{Turn: 1, Message: model.Message{Role: model.RoleAssistant, Content: "hi"}}),
		appendEv(t, journal.TypeRunCompleted, journal.RunCompleted{Output: "hi"}),
	)
	settled := make(chan *run.Record, 1)
	rt, err := engine.New(b, engine.Options{Agents: agents, OnFinish: func(rec *run.Record, _ engine.RunStats) { settled <- rec }})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	select {
	case rec := <-settled:
		if rec.ID != id || rec.Status != run.StatusCompleted || rec.Output != "hi" {
			t.Fatalf("settled %+v", rec)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the run was never settled")
	}
	if got, err := rt.Get(context.Background(), id); err != nil || got.Status != run.StatusCompleted {
		t.Fatalf("stored record %+v %v", got, err)
	}
}

func TestBusyInstanceRejectsConcurrentInput(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`), RejectBusy: true}})
	ctx := context.Background()
	first, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "one", Instance: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "two", Instance: "k"}); !errors.Is(err, engine.ErrConflict) || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("second message while the first is pending: %v", err)
	}
	// Refused with an idempotency key: nothing is made, and the key is
	// free for the retry the refusal asks for.
	keyed := engine.SubmitRequest{Agent: "worker", Input: "two", Instance: "k", IdempotencyKey: "msg-2"}
	if _, _, err := rt.Submit(ctx, keyed); !errors.Is(err, engine.ErrConflict) || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("keyed message while the first is pending: %v", err)
	}
	start(t, rt)
	if rec := wait(t, rt, first.ID); rec.Status != run.StatusCompleted {
		t.Fatalf("first: %s", rec.Status)
	}
	if runs, _, err := rt.List(ctx, run.Filter{Agent: "worker"}); err != nil || len(runs) != 1 {
		t.Fatalf("runs after the refusals: %d %v", len(runs), err)
	}
	retried, created, err := rt.Submit(ctx, keyed)
	if err != nil || !created {
		t.Fatalf("the keyed message again, once the turn ended: %v %v", created, err)
	}
	if rec := wait(t, rt, retried.ID); rec.Status != run.StatusCompleted {
		t.Fatalf("retried: %s %+v", rec.Status, rec.Error)
	}
	if _, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "three", Instance: "k"}); err != nil {
		t.Fatalf("a message after the turn ended: %v", err)
	}
}

func TestInterruptCancelsTheBusyTurnAndCarriesItsInput(t *testing.T) {
	b, _ := storetest.Open(t)
	gate := make(chan struct{})
	defer close(gate)
	slow := &recorder{name: "step", idempotent: true, block: gate, entered: make(chan string, 1)}
	m := scriptedModel(t, `
- when: {last_user: "(?s)first.*second"}
  reply: {text: "answering both"}
- when: {last_user: "^first$"}
  reply: {tool_calls: [{name: step, arguments: {n: 1}}]}
- reply: {text: "other"}
`)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{slow}, InterruptBusy: true}})
	start(t, rt)
	ctx := context.Background()
	first, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "first", Instance: "k"})
	if err != nil {
		t.Fatal(err)
	}
	<-slow.entered // the first turn is busy in its tool
	second, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "second", Instance: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if rec := wait(t, rt, first.ID); rec.Status != run.StatusCanceled {
		t.Fatalf("first: %s", rec.Status)
	}
	if rec := wait(t, rt, second.ID); rec.Status != run.StatusCompleted || rec.Output != "answering both" || rec.Input != "first\n\nsecond" {
		t.Fatalf("second: %s %q input %q", rec.Status, rec.Output, rec.Input)
	}
}
