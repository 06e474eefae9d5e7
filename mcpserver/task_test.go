package mcpserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/mcpserver"
	"github.com/myriad-ai/myriad/model/scripted/scriptedtest"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// mcp2026 posts one 2026-07-28 request, as the specification has it: the
// version, method and name in headers, the client's version, info and
// capabilities in _meta (with the tasks extension when tasks is set).
func mcp2026(t *testing.T, url, method, name string, params map[string]any, tasks bool) (int, map[string]any) {
	t.Helper()
	caps := map[string]any{}
	if tasks {
		caps["extensions"] = map[string]any{mcpserver.TasksExtension: map[string]any{}}
	}
	if params == nil {
		params = map[string]any{}
	}
	params["_meta"] = map[string]any{mcp.MetaKeyProtocolVersion: mcpserver.StatelessRevision,
		mcp.MetaKeyClientCapabilities: caps, mcp.MetaKeyClientInfo: map[string]any{"name": "raw", "version": "1"}}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest("POST", url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", mcpserver.StatelessRevision)
	req.Header.Set("Mcp-Method", method)
	if name != "" {
		req.Header.Set("Mcp-Name", name)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				_ = json.Unmarshal([]byte(d), &out)
			}
		}
	} else {
		_ = json.NewDecoder(resp.Body).Decode(&out)
	}
	return resp.StatusCode, out
}

func field(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// poll reads a task until its status is not working.
func poll(t *testing.T, url, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, out := mcp2026(t, url, "tasks/get", id, map[string]any{"taskId": id}, true)
		if st := field(out, "result", "status"); st != "working" || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond) // a client polls: pollIntervalMs says how often
	}
}

func TestToolCallsAsTasks(t *testing.T) {
	b, _ := storetest.Open(t)
	block := &blocker{entered: make(chan struct{}, 1)}
	rt, err := engine.New(b, engine.Options{
		Agents: map[string]*agent.Agent{
			"greeter": {Model: scriptedtest.Model(t, `- reply: {text: "hello {{.Input}}"}`)},
			"waiter":  {Model: scriptedtest.Model(t, `- reply: {tool_calls: [{name: block}]}`), Tools: []tool.Tool{block}},
		},
		Flows: map[string]*flow.Flow{"review": {Start: []string{"ask"}, Output: "verdict", Nodes: map[string]*flow.Node{
			"ask": {Ask: &flow.Ask{Prompt: "Ship {{.state.input}}?"}, Output: "verdict"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	srv := httptest.NewServer(api.New(rt, api.Options{MCP: mcpserver.Handler(mcpserver.New(rt, mcpserver.Options{}), 0)}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/mcp"

	// The server says it offers tasks.
	_, out := mcp2026(t, url, "server/discover", "", nil, true)
	if field(out, "result", "capabilities", "extensions", mcpserver.TasksExtension) == nil {
		t.Fatalf("discover: %v", out)
	}
	// A client without the extension gets the call's answer; with it, a
	// task, then its result through tasks/get.
	_, out = mcp2026(t, url, "tools/call", "greeter", map[string]any{"name": "greeter", "arguments": map[string]any{"input": "Ada"}}, false)
	if field(out, "result", "resultType") == "task" || !strings.Contains(mustString(out), "hello Ada") {
		t.Fatalf("call without tasks: %v", out)
	}
	_, out = mcp2026(t, url, "tools/call", "greeter", map[string]any{"name": "greeter", "arguments": map[string]any{"input": "Bo"}}, true)
	id, _ := field(out, "result", "taskId").(string)
	if field(out, "result", "resultType") != "task" || id == "" || field(out, "result", "createdAt") == nil {
		t.Fatalf("call as a task: %v", out)
	}
	done := poll(t, url, id)
	if field(done, "result", "status") != "completed" || !strings.Contains(mustString(field(done, "result", "result")), "hello Bo") {
		t.Fatalf("completed task: %v", done)
	}
	if rec, err := rt.Get(context.Background(), id); err != nil || rec.Status != run.StatusCompleted {
		t.Fatalf("the task is run %s: %+v %v", id, rec, err)
	}

	// A question is input_required; tasks/update answers it.
	_, out = mcp2026(t, url, "tools/call", "review", map[string]any{"name": "review", "arguments": map[string]any{"input": "v2"}}, true)
	id, _ = field(out, "result", "taskId").(string)
	asked := poll(t, url, id)
	reqs, _ := field(asked, "result", "inputRequests").(map[string]any)
	if field(asked, "result", "status") != "input_required" || len(reqs) != 1 {
		t.Fatalf("input required: %v", asked)
	}
	var key string
	for k := range reqs {
		key = k
	}
	if !strings.Contains(mustString(reqs[key]), "Ship v2?") {
		t.Fatalf("question %v", reqs[key])
	}
	_, out = mcp2026(t, url, "tasks/update", id, map[string]any{"taskId": id,
		"inputResponses": map[string]any{key: map[string]any{"action": "accept", "content": map[string]any{"answer": "yes"}}}}, true)
	if field(out, "result", "resultType") != "complete" {
		t.Fatalf("update: %v", out)
	}
	if done := poll(t, url, id); field(done, "result", "status") != "completed" || !strings.Contains(mustString(done), "yes") {
		t.Fatalf("answered task: %v", done)
	}

	// tasks/cancel cancels the run.
	_, out = mcp2026(t, url, "tools/call", "waiter", map[string]any{"name": "waiter", "arguments": map[string]any{"input": "x"}}, true)
	id, _ = field(out, "result", "taskId").(string)
	<-block.entered
	if _, out = mcp2026(t, url, "tasks/cancel", id, map[string]any{"taskId": id}, true); field(out, "result", "resultType") != "complete" {
		t.Fatalf("cancel: %v", out)
	}
	if done := poll(t, url, id); field(done, "result", "status") != "cancelled" {
		t.Fatalf("canceled task: %v", done)
	}

	errorsTable := []struct {
		name, method, header string
		params               map[string]any
		tasks                bool
		code                 float64
	}{
		{"unknown task", "tasks/get", "run_00000000000000000000000000aa", map[string]any{"taskId": "run_00000000000000000000000000aa"}, true, -32602},
		{"malformed id", "tasks/get", "x", map[string]any{"taskId": "x"}, true, -32602},
		{"a run that is no task", "tasks/get", "", nil, true, -32602},
		{"no extension declared", "tasks/get", id, map[string]any{"taskId": id}, false, -32021},
		{"Mcp-Name names another task", "tasks/get", "other", map[string]any{"taskId": id}, true, -32020},
	}
	plain, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "greeter", Input: "not a task"})
	if err != nil {
		t.Fatal(err)
	}
	errorsTable[2].header, errorsTable[2].params = plain.ID, map[string]any{"taskId": plain.ID}
	for _, tc := range errorsTable {
		t.Run(tc.name, func(t *testing.T) {
			_, out := mcp2026(t, url, tc.method, tc.header, tc.params, tc.tasks)
			if field(out, "error", "code") != tc.code {
				t.Fatalf("%v", out)
			}
		})
	}
}

func mustString(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}
