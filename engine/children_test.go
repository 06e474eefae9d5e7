package engine_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

const supervisorRules = `
- when: {last_role: tool}
  reply: {text: "report after {{.ToolResults}} results, last: {{.LastToolResult}}"}
- reply:
    tool_calls:
      - {name: researcher, arguments: {task: "find A"}}
      - {name: researcher, arguments: {task: "find B"}}
      - {name: writer, arguments: {task: "write C"}}
`

const workerRules = `
- reply: {text: "done: {{.Input}}"}
`

func team(t *testing.T, scope agent.ContextScope) map[string]*agent.Agent {
	return map[string]*agent.Agent{
		"supervisor": {Model: scriptedModel(t, supervisorRules), SubAgents: []agent.SubAgent{
			{Agent: "researcher", Context: scope, State: []string{"customer"}}, {Agent: "writer"}}},
		"researcher": {Model: scriptedModel(t, workerRules)},
		"writer":     {Model: scriptedModel(t, workerRules)},
	}
}

func children(t *testing.T, rt *engine.Engine, parent string) []*run.Record {
	t.Helper()
	out, _, err := rt.List(context.Background(), run.Filter{Parent: parent, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range out {
		if rec.Parent != parent {
			t.Fatalf("the parent filter let %s (parent %q) through", rec.ID, rec.Parent)
		}
	}
	slices.SortFunc(out, func(a, b *run.Record) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func TestSubAgentsRunAsChildRuns(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, team(t, agent.ContextTask))
	start(t, rt)
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "supervisor", Input: "research", Metadata: map[string]string{"customer": "42", "secret": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted || rec.Output != "report after 3 results, last: done: write C" {
		t.Fatalf("supervisor: %s %q %+v", rec.Status, rec.Output, rec.Error)
	}
	kids := children(t, rt, rec.ID)
	if roots, _, _ := rt.List(ctx, run.Filter{Roots: true}); len(roots) != 1 || roots[0].ID != rec.ID {
		t.Errorf("roots: %d runs, want only the supervisor", len(roots))
	}
	var paths []string
	for _, k := range kids {
		paths = append(paths, k.Path)
		if k.Status != run.StatusCompleted || k.Depth != 1 || !engine.ValidRunID(k.ID) {
			t.Errorf("child %s: %s depth %d", k.ID, k.Status, k.Depth)
		}
	}
	want := []string{"supervisor/researcher#1", "supervisor/researcher#2", "supervisor/writer#1"}
	if !slices.Equal(paths, want) {
		t.Fatalf("child paths %v, want %v", paths, want)
	}
	// Named state goes to the researcher, and nothing else of the parent.
	if kids[0].Metadata["customer"] != "42" || kids[0].Metadata["secret"] != "" || !strings.HasPrefix(kids[0].Input, "Context:\ncustomer: 42\n\nTask: find") {
		t.Errorf("researcher got metadata %v input %q", kids[0].Metadata, kids[0].Input)
	}
	// Besides, each child carries the parent's trace, so its calls join it.
	if tp := kids[2].Metadata["traceparent"]; kids[2].Input != "write C" || len(kids[2].Metadata) != 1 ||
		!tool.ValidTraceParent(tp) || tp[3:35] != tool.TraceParent("", rec.ID, "")[3:35] {
		t.Errorf("writer got metadata %v input %q", kids[2].Metadata, kids[2].Input)
	}
	// Each child's result is its report in the parent's journal, taken as
	// an input.
	evs, _ := rt.Events(ctx, rec.ID)
	var results []string
	for _, ev := range evs {
		if ev.Type == journal.TypeChildrenReported {
			var d journal.ChildrenReported
			_ = json.Unmarshal(ev.Data, &d)
			if ev.InputSeq == 0 {
				t.Errorf("reports without their input: %+v", ev)
			}
			for _, rep := range d.Reports {
				if rep.RunID == "" || rep.CallID == "" {
					t.Errorf("report without its child: %+v", rep)
				}
				results = append(results, rep.Output)
			}
		}
	}
	// The parent's usage is its own model calls' plus its children's.
	total := 0
	for _, ev := range evs {
		if ev.Type == journal.TypeModelResponse {
			var m journal.ModelResponse
			_ = json.Unmarshal(ev.Data, &m)
			total += m.Usage.Total()
		}
	}
	for _, k := range kids {
		total += k.Usage.Total()
	}
	if rec.Usage.Total() != total || total == 0 {
		t.Errorf("parent usage %d, want %d (its own and its children's)", rec.Usage.Total(), total)
	}
	slices.Sort(results)
	if !slices.Equal(results, []string{"done: Context:\ncustomer: 42\n\nTask: find A", "done: Context:\ncustomer: 42\n\nTask: find B", "done: write C"}) {
		t.Errorf("results %q", results)
	}
}

// What a child receives, measured: the task alone, the parent's whole
// conversation, or a summary of it.
func TestSubAgentContextScopes(t *testing.T) {
	tests := []struct {
		scope       agent.ContextScope
		historyMsgs int
		minBytes    int
		maxBytes    int
	}{
		{agent.ContextTask, 0, 1, 100},
		// The first turn: its 2,600-byte input, the call, three results
		// echoing it, the report; then this turn's input.
		{agent.ContextHistory, 7, 7000, 9000},
		{agent.ContextSummary, 0, 30, 400},
	}
	for _, tc := range tests {
		t.Run(string(tc.scope), func(t *testing.T) {
			b, _ := storetest.Open(t)
			agents := team(t, tc.scope)
			agents["supervisor"].Model = scriptedModel(t, `
- when: {last_user: "^Summarize the conversation"}
  reply: {text: "The user talked at length earlier."}
`+supervisorRules)
			agents["supervisor"].HistoryLimit = 10
			rt := newRuntime(t, b, agents)
			start(t, rt)
			ctx := context.Background()
			// Two turns on one instance: the second has the first as history.
			for _, in := range []string{strings.Repeat("earlier talk ", 200), "research"} {
				rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "supervisor", Instance: "s1", Input: in})
				if err != nil {
					t.Fatal(err)
				}
				if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted {
					t.Fatalf("%s: %+v", rec.Status, rec.Error)
				}
				if in != "research" {
					continue
				}
				kid := children(t, rt, rec.ID)[0]
				evs, _ := rt.Events(ctx, kid.ID)
				var st journal.RunStarted
				_ = json.Unmarshal(evs[0].Data, &st)
				size := len(st.Input)
				for _, m := range st.History {
					size += len(m.Content)
				}
				t.Logf("%s: the child received %d messages of history, %d bytes of context", tc.scope, len(st.History), size)
				if len(st.History) != tc.historyMsgs || size < tc.minBytes || size > tc.maxBytes {
					t.Errorf("child context: %d history messages, %d bytes; want %d messages, %d-%d bytes", len(st.History), size, tc.historyMsgs, tc.minBytes, tc.maxBytes)
				}
				if st.Parent != rec.ID || st.Path != "supervisor/researcher#1" || st.Depth != 1 {
					t.Errorf("run.started of the child: %+v", st)
				}
			}
		})
	}
}

func TestHandoffMovesTheConversation(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{
		"triage": {Instructions: "route", Model: scriptedModel(t, `
- when: {last_tool: transfer_to_billing}
  reply: {text: "triage should not answer after a handoff"}
- reply:
    tool_calls: [{name: transfer_to_billing, arguments: {reason: "invoice question"}}]
`), Handoffs: []agent.Handoff{{Agent: "billing"}}},
		"billing": {Instructions: "bill", Model: scriptedModel(t, `
- when: {system: "^bill$"}
  reply: {text: "billing answers: {{.LastUser}}"}
`)},
	})
	start(t, rt)
	ctx := context.Background()
	for i, in := range []string{"my invoice is wrong", "and the one before"} {
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "triage", Instance: "c1", Input: in})
		if err != nil {
			t.Fatal(err)
		}
		rec = wait(t, rt, rec.ID)
		if rec.Status != run.StatusCompleted || rec.Output != "billing answers: "+in {
			t.Fatalf("turn %d: %s %q %+v", i+1, rec.Status, rec.Output, rec.Error)
		}
		types := strings.Join(eventTypes(t, rt, rec.ID), " ")
		want := "run.started model.response handoff tool.finished model.response run.completed"
		if i == 1 {
			// The instance stays with billing: no second handoff.
			want = "run.started model.response run.completed"
		}
		if types != want {
			t.Errorf("turn %d journal: %s, want %s", i+1, types, want)
		}
	}
}

