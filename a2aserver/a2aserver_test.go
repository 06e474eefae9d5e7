package a2aserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2aclient"
	"github.com/a2aproject/a2a-go/a2aclient/agentcard"

	"github.com/myriad-ai/myriad/a2aserver"
	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model/scripted/scriptedtest"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

const token = "s3cret"

// newServer serves three agents and a flow over A2A, behind a token.
func newServer(t testing.TB) (*engine.Engine, string) { return newServerApproving(t, true) }

func newServerApproving(t testing.TB, clientApprovals bool) (*engine.Engine, string) {
	t.Helper()
	b, _ := storetest.Open(t)
	refund, err := tool.NewFunc("refund", "refunds an order", func(_ context.Context, _ *tool.Call, in struct {
		Order string `json:"order"`
	}) (string, error) {
		return "refunded " + in.Order, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{
		Agents: map[string]*agent.Agent{
			"greeter": {Description: "says hello", Model: scriptedtest.Model(t, `
- when: {last_user: "^again", turn: 2}
  reply: {text: "hello again, I remember {{.Input}}"} # .Input is the conversation's first message
- reply: {text: "hello {{.Input}}"}`)},
			"refunder": {Model: scriptedtest.Model(t, `
- when: {last_tool: refund}
  reply: {text: "done: {{.LastToolResult}}"}
- reply: {tool_calls: [{name: refund, arguments: {order: "A-1"}}]}`),
				Tools: []tool.Tool{refund}, Approvals: map[string]agent.ApprovalRule{"refund": {}}},
			"twice": {Model: scriptedtest.Model(t, `
- when: {last_tool: refund}
  reply: {text: "done"}
- reply: {tool_calls: [{name: refund, arguments: {order: "A-1"}}, {name: refund, arguments: {order: "A-2"}}]}`),
				Tools: []tool.Tool{refund}, Approvals: map[string]agent.ApprovalRule{"refund": {}}},
			"boss": {Model: scriptedtest.Model(t, `
- when: {last_tool: refunder}
  reply: {text: "boss says: {{.LastToolResult}}"}
- reply: {tool_calls: [{name: refunder, arguments: {task: "refund A-1"}}]}`),
				SubAgents: []agent.SubAgent{{Agent: "refunder"}}},
		},
		Flows: map[string]*flow.Flow{"review": {Description: "asks a person", Start: []string{"ask"}, Output: "verdict",
			Nodes: map[string]*flow.Node{"ask": {Ask: &flow.Ask{Prompt: "Ship {{.state.input}}?",
				Schema: json.RawMessage(`{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}`)}, Output: "verdict"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	srv, err := a2aserver.New(rt, a2aserver.Options{Version: "test", Default: "greeter", BearerAuth: true, ClientApprovals: clientApprovals})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.New(rt, api.Options{Token: token, A2A: srv}))
	t.Cleanup(hs.Close)
	return rt, hs.URL
}

type bearer struct{ http.RoundTripper }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return b.RoundTripper.RoundTrip(r)
}

var authed = &http.Client{Transport: bearer{http.DefaultTransport}}

func client(t testing.TB, base, agentName string) (*a2aclient.Client, *a2a.AgentCard) {
	t.Helper()
	card, err := agentcard.DefaultResolver.Resolve(context.Background(), base+"/a2a/"+agentName)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a2aclient.NewFromCard(context.Background(), card, a2aclient.WithJSONRPCTransport(authed))
	if err != nil {
		t.Fatal(err)
	}
	return c, card
}

func text(parts a2a.ContentParts) string {
	var out []string
	for _, p := range parts {
		if tp, ok := p.(a2a.TextPart); ok {
			out = append(out, tp.Text)
		}
	}
	return strings.Join(out, "\n")
}

func send(t *testing.T, c *a2aclient.Client, msg *a2a.Message) *a2a.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.SendMessage(ctx, &a2a.MessageSendParams{Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	task, ok := res.(*a2a.Task)
	if !ok {
		t.Fatalf("result %T, want a task", res)
	}
	return task
}

// stream sends a message on message/stream and returns every event.
func stream(t *testing.T, c *a2aclient.Client, msg *a2a.Message) []a2a.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []a2a.Event
	for ev, err := range c.SendStreamingMessage(ctx, &a2a.MessageSendParams{Message: msg}) {
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, ev)
	}
	return out
}

func last(t *testing.T, events []a2a.Event) *a2a.TaskStatusUpdateEvent {
	t.Helper()
	if len(events) == 0 {
		t.Fatal("no events")
	}
	st, ok := events[len(events)-1].(*a2a.TaskStatusUpdateEvent)
	if !ok || !st.Final {
		t.Fatalf("last event %T %+v, want a final status update", events[len(events)-1], events[len(events)-1])
	}
	return st
}

func TestAgentCards(t *testing.T) {
	_, base := newServer(t)
	tests := []struct {
		path, name, url string
		skillTags       string
	}{
		{"", "greeter", base + "/a2a/greeter", "agent"},
		{"/a2a/refunder", "refunder", base + "/a2a/refunder", "agent"},
		{"/a2a/review", "review", base + "/a2a/review", "flow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Cards are public: no token.
			card, err := agentcard.DefaultResolver.Resolve(context.Background(), base+tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if card.Name != tc.name || card.URL != tc.url || card.ProtocolVersion != a2aserver.ProtocolVersion ||
				card.PreferredTransport != a2a.TransportProtocolJSONRPC || !card.Capabilities.Streaming ||
				len(card.Skills) != 1 || card.Skills[0].Tags[0] != tc.skillTags {
				t.Fatalf("card %+v", card)
			}
			if _, ok := card.SecuritySchemes["bearer"]; !ok || len(card.Security) != 1 {
				t.Fatalf("the card does not say a bearer token is needed: %+v %+v", card.SecuritySchemes, card.Security)
			}
		})
	}
	resp, err := http.Get(base + "/a2a/nobody/.well-known/agent-card.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown agent's card: %d", resp.StatusCode)
	}
	// The endpoint itself needs the token.
	card, _ := agentcard.DefaultResolver.Resolve(context.Background(), base+"/a2a/greeter")
	c, err := a2aclient.NewFromCard(context.Background(), card)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTask(context.Background(), &a2a.TaskQueryParams{ID: "run_x"}); err == nil {
		t.Fatal("a request without the token was answered")
	}
}

func TestSendBlocksUntilTheTaskEnds(t *testing.T) {
	rt, base := newServer(t)
	c, _ := client(t, base, "greeter")
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "Ada"})
	task := send(t, c, msg)
	if task.Status.State != a2a.TaskStateCompleted || len(task.Artifacts) != 1 || text(task.Artifacts[0].Parts) != "hello Ada" {
		t.Fatalf("task %+v", task)
	}
	rec, err := rt.Get(context.Background(), string(task.ID))
	if err != nil || rec.Status != run.StatusCompleted || rec.Agent != "greeter" {
		t.Fatalf("the task is not the run: %+v %v", rec, err)
	}
	// The same message again (a client's retry) is the same task.
	if again := send(t, c, msg); again.ID != task.ID {
		t.Fatalf("a retry started task %s, want %s", again.ID, task.ID)
	}
	// A message in the same context continues the conversation.
	next := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "again"})
	next.ContextID = task.ContextID
	if t2 := send(t, c, next); t2.ID == task.ID || t2.ContextID != task.ContextID || text(t2.Artifacts[0].Parts) != "hello again, I remember Ada" {
		t.Fatalf("second task in the context: %+v %q", t2, text(t2.Artifacts[0].Parts))
	}
	got, err := c.GetTask(context.Background(), &a2a.TaskQueryParams{ID: task.ID})
	if err != nil || got.Status.State != a2a.TaskStateCompleted || text(got.History[0].Parts) != "Ada" {
		t.Fatalf("tasks/get: %+v %v", got, err)
	}
	if _, err := c.GetTask(context.Background(), &a2a.TaskQueryParams{ID: "run_00000000000000000000000000ff"}); !errors.Is(err, a2a.ErrTaskNotFound) {
		t.Fatalf("an unknown task: %v", err)
	}
	// A task of another agent is not this agent's.
	other, _ := client(t, base, "refunder")
	if _, err := other.GetTask(context.Background(), &a2a.TaskQueryParams{ID: task.ID}); !errors.Is(err, a2a.ErrTaskNotFound) {
		t.Fatalf("another agent's task: %v", err)
	}
}

