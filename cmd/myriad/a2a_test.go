package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2aclient"
	"github.com/a2aproject/a2a-go/a2aclient/agentcard"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
)

// The back office serves a billing agent that streams its answer.
const backOffice = `
models:
  m:
    provider: scripted
    rules:
      - reply: {text: "Invoice {{.Input}}: paid in full on 3 March."}
agents:
  billing:
    description: Answers questions about invoices.
    model: m
    stream: true
`

// The front desk's agent asks the back office's billing agent, over A2A.
const frontDesk = `
models:
  m:
    provider: scripted
    rules:
      - when: {last_tool: billing}
        reply: {text: "Billing says: {{.LastToolResult}}"}
      - reply: {tool_calls: [{name: billing, arguments: {input: "42"}}]}
a2a_agents:
  billing:
    url: http://%s/a2a/billing
    description: Answers questions about invoices.
    idempotent: true
    approval: required
agents:
  front:
    model: m
    tools: [billing]
`

// startServe starts a myriad serve process on a project file.
func startServe(t *testing.T, config string) *proc {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "myriad.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return (&fixture{t: t, dir: dir, config: path}).serve()
}

// TestA2ARoundTrip runs two myriad serve processes: an agent of one calls
// an agent of the other as a tool, over A2A, and the remote agent's
// streamed progress reaches the caller's event stream live.
func TestA2ARoundTrip(t *testing.T) {
	back := startServe(t, backOffice)
	front := startServe(t, fmt.Sprintf(frontDesk, back.addr))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The back office's card, read the way any A2A client reads it.
	card, err := agentcard.DefaultResolver.Resolve(ctx, "http://"+back.addr)
	if err != nil {
		t.Fatal(err)
	}
	if card.Name != "billing" || card.URL != "http://"+back.addr+"/a2a/billing" || !card.Capabilities.Streaming {
		t.Fatalf("the default card: %+v", card)
	}

	// The front run parks at the approval of its billing call, so the
	// event stream below is open before any progress is published.
	fc := front.client()
	ref, err := fc.Submit(ctx, apitype.CreateRunRequest{Agent: "front", Input: "is invoice 42 paid?"}, "")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := fc.Wait(ctx, ref.ID, 30*time.Second)
	if err != nil || rec.Status != run.StatusWaiting || len(rec.Approvals) != 1 {
		t.Fatalf("want the billing call waiting for approval: %+v %v", rec, err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+front.addr+"/v1/runs/"+ref.ID+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() { // the stream is open once its first event arrives
		t.Fatal("no events")
	}
	if _, err := fc.Decide(ctx, ref.ID, rec.Approvals[0].ApprovalID, run.Decision{Decision: "approve"}); err != nil {
		t.Fatal(err)
	}
	var progress []string
	event := ""
	for lines.Scan() {
		line := lines.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if event == run.LiveProgress {
			var p run.ToolProgress
			if err := json.Unmarshal([]byte(data), &p); err != nil || p.Tool != "billing" {
				t.Fatalf("progress %s: %v", data, err)
			}
			progress = append(progress, p.Message)
		}
		if event == "run.completed" {
			break
		}
	}
	if rec, err = fc.Wait(ctx, ref.ID, 30*time.Second); err != nil || rec.Status != run.StatusCompleted ||
		rec.Output != "Billing says: Invoice 42: paid in full on 3 March." {
		t.Fatalf("front run: %+v %v", rec, err)
	}
	// The remote's streamed text and steps came through, in the order
	// they happened: the text before the step that journals it.
	all := strings.Join(progress, "|")
	streamed, journaled := strings.Index(all, "|paid in full |"), strings.Index(all, "billing: Invoice 42: paid in full on 3 March.")
	if !strings.Contains(all, "billing: run.started") || streamed < 0 || journaled < streamed {
		t.Fatalf("progress from the back office: %q", progress)
	}

	// On the back office the call was one run, a task of its billing
	// agent, in a context derived from the front run.
	runs, err := back.client().List(ctx, run.Filter{Agent: "billing"})
	if err != nil || len(runs.Runs) != 1 {
		t.Fatalf("back office runs: %+v %v", runs, err)
	}
	remote := runs.Runs[0]
	if remote.Status != run.StatusCompleted || remote.Input != "42" || remote.Metadata["a2a.context_id"] == "" {
		t.Fatalf("the remote run: %+v", remote)
	}
	// It carries the caller's trace context: the front run's trace.
	if tp := remote.Metadata["traceparent"]; !tool.ValidTraceParent(tp) || tp[3:35] != tool.TraceParent("", ref.ID, "")[3:35] {
		t.Fatalf("the remote run's traceparent %q, want the trace of run %s", tp, ref.ID)
	}

	// Any A2A client can read that task, and stream a new one.
	c, err := a2aclient.NewFromCard(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.GetTask(ctx, &a2a.TaskQueryParams{ID: a2a.TaskID(remote.ID)})
	if err != nil || task.Status.State != a2a.TaskStateCompleted || task.ContextID != remote.Metadata["a2a.context_id"] {
		t.Fatalf("tasks/get: %+v %v", task, err)
	}
	var states []a2a.TaskState
	for ev, err := range c.SendStreamingMessage(ctx, &a2a.MessageSendParams{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "7"})}) {
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := ev.(*a2a.TaskStatusUpdateEvent); ok {
			states = append(states, st.Status.State)
		}
	}
	if len(states) < 3 || states[len(states)-1] != a2a.TaskStateCompleted {
		t.Fatalf("streamed states %v", states)
	}
}