func TestCancelingAParentCancelsItsChildren(t *testing.T) {
	b, _ := storetest.Open(t)
	slow := &recorder{name: "slow", block: make(chan struct{}), entered: make(chan string, 4)}
	agents := team(t, agent.ContextTask)
	agents["researcher"] = &agent.Agent{Model: scriptedModel(t, `
- when: {last_role: tool}
  reply: {text: "unreachable"}
- reply: {tool_calls: [{name: slow, arguments: {n: 1}}]}
`), Tools: []tool.Tool{slow}}
	rt := newRuntime(t, b, agents)
	start(t, rt)
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "supervisor", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	<-slow.entered
	<-slow.entered // both researchers are inside their tool call
	if _, err := rt.Cancel(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCanceled {
		t.Fatalf("parent %s", rec.Status)
	}
	// The parent's end cancels its children: each takes the cancel while
	// its call still runs.
	for _, k := range children(t, rt, rec.ID) {
		if k.Path != "supervisor/writer#1" {
			until(t, rt, k.ID, journal.TypeCancelRequested)
		}
	}
	close(slow.block)
	for _, k := range children(t, rt, rec.ID) {
		k = wait(t, rt, k.ID)
		if k.Path != "supervisor/writer#1" && k.Status != run.StatusCanceled {
			t.Errorf("child %s is %s after its parent was canceled", k.Path, k.Status)
		}
	}
}

func TestChildLimits(t *testing.T) {
	b, _ := storetest.Open(t)
	agents := team(t, agent.ContextTask)
	agents["supervisor"].MaxChildren = 2
	// A researcher that calls itself, forever: the depth limit stops it.
	agents["researcher"] = &agent.Agent{Model: scriptedModel(t, `
- when: {last_role: tool}
  reply: {text: "below me: {{.LastToolResult}}"}
- reply: {tool_calls: [{name: researcher, arguments: {task: "deeper"}}]}
`), SubAgents: []agent.SubAgent{{Agent: "researcher"}}}
	rt, err := engine.New(b, engine.Options{Agents: agents, Workers: 16, MaxDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "supervisor", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted || !strings.Contains(rec.Output, "limit of 2 sub-agent runs (raise agents.supervisor.max_children)") {
		t.Fatalf("supervisor: %s %q", rec.Status, rec.Output)
	}
	kids := children(t, rt, rec.ID)
	if len(kids) != 2 {
		t.Fatalf("%d children, want 2", len(kids))
	}
	grand := children(t, rt, kids[0].ID)
	if len(grand) != 1 || grand[0].Depth != 2 || grand[0].Path != "supervisor/researcher#1/researcher#1" {
		t.Fatalf("grandchildren %+v", grand)
	}
	if !strings.Contains(grand[0].Output, "2 levels deep") && !strings.Contains(grand[0].Output, "3 levels deep, and the limit is 2 (raise server.max_depth)") {
		t.Errorf("the deepest run answered %q", grand[0].Output)
	}
}

// sameIDs gives every tool call the id call_0, as OpenAI-compatible servers
// that number calls per response do.
type sameIDs struct{ model.Provider }

func (s sameIDs) Generate(ctx context.Context, req *model.Request, sink func(model.Delta)) (*model.Response, error) {
	resp, err := s.Provider.Generate(ctx, req, sink)
	if resp != nil {
		for i := range resp.Message.ToolCalls {
			resp.Message.ToolCalls[i].ID = "call_0"
		}
	}
	return resp, err
}

// Call ids repeat across turns; child runs must not.
func TestChildIDsDifferAcrossTurns(t *testing.T) {
	b, _ := storetest.Open(t)
	agents := team(t, agent.ContextTask)
	agents["supervisor"].Model = sameIDs{scriptedModel(t, `
- when: {last_tool: writer}
  reply: {text: "{{.LastToolResult}}"}
- when: {last_tool: researcher}
  reply: {tool_calls: [{name: writer, arguments: {task: "write"}}]}
- reply: {tool_calls: [{name: researcher, arguments: {task: "research"}}]}
`)}
	rt := newRuntime(t, b, agents)
	start(t, rt)
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "supervisor", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, rt, rec.ID); rec.Status != run.StatusCompleted || rec.Output != "done: write" {
		t.Fatalf("%s %q %+v", rec.Status, rec.Output, rec.Error)
	}
	if kids := children(t, rt, rec.ID); len(kids) != 2 {
		t.Fatalf("%d children, want 2", len(kids))
	}
}
