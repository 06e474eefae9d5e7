package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// Past server.max_backlog runs waiting, new submissions are refused with
// a time to retry; a retry of an accepted run gets its run; nothing
// accepted is lost, and once workers drain the queue, submissions are
// accepted again.
func TestSubmissionsPastTheBacklogAreRefused(t *testing.T) {
	b, _ := storetest.Open(t)
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: done}`)}},
		MaxBacklog: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	submit := func(key string) (*run.Record, bool, error) {
		engine.ForgetBacklog(rt)
		return rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go", IdempotencyKey: key})
	}
	// No workers yet: runs wait on the queue. A burst counts the runs let
	// in since the backlog was read, so none of these readings is stale.
	var accepted []string
	for _, key := range []string{"a", "b"} {
		rec, created, err := submit(key)
		if err != nil || !created {
			t.Fatalf("submission %s: %v %v", key, created, err)
		}
		accepted = append(accepted, rec.ID)
	}
	_, _, err = submit("c")
	var over *engine.OverloadedError
	if !errors.As(err, &over) || !errors.Is(err, engine.ErrOverloaded) {
		t.Fatalf("a third submission with max_backlog 2: %v", err)
	}
	if over.Waiting != 2 || over.Limit != 2 || over.RetryAfter < time.Second || over.RetryAfter > time.Minute {
		t.Fatalf("refusal %+v", over)
	}
	if !strings.Contains(err.Error(), "server.max_backlog") {
		t.Fatalf("the refusal does not name its setting: %v", err)
	}
	// A retry of an accepted submission is answered with its run.
	rec, created, err := submit("a")
	if err != nil || created || rec.ID != accepted[0] {
		t.Fatalf("retry of an accepted submission while overloaded: %v %v %v", rec, created, err)
	}
	start(t, rt)
	for _, id := range accepted {
		if rec := wait(t, rt, id); rec.Status != run.StatusCompleted {
			t.Fatalf("run %s: %s", id, rec.Status)
		}
	}
	// Drained: accepted again (the queue's acknowledgements may trail
	// the runs' ends by a moment).
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, created, err := submit("c")
		if err == nil && created {
			break
		}
		if !errors.Is(err, engine.ErrOverloaded) || time.Now().After(deadline) {
			t.Fatalf("after the queue drained: %v %v", created, err)
		}
		<-time.After(10 * time.Millisecond) // the acknowledgements land
	}
}

// An agent's max_concurrent bounds the runs of it a node executes at
// once: the others are left on the queue, offered again, and all end.
func TestMaxConcurrentBoundsAnAgentsRuns(t *testing.T) {
	b, _ := storetest.Open(t)
	step := &recorder{name: "step", block: make(chan struct{}), entered: make(chan string, 10)}
	refused := make(chan struct{}, 100)
	log := slog.New(&watchHandler{msg: "left on the queue", seen: refused})
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{
		"worker": {Model: scriptedModel(t, `
- when: {min_tool_results: 1}
  reply: {text: done}
- reply: {tool_calls: [{name: step, arguments: '{"n": 1}'}]}`), Tools: []tool.Tool{step}, MaxConcurrent: 1}},
		Workers: 8, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	var ids []string
	for range 3 {
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	<-step.entered // one run holds the agent's only slot, in its tool call
	// The others are offered and left on the queue, again and again,
	// and none of them calls the tool meanwhile.
	for range 4 {
		select {
		case <-refused:
		case <-time.After(20 * time.Second):
			t.Fatal("no other run was offered while the slot was taken")
		}
	}
	select {
	case key := <-step.entered:
		t.Fatalf("a second run called its tool (%s) while the first held the agent's only slot", key)
	default:
	}
	// Those waiting for the slot have not started: no run.started yet.
	started := 0
	for _, id := range ids {
		if evs, err := rt.Events(ctx, id); err == nil && len(evs) > 0 {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("%d runs started with one slot", started)
	}
	close(step.block)
	for _, id := range ids {
		if rec := wait(t, rt, id); rec.Status != run.StatusCompleted {
			t.Fatalf("run %s: %s", id, rec.Status)
		}
	}
}

// watchHandler signals each log record whose message starts with msg.
type watchHandler struct {
	msg  string
	seen chan struct{}
}

func (h *watchHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *watchHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.msg) {
		select {
		case h.seen <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h *watchHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *watchHandler) WithGroup(string) slog.Handler      { return h }

// A burst faster than the backlog is read counts the runs it let in: no
// more than max_backlog wait.
func TestABurstIsHeldToTheBacklog(t *testing.T) {
	b, _ := storetest.Open(t)
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: done}`)}},
		MaxBacklog: 3})
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for range 20 {
		_, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "worker", Input: "go"})
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, engine.ErrOverloaded):
			t.Fatal(err)
		}
	}
	if accepted != 3 {
		t.Fatalf("a burst of 20 let %d runs in with max_backlog 3", accepted)
	}
}