func TestStreamReportsProgressAndTheResult(t *testing.T) {
	_, base := newServer(t)
	c, _ := client(t, base, "greeter")
	events := stream(t, c, a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "Bob"}))
	first, ok := events[0].(*a2a.Task)
	if !ok || first.Status.State != a2a.TaskStateSubmitted {
		t.Fatalf("first event %T %+v, want the submitted task", events[0], events[0])
	}
	var working, artifact int
	for _, ev := range events[1:] {
		switch ev := ev.(type) {
		case *a2a.TaskStatusUpdateEvent:
			if ev.Status.State == a2a.TaskStateWorking {
				working++
			}
		case *a2a.TaskArtifactUpdateEvent:
			artifact++
			if text(ev.Artifact.Parts) != "hello Bob" {
				t.Fatalf("artifact %q", text(ev.Artifact.Parts))
			}
		}
	}
	if st := last(t, events); st.Status.State != a2a.TaskStateCompleted || working < 2 || artifact != 1 {
		t.Fatalf("final %s, %d working updates, %d artifacts", st.Status.State, working, artifact)
	}
}

func TestApprovalInAChildIsInputRequired(t *testing.T) {
	rt, base := newServer(t)
	c, _ := client(t, base, "boss")
	events := stream(t, c, a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "refund please"}))
	st := last(t, events)
	if st.Status.State != a2a.TaskStateInputRequired || !strings.Contains(text(st.Status.Message.Parts), "boss/refunder") ||
		!strings.Contains(text(st.Status.Message.Parts), "refund") {
		t.Fatalf("final %s %q", st.Status.State, text(st.Status.Message.Parts))
	}
	task, err := c.GetTask(context.Background(), &a2a.TaskQueryParams{ID: st.TaskID})
	if err != nil || task.Status.State != a2a.TaskStateInputRequired {
		t.Fatalf("tasks/get while asking: %+v %v", task, err)
	}
	// A reply that is not a decision is refused with the way to answer.
	bad := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "hmm"})
	bad.TaskID, bad.ContextID = st.TaskID, st.ContextID
	if _, err := c.SendMessage(context.Background(), &a2a.MessageSendParams{Message: bad}); !errors.Is(err, a2a.ErrInvalidParams) ||
		!strings.Contains(err.Error(), "approve or deny") {
		t.Fatalf("a reply that decides nothing: %v", err)
	}
	yes := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "approve"})
	yes.TaskID, yes.ContextID = st.TaskID, st.ContextID
	events = stream(t, c, yes)
	if st := last(t, events); st.Status.State != a2a.TaskStateCompleted {
		t.Fatalf("after approving: %s", st.Status.State)
	}
	// The final event waits for the record: the two agree.
	rec, err := rt.Get(context.Background(), string(st.TaskID))
	if err != nil || rec.Output != "boss says: done: refunded A-1" {
		t.Fatalf("%+v %v", rec, err)
	}
	// The same reply again (a client's retry) changes nothing: it gets the
	// task. A new message to a finished task is refused.
	again, err := c.SendMessage(context.Background(), &a2a.MessageSendParams{Message: yes})
	if err != nil || again.(*a2a.Task).Status.State != a2a.TaskStateCompleted {
		t.Fatalf("the reply again: %+v %v", again, err)
	}
	more := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "approve"})
	more.TaskID = st.TaskID
	if _, err := c.SendMessage(context.Background(), &a2a.MessageSendParams{Message: more}); !errors.Is(err, a2a.ErrInvalidParams) {
		t.Fatalf("a message to a finished task: %v", err)
	}
}

