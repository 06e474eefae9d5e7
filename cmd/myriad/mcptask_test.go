package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// taskRequest posts one MCP 2026-07-28 request from a client that
// declares the tasks extension, and returns its result.
func taskRequest(t *testing.T, addr, method, name string, params map[string]any) map[string]any {
	t.Helper()
	params["_meta"] = map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "crash-test", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": map[string]any{"extensions": map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}}}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest("POST", "http://"+addr+"/mcp", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	req.Header.Set("Mcp-Name", name)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Result map[string]any `json:"result"`
		Error  any            `json:"error"`
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			_ = json.Unmarshal([]byte(d), &out)
		}
	}
	if out.Result == nil {
		t.Fatalf("%s: %d %v", method, resp.StatusCode, out.Error)
	}
	return out.Result
}

// TestMCPTaskSurvivesAKill: a tool call made a task outlives the server
// that took it. myriad serve is killed (kill -9) during the run's second
// model call, between the call and the client's reading of the result;
// restarted, it resumes the run, and tasks/get gives the result, with no
// finished model or tool call repeated.
func TestMCPTaskSurvivesAKill(t *testing.T) {
	f := newFixture(t, 2, 0)
	p := f.serve()
	task := taskRequest(t, p.addr, "tools/call", "writer", map[string]any{"name": "writer", "arguments": map[string]any{"input": "write three records"}})
	id, _ := task["taskId"].(string)
	if task["resultType"] != "task" || task["status"] != "working" || id == "" {
		t.Fatalf("tools/call: %v", task)
	}
	waitArrival(t, f.modelHold, 2, 30*time.Second)
	p.kill(t)

	p = f.serve()
	deadline := time.Now().Add(30 * time.Second)
	var got map[string]any
	for {
		got = taskRequest(t, p.addr, "tasks/get", id, map[string]any{"taskId": id})
		if got["status"] != "working" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the client polls
	}
	if got["status"] != "completed" || !strings.Contains(fmt.Sprint(got["result"]), "all three records written") {
		t.Fatalf("task after the restart: %v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fmt.Sprint(f.turns) != "[1 2 2 3 4]" {
		t.Errorf("model requests by turn %v, want [1 2 2 3 4]", f.turns)
	}
	for k, n := range f.toolKeys {
		if n != 1 {
			t.Errorf("tool call %s executed %d times", k, n)
		}
	}
}
