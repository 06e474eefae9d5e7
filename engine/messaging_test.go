package engine_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/builtin"
)

// A coordinator instance sends, asks and broadcasts with the messaging
// tools; each message is a turn of its recipient, which knows who sent it.
const coordinatorRules = `
- when: {last_tool: broadcast_message}
  reply: {text: "{{.LastToolResult}}"}
- when: {last_tool: ask_agent}
  reply: {tool_calls: [{name: broadcast_message, arguments: {to: "*/lab/*", message: "news"}}]}
- when: {last_tool: send_message}
  reply: {tool_calls: [{name: ask_agent, arguments: {to: "researcher/lab/alice", question: "what is 2+2"}}]}
- reply: {tool_calls: [{name: send_message, arguments: {to: "researcher/lab/bob", message: "hello bob"}}]}
`

func messagingTools() []tool.Tool {
	return []tool.Tool{builtin.SendMessage(), builtin.AskAgent(), builtin.BroadcastMessage()}
}

func TestInstancesMessageEachOther(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{
		"coordinator": {Model: scriptedModel(t, coordinatorRules), Tools: messagingTools()},
		"researcher":  {Model: scriptedModel(t, `- reply: {text: "answer to [{{.LastUser}}]"}`)},
		"writer":      {Model: scriptedModel(t, `- reply: {text: "noted"}`)},
	})
	start(t, rt)
	ctx := context.Background()
	// The team exists before the coordinator speaks: each member had a
	// message.
	for _, a := range []string{"researcher/lab/alice", "researcher/lab/bob", "writer/lab/carol", "researcher/other/dan"} {
		to, err := engine.ParseAddress(a)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := rt.Ask(ctx, engine.Message{To: to, Text: "hi"})
		if err != nil || rec.Status != run.StatusCompleted {
			t.Fatalf("%s: %v %+v", a, err, rec)
		}
	}
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "coordinator", Instance: "main", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	got := wait(t, rt, rec.ID)
	if got.Status != run.StatusCompleted || got.Output != "sent to 3 instances under */lab/*" {
		t.Fatalf("coordinator: %s %q %+v", got.Status, got.Output, got.Error)
	}
	// The ask's answer came back as its tool result.
	events, err := rt.Events(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	for _, ev := range events {
		if ev.Type == journal.TypeToolFinished {
			var f journal.ToolFinished
			if err := json.Unmarshal(ev.Data, &f); err != nil {
				t.Fatal(err)
			}
			results = append(results, f.Content)
		}
	}
	want := "answer to [Message from coordinator/main:\n\nwhat is 2+2]"
	if len(results) != 3 || results[1] != want {
		t.Fatalf("tool results %q, want the ask's %q", results, want)
	}
	// Bob had the message sent to him, and one broadcast; dan, outside
	// the lab, had none.
	turns := func(agentName, key string) []*run.Record {
		recs, _, err := rt.List(ctx, run.Filter{Agent: agentName, Instance: key, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			wait(t, rt, r.ID)
		}
		return recs
	}
	bob := turns("researcher", "lab/bob")
	if len(bob) != 3 {
		t.Fatalf("bob had %d turns, want 3 (hi, hello, news)", len(bob))
	}
	for _, r := range bob[:2] { // newest first
		if r.Metadata[engine.MetadataFrom] != "coordinator/main" || r.Metadata["sent_by_run"] != rec.ID {
			t.Fatalf("bob's turn %s: metadata %v", r.ID, r.Metadata)
		}
	}
	if n := len(turns("researcher", "other/dan")); n != 1 {
		t.Fatalf("dan had %d turns, want 1", n)
	}
	if n := len(turns("writer", "lab/carol")); n != 2 {
		t.Fatalf("carol had %d turns, want 2", n)
	}
}

func TestInstanceDirectoryListsByAddress(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{
		"a": {Model: scriptedModel(t, `- reply: {text: ok}`)},
		"b": {Model: scriptedModel(t, `- reply: {text: ok}`)},
	})
	start(t, rt)
	ctx := context.Background()
	addrs := []string{"a/eu/x", "a/eu/team.1/y", "b/eu/z", "a/us/w", "a/eu", "a/europe/v"}
	for _, s := range addrs {
		to, _ := engine.ParseAddress(s)
		if rec, err := rt.Ask(ctx, engine.Message{To: to, Text: "hi"}); err != nil || rec.Status != run.StatusCompleted {
			t.Fatalf("%s: %v", s, err)
		}
	}
	list := func(f engine.InstanceFilter) []string {
		t.Helper()
		var out []string
		for {
			page, err := rt.ListInstances(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, ie := range page.Instances {
				out = append(out, ie.Address().String())
			}
			if page.NextCursor == "" {
				return out
			}
			f.Cursor = page.NextCursor
		}
	}
	for _, tc := range []struct {
		f    engine.InstanceFilter
		want []string
	}{
		{engine.InstanceFilter{}, addrs},
		{engine.InstanceFilter{Limit: 1}, addrs},
		{engine.InstanceFilter{Agent: "a", Under: "eu", Limit: 2}, []string{"a/eu/x", "a/eu/team.1/y"}},
		{engine.InstanceFilter{Under: "eu"}, []string{"a/eu/x", "a/eu/team.1/y", "b/eu/z"}},
		{engine.InstanceFilter{Under: "eu/team.1"}, []string{"a/eu/team.1/y"}},
		{engine.InstanceFilter{Agent: "b"}, []string{"b/eu/z"}},
		{engine.InstanceFilter{Agent: "c"}, nil},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
		}
	}
	if _, err := rt.ListInstances(ctx, engine.InstanceFilter{Under: "eu//x"}); err == nil {
		t.Error("an empty segment was accepted")
	}
	// A broadcast reaches what the same pattern lists, once per key.
	for range 2 {
		runs, err := rt.Broadcast(ctx, "*/eu/*", engine.Message{Text: "all of eu", Key: "k1"}, nil)
		if err != nil || len(runs) != 3 {
			t.Fatalf("broadcast: %d runs, %v", len(runs), err)
		}
	}
	recs, _, err := rt.List(ctx, run.Filter{Agent: "a", Instance: "eu/x", Limit: 10})
	if err != nil || len(recs) != 2 {
		t.Fatalf("a/eu/x had %d turns, want 2 (a keyed broadcast sent twice is sent once): %v", len(recs), err)
	}
}

