package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

func flowRuntime(t *testing.T, flows map[string]*flow.Flow, agents map[string]*agent.Agent) *engine.Engine {
	t.Helper()
	b, _ := storetest.Open(t)
	return flowRuntimeOn(t, b, flows, agents)
}

func flowRuntimeOn(t *testing.T, b *store.Store, flows map[string]*flow.Flow, agents map[string]*agent.Agent) *engine.Engine {
	t.Helper()
	rt, err := engine.New(b, engine.Options{Agents: agents, Flows: flows, Workers: 64})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	return rt
}

func runFlow(t *testing.T, rt *engine.Engine, name, input string, state string) *run.Record {
	t.Helper()
	req := engine.SubmitRequest{Flow: name, Input: input}
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
	if rec.Status != run.StatusCompleted {
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
	if rec.Status != run.StatusCompleted {
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
	if rec.Status != run.StatusFailed || rec.Error.Code != flow.CodeMaxVisits || !strings.Contains(rec.Error.Message, "raise flows.f.nodes.spin.max_visits") {
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
	got := runFlow(t, rt, "f", "go", "")
	if got.Status != run.StatusCompleted || got.Output != `[{"ok":true},{"ok":true},{"ok":true}]` || len(rec.Keys()) != 3 {
		t.Fatalf("%s %q %+v keys %v", got.Status, got.Output, got.Error, rec.Keys())
	}
}

// A sleeping node parks the run; the NATS server's scheduled message wakes
// it, across a restart of the node.
func TestFlowSleepSurvivesRestart(t *testing.T) {
	b, dir := storetest.Open(t)
	flows := func() map[string]*flow.Flow {
		return map[string]*flow.Flow{"f": {
			Start: []string{"nap"},
			Nodes: map[string]*flow.Node{"nap": {Sleep: 2 * time.Second, Next: []string{"after"}}, "after": {}},
		}}
	}
	rt, err := engine.New(b, engine.Options{Flows: flows(), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Flow: "f", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	// Parked: follow the journal until it says so. Stop lets the worker
	// settle the record and schedule the wake-up.
	until(t, rt, rec.ID, journal.TypeRunWaiting)
	rt.Stop()
	if r, err := rt.Get(ctx, rec.ID); err != nil || r.Status != run.StatusWaiting || r.WaitingFor != run.WaitTimer || r.WakeAt == nil {
		t.Fatalf("parked record: %+v %v", r, err)
	}
	b.Close()
	b = storetest.Reopen(t, dir)
	rt, err = engine.New(b, engine.Options{Flows: flows(), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted {
		t.Fatalf("%s %+v", rec.Status, rec.Error)
	}
	if d := time.Since(began); d < 2*time.Second {
		t.Errorf("woke after %s, before its 2s", d)
	}
	types := strings.Join(eventTypes(t, rt, rec.ID), " ")
	if types != "run.started node.started run.waiting timer.fired node.finished node.started node.finished run.completed" {
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
	if rec.Status != run.StatusWaiting || rec.WaitingFor != run.WaitInput || len(rec.InputRequests) != 1 ||
		rec.InputRequests[0].Prompt != "Approve v2?" || rec.InputRequests[0].Key != "review#1" {
		t.Fatalf("%s %s %+v", rec.Status, rec.WaitingFor, rec.InputRequests)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "review#1", json.RawMessage(`{"ok": "yes"}`)); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("an answer against the schema: %v", err)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "other#1", json.RawMessage(`{"ok": true}`)); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("an answer to nothing: %v", err)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "review#1", json.RawMessage(`{"ok": true}`)); err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted || rec.Output != "shipped" {
		t.Fatalf("%s %q %+v", rec.Status, rec.Output, rec.Error)
	}
	if types := strings.Join(eventTypes(t, rt, rec.ID), " "); !strings.Contains(types, "input.requested run.waiting input.received node.finished") {
		t.Errorf("journal %s", types)
	}
}

// A schedule set on the NATS server starts runs, each fire once.
func TestScheduleStartsRuns(t *testing.T) {
	b, _ := storetest.Open(t)
	flows := map[string]*flow.Flow{"tick": {Start: []string{"a"}, Nodes: map[string]*flow.Node{"a": {}}}}
	finished := make(chan *run.Record, 16)
	rt, err := engine.New(b, engine.Options{Flows: flows, Workers: 4,
		Schedules: []engine.Schedule{{Name: "every-second", Cron: "@every 1s", Flow: "tick", Input: "tock"}},
		OnFinish:  func(rec *run.Record, _ engine.RunStats) { finished <- rec }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start(t, rt)
	done := map[string]bool{}
	for len(done) < 2 {
		select {
		case rec := <-finished:
			if rec.Status != run.StatusCompleted || rec.Metadata["schedule"] != "every-second" || rec.Flow != "tick" || rec.Input != "tock" {
				t.Fatalf("scheduled run %+v", rec)
			}
			done[rec.ID] = true
		case <-ctx.Done():
			t.Fatalf("%d scheduled runs completed in 20s, want 2", len(done))
		}
	}
	// A node started without the schedule removes it.
	rt.Stop()
	rt2, err := engine.New(b, engine.Options{Flows: flows, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt2)
	if names, err := b.CronNames(ctx); err != nil || len(names) != 0 {
		t.Fatalf("schedules still set after the configuration dropped them: %v %v", names, err)
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
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Flow: "f", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	<-slow.entered
	<-slow.entered
	if _, err := rt.Cancel(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCanceled {
		t.Fatalf("flow %s", rec.Status)
	}
	// The flow's end cancels its children: each takes the cancel while its
	// call still runs.
	for _, k := range children(t, rt, rec.ID) {
		until(t, rt, k.ID, journal.TypeCancelRequested)
	}
	close(slow.block)
	for _, k := range children(t, rt, rec.ID) {
		if k = wait(t, rt, k.ID); k.Status != run.StatusCanceled {
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
	if rec.Status != run.StatusWaiting || rec.WaitingFor != run.WaitInput {
		t.Fatalf("%s %s", rec.Status, rec.WaitingFor)
	}
	types := strings.Join(eventTypes(t, rt, rec.ID), " ")
	if !strings.Contains(types, "children.reported node.finished node.started node.finished") {
		t.Fatalf("the work branch did not finish while the flow asked: %s", types)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "ask#1", json.RawMessage(`"yes"`)); err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted || !strings.Contains(string(rec.OutputJSON), `"after":"after ran"`) {
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
	if rec.Status != run.StatusWaiting || rec.WaitingFor != run.WaitInput || rec.WakeAt == nil {
		t.Fatalf("%s %s %v", rec.Status, rec.WaitingFor, rec.WakeAt)
	}
	rec = waitTerminal(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted || rec.Output != "dropped" || time.Since(began) < time.Second {
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
	if rec.Status != run.StatusFailed || rec.Error.Code != "timeout" || !strings.Contains(rec.Error.Message, "raise flows.f.timeout") {
		t.Fatalf("%s %+v", rec.Status, rec.Error)
	}
	if k := wait(t, rt, children(t, rt, rec.ID)[0].ID); k.Status != run.StatusCanceled {
		t.Errorf("the child is %s after its flow timed out", k.Status)
	}
}

// waitTerminal follows a run's journal until it ends.
func waitTerminal(t *testing.T, rt *engine.Engine, id string) *run.Record {
	t.Helper()
	until(t, rt, id, "")
	return wait(t, rt, id)
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

// The settle that parked a run died before setting its timer: the run's
// queue entry, delivered again, settles it again, and the default applies
// on time.
func TestLostTimerIsSetAgain(t *testing.T) {
	flows := func() map[string]*flow.Flow {
		return map[string]*flow.Flow{"f": {Start: []string{"review"}, Output: "verdict",
			Nodes: map[string]*flow.Node{"review": {Ask: &flow.Ask{Prompt: "ship?", Timeout: time.Second, Default: "no"}, Output: "verdict"}}}}
	}
	b, _ := storetest.Open(t)
	idle, err := engine.New(b, engine.Options{Flows: flows()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec, _, err := idle.Submit(ctx, engine.SubmitRequest{Flow: "f", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	// What a worker that died between parking and setting the timer leaves.
	until := time.Now().Add(time.Second).UTC()
	w := takeSubmission(t, b, rec.ID)
	for _, e := range []struct {
		typ  string
		data any
	}{
		{journal.TypeRunStarted, journal.RunStarted{Flow: "f", Input: "go"}},
		{journal.TypeNodeStarted, journal.NodeStarted{Node: "review", Visit: 1, Key: "review#1", Until: &until}},
		{journal.TypeInputRequested, journal.InputRequested{Node: "review", Key: "review#1", Prompt: "ship?"}},
		{journal.TypeRunWaiting, journal.RunWaiting{Until: &until, Inputs: []string{"review#1"}}},
	} {
		if _, err := w.Append(ctx, e.typ, e.data); err != nil {
			t.Fatal(err)
		}
	}
	rt, err := engine.New(b, engine.Options{Flows: flows()})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	if rec = waitTerminal(t, rt, rec.ID); rec.Status != run.StatusCompleted || rec.Output != "no" {
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
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Flow: "f", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	q := question(t, rt, rec.ID)
	cur, err := rt.Get(ctx, rec.ID)
	if err != nil || !cur.Asking() || q.Node != "pick" || q.Call == "" {
		t.Fatalf("while asking: %+v %+v %v", q, cur, err)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, q.Key, json.RawMessage(`{"n": "two"}`)); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("an answer against the schema: %v", err)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, q.Key, json.RawMessage(`{"n": 2}`)); err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted || rec.Output != `{"n":2}` || len(rec.InputRequests) != 0 {
		t.Fatalf("%s %q %+v %+v", rec.Status, rec.Output, rec.Error, rec.InputRequests)
	}
}

// An answer to a question the journal has but the run's record does not
// list yet (its worker has not settled) is taken, not refused: whoever
// follows the journal may answer at once.
func TestAnswerBeforeTheRecordListsTheQuestion(t *testing.T) {
	flows := map[string]*flow.Flow{"f": {Start: []string{"first"},
		Nodes: map[string]*flow.Node{"first": {Ask: &flow.Ask{Prompt: "first?"}}}}}
	b, _ := storetest.Open(t)
	rt := flowRuntimeOn(t, b, flows, nil)
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Flow: "f", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.WaitingFor != run.WaitInput {
		t.Fatalf("%s %s", rec.Status, rec.WaitingFor)
	}
	// A question in the journal only, as between a worker's append and its
	// settle.
	w, err := b.OpenJournal(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(ctx, journal.TypeInputRequested, journal.InputRequested{Node: "first", Key: "first#2", Prompt: "first, again?"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "first#2", json.RawMessage(`true`)); err != nil {
		t.Fatal(err)
	}
	if types := strings.Join(eventTypes(t, rt, rec.ID), " "); !strings.Contains(types, "input.requested input.received") {
		t.Fatalf("the answer was not taken: %s", types)
	}
	if _, err := rt.ProvideInput(ctx, rec.ID, "nope#1", json.RawMessage(`true`)); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("a question nobody asked: %v", err)
	}
}
