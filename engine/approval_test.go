package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/policy"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// guarded is a recorder whose calls need approval.
type guarded struct{ recorder }

func (g *guarded) Info() tool.Info {
	i := g.recorder.Info()
	i.NeedsApproval = true
	return i
}

const approvalRules = `
- when: {last_tool: step}
  reply: {text: "tool said: {{.LastToolResult}}"}
- reply:
    tool_calls: [{name: step, arguments: {n: 1}}]
`

func TestApprovalParksTheRunUntilAPersonDecides(t *testing.T) {
	tests := []struct {
		name     string
		decision run.Decision
		want     string
		calls    int
	}{
		{"approve", run.Decision{Decision: journal.Approve}, `tool said: result for {"n":1}`, 1},
		{"approve with edits", run.Decision{Decision: journal.Approve, Arguments: json.RawMessage(`{"n":7}`)}, `tool said: result for {"n":7}`, 1},
		{"deny", run.Decision{Decision: journal.Deny, Reason: "not today"}, "tool said: a person denied this call: not today", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, dir := storetest.Open(t)
			step := &guarded{recorder{name: "step"}}
			agents := func() map[string]*agent.Agent {
				return map[string]*agent.Agent{"worker": {Model: scriptedModel(t, approvalRules), Tools: []tool.Tool{step}}}
			}
			rt := newRuntime(t, b, agents())
			start(t, rt)
			ctx := context.Background()
			rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
			if err != nil {
				t.Fatal(err)
			}
			rec = wait(t, rt, rec.ID)
			if rec.Status != run.StatusWaiting || len(rec.Approvals) != 1 || len(step.Keys()) != 0 {
				t.Fatalf("want waiting with one approval and no call, got %s %+v calls %v", rec.Status, rec.Approvals, step.Keys())
			}
			// The wait survives a restart of the whole node.
			rt.Stop()
			b.Close()
			b = storetest.Reopen(t, dir)
			rt = newRuntime(t, b, agents())
			start(t, rt)
			pending, err := rt.PendingApprovals(ctx, "")
			if err != nil || len(pending) != 1 || pending[0].RunID != rec.ID || pending[0].Name != "step" {
				t.Fatalf("pending after restart: %+v %v", pending, err)
			}
			if _, err := rt.Decide(ctx, rec.ID, "nope", tc.decision); !errors.Is(err, engine.ErrConflict) {
				t.Errorf("unknown approval id: %v", err)
			}
			if _, err := rt.Decide(ctx, rec.ID, pending[0].ApprovalID, tc.decision); err != nil {
				t.Fatal(err)
			}
			other := run.Decision{Decision: journal.Deny}
			if tc.decision.Decision == journal.Deny {
				other.Decision = journal.Approve
			}
			if _, err := rt.Decide(ctx, rec.ID, pending[0].ApprovalID, other); !errors.Is(err, engine.ErrConflict) || !strings.Contains(err.Error(), "is decided already: "+tc.decision.Decision) {
				t.Errorf("a different second decision on one approval: %v", err)
			}
			rec = wait(t, rt, rec.ID)
			if rec.Status != run.StatusCompleted || rec.Output != tc.want || len(step.Keys()) != tc.calls {
				t.Fatalf("got %s %q calls %v, want %q with %d calls", rec.Status, rec.Output, step.Keys(), tc.want, tc.calls)
			}
			if got := strings.Join(eventTypes(t, rt, rec.ID), " "); !strings.Contains(got, "approval.requested run.waiting approval.decided") {
				t.Errorf("journal %s", got)
			}
		})
	}
}

func TestCancelAWaitingRun(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, approvalRules), Tools: []tool.Tool{&guarded{recorder{name: "step"}}}}})
	start(t, rt)
	ctx := context.Background()
	rec, _, _ := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusWaiting {
		t.Fatalf("status %s", rec.Status)
	}
	if rec, err := rt.Cancel(ctx, rec.ID); err != nil || rec.Status != run.StatusCanceled {
		t.Fatalf("cancel: %+v %v", rec, err)
	}
	if _, err := rt.Decide(ctx, rec.ID, "1-0", run.Decision{Decision: journal.Approve}); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("deciding a canceled run: %v", err)
	}
}

