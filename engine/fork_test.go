package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// A fork's journal is its source's up to a step: what was done there is
// not done again, what comes after is done anew, and a tool result can be
// changed on the way.
func TestForkGoesOnFromAStep(t *testing.T) {
	b, _ := storetest.Open(t)
	lookup := &recorder{name: "lookup", result: "the real value"}
	model := scriptedModel(t, `
- when: {last_tool: lookup}
  reply: {text: "done: {{.LastToolResult}}"}
- reply: {tool_calls: [{name: lookup, arguments: {n: 1}}]}
`)
	rt := newRuntime(t, b, map[string]*agent.Agent{"asker": {Model: model, Tools: []tool.Tool{lookup}}})
	start(t, rt)
	ctx := context.Background()
	src, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "asker", Input: "look it up", Metadata: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	src = wait(t, rt, src.ID)
	// run.started, model.response, tool.started, tool.finished, model.response, run.completed
	if got := strings.Join(eventTypes(t, rt, src.ID), ","); got != "run.started,model.response,tool.started,tool.finished,model.response,run.completed" {
		t.Fatalf("source journal %s", got)
	}
	events, _ := rt.Events(ctx, src.ID)
	callID := ""
	for _, ev := range events {
		if ev.Type == journal.TypeToolFinished {
			f, _ := engine.EntryData[journal.ToolFinished](engine.Entry{Event: ev})
			callID = f.CallID
		}
	}
	models, tools := model.calls.Load(), len(lookup.Keys())

	// From step 4, the tool's result changed: no call is made again but
	// the last model call.
	fork, err := rt.Fork(ctx, src.ID, engine.ForkRequest{Step: 4, ToolResult: &journal.ForkToolResult{CallID: callID, Content: "a changed value"}})
	if err != nil {
		t.Fatal(err)
	}
	fork = wait(t, rt, fork.ID)
	if fork.Status != run.StatusCompleted || fork.Output != "done: a changed value" || fork.Metadata["forked_from"] != src.ID || fork.Metadata["team"] != "a" {
		t.Fatalf("fork %+v", fork)
	}
	if model.calls.Load() != models+1 || len(lookup.Keys()) != tools {
		t.Fatalf("the fork made %d model calls and %d tool calls, want 1 and 0", model.calls.Load()-models, len(lookup.Keys())-tools)
	}
	if got := strings.Join(eventTypes(t, rt, fork.ID), ","); got != "run.started,model.response,tool.started,tool.finished,model.response,run.completed" {
		t.Fatalf("fork journal %s", got)
	}
	// What was copied is the source's work: the fork used no tool, and
	// only its own model call's tokens.
	if fork.Tools != nil || fork.Usage.Total() == 0 || fork.Usage.Total() >= src.Usage.Total() {
		t.Fatalf("fork tools %+v usage %+v; source usage %+v", fork.Tools, fork.Usage, src.Usage)
	}

	// From step 2 (the model asked for the tool): the tool is called.
	fork2, err := rt.Fork(ctx, src.ID, engine.ForkRequest{Step: 2})
	if err != nil {
		t.Fatal(err)
	}
	if fork2 = wait(t, rt, fork2.ID); fork2.Output != "done: the real value" || len(lookup.Keys()) != tools+1 {
		t.Fatalf("fork from step 2: %+v, %d tool calls", fork2, len(lookup.Keys())-tools)
	}

	for _, bad := range []struct {
		name string
		req  engine.ForkRequest
		want string
	}{
		{"the end", engine.ForkRequest{Step: 6}, "the run's end"},
		{"past the end", engine.ForkRequest{Step: 7}, "1 to 6"},
		{"step 0", engine.ForkRequest{Step: 0}, "1 to 6"},
		{"a result of no call", engine.ForkRequest{Step: 2, ToolResult: &journal.ForkToolResult{CallID: callID}}, "no tool call"},
	} {
		if _, err := rt.Fork(ctx, src.ID, bad.req); !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.name, err, bad.want)
		}
	}
	if _, err := rt.Fork(ctx, "run_00000000000000000000000000aa", engine.ForkRequest{Step: 1}); err == nil {
		t.Error("a fork of no run")
	}
}

