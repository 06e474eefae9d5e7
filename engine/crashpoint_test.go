package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// Crash points. Each test writes what a process killed at one step of a
// submission or a command leaves in the store, then starts a node on it:
// the submission or command is applied exactly once (or was never
// accepted), and nothing is left stuck.

func submissionJSON(agentName, input, instance string) string {
	s := fmt.Sprintf(`{"agent":%q,"input":%q,"submitted":%q`, agentName, input, time.Now().UTC().Format(time.RFC3339Nano))
	if instance != "" {
		s += fmt.Sprintf(`,"instance":%q,"instance_id":%q`, instance, engine.InstanceID(agentName, instance))
	}
	return s + "}"
}

// Killed after claiming an idempotency key, before the run's write: the
// router completes the submission, and the key's retry finds that run.
func TestCrashAfterClaimingAKey(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	id := engine.NewRunID()
	claim := fmt.Sprintf(`{"run_id":%q,"submission":%s}`, id, submissionJSON("worker", "go", ""))
	if _, err := b.ClaimKey(ctx, "submit/order-7", store.KeyKind, []byte(claim)); err != nil {
		t.Fatal(err)
	}
	finished := make(chan *run.Record, 1)
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}},
		OnFinish: func(rec *run.Record, _ engine.RunStats) { finished <- rec }})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	// Nothing but the router knows the run: wait for its end.
	select {
	case rec := <-finished:
		if rec.ID != id || rec.Status != run.StatusCompleted {
			t.Fatalf("finished %s %s", rec.ID, rec.Status)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the claimed submission never ran")
	}
	rec, created, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go", IdempotencyKey: "order-7"})
	if err != nil || created || rec.ID != id {
		t.Fatalf("the key's retry: %v created=%v %v", rec, created, err)
	}
}

// Killed after a turn reached its instance, before the run's own
// submission and record: the turn runs, in its place, and is listed.
func TestCrashAfterATurnReachedItsInstance(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	id := engine.NewRunID()
	turn := fmt.Sprintf(`{"run_id":%q,"submission":%s}`, id, submissionJSON("worker", "go", "k"))
	if _, err := b.Send(ctx, store.Input{To: engine.InstanceID("worker", "k"), Kind: "turn", Data: []byte(turn), MsgID: "turn/" + id}); err != nil {
		t.Fatal(err)
	}
	finished := make(chan *run.Record, 1)
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}},
		OnFinish: func(rec *run.Record, _ engine.RunStats) { finished <- rec }})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	select {
	case rec := <-finished:
		if rec.ID != id || rec.Status != run.StatusCompleted || rec.Turn != 1 {
			t.Fatalf("finished %s %s turn %d", rec.ID, rec.Status, rec.Turn)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the turn never ran")
	}
	recs, _, err := rt.List(ctx, run.Filter{Agent: "worker"})
	if err != nil || len(recs) != 1 || recs[0].ID != id || recs[0].Instance != "k" {
		t.Fatalf("listed %+v %v", recs, err)
	}
}

// Killed after an instance journaled a turn's start, before sending it:
// the instance's next worker sends it.
func TestCrashBeforeATurnsStartWasSent(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	id := engine.NewRunID()
	ins, seq := sendTurn(t, b, id)
	if _, err := b.Send(ctx, store.Input{To: id, Kind: "submit.turn", Data: []byte(submissionJSON("worker", "go", "k")), MsgID: "submit/" + id}); err != nil {
		t.Fatal(err)
	}
	w := b.JournalFrom(ins, nil)
	mustAppend(t, w, seq, journal.TypeTurnQueued, journal.TurnQueued{RunID: id, Input: "go", Submission: json.RawMessage(submissionJSON("worker", "go", "k"))})
	mustAppend(t, w, 0, journal.TypeTurnStarted, journal.TurnStarted{RunID: id, Turn: 1, Input: "go"})
	// Its work queue entry was never acknowledged.
	if _, err := b.Ring(ctx, ins, "turn"); err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}})
	start(t, rt)
	if rec := wait(t, rt, id); rec.Status != run.StatusCompleted || rec.Turn != 1 {
		t.Fatalf("status %s turn %d", rec.Status, rec.Turn)
	}
}