// The same decision sent twice at once is taken once; the other is told
// the approval was decided, whatever the run did in between.
func TestConcurrentDecisionsOnOneApproval(t *testing.T) {
	b, _ := storetest.Open(t)
	step := &guarded{recorder{name: "step"}}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, approvalRules), Tools: []tool.Tool{step}}})
	start(t, rt)
	ctx := context.Background()
	for range 5 {
		rec, _, _ := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
		if rec = wait(t, rt, rec.ID); rec.Status != run.StatusWaiting {
			t.Fatalf("status %s", rec.Status)
		}
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := rt.Decide(ctx, rec.ID, "1-0", run.Decision{Decision: journal.Approve})
				errs <- err
			}()
		}
		var ok, decided int
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				ok++
			case errors.Is(err, engine.ErrConflict) && strings.Contains(err.Error(), `approval "1-0" of run `+rec.ID+" is decided already: approve"):
				decided++
			default:
				t.Errorf("second decision: %v", err)
			}
		}
		if ok != 1 || decided != 1 {
			t.Fatalf("%d accepted, %d told it was decided", ok, decided)
		}
		if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted {
			t.Fatalf("status %s", rec.Status)
		}
	}
	if n := len(step.Keys()); n != 5 {
		t.Fatalf("%d calls, want 5", n)
	}
}

// TestDecisionRacingACancel: a decision sent while a cancel ends the run
// is either applied (its approval.decided is in the journal) or refused;
// never accepted and then lost.
func TestDecisionRacingACancel(t *testing.T) {
	b, _ := storetest.Open(t)
	step := &guarded{recorder{name: "step"}}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, approvalRules), Tools: []tool.Tool{step}}})
	start(t, rt)
	ctx := context.Background()
	// The run ends between the decision's check and its sending.
	rec, _, _ := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusWaiting {
		t.Fatalf("status %s", rec.Status)
	}
	engine.SetCommandHook(func(kind string) {
		if kind == "decide" {
			if _, err := rt.Cancel(ctx, rec.ID); err != nil {
				t.Errorf("cancel: %v", err)
			}
			wait(t, rt, rec.ID)
		}
	})
	_, err := rt.Decide(ctx, rec.ID, "1-0", run.Decision{Decision: journal.Approve})
	engine.SetCommandHook(nil)
	if !errors.Is(err, engine.ErrConflict) || !strings.Contains(err.Error(), rec.ID) {
		t.Fatalf("a decision for a run canceled while it was sent: %v", err)
	}
	// And as it happens.
	var applied, refused int
	for range 20 {
		rec, _, _ := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
		if rec = wait(t, rt, rec.ID); rec.Status != run.StatusWaiting {
			t.Fatalf("status %s", rec.Status)
		}
		canceled := make(chan error, 1)
		go func() {
			_, err := rt.Cancel(ctx, rec.ID)
			canceled <- err
		}()
		_, err := rt.Decide(ctx, rec.ID, "1-0", run.Decision{Decision: journal.Approve})
		if err := <-canceled; err != nil {
			t.Fatalf("cancel: %v", err)
		}
		wait(t, rt, rec.ID)
		events, jerr := rt.Events(ctx, rec.ID)
		if jerr != nil {
			t.Fatal(jerr)
		}
		decided := slices.ContainsFunc(events, func(ev journal.Event) bool { return ev.Type == journal.TypeApprovalDecided })
		switch {
		case err == nil && decided:
			applied++
		case errors.Is(err, engine.ErrConflict) && !decided:
			refused++
		default:
			t.Fatalf("decision answered %v; approval.decided in the journal: %v", err, decided)
		}
	}
	t.Logf("%d decisions applied, %d refused", applied, refused)
}

