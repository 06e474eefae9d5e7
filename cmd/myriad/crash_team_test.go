package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/mockllm"
	"github.com/myriad-ai/myriad/model/scripted"
	"github.com/myriad-ai/myriad/run"
)

const teamRules = `
- when: {system: "^lead$", last_role: tool}
  reply: {text: "lead done: {{.ToolResults}} reports"}
- when: {system: "^lead$"}
  reply:
    tool_calls:
      - {name: worker, arguments: {task: "a"}}
      - {name: worker, arguments: {task: "b"}}
      - {name: worker, arguments: {task: "c"}}
- when: {system: "^worker$", last_role: tool}
  reply: {text: "worker wrote {{.Input}}"}
- when: {system: "^worker$"}
  reply: {tool_calls: [{name: record, arguments: {n: 1}}]}
`

// Kill -9 while three child runs work in parallel, two of them finished:
// after the restart the finished children are not run again, the third
// resumes, and the parent completes.
func TestKillDuringParallelChildren(t *testing.T) {
	dir := t.TempDir()
	rs, err := scripted.ParseRules([]byte(teamRules))
	if err != nil {
		t.Fatal(err)
	}
	mock, err := mockllm.New(mockllm.Options{Rules: rs})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	requests := map[string]int{} // "worker a turn 2" → count
	held := make(chan struct{}, 1)
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/chat/completions") {
			body, _ := io.ReadAll(r.Body)
			var req struct {
				Messages []struct{ Role, Content string } `json:"messages"`
			}
			_ = json.Unmarshal(body, &req)
			who, input, turn := "", "", 1
			for _, m := range req.Messages {
				switch {
				case m.Role == "system":
					who = m.Content
				case m.Role == "user" && input == "":
					input = m.Content
				case m.Role == "assistant":
					turn++
				}
			}
			key := fmt.Sprintf("%s %s turn %d", who, input, turn)
			mu.Lock()
			requests[key]++
			first := requests[key] == 1
			mu.Unlock()
			if key == "worker c turn 2" && first {
				held <- struct{}{}
				<-r.Context().Done() // until the process dies
				return
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		mock.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(llm.Close)
	toolCalls := map[string]int{}
	tools := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		toolCalls[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		fmt.Fprintf(w, `{"recorded": %s}`, body)
	}))
	t.Cleanup(tools.Close)
	f := &fixture{t: t, dir: dir, config: filepath.Join(dir, "myriad.yaml")}
	cfg := fmt.Sprintf(`
models:
  mock: {provider: openai, model: scripted, base_url: %s/v1}
agents:
  lead: {model: mock, instructions: lead, sub_agents: [worker]}
  worker: {model: mock, instructions: worker, tools: [record]}
tools:
  record:
    type: http
    url: %s/record
    description: Writes a record; not safe to repeat.
    parameters: {type: object, properties: {n: {type: integer}}, required: [n]}
`, llm.URL, tools.URL)
	if err := os.WriteFile(f.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := f.serve()
	ctx := context.Background()
	ref, err := p.client().Submit(ctx, apitype.CreateRunRequest{Agent: "lead", Input: "write three reports"}, "")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("worker c never reached its second model call")
	}
	// Wait until a and b have finished, as the parent's stream (which
	// carries its children's events) tells.
	done := 0
	follow(t, p.client(), ref.ID, func(ev journal.Event) bool {
		if ev.RunID != ref.ID && ev.Type == journal.TypeRunCompleted {
			done++
		}
		return done == 2
	})
	p.kill(t)

	p = f.serve()
	rec, err := p.client().Wait(ctx, ref.ID, 30*time.Second)
	if err != nil || rec.Status != run.StatusCompleted || rec.Output != "lead done: 3 reports" {
		t.Fatalf("lead: %+v %v", rec, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{
		"lead write three reports turn 1": 1, "lead write three reports turn 2": 1,
		"worker a turn 1": 1, "worker a turn 2": 1, "worker b turn 1": 1, "worker b turn 2": 1,
		// c's second call was cut by the kill and asked again; nothing else repeats.
		"worker c turn 1": 1, "worker c turn 2": 2,
	}
	if fmt.Sprint(requests) != fmt.Sprint(want) {
		t.Errorf("model requests %v\nwant %v", requests, want)
	}
	if len(toolCalls) != 3 {
		t.Errorf("tool calls %v, want 3", toolCalls)
	}
	for k, n := range toolCalls {
		if n != 1 {
			t.Errorf("tool call %s executed %d times", k, n)
		}
	}
}

// Kill -9 while a flow waits for a person, after its parallel children
// finished: after the restart the question is still pending, no child runs
// again, and the flow completes once answered.
func TestKillWhileAFlowWaitsForInput(t *testing.T) {
	dir := t.TempDir()
	rs, err := scripted.ParseRules([]byte(`- reply: {text: "found {{.Input}}"}`))
	if err != nil {
		t.Fatal(err)
	}
	mock, err := mockllm.New(mockllm.Options{Rules: rs})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	requests := map[string]int{}
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Messages []struct{ Role, Content string } `json:"messages"`
		}
		_ = json.Unmarshal(body, &req)
		mu.Lock()
		requests[req.Messages[len(req.Messages)-1].Content]++
		mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		mock.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(llm.Close)
	f := &fixture{t: t, dir: dir, config: filepath.Join(dir, "myriad.yaml")}
	cfg := fmt.Sprintf(`
models:
  mock: {provider: openai, model: scripted, base_url: %s/v1}
agents:
  researcher: {model: mock}
flows:
  publish:
    state: {findings: {merge: append}}
    start: research
    nodes:
      research: {map: '["a", "b", "c"]', agent: researcher, output: findings, next: review}
      review:
        ask:
          prompt: "Publish {{len .state.findings}} findings?"
          schema: {type: object, properties: {publish: {type: boolean}}, required: [publish]}
        output: verdict
        route: [{when: state.verdict.publish, to: done}]
      done: {}
    output: findings
`, llm.URL)
	if err := os.WriteFile(f.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := f.serve()
	ctx := context.Background()
	ref, err := p.client().Submit(ctx, apitype.CreateRunRequest{Flow: "publish", Input: "go"}, "")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := p.client().Wait(ctx, ref.ID, 30*time.Second)
	if err != nil || rec.Status != run.StatusWaiting || len(rec.InputRequests) != 1 {
		t.Fatalf("want the flow waiting for input: %+v %v", rec, err)
	}
	p.kill(t)

	p = f.serve()
	c := p.client()
	rec, err = c.Get(ctx, ref.ID)
	if err != nil || rec.Status != run.StatusWaiting || len(rec.InputRequests) != 1 || rec.InputRequests[0].Prompt != "Publish 3 findings?" {
		t.Fatalf("after the restart: %+v %v", rec, err)
	}
	if _, err := c.ProvideInput(ctx, ref.ID, rec.InputRequests[0].Key, json.RawMessage(`{"publish": true}`)); err != nil {
		t.Fatal(err)
	}
	rec, err = c.Wait(ctx, ref.ID, 30*time.Second)
	if err != nil || rec.Status != run.StatusCompleted || rec.Output != `["found a","found b","found c"]` {
		t.Fatalf("after the answer: %+v %v", rec, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(requests) != "map[a:1 b:1 c:1]" {
		t.Errorf("model requests %v: each child should have run once", requests)
	}
}
