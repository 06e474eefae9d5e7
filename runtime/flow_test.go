package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/bus/bustest"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/runtime"
	"github.com/myriad-ai/myriad/tool"
)

func flowRuntime(t *testing.T, flows map[string]*flow.Flow, agents map[string]*agent.Agent) *runtime.Runtime {
	t.Helper()
	b, _ := bustest.Open(t)
	rt, err := runtime.New(b, runtime.Options{Agents: agents, Flows: flows, Workers: 64})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	return rt
}

func runFlow(t *testing.T, rt *runtime.Runtime, name, input string, state string) *runtime.Record {
	t.Helper()
	req := runtime.SubmitRequest{Flow: name, Input: input}
	if state != "" {
		req.State = json.RawMessage(state)
	}
	rec, _, err := rt.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return wait(t, rt, rec.ID)
}

func TestMapReduceFlow(t *testing.T) {
	agents := map[string]*agent.Agent{
		"summarizer": {Model: scriptedModel(t, `- reply: {text: "short {{.Input}}"}`)},
		"editor":     {Model: scriptedModel(t, `- reply: {text: "report of {{.Input}}"}`)},
	}
	flows := map[string]*flow.Flow{"digest": {
		State: map[string]flow.Key{"summaries": {Merge: flow.Append}},
		Start: []string{"split"},
		Nodes: map[string]*flow.Node{
			"split":   {Map: "state.docs", Agent: "summarizer", Input: "{{.item.title}}", Output: "summaries", Next: []string{"combine"}},
			"combine": {Agent: "editor", Input: `{{range .state.summaries}}{{.}};{{end}}`, Output: "report"},
		},
		Output: "report",
	}}
	rt := flowRuntime(t, flows, agents)
	var docs []string
	for i := range 20 {
		docs = append(docs, fmt.Sprintf(`{"title": "doc%d"}`, i))
	}
	rec := runFlow(t, rt, "digest", "go", `{"docs": [`+strings.Join(docs, ",")+`]}`)
	if rec.Status != runtime.StatusCompleted {
		t.Fatalf("flow %s: %+v", rec.Status, rec.Error)
	}
	var want strings.Builder
	want.WriteString("report of ")
	for i := range 20 {
		fmt.Fprintf(&want, "short doc%d;", i)
	}
	if rec.Output != want.String() {
		t.Fatalf("output %q\nwant   %q", rec.Output, want.String())
	}
	kids := children(t, rt, rec.ID)
	if len(kids) != 21 || kids[0].Path != "digest/combine#1" || kids[1].Path != "digest/split#1.0" {
		t.Fatalf("%d children, first paths %q %q", len(kids), kids[0].Path, kids[1].Path)
	}
}

// A router loops until a counter says stop; parallel branches meet at an
// all-join and at an any-join.
func TestFlowRoutesLoopsAndJoins(t *testing.T) {
	count := func(name string) flow.Func {
		return func(context.Context, flow.FuncInput) (any, error) { return name, nil }
	}
	flows := map[string]*flow.Flow{"f": {
		State: map[string]flow.Key{"tries": {Initial: 0}, "seen": {Merge: flow.Append}},
		Start: []string{"inc"},
		Nodes: map[string]*flow.Node{
			"inc": {Func: func(_ context.Context, in flow.FuncInput) (any, error) {
				return in.State["tries"].(int64) + 1, nil
			}, Output: "tries", Route: []flow.Edge{{When: "state.tries < 3", To: "inc"}, {To: "fan"}}},
			"fan":  {Next: []string{"a", "b", "c"}},
			"a":    {Func: count("a"), Output: "seen", Next: []string{"all", "any"}},
			"b":    {Func: count("b"), Output: "seen", Next: []string{"all", "any"}},
			"c":    {Func: count("c"), Output: "seen", Next: []string{"all", "any"}},
			"all":  {Join: "all", Func: count("all"), Output: "seen"},
			"any":  {Join: "any", Func: count("any"), Output: "seen"},
			"loop": {Func: count("never"), Route: []flow.Edge{{To: "loop"}}},
		},
	}}
	rt := flowRuntime(t, flows, nil)
	rec := runFlow(t, rt, "f", "go", "")
	if rec.Status != runtime.StatusCompleted {
		t.Fatalf("%s %+v", rec.Status, rec.Error)
	}
	var state struct {
		Tries int      `json:"tries"`
		Seen  []string `json:"seen"`
	}
	if err := json.Unmarshal(rec.OutputJSON, &state); err != nil {
		t.Fatal(err)
	}
	joined := 0
	for _, s := range state.Seen {
		if s == "all" || s == "any" {
			joined++
		}
	}
	if state.Tries != 3 || len(state.Seen) != 5 || joined != 2 {
		t.Fatalf("state %+v: want tries 3, a b c, all once, any once", state)
	}
}