// A fork can go on with other instructions or another configured model;
// the source's agent is left as it is.
func TestForkWithOtherInstructionsOrModel(t *testing.T) {
	b, _ := storetest.Open(t)
	own := scriptedModel(t, "- when: {system: terse}\n  reply: {text: \"own model, terse\"}\n- reply: {text: \"own model\"}")
	other := scriptedModel(t, `- reply: {text: "other model"}`)
	rt, err := engine.New(b, engine.Options{Workers: 4,
		Agents: map[string]*agent.Agent{"asker": {Model: own, ModelName: "own", Instructions: "Be helpful."}},
		Models: map[string]agent.ModelChoice{"own": {Name: "own", Provider: own}, "other": {Name: "other", Provider: other}}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	src, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "asker", Input: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if src = wait(t, rt, src.ID); src.Output != "own model" {
		t.Fatalf("source %+v", src)
	}
	for _, tc := range []struct {
		req  engine.ForkRequest
		want string
	}{
		{req: engine.ForkRequest{Step: 1, Instructions: "Be terse."}, want: "own model, terse"},
		{req: engine.ForkRequest{Step: 1, Model: "other"}, want: "other model"},
	} {
		fork, err := rt.Fork(ctx, src.ID, tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if fork = wait(t, rt, fork.ID); fork.Output != tc.want {
			t.Errorf("fork %+v: %q, want %q", tc.req, fork.Output, tc.want)
		}
	}
	// A fork of a fork goes on as the first did.
	first, err := rt.Fork(ctx, src.ID, engine.ForkRequest{Step: 1, Model: "other"})
	if err != nil {
		t.Fatal(err)
	}
	first = wait(t, rt, first.ID)
	second, err := rt.Fork(ctx, first.ID, engine.ForkRequest{Step: 1})
	if err != nil {
		t.Fatal(err)
	}
	if second = wait(t, rt, second.ID); second.Output != "other model" {
		t.Errorf("a fork of a fork: %q, want the first fork's model's answer", second.Output)
	}
	if again := wait(t, rt, mustSubmit(t, rt, "asker", "hi")); again.Output != "own model" {
		t.Errorf("after the forks, the agent answers %q", again.Output)
	}
	if _, err := rt.Fork(ctx, src.ID, engine.ForkRequest{Step: 1, Model: "fats"}); !errors.Is(err, engine.ErrInvalid) ||
		!strings.Contains(err.Error(), `model: unknown model "fats" (known: other, own)`) {
		t.Errorf("an unknown model: %v", err)
	}
}

func mustSubmit(t *testing.T, rt *engine.Engine, agentName, input string) string {
	t.Helper()
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: agentName, Input: input})
	if err != nil {
		t.Fatal(err)
	}
	return rec.ID
}

// A fork whose writer died after its run.started copies the rest when its
// run is taken again.
func TestForkCopyResumesAfterACrash(t *testing.T) {
	b, _ := storetest.Open(t)
	lookup := &recorder{name: "lookup", result: "the real value"}
	agents := map[string]*agent.Agent{"asker": {Model: scriptedModel(t, `
- when: {last_tool: lookup}
  reply: {text: "done: {{.LastToolResult}}"}
- reply: {tool_calls: [{name: lookup, arguments: {n: 1}}]}
`), Tools: []tool.Tool{lookup}}}
	first := newRuntime(t, b, agents)
	start(t, first)
	ctx := context.Background()
	src, _, err := first.Submit(ctx, engine.SubmitRequest{Agent: "asker", Input: "look it up"})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, first, src.ID)
	first.Stop()
	// A fork's writer journals its run.started and dies.
	idle := newRuntime(t, b, agents)
	fork, _, err := idle.Submit(ctx, engine.SubmitRequest{Agent: "asker", Input: "look it up"})
	if err != nil {
		t.Fatal(err)
	}
	w := takeSubmission(t, b, fork.ID)
	if _, err := w.Append(ctx, journal.TypeRunStarted, journal.RunStarted{Agent: "asker", Input: "look it up",
		Fork: &journal.Fork{From: src.ID, Step: 4}}); err != nil {
		t.Fatal(err)
	}
	calls := len(lookup.Keys())
	second := newRuntime(t, b, agents)
	start(t, second)
	rec := wait(t, second, fork.ID)
	if rec.Status != run.StatusCompleted || rec.Output != "done: the real value" || len(lookup.Keys()) != calls {
		t.Fatalf("fork %+v after %d more tool calls", rec, len(lookup.Keys())-calls)
	}
	if got := strings.Join(eventTypes(t, second, fork.ID), ","); got != "run.started,model.response,tool.started,tool.finished,model.response,run.completed" {
		t.Fatalf("fork journal %s", got)
	}
}
