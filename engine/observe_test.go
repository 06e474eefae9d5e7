package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
)

// syncBuffer is a log sink written from the engine's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines are the JSON log lines written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

type downModel struct{}

func (downModel) Generate(context.Context, *model.Request, func(model.Delta)) (*model.Response, error) {
	return nil, errors.New("the model is down")
}

// observed records what the engine tells an observer.
type observed struct {
	mu       sync.Mutex
	accepted []run.Info
	types    map[string][]string // run id → entry types
	infos    map[string]run.Info
}

func (o *observed) Accepted(info run.Info) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.accepted = append(o.accepted, info)
}

func (o *observed) Journaled(info run.Info, ev engine.Entry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.types[ev.RunID] = append(o.types[ev.RunID], ev.Type)
	o.infos[ev.RunID] = info
}

// Each run event that matters is one INFO (or, in doubt, WARN) line with
// the run's id, agent and trace id; observers see every entry the node
// journals, with who the run is.
func TestRunEventsAreLoggedAndObserved(t *testing.T) {
	b, _ := storetest.Open(t)
	var logs syncBuffer
	obs := &observed{types: map[string][]string{}, infos: map[string]run.Info{}}
	rt, err := engine.New(b, engine.Options{Workers: 4, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Observers: []engine.Observer{obs},
		Agents: map[string]*agent.Agent{
			"ok":   {Model: scriptedModel(t, `- reply: {text: "fine"}`)},
			"down": {Model: downModel{}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	good, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "ok", Input: "hi", Metadata: map[string]string{"traceparent": tp}})
	if err != nil {
		t.Fatal(err)
	}
	bad, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "down", Input: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, rt, good.ID)
	wait(t, rt, bad.ID)
	want := map[string][]string{
		good.ID: {"run accepted", "run started", "run completed"},
		bad.ID:  {"run accepted", "run started", "run failed"},
	}
	got := map[string][]string{}
	for _, l := range logs.lines(t) {
		id, _ := l["run_id"].(string)
		if want[id] == nil || !strings.HasPrefix(l["msg"].(string), "run ") {
			continue
		}
		got[id] = append(got[id], l["msg"].(string))
		if l["level"] != "INFO" || l["agent"] == nil || len(l["trace_id"].(string)) != 32 {
			t.Errorf("line %v", l)
		}
		if id == good.ID && l["trace_id"] != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("the caller's trace is not the line's: %v", l)
		}
		if strings.HasSuffix(l["msg"].(string), "failed") && (l["code"] != agent.CodeModel || l["duration"] == nil) {
			t.Errorf("failure line %v", l)
		}
	}
	// "run accepted" is logged by the submitter, the rest by the run's
	// writer, which may start the run first: only the writer's lines are
	// in order.
	writerLines := func(msgs []string) (string, int) {
		var rest []string
		accepted := 0
		for _, m := range msgs {
			if m == "run accepted" {
				accepted++
			} else {
				rest = append(rest, m)
			}
		}
		return strings.Join(rest, ","), accepted
	}
	for id, msgs := range want {
		gotRest, gotAccepted := writerLines(got[id])
		wantRest, wantAccepted := writerLines(msgs)
		if gotRest != wantRest || gotAccepted != wantAccepted {
			t.Errorf("run %s logged %v, want %v", id, got[id], msgs)
		}
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.accepted) != 2 || obs.infos[good.ID].Agent != "ok" || obs.infos[good.ID].Submitted.IsZero() {
		t.Fatalf("observed %+v %+v", obs.accepted, obs.infos)
	}
	if types := obs.types[good.ID]; strings.Join(types, ",") != "run.started,model.response,run.completed" {
		t.Fatalf("observed entries %v", types)
	}
}

// modelCalls records which agent each model call of a run was made by, as
// observers see it.
type modelCalls struct {
	mu     sync.Mutex
	actors []string
	ended  chan struct{}
}

func (*modelCalls) Accepted(run.Info) {}

func (m *modelCalls) Journaled(info run.Info, ev engine.Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case ev.Type == "model.response":
		m.actors = append(m.actors, info.Actor())
	case info.Agent == "triage" && (ev.Type == "run.completed" || ev.Type == "run.failed"):
		close(m.ended)
	}
}

// After a handoff, observers see the calls as the new agent's.
func TestObserversSeeWhoHoldsTheConversation(t *testing.T) {
	b, _ := storetest.Open(t)
	calls := &modelCalls{ended: make(chan struct{})}
	rt, err := engine.New(b, engine.Options{Workers: 4, Observers: []engine.Observer{calls}, Agents: map[string]*agent.Agent{
		"triage": {Model: scriptedModel(t, `- reply: {tool_calls: [{name: transfer_to_billing, arguments: {reason: "invoice"}}]}`),
			Handoffs: []agent.Handoff{{Agent: "billing"}}},
		"billing": {Model: scriptedModel(t, `- reply: {text: "billing answers"}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	if _, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "triage", Input: "my invoice"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-calls.ended:
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not end")
	}
	calls.mu.Lock()
	defer calls.mu.Unlock()
	if strings.Join(calls.actors, ",") != "triage,billing" {
		t.Fatalf("model calls made by %v, want triage then billing", calls.actors)
	}
}
