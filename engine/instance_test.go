package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
)

func TestTrimHistory(t *testing.T) {
	u := model.Message{Role: model.RoleUser, Content: "u"}
	a := model.Message{Role: model.RoleAssistant, Content: "a"}
	tl := model.Message{Role: model.RoleTool, Content: "t"}
	roles := func(ms []model.Message) string {
		var b strings.Builder
		for _, m := range ms {
			b.WriteString(m.Content)
		}
		return b.String()
	}
	// size is what messages weigh against maxBytes: their JSON, and a
	// separator each.
	size := func(ms ...model.Message) int {
		n := 0
		for _, m := range ms {
			b, _ := json.Marshal(m)
			n += len(b) + 1
		}
		return n
	}
	tests := []struct {
		in       []model.Message
		limit    int
		maxBytes int
		want     string
	}{
		{[]model.Message{u, a, u, a}, 10, 0, "uaua"},
		{[]model.Message{u, a, u, a}, 2, 0, "ua"},
		{[]model.Message{u, a, tl, a, u, a}, 4, 0, "ua"},
		{[]model.Message{u, a, tl, a, u, a}, 5, 0, "ua"},
		{[]model.Message{u, a, tl, a, u, a}, 6, 0, "uataua"},
		{[]model.Message{u, a, tl, a}, 3, 0, "uata"},
		{[]model.Message{u, a}, 0, 0, "ua"},
		// By bytes: the longest tail that fits and starts with a user message.
		{[]model.Message{u, a, u, a}, 0, size(u, a, u, a), "uaua"},
		{[]model.Message{u, a, u, a}, 0, size(u, a, u, a) - 1, "ua"},
		{[]model.Message{u, a, tl, a, u, a}, 0, size(a, tl, a, u, a), "ua"},
		// Even the last turn does not fit: the conversation starts afresh.
		{[]model.Message{u, a, tl, a}, 0, size(a, tl, a), ""},
		// Both bounds: the tighter one wins.
		{[]model.Message{u, a, u, a, u, a}, 4, size(u, a, u, a, u, a), "uaua"},
		{[]model.Message{u, a, u, a, u, a}, 6, size(u, a), "ua"},
	}
	for _, tc := range tests {
		if got := roles(engine.TrimHistory(tc.in, tc.limit, tc.maxBytes)); got != tc.want {
			t.Errorf("TrimHistory(%s, %d, %d) = %q, want %q", roles(tc.in), tc.limit, tc.maxBytes, got, tc.want)
		}
	}
}

// An instance whose turns bring long inputs keeps the newest part of its
// conversation that fits its byte bound, and every turn runs: neither the
// snapshot nor a turn's start ever outgrows a message.
func TestLongTurnsKeepTheConversationUnderTheMessageLimit(t *testing.T) {
	b, _ := storetest.Open(t)
	m := scriptedModel(t, `- reply: {text: "turn {{.Turn}}"}`)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: m}})
	start(t, rt)
	ctx := context.Background()
	long := strings.Repeat("x", 1_000_000)
	var outs []string
	var last string
	for i := range 8 {
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: fmt.Sprint(i) + long, Instance: "k"})
		if err != nil {
			t.Fatal(err)
		}
		last = rec.ID
		got := wait(t, rt, rec.ID)
		if got.Status != run.StatusCompleted {
			t.Fatalf("turn %d: %s %+v", i+1, got.Status, got.Error)
		}
		outs = append(outs, got.Output)
	}
	// Two turns of a megabyte fit in the 2 MiB an instance keeps: from the
	// third turn on, the model sees the two turns before it.
	if got := strings.Join(outs, ","); got != "turn 1,turn 2,turn 3,turn 3,turn 3,turn 3,turn 3,turn 3" {
		t.Fatalf("outputs %s", got)
	}
	in, err := rt.GetInstance(ctx, "worker", "k")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(mustMarshal(t, in.Messages)); in.Done != 8 || n > 2<<20 || len(in.Messages) != 4 || in.Dropped != 12 {
		t.Fatalf("instance: %d done, %d messages (%d dropped), %d bytes", in.Done, len(in.Messages), in.Dropped, n)
	}
	// The last turn's start says what its history leaves out: 14 messages
	// before it, 4 kept.
	events, err := rt.Events(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	var started journal.RunStarted
	if err := json.Unmarshal(events[0].Data, &started); err != nil || len(started.History) != 4 || started.HistoryDropped != 10 {
		t.Fatalf("the last turn's start: %d messages, %d dropped, %v", len(started.History), started.HistoryDropped, err)
	}
}