// TestEveryApprovalOfATurnIsAskedAtOnce: a turn that asks two approvals
// ends the send once the run parks on both, and a read of the task at
// once says the same.
func TestEveryApprovalOfATurnIsAskedAtOnce(t *testing.T) {
	_, base := newServer(t)
	c, _ := client(t, base, "twice")
	task := send(t, c, a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "refund both"}))
	if task.Status.State != a2a.TaskStateInputRequired || !strings.Contains(text(task.Status.Message.Parts), "2 questions are open") {
		t.Fatalf("%s %q", task.Status.State, text(task.Status.Message.Parts))
	}
	got, err := c.GetTask(context.Background(), &a2a.TaskQueryParams{ID: task.ID})
	if err != nil || got.Status.State != a2a.TaskStateInputRequired || text(got.Status.Message.Parts) != text(task.Status.Message.Parts) {
		t.Fatalf("tasks/get: %+v %v", got, err)
	}
	// Answered one by one, naming each: the first leaves the second open.
	for i, id := range []string{"1-0", "1-1"} {
		yes := a2a.NewMessage(a2a.MessageRoleUser, a2a.DataPart{Data: map[string]any{"approval_id": id, "decision": "approve"}})
		yes.TaskID = task.ID
		next := send(t, c, yes)
		want := []a2a.TaskState{a2a.TaskStateInputRequired, a2a.TaskStateCompleted}[i]
		if next.Status.State != want {
			t.Fatalf("after approving %s: %s, want %s", id, next.Status.State, want)
		}
	}
}

