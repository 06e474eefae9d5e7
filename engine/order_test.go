package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// Inputs that come in awkward orders, or at awkward times.

// logWatch signals each log record with a given message.
type logWatch struct {
	msg string
	ch  chan struct{}
}

func watchLog(msg string) *logWatch { return &logWatch{msg: msg, ch: make(chan struct{}, 1024)} }

func (l *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logWatch) WithGroup(string) slog.Handler            { return l }
func (l *logWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == l.msg {
		select {
		case l.ch <- struct{}{}:
		default:
		}
	}
	return nil
}

func (l *logWatch) next(t *testing.T) {
	t.Helper()
	select {
	case <-l.ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("no log %q", l.msg)
	}
}

// stubborn is a tool that ignores its context: it returns when gate
// closes.
type stubborn struct {
	gate    chan struct{}
	entered chan struct{}
}

func (s *stubborn) Info() tool.Info {
	return tool.Info{Name: "step", Description: "blocks", Idempotent: true,
		Schema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`)}
}

func (s *stubborn) Call(ctx context.Context, c *tool.Call) (tool.Result, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.gate
	return tool.Result{Content: "ok"}, nil
}

// A cancel can reach a child before its submission (its parent journaled
// the call, stopped, and a later settle canceled what it left): the child
// is not stuck on it, and when its submission comes it starts and ends
// canceled.
func TestCancelBeforeTheSubmissionEndsTheRunWhenItComes(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}})
	start(t, rt)
	ctx := context.Background()
	parent := engine.NewRunID()
	child := rt.ChildID(parent, "call_1")
	if _, err := b.Send(ctx, store.Input{To: child, Kind: "cancel", Data: []byte(`{"reason":"its parent ended"}`), MsgID: "cancel/" + child}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Spawn(ctx, agent.ChildRun{ID: child, Agent: "worker", Input: "x", Parent: parent, ParentCall: "call_1", Path: "worker", Depth: 1}); err != nil {
		t.Fatal(err)
	}
	if rec := wait(t, rt, child); rec.Status != run.StatusCanceled || rec.Input != "x" {
		t.Fatalf("child: %s input %q", rec.Status, rec.Input)
	}
	if got := strings.Join(eventTypes(t, rt, child), " "); got != "run.started run.canceled" {
		t.Fatalf("journal: %s", got)
	}
}

// A third message to a busy instance that interrupts carries the first
// and the second once each, though the second carried the first already.
func TestInterruptCarriesEachTurnOnce(t *testing.T) {
	b, _ := storetest.Open(t)
	slow := &stubborn{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	m := scriptedModel(t, `
- when: {last_user: "^first$"}
  reply: {tool_calls: [{name: step, arguments: {n: 1}}]}
- reply: {text: "answered"}
`)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{slow}, InterruptBusy: true}})
	start(t, rt)
	ctx := context.Background()
	submit := func(in string) string {
		t.Helper()
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: in, Instance: "k"})
		if err != nil {
			t.Fatal(err)
		}
		return rec.ID
	}
	first := submit("first")
	<-slow.entered
	second := submit("second")
	// The instance queued the second and canceled the first, which its
	// tool keeps busy.
	until(t, rt, first, journal.TypeCancelRequested)
	third := submit("third")
	if rec := wait(t, rt, second); rec.Status != run.StatusCanceled {
		t.Fatalf("second: %s", rec.Status)
	}
	close(slow.gate)
	if rec := wait(t, rt, first); rec.Status != run.StatusCanceled {
		t.Fatalf("first: %s", rec.Status)
	}
	// Its end says why.
	if evs, err := rt.Events(ctx, first); err != nil || !strings.Contains(string(evs[len(evs)-1].Data), "interrupted by a new turn: run "+second+" carries its input") {
		t.Fatalf("first's end: %s %v", evs[len(evs)-1].Data, err)
	}
	rec := wait(t, rt, third)
	if want := "first\n\nsecond\n\nthird"; rec.Status != run.StatusCompleted || rec.Input != want {
		t.Fatalf("third: %s, input %q, want %q", rec.Status, rec.Input, want)
	}
}

// A turn whose journal ended and which has not told its instance yet does
// not keep the instance busy: a message the submitter accepted (it counts
// the end) is not then refused by the instance.
func TestRejectBusyCountsACurrentTurnThatEnded(t *testing.T) {
	b, _ := storetest.Open(t)
	agents := map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`), RejectBusy: true}}
	rt := newRuntime(t, b, agents)
	ctx := context.Background()
	first, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "one", Instance: "k"})
	if err != nil {
		t.Fatal(err)
	}
	// As a worker would leave it: the instance started turn 1, which ran
	// to its end; its settle has not told the instance.
	ins := engine.InstanceID("worker", "k")
	tin, err := b.ReadInputs(ctx, ins, 0)
	if err != nil || len(tin) != 1 {
		t.Fatalf("instance inputs: %v %v", tin, err)
	}
	iw := b.JournalFrom(ins, nil)
	mustAppend(t, iw, tin[0].Seq, journal.TypeTurnQueued, journal.TurnQueued{RunID: first.ID, Input: "one"})
	mustAppend(t, iw, 0, journal.TypeTurnStarted, journal.TurnStarted{RunID: first.ID, Turn: 1, Input: "one"})
	rin, err := b.ReadInputs(ctx, first.ID, 0)
	if err != nil || len(rin) != 1 {
		t.Fatalf("run inputs: %v %v", rin, err)
	}
	rw := b.JournalFrom(first.ID, nil)
	mustAppend(t, rw, rin[0].Seq, journal.TypeRunStarted, journal.RunStarted{Agent: "worker", Input: "one", Instance: "k", Turn: 1})
	mustAppend(t, rw, 0, journal.TypeRunCompleted, journal.RunCompleted{Output: "hi"})

	second, created, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "two", Instance: "k"})
	if err != nil || !created {
		t.Fatalf("second: %v", err)
	}
	start(t, rt)
	if rec := wait(t, rt, second.ID); rec.Status != run.StatusCompleted {
		t.Fatalf("the accepted turn ended %s: %+v", rec.Status, rec.Error)
	}
}

