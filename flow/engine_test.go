package flow

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/journal"
)

// memJournal is an in-memory journal: enough to drive the engine through
// a journal written by hand, as a crash would have left it.
type memJournal struct{ events []journal.Event }

func (m *memJournal) Append(_ context.Context, typ string, data any) (journal.Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return journal.Event{}, err
	}
	ev := journal.Event{Seq: uint64(len(m.events) + 1), Step: len(m.events) + 1, RunID: "run_t", Type: typ, Time: time.Now(), Data: raw}
	m.events = append(m.events, ev)
	return ev, nil
}

func (m *memJournal) types() string {
	var t []string
	for _, ev := range m.events {
		t = append(t, ev.Type)
	}
	return strings.Join(t, " ")
}

func resume(t *testing.T, f *Flow, j *memJournal) agent.Outcome {
	t.Helper()
	if err := f.Init(func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	out, err := f.Resume(context.Background(), "run_t", append([]journal.Event(nil), j.events...), j, agent.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A node's failure journaled, then a crash before run.failed: the resumed
// run fails; it must not complete for want of anything left to run.
func TestResumeAfterAFailedNodeFails(t *testing.T) {
	f := &Flow{Name: "f", Start: []string{"a"}, Nodes: map[string]*Node{"a": {Func: func(context.Context, FuncInput) (any, error) { return nil, nil }, Next: []string{"b"}}, "b": {}}}
	j := &memJournal{}
	_, _ = j.Append(context.Background(), journal.TypeRunStarted, journal.RunStarted{Flow: "f", Input: "go"})
	_, _ = j.Append(context.Background(), journal.TypeNodeStarted, journal.NodeStarted{Node: "a", Visit: 1, Key: "a#1"})
	_, _ = j.Append(context.Background(), journal.TypeNodeFinished, journal.NodeFinished{Node: "a", Visit: 1, Key: "a#1", Error: "boom"})
	if out := resume(t, f, j); out != agent.Failed || !strings.HasSuffix(j.types(), "node.finished run.failed") {
		t.Fatalf("outcome %v, journal %s", out, j.types())
	}
}

// A map over no items, interrupted between its start and its finish,
// finishes with an empty list on resume, as it would have live.
func TestResumeEmptyMap(t *testing.T) {
	f := &Flow{Name: "f", Start: []string{"m"}, Output: "out",
		Nodes: map[string]*Node{"m": {Map: "[]", Agent: "x", Output: "out"}}}
	j := &memJournal{}
	_, _ = j.Append(context.Background(), journal.TypeRunStarted, journal.RunStarted{Flow: "f", Input: "go"})
	_, _ = j.Append(context.Background(), journal.TypeNodeStarted, journal.NodeStarted{Node: "m", Visit: 1, Key: "m#1"})
	if out := resume(t, f, j); out != agent.Completed {
		t.Fatalf("outcome %v, journal %s", out, j.types())
	}
	var done journal.RunCompleted
	_ = json.Unmarshal(j.events[len(j.events)-1].Data, &done)
	if done.Output != "[]" {
		t.Fatalf("output %q, want []", done.Output)
	}
}

func constant(v any) Func {
	return func(context.Context, FuncInput) (any, error) { return v, nil }
}

func TestJoins(t *testing.T) {
	t.Run("an all-join behind an either-or route fails instead of skipping", func(t *testing.T) {
		f := &Flow{Name: "f", Start: []string{"triage"}, Nodes: map[string]*Node{
			"triage":  {Route: []Edge{{When: "input == 'bill'", To: "billing"}, {To: "tech"}}},
			"billing": {Func: constant("b"), Next: []string{"reply"}},
			"tech":    {Func: constant("t"), Next: []string{"reply"}},
			"reply":   {Join: "all", Func: constant("r")},
		}}
		j := &memJournal{}
		_, _ = j.Append(context.Background(), journal.TypeRunStarted, journal.RunStarted{Flow: "f", Input: "bill"})
		out := resume(t, f, j)
		var failed journal.RunFailed
		_ = json.Unmarshal(j.events[len(j.events)-1].Data, &failed)
		if out != agent.Failed || failed.Code != CodeJoin || !strings.Contains(failed.Message, "still waits for tech") {
			t.Fatalf("outcome %v %+v", out, failed)
		}
	})
	t.Run("an any-join in a loop counts a branch that skipped the round before", func(t *testing.T) {
		f := &Flow{Name: "f", Start: []string{"round"},
			State: map[string]Key{"round": {Initial: 0}, "joined": {Merge: Append}},
			Nodes: map[string]*Node{
				"round": {Func: func(_ context.Context, in FuncInput) (any, error) { return in.State["round"].(int64) + 1, nil },
					Output: "round", Route: []Edge{{When: "state.round == 1", To: "a"}, {When: "state.round == 2", To: "b"}}},
				"a":    {Func: constant("a"), Next: []string{"join"}},
				"b":    {Func: constant("b"), Next: []string{"join"}},
				"join": {Join: "any", Func: constant("joined"), Output: "joined", Next: []string{"round"}},
			}}
		j := &memJournal{}
		_, _ = j.Append(context.Background(), journal.TypeRunStarted, journal.RunStarted{Flow: "f", Input: "go"})
		if out := resume(t, f, j); out != agent.Completed {
			t.Fatalf("outcome %v: %s", out, j.types())
		}
		var done journal.RunCompleted
		_ = json.Unmarshal(j.events[len(j.events)-1].Data, &done)
		var state struct{ Joined []string }
		_ = json.Unmarshal(done.JSON, &state)
		if len(state.Joined) != 2 {
			t.Fatalf("the join ran %d times, want 2 (once per round): %s", len(state.Joined), done.JSON)
		}
	})
}

// Round 1: a reaches the any-join while b (upstream of p2) is in flight, so
// owed[join][p2]++; b then routes away from p2. Round 2 (looped through the
// join): b -> p2 -> join is a genuine arrival, but it is swallowed as owed.
func TestLateBranchThatRoutesAwayOwesNothing(t *testing.T) {
	f := &Flow{Name: "f", Start: []string{"round"},
		State: map[string]Key{"round": {Initial: 0}, "joined": {Merge: Append}},
		Nodes: map[string]*Node{
			"round": {Func: func(_ context.Context, in FuncInput) (any, error) { return in.State["round"].(int64) + 1, nil },
				Output: "round", Next: []string{"a", "b"}},
			"a":    {Func: constant("a"), Route: []Edge{{When: "state.round == 1", To: "join"}, {To: "sink"}}},
			"b":    {Func: constant("b"), Route: []Edge{{When: "state.round == 2", To: "p2"}, {To: "sink"}}},
			"p2":   {Func: constant("p2"), Next: []string{"join"}},
			"sink": {},
			"join": {Join: "any", Func: constant("joined"), Output: "joined", Route: []Edge{{When: "state.round < 2", To: "round"}}},
		}}
	j := &memJournal{}
	_, _ = j.Append(context.Background(), journal.TypeRunStarted, journal.RunStarted{Flow: "f", Input: "go"})
	out := resume(t, f, j)
	var done journal.RunCompleted
	_ = json.Unmarshal(j.events[len(j.events)-1].Data, &done)
	var state struct{ Joined []string }
	_ = json.Unmarshal(done.JSON, &state)
	if out != agent.Completed || len(state.Joined) != 2 {
		t.Fatalf("outcome %v; join ran %d times, want 2: %s\n%s", out, len(state.Joined), done.JSON, j.types())
	}
}