// sendTurn sends instance worker/k a turn for run id, as a submitter
// would, and returns the instance and the turn's position.
func sendTurn(t *testing.T, b *store.Store, id string) (ins string, seq uint64) {
	t.Helper()
	ins = engine.InstanceID("worker", "k")
	turn := fmt.Sprintf(`{"run_id":%q,"submission":%s}`, id, submissionJSON("worker", "go", "k"))
	seq, err := b.Send(context.Background(), store.Input{To: ins, Kind: "turn", Data: []byte(turn), MsgID: "turn/" + id})
	if err != nil {
		t.Fatal(err)
	}
	return ins, seq
}

// failedTooLarge checks that rec is run id, a turn of worker/k that failed
// with payload_too_large.
func failedTooLarge(t *testing.T, rec *run.Record, id string) {
	t.Helper()
	if rec.ID != id || rec.Status != run.StatusFailed || rec.Error.Code != agent.CodeTooLarge || rec.Agent != "worker" || rec.Instance != "k" {
		t.Fatalf("run %s: %s %+v, agent %q instance %q", rec.ID, rec.Status, rec.Error, rec.Agent, rec.Instance)
	}
}

// endOfOnlyRun starts a runtime on b and returns the first run it ends
// (a run not found before it starts cannot be waited for by id).
func endOfOnlyRun(t *testing.T, b *store.Store) *run.Record {
	t.Helper()
	finished := make(chan *run.Record, 1)
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}},
		OnFinish: func(rec *run.Record, _ engine.RunStats) {
			select {
			case finished <- rec:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	select {
	case rec := <-finished:
		return rec
	case <-time.After(20 * time.Second):
		t.Fatal("no run ended")
		return nil
	}
}

// Killed after an instance refused a turn too large for its journal,
// before telling the turn's run (and before its submitter wrote the run's
// own copy of its submission): the instance's next worker tells it, with
// the submission, and the run fails rather than stay queued.
func TestCrashAfterAnInstanceRefusedATurn(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	id := engine.NewRunID()
	ins, seq := sendTurn(t, b, id)
	mustAppend(t, b.JournalFrom(ins, nil), seq, journal.TypeInputRefused,
		journal.InputRefused{Seq: seq, Kind: "turn", Code: agent.CodeTooLarge, Reason: "the turn is too large", RunID: id})
	if _, err := b.Ring(ctx, ins, "turn"); err != nil {
		t.Fatal(err)
	}
	failedTooLarge(t, endOfOnlyRun(t, b), id)
}

// Killed between a refused run's run.started and its run.failed: the next
// worker fails it; its agent never runs.
func TestCrashBetweenARefusedStartAndItsFailure(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	id := engine.NewRunID()
	mustAppend(t, b.JournalFrom(id, nil), 0, journal.TypeRunStarted, journal.RunStarted{Agent: "worker", Instance: "k", Input: "go",
		Refused: &journal.RunFailed{Code: engine.CodeInstanceBusy, Message: "instance worker/k is busy"}})
	if _, err := b.Ring(ctx, id, "start"); err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}})
	start(t, rt)
	if rec := wait(t, rt, id); rec.Status != run.StatusFailed || rec.Error.Code != engine.CodeInstanceBusy || rec.Steps != 2 {
		t.Fatalf("status %s %+v, %d steps", rec.Status, rec.Error, rec.Steps)
	}
}

// A turn's refusal reaches its run before the run's own copy of its
// submission (its submitter died, and the router wrote it late): the
// refusal carries the submission, so the run fails rather than wait for
// it.
func TestARefusalBeforeTheSubmissionFailsTheRun(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	id := engine.NewRunID()
	refusal := fmt.Sprintf(`{"turn":0,"refuse":"the turn's input is larger than the NATS server's max_payload","code":%q,"submission":%s}`,
		agent.CodeTooLarge, submissionJSON("worker", "go… (cut: 70000 bytes in all)", "k"))
	if _, err := b.Send(ctx, store.Input{To: id, Kind: "start", Data: []byte(refusal), MsgID: "start/" + id}); err != nil {
		t.Fatal(err)
	}
	failedTooLarge(t, endOfOnlyRun(t, b), id)
}