func TestFlowQuestionIsAnsweredWithData(t *testing.T) {
	_, base := newServer(t)
	c, _ := client(t, base, "review")
	task := send(t, c, a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "v2"}))
	if task.Status.State != a2a.TaskStateInputRequired || text(task.Status.Message.Parts) != "Ship v2?" {
		t.Fatalf("%s %+v", task.Status.State, task.Status.Message)
	}
	answer := a2a.NewMessage(a2a.MessageRoleUser, a2a.DataPart{Data: map[string]any{"ok": true}})
	answer.TaskID = task.ID
	done := send(t, c, answer)
	if done.Status.State != a2a.TaskStateCompleted || !strings.Contains(text(done.Artifacts[0].Parts), `"ok":true`) {
		t.Fatalf("%s %+v", done.Status.State, done.Artifacts)
	}
}

func TestCancelEndsAWaitingTask(t *testing.T) {
	_, base := newServer(t)
	c, _ := client(t, base, "refunder")
	task := send(t, c, a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "refund"}))
	if task.Status.State != a2a.TaskStateInputRequired {
		t.Fatalf("%s", task.Status.State)
	}
	canceled, err := c.CancelTask(context.Background(), &a2a.TaskIDParams{ID: task.ID})
	if err != nil || canceled.Status.State != a2a.TaskStateCanceled {
		t.Fatalf("%+v %v", canceled, err)
	}
	if _, err := c.CancelTask(context.Background(), &a2a.TaskIDParams{ID: task.ID}); !errors.Is(err, a2a.ErrTaskNotCancelable) {
		t.Fatalf("canceling twice: %v", err)
	}
}

func TestNonBlockingSendAndResubscribe(t *testing.T) {
	_, base := newServer(t)
	c, _ := client(t, base, "refunder")
	no := false
	res, err := c.SendMessage(context.Background(), &a2a.MessageSendParams{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "refund"}),
		Config: &a2a.MessageSendConfig{Blocking: &no}})
	if err != nil {
		t.Fatal(err)
	}
	task := res.(*a2a.Task)
	if task.Status.State.Terminal() {
		t.Fatalf("a non-blocking send answered %s", task.Status.State)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var events []a2a.Event
	for ev, err := range c.ResubscribeToTask(ctx, &a2a.TaskIDParams{ID: task.ID}) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	// Resubscribing ends where the task waits for the client.
	var state a2a.TaskState
	switch ev := events[len(events)-1].(type) {
	case *a2a.Task:
		state = ev.Status.State
	case *a2a.TaskStatusUpdateEvent:
		state = ev.Status.State
	}
	if state != a2a.TaskStateInputRequired {
		t.Fatalf("resubscribe ended on %s after %d events", state, len(events))
	}
}

// TestOperatorDecidesApprovalsByDefault: a task whose run waits for an
// approval stays working (a calling agent must not approve its own
// guarded call); the stream says so and ends when an operator decides.
func TestOperatorDecidesApprovalsByDefault(t *testing.T) {
	rt, base := newServerApproving(t, false)
	c, _ := client(t, base, "refunder")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var told bool
	var final *a2a.TaskStatusUpdateEvent
	for ev, err := range c.SendStreamingMessage(ctx, &a2a.MessageSendParams{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "refund"})}) {
		if err != nil {
			t.Fatal(err)
		}
		st, ok := ev.(*a2a.TaskStatusUpdateEvent)
		if !ok {
			continue
		}
		if st.Status.State == a2a.TaskStateInputRequired {
			t.Fatal("the client was asked to approve")
		}
		if st.Status.Message != nil && strings.Contains(text(st.Status.Message.Parts), "waiting for an operator's approval") && !told {
			told = true
			pending, err := rt.PendingApprovals(ctx, "refunder")
			if err != nil || len(pending) != 1 {
				t.Fatalf("%+v %v", pending, err)
			}
			if _, err := rt.Decide(ctx, pending[0].RunID, pending[0].ApprovalID, run.Decision{Decision: "approve"}); err != nil {
				t.Fatal(err)
			}
		}
		if st.Final {
			final = st
		}
	}
	if !told || final == nil || final.Status.State != a2a.TaskStateCompleted {
		t.Fatalf("told %v, final %+v", told, final)
	}
}