func mustAppend(t *testing.T, j *store.Journal, inputSeq uint64, typ string, data any) {
	t.Helper()
	if _, err := j.AppendFor(context.Background(), inputSeq, typ, data); err != nil {
		t.Fatal(err)
	}
}

// An input that reaches a run after its end (a deadline's timer that
// fires late) is moot: the run is not settled again, so its parent is not
// told twice and OnFinish runs once.
func TestInputAfterTheEndDoesNotSettleAgain(t *testing.T) {
	b, _ := storetest.Open(t)
	finished := make(chan string, 16)
	moot := watchLog("inputs after the run's end: nothing to do")
	rt, err := engine.New(b, engine.Options{Workers: 4, Logger: slog.New(moot),
		Agents:   map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}},
		OnFinish: func(rec *run.Record, _ engine.RunStats) { finished <- rec.ID }})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, rt, rec.ID)
	<-finished
	if _, err := b.Send(ctx, store.Input{To: rec.ID, Kind: "timer", Data: []byte(`{"at":"2026-01-01T00:00:00Z"}`)}); err != nil {
		t.Fatal(err)
	}
	moot.next(t)
	select {
	case id := <-finished:
		t.Fatalf("run %s settled again", id)
	default:
	}
}

// A submission's entry given back and delivered again (a node that lacks
// the agent, in a rolling deploy) is not taken as a new submission: the
// run starts once, and refuses nothing.
func TestARedeliveredSubmissionStartsTheRunOnce(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	notHere := watchLog("offered to another node: the run's agent is not defined here")
	old, err := engine.New(b, engine.Options{Workers: 2, Logger: slog.New(notHere),
		Agents: map[string]*agent.Agent{"other": {Model: scriptedModel(t, `- reply: {text: hi}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, old)
	current := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: hi}`)}})
	rec, _, err := current.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	notHere.next(t)
	notHere.next(t) // delivered twice to the old node
	start(t, current)
	if got := wait(t, current, rec.ID); got.Status != run.StatusCompleted {
		t.Fatalf("status %s %+v", got.Status, got.Error)
	}
	if got := strings.Join(eventTypes(t, current, rec.ID), " "); got != "run.started model.response run.completed" {
		t.Fatalf("journal: %s", got)
	}
}

// Reports that queued up while a parent was parked are journaled a
// bounded batch at a time: forty children's outputs at the tool result
// limit (256 KiB) would be more than a NATS message may hold. (Smaller
// outputs here keep the test quick; the bound is the same.)
func TestQueuedReportsAreJournaledInBoundedEntries(t *testing.T) {
	b, _ := storetest.Open(t)
	ctx := context.Background()
	const n = 40
	agents := map[string]*agent.Agent{
		"worker": {Model: scriptedModel(t, `
- when: {last_role: tool}
  reply: {text: "report after {{.ToolResults}} results"}
`), SubAgents: []agent.SubAgent{{Agent: "researcher"}}},
		"researcher": {Model: scriptedModel(t, `- reply: {text: unused}`)},
	}
	var calls []model.ToolCall
	id := prejournal(t, b, agents, "go", func(w *store.Journal, runID string) {
		var kids []string
		for i := range n {
			calls = append(calls, model.ToolCall{ID: fmt.Sprintf("call_%d", i), Name: "researcher", Arguments: json.RawMessage(`{"task":"t"}`)})
		}
		if _, err := w.Append(ctx, journal.TypeModelResponse, journal.ModelResponse{Turn: 1, Message: model.Message{Role: model.RoleAssistant, ToolCalls: calls}}); err != nil {
			t.Fatal(err)
		}
		for _, c := range calls {
			kid := engine.ChildRunID(runID, c.ID)
			kids = append(kids, kid)
			if _, err := w.Append(ctx, journal.TypeToolStarted, journal.ToolStarted{CallID: c.ID, Name: c.Name, Arguments: c.Arguments, Idempotent: true, Attempt: 1, ChildRunID: kid}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.Append(ctx, journal.TypeRunWaiting, journal.RunWaiting{Children: kids}); err != nil {
			t.Fatal(err)
		}
	})
	big := strings.Repeat("x", 64<<10)
	for _, c := range calls {
		kid := engine.ChildRunID(id, c.ID)
		rep, _ := json.Marshal(journal.ChildReport{RunID: kid, CallID: c.ID, Status: "completed", Output: big})
		if _, err := b.Send(ctx, store.Input{To: id, Kind: "report", Data: rep, MsgID: "report/" + kid}); err != nil {
			t.Fatal(err)
		}
	}
	rt := newRuntime(t, b, agents)
	start(t, rt)
	rec := wait(t, rt, id)
	if rec.Status != run.StatusCompleted || rec.Output != fmt.Sprintf("report after %d results", n) {
		t.Fatalf("parent: %s %q %+v", rec.Status, rec.Output, rec.Error)
	}
	evs, err := rt.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	entries, reports := 0, 0
	for _, ev := range evs {
		if ev.Type != journal.TypeChildrenReported {
			continue
		}
		entries++
		var d journal.ChildrenReported
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		reports += len(d.Reports)
		if len(ev.Data) > 1<<20 {
			t.Errorf("an entry of %d bytes", len(ev.Data))
		}
	}
	if reports != n || entries < 2 {
		t.Fatalf("%d reports in %d entries", reports, entries)
	}
}
