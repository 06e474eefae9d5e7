package a2aserver_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/myriad-ai/myriad/a2aserver"
	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/model/scripted/scriptedtest"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// TestAnyNodeAnswersForATask: two nodes share one NATS server. A task
// started on one is read, answered and followed to its end on the other:
// tasks are runs in JetStream, not state in one node's memory.
func TestAnyNodeAnswersForATask(t *testing.T) {
	url := storetest.StartServer(t)
	var bases []string
	for range 2 {
		refund, err := tool.NewFunc("refund", "refunds", func(context.Context, *tool.Call, struct{}) (string, error) { return "refunded", nil })
		if err != nil {
			t.Fatal(err)
		}
		rt, err := engine.New(storetest.Connect(t, url), engine.Options{Agents: map[string]*agent.Agent{"refunder": {Model: scriptedtest.Model(t, `
- when: {last_tool: refund}
  reply: {text: "done: {{.LastToolResult}}"}
- reply: {tool_calls: [{name: refund}]}`), Tools: []tool.Tool{refund}, Approvals: map[string]agent.ApprovalRule{"refund": {}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rt.Stop)
		srv, err := a2aserver.New(rt, a2aserver.Options{ClientApprovals: true})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(api.New(rt, api.Options{A2A: srv}))
		t.Cleanup(hs.Close)
		bases = append(bases, hs.URL)
	}
	one, _ := client(t, bases[0], "refunder")
	other, _ := client(t, bases[1], "refunder")
	task := send(t, one, a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "refund"}))
	if task.Status.State != a2a.TaskStateInputRequired {
		t.Fatalf("%s", task.Status.State)
	}
	got, err := other.GetTask(context.Background(), &a2a.TaskQueryParams{ID: task.ID})
	if err != nil || got.Status.State != a2a.TaskStateInputRequired {
		t.Fatalf("the other node's view: %+v %v", got, err)
	}
	yes := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "approve"})
	yes.TaskID = task.ID
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var final *a2a.TaskStatusUpdateEvent
	for ev, err := range other.SendStreamingMessage(ctx, &a2a.MessageSendParams{Message: yes}) {
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := ev.(*a2a.TaskStatusUpdateEvent); ok && st.Final {
			final = st
		}
	}
	if final == nil || final.Status.State != a2a.TaskStateCompleted {
		t.Fatalf("answered on the other node: %+v", final)
	}
	if done, err := one.GetTask(context.Background(), &a2a.TaskQueryParams{ID: task.ID}); err != nil || done.Status.State != a2a.TaskStateCompleted ||
		text(done.Artifacts[0].Parts) != "done: refunded" {
		t.Fatalf("the first node's view at the end: %+v %v", done, err)
	}
}