func TestFlowLoopLimit(t *testing.T) {
	flows := map[string]*flow.Flow{"f": {
		Start: []string{"spin"},
		Nodes: map[string]*flow.Node{"spin": {MaxVisits: 4, Route: []flow.Edge{{When: "true", To: "spin"}}}},
	}}
	rt := flowRuntime(t, flows, nil)
	rec := runFlow(t, rt, "f", "go", "")
	if rec.Status != runtime.StatusFailed || rec.Error.Code != flow.CodeMaxVisits || !strings.Contains(rec.Error.Message, "raise flows.f.nodes.spin.max_visits") {
		t.Fatalf("%s %+v", rec.Status, rec.Error)
	}
}

func TestFlowToolNode(t *testing.T) {
	rec := &recorder{name: "record", idempotent: true, result: `{"ok": true}`}
	flows := map[string]*flow.Flow{"f": {
		Start: []string{"write"},
		Tools: map[string]tool.Tool{"record": rec},
		Nodes: map[string]*flow.Node{
			"write": {Tool: "record", Map: "[1, 2, 3]", Args: `{"n": item}`, Output: "written"},
		},
		Output: "written",
	}}
	rt := flowRuntime(t, flows, nil)
	run := runFlow(t, rt, "f", "go", "")
	if run.Status != runtime.StatusCompleted || run.Output != `[{"ok":true},{"ok":true},{"ok":true}]` || len(rec.Keys()) != 3 {
		t.Fatalf("%s %q %+v keys %v", run.Status, run.Output, run.Error, rec.Keys())
	}
}