// Two approvals in one turn, decided one at a time, with a restart-like
// redelivery in between, end with both calls decided exactly once.
func TestTwoApprovalsInOneTurn(t *testing.T) {
	b, _ := storetest.Open(t)
	step := &guarded{recorder{name: "step"}}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `
- when: {tool_results: 2}
  reply: {text: "both answered"}
- reply:
    tool_calls: [{name: step, arguments: {n: 1}}, {name: step, arguments: {n: 2}}]
`), Tools: []tool.Tool{step}}})
	start(t, rt)
	ctx := context.Background()
	rec, _, _ := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusWaiting || len(rec.Approvals) != 2 {
		t.Fatalf("want two pending approvals: %s %+v", rec.Status, rec.Approvals)
	}
	first, second := rec.Approvals[0].ApprovalID, rec.Approvals[1].ApprovalID
	if _, err := rt.Decide(ctx, rec.ID, first, run.Decision{Decision: journal.Deny, Reason: "no"}); err != nil {
		t.Fatalf("first decision: %v", err)
	}
	// The run parks again on the approval still open.
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusWaiting || len(rec.Approvals) != 1 || rec.Approvals[0].ApprovalID != second {
		t.Fatalf("after the first decision: %s %+v", rec.Status, rec.Approvals)
	}
	if rec, err := rt.Decide(ctx, rec.ID, second, run.Decision{Decision: journal.Approve}); err != nil || rec.Status == run.StatusWaiting {
		t.Fatalf("second decision: %+v %v", rec, err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted || len(step.Keys()) != 1 {
		t.Fatalf("got %s with calls %v, want completed with the approved call only", rec.Status, step.Keys())
	}
}

// An approved edit holds for every attempt of the call: a retry after a
// crash mid-call uses the person's arguments, not the model's.
func TestEditedArgumentsSurviveARetry(t *testing.T) {
	b, _ := storetest.Open(t)
	step := &guarded{recorder{name: "step", idempotent: true}}
	agents := map[string]*agent.Agent{"worker": {Model: scriptedModel(t, approvalRules), Tools: []tool.Tool{step}}}
	edited := json.RawMessage(`{"n":10}`)
	id := prejournal(t, b, agents, "go",
		appendEv(t, journal.TypeModelResponse, toolCallTurn(1, 1000)),
		appendEv(t, journal.TypeApprovalRequested, journal.ApprovalRequested{ApprovalID: "1-0", CallID: "call_1_0", Name: "step", Arguments: json.RawMessage(`{"n":1000}`)}),
		appendEv(t, journal.TypeApprovalDecided, journal.ApprovalDecided{ApprovalID: "1-0", CallID: "call_1_0", Decision: journal.Approve, Arguments: edited}),
		appendEv(t, journal.TypeToolStarted, journal.ToolStarted{CallID: "call_1_0", Name: "step", Arguments: edited, IdempotencyKey: "k/5", Idempotent: true, Attempt: 1}),
	)
	rt := newRuntime(t, b, agents)
	start(t, rt)
	rec := wait(t, rt, id)
	if rec.Status != run.StatusCompleted || rec.Output != `tool said: result for {"n":10}` {
		t.Fatalf("got %s %q", rec.Status, rec.Output)
	}
}

func TestEditedArgumentsAreChecked(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, approvalRules), Tools: []tool.Tool{&guarded{recorder{name: "step"}}}}})
	start(t, rt)
	ctx := context.Background()
	rec, _, _ := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusWaiting {
		t.Fatalf("status %s", rec.Status)
	}
	for _, args := range []string{`[1]`, `5`, `null`, `{"n":"ten"}`} {
		_, err := rt.Decide(ctx, rec.ID, "1-0", run.Decision{Decision: journal.Approve, Arguments: json.RawMessage(args)})
		if !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("arguments %s: %v, want invalid", args, err)
		}
	}
}

// A CEL condition asks only for the calls where it holds; the turn still
// waits for that one decision before any of its calls run.
func TestConditionalApproval(t *testing.T) {
	b, _ := storetest.Open(t)
	step := &recorder{name: "step"}
	cond, err := policy.Compile("args.n > 5")
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `
- when: {last_role: tool}
  reply: {text: "done"}
- reply:
    tool_calls: [{name: step, arguments: {n: 1}}, {name: step, arguments: {n: 7}}]
`), Tools: []tool.Tool{step}, Approvals: map[string]agent.ApprovalRule{"step": {When: cond}}}})
	start(t, rt)
	ctx := context.Background()
	rec, _, _ := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusWaiting || len(rec.Approvals) != 1 || string(rec.Approvals[0].Arguments) != `{"n":7}` ||
		rec.Approvals[0].Reason != "approval condition: args.n > 5" || len(step.Keys()) != 0 {
		t.Fatalf("%s %+v calls %v", rec.Status, rec.Approvals, step.Keys())
	}
	if _, err := rt.Decide(ctx, rec.ID, rec.Approvals[0].ApprovalID, run.Decision{Decision: journal.Approve}); err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted || len(step.Keys()) != 2 {
		t.Fatalf("%s calls %v", rec.Status, step.Keys())
	}
}

// Nobody decides: the deadline's timer wakes the run and the default
// decision applies.
func TestApprovalTimeoutAppliesTheDefault(t *testing.T) {
	b, _ := storetest.Open(t)
	step := &recorder{name: "step"}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, approvalRules),
		Tools: []tool.Tool{step}, Approvals: map[string]agent.ApprovalRule{"step": {Timeout: time.Second}}}})
	start(t, rt)
	ctx := context.Background()
	rec, _, _ := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	began := time.Now()
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusWaiting || rec.WakeAt == nil || rec.Approvals[0].Deadline == nil || rec.Approvals[0].OnTimeout != journal.Deny {
		t.Fatalf("want a waiting run with a deadline: %s %+v", rec.Status, rec.Approvals)
	}
	// The next settled state comes from the timer, with nobody deciding.
	rec = waitTerminal(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted || rec.Output != "tool said: nobody decided on this call in time, so it was denied by default" || len(step.Keys()) != 0 {
		t.Fatalf("%s %q calls %v", rec.Status, rec.Output, step.Keys())
	}
	if d := time.Since(began); d < time.Second {
		t.Errorf("the default applied after %s, before the 1s deadline", d)
	}
}