// A blocking send answers once the task waits for an operator, with a
// working task that says where to act, rather than holding the request.
func TestBlockingSendAnswersWhenAnOperatorMustAct(t *testing.T) {
	_, base := newServerApproving(t, false)
	c, _ := client(t, base, "refunder")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 2 { // a retry of the same message too
		msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "refund"})
		msg.ID = "blocking-1"
		res, err := c.SendMessage(ctx, &a2a.MessageSendParams{Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		task := res.(*a2a.Task)
		if task.Status.State != a2a.TaskStateWorking || task.Status.Message == nil ||
			!strings.Contains(text(task.Status.Message.Parts), "operator") || !strings.Contains(text(task.Status.Message.Parts), "GET /v1/approvals") {
			t.Fatalf("send %d: %s %q", i, task.Status.State, text(task.Status.Message.Parts))
		}
	}
}

// TestResubscribeWhileTheRecordLags: the journal says the run ended while
// its record does not yet (the moment between the two writes, or a crash
// there). The task is what the journal says: following it ends at once.
func TestResubscribeWhileTheRecordLags(t *testing.T) {
	b, _ := storetest.Open(t)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow, err := tool.NewFunc("slow", "waits", func(ctx context.Context, _ *tool.Call, in struct{}) (string, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return "ok", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"s": {Model: scriptedtest.Model(t, `
- when: {last_tool: slow}
  reply: {text: "done"}
- reply: {tool_calls: [{name: slow}]}`), Tools: []tool.Tool{slow}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	t.Cleanup(func() { close(release) })
	srv, err := a2aserver.New(rt, a2aserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.New(rt, api.Options{A2A: srv}))
	t.Cleanup(hs.Close)
	c, _ := client(t, hs.URL, "s")
	no := false
	res, err := c.SendMessage(context.Background(), &a2a.MessageSendParams{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "go"}),
		Config: &a2a.MessageSendConfig{Blocking: &no}})
	if err != nil {
		t.Fatal(err)
	}
	id := string(res.(*a2a.Task).ID)
	<-started
	// The end, in the journal only.
	w, err := b.OpenJournal(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(context.Background(), journal.TypeRunCompleted, journal.RunCompleted{Output: "from the journal"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var events []a2a.Event
	for ev, err := range c.ResubscribeToTask(ctx, &a2a.TaskIDParams{ID: a2a.TaskID(id)}) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if st := last(t, events); st.Status.State != a2a.TaskStateCompleted {
		t.Fatalf("ended %s", st.Status.State)
	}
}

// TestLongTextStreams: input and output far over the 64 KiB an SSE reader
// takes per line go through, the output in chunks.
func TestLongTextStreams(t *testing.T) {
	_, base := newServer(t)
	c, _ := client(t, base, "greeter")
	big := strings.Repeat("é", 50_000) // 100 KB, two bytes a rune
	events := stream(t, c, a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: big}))
	var got strings.Builder
	chunks := 0
	for _, ev := range events {
		if art, ok := ev.(*a2a.TaskArtifactUpdateEvent); ok {
			chunks++
			got.WriteString(text(art.Artifact.Parts))
		}
	}
	if st := last(t, events); st.Status.State != a2a.TaskStateCompleted || got.String() != "hello "+big || chunks < 3 {
		t.Fatalf("%s, %d chunks, %d bytes", st.Status.State, chunks, got.Len())
	}
	// A blocking send puts the chunks back together.
	task := send(t, c, a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: big}))
	if text(task.Artifacts[0].Parts) != "hello "+big {
		t.Fatalf("blocking send: %d bytes", len(text(task.Artifacts[0].Parts)))
	}
}

// TestContextWithAnOpenQuestionTakesNoNewTask: a new message in a context
// whose task asks the client something is refused, naming the task, rather
// than queued behind it.
func TestContextWithAnOpenQuestionTakesNoNewTask(t *testing.T) {
	_, base := newServer(t)
	c, _ := client(t, base, "refunder")
	task := send(t, c, a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "refund"}))
	if task.Status.State != a2a.TaskStateInputRequired {
		t.Fatalf("%s", task.Status.State)
	}
	next := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "another refund"})
	next.ContextID = task.ContextID
	if _, err := c.SendMessage(context.Background(), &a2a.MessageSendParams{Message: next}); !errors.Is(err, a2a.ErrInvalidParams) ||
		!strings.Contains(err.Error(), string(task.ID)) {
		t.Fatalf("a new message in the waiting context: %v", err)
	}
	// The answer is taken, and then the context is free again.
	yes := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "approve"})
	yes.TaskID, yes.ContextID = task.ID, task.ContextID
	if done := send(t, c, yes); done.Status.State != a2a.TaskStateCompleted {
		t.Fatalf("%s", done.Status.State)
	}
	if again := send(t, c, next); again.Status.State != a2a.TaskStateCompleted || again.ID == task.ID {
		t.Fatalf("%s %s", again.Status.State, again.ID)
	}
}
