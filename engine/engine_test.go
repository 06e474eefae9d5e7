package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/model/scripted/scriptedtest"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// counting wraps a provider and counts its calls.
type counting struct {
	model.Provider
	calls atomic.Int64
}

func (c *counting) Generate(ctx context.Context, req *model.Request, sink func(model.Delta)) (*model.Response, error) {
	c.calls.Add(1)
	return c.Provider.Generate(ctx, req, sink)
}

func scriptedModel(t testing.TB, rules string) *counting {
	t.Helper()
	return &counting{Provider: scriptedtest.Model(t, rules)}
}

// recorder is a tool that records its calls.
type recorder struct {
	name       string
	idempotent bool
	mu         sync.Mutex
	keys       []string
	block      chan struct{} // when set, calls wait for it to close
	entered    chan string   // when set, each call sends its key on entry
	result     string        // when set, every call returns it
}

func (r *recorder) Info() tool.Info {
	return tool.Info{Name: r.name, Description: "records calls", Idempotent: r.idempotent,
		Schema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`)}
}

func (r *recorder) Call(ctx context.Context, c *tool.Call) (tool.Result, error) {
	r.mu.Lock()
	r.keys = append(r.keys, c.IdempotencyKey)
	r.mu.Unlock()
	if r.entered != nil {
		r.entered <- c.IdempotencyKey
	}
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return tool.Result{}, ctx.Err()
		}
	}
	if r.result != "" {
		return tool.Result{Content: r.result}, nil
	}
	return tool.Result{Content: fmt.Sprintf("result for %s", c.Arguments)}, nil
}

func (r *recorder) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...)
}

const threeToolRules = `
- when: {tool_results: 3}
  reply: {text: "done after {{.ToolResults}} tools: {{.LastToolResult}}"}
- when: {min_tool_results: 0}
  reply:
    tool_calls:
      - name: step
        arguments: '{"n": {{.ToolResults}}}'
`

func newRuntime(t *testing.T, b *store.Store, agents map[string]*agent.Agent) *engine.Engine {
	t.Helper()
	rt, err := engine.New(b, engine.Options{Agents: agents, Workers: 16})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func start(t *testing.T, rt *engine.Engine) {
	t.Helper()
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
}

func wait(t *testing.T, rt *engine.Engine, id string) *run.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, err := rt.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for %s: %v (last status %v)", id, err, rec)
	}
	return rec
}

// until waits for an entry of type typ in a run's journal ("": its end).
func until(t *testing.T, rt *engine.Engine, id, typ string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for u, err := range rt.Watch(ctx, engine.WatchOptions{Run: id}) {
		if err != nil {
			t.Fatal(err)
		}
		if u.Event != nil && (u.Event.Type == typ || typ == "" && journal.Terminal(u.Event.Type)) {
			return
		}
	}
	t.Fatalf("no %q in run %s", typ, id)
}

func eventTypes(t *testing.T, rt *engine.Engine, id string) []string {
	t.Helper()
	evs, err := rt.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	return types
}

func TestRunCompletesAndJournalsEveryStep(t *testing.T) {
	b, _ := storetest.Open(t)
	m := scriptedModel(t, threeToolRules)
	step := &recorder{name: "step"}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{step}}})
	start(t, rt)
	rec, created, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil || !created {
		t.Fatalf("submit: %v %v", created, err)
	}
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted {
		t.Fatalf("status %s, error %+v", rec.Status, rec.Error)
	}
	if want := `done after 3 tools: result for {"n":2}`; rec.Output != want {
		t.Errorf("output %q, want %q", rec.Output, want)
	}
	want := "run.started model.response tool.started tool.finished model.response tool.started tool.finished model.response tool.started tool.finished model.response run.completed"
	if got := strings.Join(eventTypes(t, rt, rec.ID), " "); got != want {
		t.Errorf("journal:\n got %s\nwant %s", got, want)
	}
	if n := m.calls.Load(); n != 4 {
		t.Errorf("model calls %d, want 4", n)
	}
	keys := step.Keys()
	if len(keys) != 3 || keys[0] != rec.ID+"/3" {
		t.Errorf("idempotency keys %v, want 3 starting %s/3", keys, rec.ID)
	}
	if rec.Usage.Total() == 0 || rec.Steps != 12 || rec.StartedAt == nil || rec.EndedAt == nil {
		t.Errorf("record incomplete: %+v", rec)
	}
}

// prejournal submits a run on a runtime without workers and writes the
// given events into its journal, as a worker that died would have left them.
func prejournal(t *testing.T, b *store.Store, agents map[string]*agent.Agent, input string, events ...func(w *store.Journal, runID string)) string {
	t.Helper()
	rt := newRuntime(t, b, agents)
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "worker", Input: input})
	if err != nil {
		t.Fatal(err)
	}
	w := takeSubmission(t, b, rec.ID)
	if _, err := w.Append(context.Background(), journal.TypeRunStarted, journal.RunStarted{Agent: "worker", Input: input}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		ev(w, rec.ID)
	}
	return rec.ID
}

// takeSubmission opens a submitted run's empty journal as its writer
// would. (A submission is the run's entry on the work queue, not an input
// with a position.)
func takeSubmission(t *testing.T, b *store.Store, id string) *store.Journal {
	t.Helper()
	return b.JournalFrom(id, nil)
}

// question waits for a question a tool call of a run (or of one of its
// descendants) asks.
func question(t *testing.T, rt *engine.Engine, id string) journal.InputRequested {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for u, err := range rt.Watch(ctx, engine.WatchOptions{Run: id, Tree: true}) {
		if err != nil {
			t.Fatal(err)
		}
		if u.Event != nil && u.Event.Type == journal.TypeInputRequested {
			var q journal.InputRequested
			if json.Unmarshal(u.Event.Data, &q) == nil && q.Call != "" {
				return q
			}
		}
	}
	t.Fatal("no question")
	return journal.InputRequested{}
}

func appendEv(t *testing.T, typ string, data any) func(*store.Journal, string) {
	return func(w *store.Journal, _ string) {
		if _, err := w.Append(context.Background(), typ, data); err != nil {
			t.Fatal(err)
		}
	}
}

func toolCallTurn(turn int, n int) journal.ModelResponse {
	return journal.ModelResponse{Turn: turn, Message: model.Message{Role: model.RoleAssistant,
		ToolCalls: []model.ToolCall{{ID: fmt.Sprintf("call_%d_0", turn), Name: "step", Arguments: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}}}}
}

func TestResumeSkipsFinishedModelAndToolCalls(t *testing.T) {
	b, _ := storetest.Open(t)
	m := scriptedModel(t, threeToolRules)
	step := &recorder{name: "step"}
	agents := map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{step}}}
	id := prejournal(t, b, agents, "go",
		appendEv(t, journal.TypeModelResponse, toolCallTurn(1, 0)),
		appendEv(t, journal.TypeToolStarted, journal.ToolStarted{CallID: "call_1_0", Name: "step", Arguments: json.RawMessage(`{"n":0}`), IdempotencyKey: "k1", Attempt: 1}),
		appendEv(t, journal.TypeToolFinished, journal.ToolFinished{CallID: "call_1_0", Name: "step", Content: "result for {\"n\":0}"}),
		appendEv(t, journal.TypeModelResponse, toolCallTurn(2, 1)),
	)
	rt := newRuntime(t, b, agents)
	start(t, rt)
	rec := wait(t, rt, id)
	if rec.Status != run.StatusCompleted {
		t.Fatalf("status %s %+v", rec.Status, rec.Error)
	}
	// Two model calls were journaled; two more were needed.
	if n := m.calls.Load(); n != 2 {
		t.Errorf("model calls after resume %d, want 2", n)
	}
	// The first tool call finished before the crash; calls 2 and 3 ran now.
	if keys := step.Keys(); len(keys) != 2 {
		t.Errorf("tool calls after resume %v, want 2", keys)
	}
}

func TestUnfinishedCallOfNonIdempotentToolPutsRunInDoubt(t *testing.T) {
	for _, action := range []string{journal.ResolveSkip, journal.ResolveRetry, journal.ResolveFail} {
		t.Run(action, func(t *testing.T) {
			b, _ := storetest.Open(t)
			m := scriptedModel(t, threeToolRules)
			step := &recorder{name: "step"}
			agents := map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{step}, ToolPrice: func(string) float64 { return 0.5 }}}
			id := prejournal(t, b, agents, "go",
				appendEv(t, journal.TypeModelResponse, toolCallTurn(1, 0)),
				appendEv(t, journal.TypeToolStarted, journal.ToolStarted{CallID: "call_1_0", Name: "step", Arguments: json.RawMessage(`{"n":0}`), IdempotencyKey: "orig/3", Attempt: 1}),
			)
			rt := newRuntime(t, b, agents)
			start(t, rt)
			rec := wait(t, rt, id)
			if rec.Status != run.StatusInDoubt || rec.InDoubt == nil || rec.InDoubt.CallID != "call_1_0" {
				t.Fatalf("want in_doubt on call_1_0, got %s %+v", rec.Status, rec.InDoubt)
			}
			if len(step.Keys()) != 0 {
				t.Fatalf("in-doubt call was executed again: %v", step.Keys())
			}
			if _, err := rt.Resolve(context.Background(), id, run.Resolution{Action: "bogus"}); !errors.Is(err, engine.ErrInvalid) {
				t.Errorf("bogus action: %v", err)
			}
			if _, err := rt.Resolve(context.Background(), id, run.Resolution{Action: action, Result: "skipped by operator", Reason: "checked by hand"}); err != nil {
				t.Fatal(err)
			}
			rec = wait(t, rt, id)
			keys := step.Keys()
			switch action {
			case journal.ResolveSkip:
				if rec.Status != run.StatusCompleted || len(keys) != 2 {
					t.Fatalf("skip: %s, tool calls %v", rec.Status, keys)
				}
				// The call in doubt was most likely made: it is paid for.
				if rec.Cost == nil || rec.Cost.Tools["step"] != 1.5 {
					t.Fatalf("skip: cost %+v, want three calls at $0.5", rec.Cost)
				}
			case journal.ResolveRetry:
				if rec.Status != run.StatusCompleted || len(keys) != 3 || keys[0] != "orig/3" {
					t.Fatalf("retry: %s, tool calls %v (the retry must reuse key orig/3)", rec.Status, keys)
				}
			case journal.ResolveFail:
				if rec.Status != run.StatusFailed || rec.Error.Code != agent.CodeResolvedFail || !strings.Contains(rec.Error.Message, "checked by hand") {
					t.Fatalf("fail: %s %+v", rec.Status, rec.Error)
				}
			}
			if _, err := rt.Resolve(context.Background(), id, run.Resolution{Action: "skip"}); !errors.Is(err, engine.ErrConflict) {
				t.Errorf("resolving a settled run: %v, want conflict", err)
			}
		})
	}
}

func TestUnfinishedCallOfIdempotentToolIsRetriedWithSameKey(t *testing.T) {
	b, _ := storetest.Open(t)
	m := scriptedModel(t, threeToolRules)
	step := &recorder{name: "step", idempotent: true}
	agents := map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{step}}}
	id := prejournal(t, b, agents, "go",
		appendEv(t, journal.TypeModelResponse, toolCallTurn(1, 0)),
		appendEv(t, journal.TypeToolStarted, journal.ToolStarted{CallID: "call_1_0", Name: "step", Arguments: json.RawMessage(`{"n":0}`), IdempotencyKey: "orig/3", Idempotent: true, Attempt: 1}),
	)
	rt := newRuntime(t, b, agents)
	start(t, rt)
	rec := wait(t, rt, id)
	if rec.Status != run.StatusCompleted {
		t.Fatalf("status %s %+v", rec.Status, rec.Error)
	}
	if keys := step.Keys(); len(keys) != 3 || keys[0] != "orig/3" {
		t.Fatalf("tool calls %v, want the retry first with key orig/3", keys)
	}
}

func TestTwoWritersCannotBothAdvanceARun(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	w1, err := b.OpenJournal(ctx, "run_x")
	if err != nil {
		t.Fatal(err)
	}
	w2, err := b.OpenJournal(ctx, "run_x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w1.Append(ctx, journal.TypeRunStarted, journal.RunStarted{Agent: "a", Input: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Append(ctx, journal.TypeRunStarted, journal.RunStarted{Agent: "a", Input: "x"}); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("second writer: %v, want ErrConflict", err)
	}
	if _, err := w1.Append(ctx, journal.TypeRunCompleted, journal.RunCompleted{Output: "ok"}); err != nil {
		t.Fatalf("owner's next append: %v", err)
	}
	evs, err := b.LoadJournal(ctx, "run_x")
	if err != nil || len(evs) != 2 || evs[1].Step != 2 {
		t.Fatalf("journal %v %v", evs, err)
	}
}

func TestParallelToolCallsRunConcurrently(t *testing.T) {
	b, _ := storetest.Open(t)
	m := scriptedModel(t, `
- when: {tool_results: 2}
  reply: {text: "both done"}
- reply:
    tool_calls:
      - {name: step, arguments: {n: 1}}
      - {name: step, arguments: {n: 2}}
`)
	gate := make(chan struct{})
	step := &recorder{name: "step", block: gate, entered: make(chan string, 2)}
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{step}}})
	start(t, rt)
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	// Both calls must be in flight at once: neither can finish before the
	// gate opens, so two entries prove they overlap.
	timeout := time.After(10 * time.Second)
	for range 2 {
		select {
		case <-step.entered:
		case <-timeout:
			t.Fatalf("only %d calls in flight", len(step.Keys()))
		}
	}
	close(gate)
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted || rec.Output != "both done" {
		t.Fatalf("%s %q %+v", rec.Status, rec.Output, rec.Error)
	}
}

func TestRetriedCallThatDiesAgainIsInDoubtAgain(t *testing.T) {
	b, _ := storetest.Open(t)
	step := &recorder{name: "step"}
	agents := map[string]*agent.Agent{"worker": {Model: scriptedModel(t, threeToolRules), Tools: []tool.Tool{step}}}
	started := journal.ToolStarted{CallID: "call_1_0", Name: "step", Arguments: json.RawMessage(`{"n":0}`), IdempotencyKey: "orig/3", Attempt: 1}
	retried := started
	retried.Attempt = 2
	id := prejournal(t, b, agents, "go",
		appendEv(t, journal.TypeModelResponse, toolCallTurn(1, 0)),
		appendEv(t, journal.TypeToolStarted, started),
		appendEv(t, journal.TypeRunInDoubt, journal.RunInDoubt{CallID: "call_1_0", Name: "step"}),
		appendEv(t, journal.TypeToolResolved, journal.ToolResolved{CallID: "call_1_0", Action: journal.ResolveRetry}),
		appendEv(t, journal.TypeToolStarted, retried),
	)
	rt := newRuntime(t, b, agents)
	start(t, rt)
	rec := wait(t, rt, id)
	if rec.Status != run.StatusInDoubt || len(step.Keys()) != 0 {
		t.Fatalf("a retry that died must park the run again, not run the tool: %s, calls %v", rec.Status, step.Keys())
	}
}

func TestCancelingAQueuedTurnKeepsInstanceOrder(t *testing.T) {
	b, _ := storetest.Open(t)
	gate := make(chan struct{})
	step := &recorder{name: "step", block: gate, idempotent: true}
	m := scriptedModel(t, `
- when: {last_tool: step, last_role: tool}
  reply: {text: "first done"}
- when: {last_user: "^first"}
  reply: {tool_calls: [{name: step, arguments: {n: 1}}]}
- reply: {text: "later turn {{.Turn}}"}
`)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{step}}})
	start(t, rt)
	ctx := context.Background()
	submit := func(input string) *run.Record {
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: input, Instance: "k"})
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	first := submit("first")
	until(t, rt, first.ID, journal.TypeToolStarted)
	second, third := submit("second"), submit("third")
	if rec, err := rt.Cancel(ctx, second.ID); err != nil || rec.Status != run.StatusCanceled {
		t.Fatalf("cancel queued turn: %+v %v", rec, err)
	}
	// The third turn must still wait for the first, which is blocked in its tool.
	if in, _ := rt.GetInstance(ctx, "worker", "k"); in.Done != 0 {
		t.Fatalf("instance moved on while turn 1 runs: done=%d", in.Done)
	}
	close(gate)
	if rec := wait(t, rt, first.ID); rec.Output != "first done" {
		t.Fatalf("first: %+v", rec)
	}
	rec := wait(t, rt, third.ID)
	// Turn 1 left two assistant messages (the tool call and the answer) in the history.
	if rec.Status != run.StatusCompleted || rec.Output != "later turn 3" {
		t.Fatalf("third: %s %q", rec.Status, rec.Output)
	}
}

// TestWaitRightAfterSubmit: a wait begun as a worker takes the run from
// the queue finds it (the submission gone from the queue, its run.started
// journaled).
func TestWaitRightAfterSubmit(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: "ok"}`)}})
	start(t, rt)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := rt.Wait(ctx, rec.ID); err != nil {
					t.Errorf("wait for %s: %v", rec.ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