// Killed after a decision was journaled, before the run went on: the
// decision is applied once, and the call made once.
func TestCrashAfterADecisionWasJournaled(t *testing.T) {
	b, dir := storetest.Open(t)
	ctx := context.Background()
	step := &guarded{recorder{name: "step"}}
	agents := func() map[string]*agent.Agent {
		return map[string]*agent.Agent{"worker": {Model: scriptedModel(t, approvalRules), Tools: []tool.Tool{step}}}
	}
	rt := newRuntime(t, b, agents())
	start(t, rt)
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusWaiting || len(rec.Approvals) != 1 {
		t.Fatalf("not waiting for approval: %s", rec.Status)
	}
	rt.Stop()
	ask := rec.Approvals[0]
	decide := fmt.Sprintf(`{"approval_id":%q,"decision":"approve"}`, ask.ApprovalID)
	seq, err := b.Send(ctx, store.Input{To: rec.ID, Kind: "decide", Data: []byte(decide)})
	if err != nil {
		t.Fatal(err)
	}
	events, err := b.LoadJournal(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b.JournalFrom(rec.ID, events), seq, journal.TypeApprovalDecided,
		journal.ApprovalDecided{ApprovalID: ask.ApprovalID, CallID: ask.CallID, Decision: journal.Approve})
	b.Close()
	b = storetest.Reopen(t, dir)
	rt = newRuntime(t, b, agents())
	start(t, rt)
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted || len(step.Keys()) != 1 {
		t.Fatalf("status %s, %d calls", rec.Status, len(step.Keys()))
	}
	if n := strings.Count(strings.Join(eventTypes(t, rt, rec.ID), " "), journal.TypeApprovalDecided); n != 1 {
		t.Fatalf("%d decisions journaled", n)
	}
}

// Killed after a cancel was journaled, before the run ended: it ends
// canceled, once.
func TestCrashAfterACancelWasJournaled(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	agents := map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}}
	id := prejournal(t, b, agents, "go")
	seq, err := b.Send(ctx, store.Input{To: id, Kind: "cancel", Data: []byte(`{}`), MsgID: "cancel/" + id})
	if err != nil {
		t.Fatal(err)
	}
	events, err := b.LoadJournal(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b.JournalFrom(id, events), seq, journal.TypeCancelRequested, journal.CancelRequested{Reason: "canceled by request"})
	rt := newRuntime(t, b, agents)
	start(t, rt)
	if rec := wait(t, rt, id); rec.Status != run.StatusCanceled {
		t.Fatalf("status %s", rec.Status)
	}
	if got := strings.Join(eventTypes(t, rt, id), " "); got != "run.started cancel.requested run.canceled" {
		t.Fatalf("journal %s", got)
	}
}

// A child's settle killed after its report and retried later than the
// report's deduplication: the parent takes the report once.
func TestAReportSentTwiceIsTakenOnce(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	agents := map[string]*agent.Agent{
		"worker": {Model: scriptedModel(t, `
- when: {last_role: tool}
  reply: {text: "report after {{.ToolResults}} results"}
`), SubAgents: []agent.SubAgent{{Agent: "researcher"}}},
		"researcher": {Model: scriptedModel(t, `- reply: {text: unused}`)},
	}
	var kid string
	id := prejournal(t, b, agents, "go", func(w *store.Journal, runID string) {
		kid = engine.ChildRunID(runID, "call_1")
		mustAppend(t, w, 0, journal.TypeModelResponse, toolCall("call_1", "researcher", `{"task":"t"}`))
		mustAppend(t, w, 0, journal.TypeToolStarted, journal.ToolStarted{CallID: "call_1", Name: "researcher", Arguments: json.RawMessage(`{"task":"t"}`), Idempotent: true, Attempt: 1, ChildRunID: kid})
		mustAppend(t, w, 0, journal.TypeRunWaiting, journal.RunWaiting{Children: []string{kid}})
	})
	rep := fmt.Sprintf(`{"run_id":%q,"call_id":"call_1","status":"completed","output":"found"}`, kid)
	for _, msgID := range []string{"report/" + kid, "report/" + kid + "/again"} {
		if _, err := b.Send(ctx, store.Input{To: id, Kind: "report", Data: []byte(rep), MsgID: msgID}); err != nil {
			t.Fatal(err)
		}
	}
	rt := newRuntime(t, b, agents)
	start(t, rt)
	if rec := wait(t, rt, id); rec.Status != run.StatusCompleted || rec.Output != "report after 1 results" {
		t.Fatalf("parent: %s %q", rec.Status, rec.Output)
	}
	if n := strings.Count(strings.Join(eventTypes(t, rt, id), " "), journal.TypeChildrenReported); n != 1 {
		t.Fatalf("%d children.reported entries", n)
	}
}