// On a NATS server with a small max_payload, a turn whose input fits a
// message but not with the conversation fails with payload_too_large, and
// the instance goes on with the next; an input too long for a message is
// refused at the door.
func TestTurnTooLargeForTheServerFailsAndTheInstanceGoesOn(t *testing.T) {
	b := storetest.Connect(t, storetest.StartServerWith(t, server.Options{MaxPayload: 256 << 10}))
	m := scriptedModel(t, `- reply: {text: "turn {{.Turn}}"}`)
	rt := newRuntime(t, b, map[string]*agent.Agent{"worker": {Model: m}})
	start(t, rt)
	ctx := context.Background()
	if _, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: strings.Repeat("z", 300_000), Instance: "k"}); !errors.Is(err, engine.ErrTooLarge) ||
		!strings.Contains(err.Error(), "max_payload 262144") {
		t.Fatalf("an input longer than a message: %v", err)
	}
	var got []*run.Record
	for _, in := range []string{strings.Repeat("h", 40_000), strings.Repeat("y", 230_000), "again"} {
		rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: in, Instance: "k"})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, wait(t, rt, rec.ID))
	}
	if got[0].Output != "turn 1" || got[2].Output != "turn 2" {
		t.Errorf("outputs %q, %q: the turn after the long one should see the first", got[0].Output, got[2].Output)
	}
	if r := got[1]; r.Status != run.StatusFailed || r.Error == nil || r.Error.Code != agent.CodeTooLarge {
		t.Fatalf("long turn: %s %+v", r.Status, r.Error)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEveryAcceptedRunEndsNearTheMessageLimit: on a NATS server with a
// small max_payload, inputs around the limit are either refused at the
// door or run to an end — completed, or failed with payload_too_large
// saying what the input was — never left queued or failed as another
// error; runs whose record (input and output) outgrows a message settle
// with the record cut.
func TestEveryAcceptedRunEndsNearTheMessageLimit(t *testing.T) {
	const limit = 64 << 10
	b := storetest.Connect(t, storetest.StartServerWith(t, server.Options{MaxPayload: limit}))
	finished := make(chan *run.Record, 256)
	rt, err := engine.New(b, engine.Options{Workers: 16, OnFinish: func(rec *run.Record, _ engine.RunStats) { finished <- rec },
		Agents: map[string]*agent.Agent{"worker": {Model: scriptedModel(t, `- reply: {text: "ok"}`)},
			"echo": {Model: scriptedModel(t, `- reply: {text: "{{.Input}}"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	ctx := context.Background()
	var ids []string
	for n := limit - 500; n <= limit; n += 10 {
		for _, instance := range []string{"", fmt.Sprint("k", n)} {
			rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: strings.Repeat("q", n), Instance: instance})
			if errors.Is(err, engine.ErrTooLarge) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, rec.ID)
		}
	}
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "echo", Input: strings.Repeat("e", 35_000)})
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, rec.ID)
	if len(ids) < 10 {
		t.Fatalf("only %d runs accepted", len(ids))
	}
	for _, id := range ids {
		rec := wait(t, rt, id)
		switch {
		case rec.Status == run.StatusCompleted:
		case rec.Status == run.StatusFailed && rec.Error.Code == agent.CodeTooLarge && rec.Agent == "worker" && strings.HasPrefix(rec.Input, "qqq") &&
			rec.InputTruncated == strings.HasSuffix(rec.Input, "bytes in all)"):
			// Failed, saying what the input was (cut, and flagged so, when
			// it could not be journaled whole).
		default:
			t.Errorf("run %s (%d bytes of input): %s %+v, agent %q", id, len(rec.Input), rec.Status, rec.Error, rec.Agent)
		}
	}
	// Every run settled: its record is written (the echo's cut to fit).
	for range ids {
		select {
		case <-finished:
		case <-time.After(20 * time.Second):
			t.Fatal("a run never settled")
		}
	}
	// Its record was written cut to fit a message; a read has it whole.
	got, err := rt.Get(ctx, rec.ID)
	if err != nil || got.Status != run.StatusCompleted || got.InputTruncated || got.OutputTruncated || len(got.Input) != 35_000 || len(got.Output) != 35_000 {
		t.Fatalf("the echo: %s, input %d bytes (cut %v), output %d (cut %v), %v", got.Status, len(got.Input), got.InputTruncated, len(got.Output), got.OutputTruncated, err)
	}
}