// An ask that gets no answer in time says so, and the asked instance
// answers later all the same.
func TestAskTimesOut(t *testing.T) {
	b, _ := storetest.Open(t)
	slow := &recorder{name: "slow", block: make(chan struct{})}
	rt := newRuntime(t, b, map[string]*agent.Agent{
		"asker": {Model: scriptedModel(t, `
- when: {last_tool: ask_agent}
  reply: {text: "{{.LastToolResult}}"}
- reply: {tool_calls: [{name: ask_agent, arguments: {to: "sleeper/s1", question: "are you there"}}]}
`), Tools: messagingTools(), Messaging: agent.Messaging{AskTimeout: 300 * time.Millisecond, To: []string{"sleeper/*"}}},
		"sleeper": {Model: scriptedModel(t, `
- when: {last_tool: slow}
  reply: {text: "awake"}
- reply: {tool_calls: [{name: slow, arguments: {n: 1}}]}
`), Tools: []tool.Tool{slow}},
	})
	start(t, rt)
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "asker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	got := wait(t, rt, rec.ID)
	if got.Status != run.StatusCompleted || !strings.HasPrefix(got.Output, "no answer within 300ms") {
		t.Fatalf("asker: %s %q", got.Status, got.Output)
	}
	close(slow.block)
	recs, _, err := rt.List(ctx, run.Filter{Agent: "sleeper", Instance: "s1", Limit: 10})
	if err != nil || len(recs) != 1 {
		t.Fatalf("sleeper turns: %d %v", len(recs), err)
	}
	if end := wait(t, rt, recs[0].ID); end.Output != "awake" {
		t.Fatalf("sleeper: %s %q", end.Status, end.Output)
	}
}

// An agent's messaging.to bounds whom its tools reach.
func TestMessagingBounds(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{
		"boxed": {Model: scriptedModel(t, `
- when: {last_tool: send_message}
  reply: {text: "{{.LastToolResult}}"}
- reply: {tool_calls: [{name: send_message, arguments: {to: "other/x", message: "hi"}}]}
`), Tools: messagingTools(), Messaging: agent.Messaging{To: []string{"boxed/team/*"}}},
		"other": {Model: scriptedModel(t, `- reply: {text: ok}`)},
	})
	start(t, rt)
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "boxed", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	got := wait(t, rt, rec.ID)
	if !strings.Contains(got.Output, "may not message other/x") {
		t.Fatalf("output %q", got.Output)
	}
}

// A node's cached snapshot of an instance may be older than the store's
// (another node worked it since): the worker folds the journal after it,
// so nothing of the conversation is lost.
func TestStaleCachedSnapshotFoldsTheJournal(t *testing.T) {
	b, _ := storetest.Open(t)
	rt := newRuntime(t, b, map[string]*agent.Agent{"w": {Model: scriptedModel(t, `- reply: {text: "turn {{.Turn}}"}`)}})
	start(t, rt)
	ctx := context.Background()
	to := engine.Address{Agent: "w", Key: "team/k"}
	id := engine.InstanceID("w", "team/k")
	ask := func(want string) {
		t.Helper()
		rec, err := rt.Ask(ctx, engine.Message{To: to, Text: "hi"})
		if err != nil || rec.Output != want {
			t.Fatalf("got %q (%v), want %q", rec.Output, err, want)
		}
	}
	ask("turn 1")
	old, ok := engine.CachedSnapshot(rt, id)
	if !ok {
		t.Fatal("the node cached no snapshot of the instance it worked")
	}
	ask("turn 2")
	ask("turn 3")
	engine.CacheSnapshot(rt, id, old)
	ask("turn 4")
	in, err := rt.GetInstance(ctx, "w", "team/k")
	if err != nil || in.Done != 4 || len(in.Messages) != 8 {
		t.Fatalf("instance: %d done, %d messages, %v", in.Done, len(in.Messages), err)
	}
	if s := rt.InstanceStats(); s.Activations == 0 || s.CacheHits == 0 || s.CachedInstances != 1 {
		t.Fatalf("stats %+v", s)
	}
}