func toolCall(id, name, args string) journal.ModelResponse {
	return journal.ModelResponse{Turn: 1, Message: model.Message{Role: model.RoleAssistant,
		ToolCalls: []model.ToolCall{{ID: id, Name: name, Arguments: json.RawMessage(args)}}}}
}

// Killed after an operator's resolution was journaled, before the run went
// on: applied once (the skipped call is not made).
func TestCrashAfterAResolutionWasJournaled(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	step := &recorder{name: "step"}
	agents := map[string]*agent.Agent{"worker": {Model: scriptedModel(t, threeToolRules), Tools: []tool.Tool{step}}}
	id := prejournal(t, b, agents, "go",
		appendEv(t, journal.TypeModelResponse, toolCallTurn(1, 0)),
		appendEv(t, journal.TypeToolStarted, journal.ToolStarted{CallID: "call_1_0", Name: "step", Arguments: json.RawMessage(`{"n":0}`), IdempotencyKey: "orig/3", Attempt: 1}),
		appendEv(t, journal.TypeRunInDoubt, journal.RunInDoubt{CallID: "call_1_0", Name: "step", Reason: "its worker died"}),
	)
	seq, err := b.Send(ctx, store.Input{To: id, Kind: "resolve", Data: []byte(`{"action":"skip","result":"done by hand"}`)})
	if err != nil {
		t.Fatal(err)
	}
	events, err := b.LoadJournal(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b.JournalFrom(id, events), seq, journal.TypeToolResolved, journal.ToolResolved{CallID: "call_1_0", Action: journal.ResolveSkip, Result: "done by hand"})
	rt := newRuntime(t, b, agents)
	start(t, rt)
	if rec := wait(t, rt, id); rec.Status != run.StatusCompleted || len(step.Keys()) != 2 {
		t.Fatalf("status %s, calls %v (the skipped one must not be made)", rec.Status, step.Keys())
	}
	if n := strings.Count(strings.Join(eventTypes(t, rt, id), " "), journal.TypeToolResolved); n != 1 {
		t.Fatalf("%d resolutions journaled", n)
	}
}

// Killed after an answer was journaled, before the flow went on: applied
// once.
func TestCrashAfterAnAnswerWasJournaled(t *testing.T) {
	b, dir := storetest.Open(t)
	ctx := context.Background()
	flows := func() map[string]*flow.Flow {
		return map[string]*flow.Flow{"f": {
			Start: []string{"review"},
			Nodes: map[string]*flow.Node{
				"review": {Ask: &flow.Ask{Prompt: "Ship {{.state.input}}?"}, Output: "verdict", Route: []flow.Edge{{To: "ship"}}},
				"ship":   {Func: func(context.Context, flow.FuncInput) (any, error) { return "shipped", nil }, Output: "result"},
			},
			Output: "result",
		}}
	}
	rt := flowRuntimeOn(t, b, flows(), nil)
	rec := runFlow(t, rt, "f", "v2", "")
	if rec.Status != run.StatusWaiting || len(rec.InputRequests) != 1 {
		t.Fatalf("not asking: %s", rec.Status)
	}
	rt.Stop()
	key := rec.InputRequests[0].Key
	seq, err := b.Send(ctx, store.Input{To: rec.ID, Kind: "answer", Data: []byte(fmt.Sprintf(`{"key":%q,"value":"yes"}`, key))})
	if err != nil {
		t.Fatal(err)
	}
	events, err := b.LoadJournal(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b.JournalFrom(rec.ID, events), seq, journal.TypeInputReceived, journal.InputReceived{Key: key, Value: json.RawMessage(`"yes"`)})
	b.Close()
	b = storetest.Reopen(t, dir)
	rt = flowRuntimeOn(t, b, flows(), nil)
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted || rec.Output != "shipped" {
		t.Fatalf("%s %q %+v", rec.Status, rec.Output, rec.Error)
	}
	if n := strings.Count(strings.Join(eventTypes(t, rt, rec.ID), " "), journal.TypeInputReceived); n != 1 {
		t.Fatalf("%d answers journaled", n)
	}
}