// A sleeping node parks the run; the NATS server's scheduled message wakes
// it, across a restart of the node.
func TestFlowSleepSurvivesRestart(t *testing.T) {
	b, dir := bustest.Open(t)
	flows := func() map[string]*flow.Flow {
		return map[string]*flow.Flow{"f": {
			Start: []string{"nap"},
			Nodes: map[string]*flow.Node{"nap": {Sleep: 2 * time.Second, Next: []string{"after"}}, "after": {}},
		}}
	}
	rt, err := runtime.New(b, runtime.Options{Flows: flows(), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, runtime.SubmitRequest{Flow: "f", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	// Parked: follow the journal until it says so. Stop lets the worker
	// settle the record and schedule the wake-up.
	err = journal.Follow(ctx, b, rec.ID, 0, func(ev journal.Event) bool { return ev.Type != journal.TypeRunWaiting })
	if err != nil {
		t.Fatal(err)
	}
	rt.Stop()
	if r, err := rt.Get(ctx, rec.ID); err != nil || r.Status != runtime.StatusWaiting || r.WaitingFor != runtime.WaitTimer || r.WakeAt == nil {
		t.Fatalf("parked record: %+v %v", r, err)
	}
	b.Close()
	b = bustest.Reopen(t, dir)
	rt, err = runtime.New(b, runtime.Options{Flows: flows(), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	rec = wait(t, rt, rec.ID)
	if rec.Status != runtime.StatusCompleted {
		t.Fatalf("%s %+v", rec.Status, rec.Error)
	}
	if d := time.Since(began); d < 2*time.Second {
		t.Errorf("woke after %s, before its 2s", d)
	}
	types := strings.Join(eventTypes(t, rt, rec.ID), " ")
	if types != "run.started node.started run.waiting node.finished node.started node.finished run.completed" {
		t.Errorf("journal %s", types)
	}
}

func TestFlowAsksForInput(t *testing.T) {
	flows := map[string]*flow.Flow{"f": {
		Start: []string{"review"},
		Nodes: map[string]*flow.Node{
			"review": {Ask: &flow.Ask{Prompt: "Approve {{.state.input}}?", Schema: json.RawMessage(`{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}`)},
				Output: "verdict", Route: []flow.Edge{{When: "state.verdict.ok", To: "ship"}, {To: "drop"}}},
			"ship": {Func: func(context.Context, flow.FuncInput) (any, error) { return "shipped", nil }, Output: "result"},
			"drop": {Func: func(context.Context, flow.FuncInput) (any, error) { return "dropped", nil }, Output: "result"},
		},
		Output: "result",
	}}
	rt := flowRuntime(t, flows, nil)
	ctx := context.Background()
	rec := runFlow(t, rt, "f", "v2", "")
	if rec.Status != runtime.StatusWaiting || rec.WaitingFor != runtime.WaitInput || len(rec.InputRequests) != 1 ||
		rec.InputRequests[0].Prompt != "Approve v2?" || rec.InputRequests[0].Key != "review#1" {
		t.Fatalf("%s %s %+v", rec.Status, rec.WaitingFor, rec.InputRequests)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "review#1", json.RawMessage(`{"ok": "yes"}`)); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("an answer against the schema: %v", err)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "other#1", json.RawMessage(`{"ok": true}`)); !errors.Is(err, runtime.ErrConflict) {
		t.Fatalf("an answer to nothing: %v", err)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "review#1", json.RawMessage(`{"ok": true}`)); err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != runtime.StatusCompleted || rec.Output != "shipped" {
		t.Fatalf("%s %q %+v", rec.Status, rec.Output, rec.Error)
	}
	if types := strings.Join(eventTypes(t, rt, rec.ID), " "); !strings.Contains(types, "input.requested run.waiting input.received node.finished") {
		t.Errorf("journal %s", types)
	}
}

// A schedule set on the NATS server starts runs, each fire once.
func TestScheduleStartsRuns(t *testing.T) {
	b, _ := bustest.Open(t)
	flows := map[string]*flow.Flow{"tick": {Start: []string{"a"}, Nodes: map[string]*flow.Node{"a": {}}}}
	rt, err := runtime.New(b, runtime.Options{Flows: flows, Workers: 4,
		Schedules: []runtime.Schedule{{Name: "every-second", Cron: "@every 1s", Flow: "tick", Input: "tock"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := b.Runs.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	start(t, rt)
	done := map[string]bool{}
	for len(done) < 2 {
		select {
		case e := <-w.Updates():
			if e == nil {
				continue
			}
			var rec runtime.Record
			if json.Unmarshal(e.Value(), &rec) == nil && rec.Status == runtime.StatusCompleted {
				if rec.Metadata["schedule"] != "every-second" || rec.Flow != "tick" || rec.Input != "tock" {
					t.Fatalf("scheduled run %+v", rec)
				}
				done[rec.ID] = true
			}
		case <-ctx.Done():
			t.Fatalf("%d scheduled runs completed in 20s, want 2", len(done))
		}
	}
	// A node started without the schedule removes it.
	rt.Stop()
	rt2, err := runtime.New(b, runtime.Options{Flows: flows, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt2)
	stream, err := b.JS.Stream(ctx, "MYRIAD_SCHEDULES")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.GetLastMsgForSubject(ctx, "myriad.sched.cron.every-second"); err == nil {
		t.Fatal("the schedule is still set after the configuration dropped it")
	}
}

// Canceling a flow cancels the child runs its nodes started.
func TestCancelingAFlowCancelsItsChildren(t *testing.T) {
	slow := &recorder{name: "slow", block: make(chan struct{}), entered: make(chan string, 4)}
	agents := map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `
- when: {last_role: tool}
  reply: {text: "unreachable"}
- reply: {tool_calls: [{name: slow, arguments: {n: 1}}]}
`), Tools: []tool.Tool{slow}}}
	flows := map[string]*flow.Flow{"f": {Start: []string{"m"}, Nodes: map[string]*flow.Node{"m": {Map: "[1, 2]", Agent: "worker"}}}}
	rt := flowRuntime(t, flows, agents)
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, runtime.SubmitRequest{Flow: "f", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	<-slow.entered
	<-slow.entered
	if _, err := rt.Cancel(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != runtime.StatusCanceled {
		t.Fatalf("flow %s", rec.Status)
	}
	close(slow.block)
	for _, k := range children(t, rt, rec.ID) {
		if k = wait(t, rt, k.ID); k.Status != runtime.StatusCanceled {
			t.Errorf("child %s is %s after its flow was canceled", k.Path, k.Status)
		}
	}
}

// A flow that asks a person while other branches work keeps working: the
// branches finish, and the question is answered when it is answered.
func TestFlowWorksWhileItAsks(t *testing.T) {
	agents := map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: "worked"}`)}}
	flows := map[string]*flow.Flow{"f": {
		Start: []string{"ask", "work"},
		Nodes: map[string]*flow.Node{
			"ask":   {Ask: &flow.Ask{Prompt: "go on?"}, Output: "answer"},
			"work":  {Agent: "worker", Output: "work", Next: []string{"after"}},
			"after": {Func: func(context.Context, flow.FuncInput) (any, error) { return "after ran", nil }, Output: "after"},
		},
	}}
	rt := flowRuntime(t, flows, agents)
	ctx := context.Background()
	rec := runFlow(t, rt, "f", "go", "")
	// Wait returns when only a person can move the run on: by then the
	// other branch has run to its end.
	if rec.Status != runtime.StatusWaiting || rec.WaitingFor != runtime.WaitInput {
		t.Fatalf("%s %s", rec.Status, rec.WaitingFor)
	}
	types := strings.Join(eventTypes(t, rt, rec.ID), " ")
	if !strings.Contains(types, "children.reported node.finished node.started node.finished") {
		t.Fatalf("the work branch did not finish while the flow asked: %s", types)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "ask#1", json.RawMessage(`"yes"`)); err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != runtime.StatusCompleted || !strings.Contains(string(rec.OutputJSON), `"after":"after ran"`) {
		t.Fatalf("%s %s", rec.Status, rec.OutputJSON)
	}
}

// Nobody answers: at the deadline the default answer applies.
func TestFlowAskTimeoutDefault(t *testing.T) {
	flows := map[string]*flow.Flow{"f": {
		Start: []string{"review"},
		Nodes: map[string]*flow.Node{
			"review": {Ask: &flow.Ask{Prompt: "ship?", Timeout: time.Second, Default: map[string]any{"ok": false}},
				Output: "verdict", Route: []flow.Edge{{When: "state.verdict.ok", To: "ship"}, {To: "drop"}}},
			"ship": {Func: func(context.Context, flow.FuncInput) (any, error) { return "shipped", nil }, Output: "result"},
			"drop": {Func: func(context.Context, flow.FuncInput) (any, error) { return "dropped", nil }, Output: "result"},
		},
		Output: "result",
	}}
	rt := flowRuntime(t, flows, nil)
	began := time.Now()
	rec := runFlow(t, rt, "f", "v3", "")
	if rec.Status != runtime.StatusWaiting || rec.WaitingFor != runtime.WaitInput || rec.WakeAt == nil {
		t.Fatalf("%s %s %v", rec.Status, rec.WaitingFor, rec.WakeAt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := rt.Bus().Runs.Watch(ctx, rec.ID, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for !rec.Status.Terminal() {
		select {
		case e := <-w.Updates():
			if e != nil {
				_ = json.Unmarshal(e.Value(), rec)
			}
		case <-ctx.Done():
			t.Fatalf("still %s", rec.Status)
		}
	}
	if rec.Status != runtime.StatusCompleted || rec.Output != "dropped" || time.Since(began) < time.Second {
		t.Fatalf("%s %q after %s", rec.Status, rec.Output, time.Since(began))
	}
}

// A flow parked on a child that never reports still ends at its timeout:
// the deadline is a timer too.
func TestParkedFlowTimesOut(t *testing.T) {
	slow := &recorder{name: "slow", block: make(chan struct{})}
	t.Cleanup(func() { close(slow.block) })
	agents := map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `
- when: {last_role: tool}
  reply: {text: "unreachable"}
- reply: {tool_calls: [{name: slow, arguments: {n: 1}}]}
`), Tools: []tool.Tool{slow}}}
	flows := map[string]*flow.Flow{"f": {Timeout: time.Second, Start: []string{"w"}, Nodes: map[string]*flow.Node{"w": {Agent: "worker"}}}}
	rt := flowRuntime(t, flows, agents)
	rec := runFlow(t, rt, "f", "go", "")
	if rec.Status != runtime.StatusFailed || rec.Error.Code != "timeout" || !strings.Contains(rec.Error.Message, "raise flows.f.timeout") {
		t.Fatalf("%s %+v", rec.Status, rec.Error)
	}
	if k := wait(t, rt, children(t, rt, rec.ID)[0].ID); k.Status != runtime.StatusCanceled {
		t.Errorf("the child is %s after its flow timed out", k.Status)
	}
}

// waitTerminal follows a run's record until it ends.
func waitTerminal(t *testing.T, rt *runtime.Runtime, id string) *runtime.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := rt.Bus().Runs.Watch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				continue
			}
			var rec runtime.Record
			if json.Unmarshal(e.Value(), &rec) == nil && rec.Status.Terminal() {
				return &rec
			}
		case <-ctx.Done():
			t.Fatalf("run %s did not end", id)
		}
	}
}

// An answer given while the worker is busy elsewhere in the flow, before
// the question's deadline, wins over the default that worker would apply
// once the deadline has passed.
func TestAnswerWhileBusyBeatsTheDefault(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	flows := map[string]*flow.Flow{"f": {
		Start: []string{"ask", "nap"},
		Nodes: map[string]*flow.Node{
			"ask": {Ask: &flow.Ask{Prompt: "?", Timeout: 4 * time.Second, Default: "default"}, Output: "answer"},
			"nap": {Sleep: time.Second, Next: []string{"slow"}},
			"slow": {Func: func(context.Context, flow.FuncInput) (any, error) {
				entered <- struct{}{}
				<-release
				return "slow", nil
			}, Output: "slow"},
		},
	}}
	rt := flowRuntime(t, flows, nil)
	ctx := context.Background()
	rec := runFlow(t, rt, "f", "go", "")
	<-entered // the worker is busy in slow
	if _, err := rt.ProvideInput(ctx, rec.ID, "ask#1", json.RawMessage(`"person"`)); err != nil {
		t.Fatal(err)
	}
	// Let the question's deadline pass while the worker is still busy: the
	// behaviour under test is about that time.
	evs, _ := rt.Events(ctx, rec.ID)
	var deadline time.Time
	for _, ev := range evs {
		var d journal.NodeStarted
		if ev.Type == journal.TypeNodeStarted && json.Unmarshal(ev.Data, &d) == nil && d.Node == "ask" {
			deadline = *d.Until
		}
	}
	<-time.After(time.Until(deadline))
	close(release)
	if rec = waitTerminal(t, rt, rec.ID); !strings.Contains(string(rec.OutputJSON), `"answer":"person"`) {
		t.Fatalf("the accepted answer was lost: %s %s", rec.Status, rec.OutputJSON)
	}
}

// The settle that parked a run died before setting its timer: the queue
// entry's redelivery sets it, and the default applies on time.
func TestLostTimerIsSetAgain(t *testing.T) {
	flows := map[string]*flow.Flow{"f": {Start: []string{"review"}, Output: "verdict",
		Nodes: map[string]*flow.Node{"review": {Ask: &flow.Ask{Prompt: "ship?", Timeout: time.Second, Default: "no"}, Output: "verdict"}}}}
	rt := flowRuntime(t, flows, nil)
	ctx := context.Background()
	rec := runFlow(t, rt, "f", "go", "")
	if rec.Status != runtime.StatusWaiting || rec.WakeAt == nil {
		t.Fatalf("%s %v", rec.Status, rec.WakeAt)
	}
	sched, err := rt.Bus().JS.Stream(ctx, "MYRIAD_SCHEDULES")
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Purge(ctx, jetstream.WithPurgeSubject("myriad.sched.timer."+rec.ID+".*")); err != nil {
		t.Fatal(err)
	}
	queue, err := rt.Bus().JS.Stream(ctx, "MYRIAD_QUEUE")
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Purge(ctx, jetstream.WithPurgeSubject(rec.Wake)); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Bus().JS.Publish(ctx, rec.Wake, []byte(rec.ID)); err != nil {
		t.Fatal(err)
	}
	if rec = waitTerminal(t, rt, rec.ID); rec.Status != runtime.StatusCompleted || rec.Output != "no" {
		t.Fatalf("%s %q", rec.Status, rec.Output)
	}
}

// A flow's tool node can ask a person something while it runs (an MCP
// server's elicitation): the question is on the flow run's record while it
// runs, the answer is checked against the question's schema, and the call
// goes on with it.
func TestFlowToolNodeAsks(t *testing.T) {
	pick, err := tool.NewFunc("pick", "picks", func(ctx context.Context, call *tool.Call, _ struct{}) (string, error) {
		answer, err := call.Ask(ctx, tool.Question{Prompt: "Which one?", Schema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`)})
		return string(answer), err
	})
	if err != nil {
		t.Fatal(err)
	}
	flows := map[string]*flow.Flow{"f": {Start: []string{"pick"}, Tools: map[string]tool.Tool{"pick": pick},
		Nodes: map[string]*flow.Node{"pick": {Tool: "pick", Output: "picked"}}, Output: "picked"}}
	rt := flowRuntime(t, flows, nil)
	live := make(chan *nats.Msg, 16)
	sub, err := rt.Bus().NC.ChanSubscribe(bus.LivePrefix+">", live)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, runtime.SubmitRequest{Flow: "f", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	var q runtime.Question
	for q.Type != runtime.LiveQuestion {
		select {
		case m := <-live:
			_ = json.Unmarshal(m.Data, &q)
		case <-time.After(20 * time.Second):
			t.Fatal("no question")
		}
	}
	cur, err := rt.Get(ctx, rec.ID)
	if err != nil || !cur.Asking() || q.Node != "pick" || q.Call == "" {
		t.Fatalf("while asking: %+v %+v %v", q, cur, err)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, q.Key, json.RawMessage(`{"n": "two"}`)); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("an answer against the schema: %v", err)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, q.Key, json.RawMessage(`{"n": 2}`)); err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != runtime.StatusCompleted || rec.Output != `{"n":2}` || len(rec.InputRequests) != 0 {
		t.Fatalf("%s %q %+v %+v", rec.Status, rec.Output, rec.Error, rec.InputRequests)
	}
}

// An answer to a question the journal has but the run's record does not
// list yet (its worker has not settled) is taken, not refused: whoever
// follows the journal may answer at once.
func TestAnswerBeforeTheRecordListsTheQuestion(t *testing.T) {
	flows := map[string]*flow.Flow{"f": {Start: []string{"first"},
		Nodes: map[string]*flow.Node{"first": {Ask: &flow.Ask{Prompt: "first?"}}}}}
	rt := flowRuntime(t, flows, nil)
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, runtime.SubmitRequest{Flow: "f", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.WaitingFor != runtime.WaitInput {
		t.Fatalf("%s %s", rec.Status, rec.WaitingFor)
	}
	// A question in the journal only, as between a worker's append and its
	// settle.
	w, err := journal.Open(ctx, rt.Bus(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(ctx, journal.TypeInputRequested, journal.InputRequested{Node: "first", Key: "first#2", Prompt: "first, again?"}); err != nil {
		t.Fatal(err)
	}
	got, err := rt.ProvideInput(ctx, rec.ID, "first#2", json.RawMessage(`true`))
	if err != nil || len(got.Inputs) != 1 || got.Inputs[0].Key != "first#2" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "nope#1", json.RawMessage(`true`)); !errors.Is(err, runtime.ErrConflict) {
		t.Fatalf("a question nobody asked: %v", err)
	}
}
