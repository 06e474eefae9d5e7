package a2aserver_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// v1 posts to the 1.0 bindings: JSON-RPC at the agent's URL, HTTP+JSON
// under it; version is the A2A-Version header ("" sends none).
func v1(t testing.TB, method, url, version, body string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if version != "" {
		req.Header.Set("A2A-Version", version)
	}
	resp, err := authed.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

// sseData is every data line of a stream, decoded.
func sseData(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(d), &m); err != nil {
				t.Fatalf("%q: %v", d, err)
			}
			out = append(out, m)
		}
	}
	return out
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func TestA2A1JSONRPC(t *testing.T) {
	_, base := newServer(t)
	url := base + "/a2a/greeter"
	send := `{"jsonrpc":"2.0","id":7,"method":"SendMessage","params":{"message":{"messageId":"v1-m1","role":"ROLE_USER","parts":[{"text":"Ada"}]}}}`
	_, _, data := v1(t, "POST", url, "1.0", send)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	task := dig(out, "result", "task")
	if dig(out, "id") != 7.0 || dig(task, "status", "state") != "TASK_STATE_COMPLETED" {
		t.Fatalf("SendMessage: %s", data)
	}
	artifact := dig(task, "artifacts").([]any)[0]
	if part := dig(artifact, "parts").([]any)[0]; dig(part, "text") != "hello Ada" || dig(part, "kind") != nil {
		t.Fatalf("artifact part %v", part)
	}
	history := dig(task, "history").([]any)
	if dig(history[0], "role") != "ROLE_USER" || dig(history[len(history)-1], "role") != "ROLE_AGENT" {
		t.Fatalf("history %v", history)
	}
	id := dig(task, "id").(string)
	// The same message again (a retry) is the same task.
	_, _, data = v1(t, "POST", url, "1.0", send)
	_ = json.Unmarshal(data, &out)
	if dig(out, "result", "task", "id") != id {
		t.Fatalf("retry made another task: %s", data)
	}
	_, _, data = v1(t, "POST", url, "1.0", `{"jsonrpc":"2.0","id":"g","method":"GetTask","params":{"id":"`+id+`","historyLength":1}}`)
	_ = json.Unmarshal(data, &out)
	if dig(out, "result", "id") != id || len(dig(out, "result", "history").([]any)) != 1 {
		t.Fatalf("GetTask: %s", data)
	}
	// Streaming: the task, then updates, the request's id on every event,
	// ending completed; no 0.3 "final" or "kind".
	_, h, data := v1(t, "POST", url, "1.0", `{"jsonrpc":"2.0","id":9,"method":"SendStreamingMessage","params":{"message":{"messageId":"v1-m2","role":"ROLE_USER","parts":[{"text":"Bo"}]}}}`)
	events := sseData(t, data)
	if !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") || len(events) < 3 || dig(events[0], "result", "task", "id") == nil {
		t.Fatalf("stream: %s", data)
	}
	for _, ev := range events {
		if dig(ev, "id") != 9.0 || bytes.Contains(data, []byte(`"final"`)) || bytes.Contains(data, []byte(`"kind"`)) {
			t.Fatalf("event %v", ev)
		}
	}
	if last := events[len(events)-1]; dig(last, "result", "statusUpdate", "status", "state") != "TASK_STATE_COMPLETED" {
		t.Fatalf("last event %v", last)
	}
	errorsTable := []struct {
		name, version, body string
		code                float64
		says                string
	}{
		{"unknown task", "1.0", `{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"run_00000000000000000000000000aa"}}`, -32001, "task not found"},
		{"cancel a completed task", "1.0", `{"jsonrpc":"2.0","id":1,"method":"CancelTask","params":{"id":"` + id + `"}}`, -32002, "completed"},
		{"a message to an ended task", "1.0", `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"late","role":"ROLE_USER","taskId":"` + id + `","parts":[{"text":"a"}]}}}`, -32004, "has ended"},
		{"a 0.3 method under 1.0", "1.0", `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{}}`, -32601, "SendMessage"},
		{"bad role", "1.0", `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"x","role":"user","parts":[{"text":"a"}]}}}`, -32602, "ROLE_USER"},
		{"two kinds in a part", "1.0", `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"x","role":"ROLE_USER","parts":[{"text":"a","url":"u"}]}}}`, -32602, "exactly one"},
		{"no params", "1.0", `{"jsonrpc":"2.0","id":1,"method":"GetTask"}`, -32602, "params"},
		{"not JSON", "1.0", `{`, -32700, "invalid JSON"},
		{"push configs", "1.0", `{"jsonrpc":"2.0","id":1,"method":"GetTaskPushNotificationConfig","params":{}}`, -32003, "push"},
		{"unknown version", "2.0", `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}}`, -32009, `"2.0" is not served`},
		{"1.0 method without the header is 0.3's", "", `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}}`, -32601, ""},
	}
	for _, tc := range errorsTable {
		t.Run(tc.name, func(t *testing.T) {
			_, _, data := v1(t, "POST", url, tc.version, tc.body)
			var out map[string]any
			if err := json.Unmarshal(data, &out); err != nil {
				t.Fatalf("%s", data)
			}
			if dig(out, "error", "code") != tc.code || !strings.Contains(dig(out, "error", "message").(string), tc.says) {
				t.Fatalf("%s", data)
			}
			if tc.version != "" {
				info, _ := dig(out, "error", "data").([]any)
				if len(info) != 1 || dig(info[0], "@type") != "type.googleapis.com/google.rpc.ErrorInfo" {
					t.Fatalf("no ErrorInfo: %s", data)
				}
			}
		})
	}
}

func TestA2A1HTTPJSON(t *testing.T) {
	_, base := newServer(t)
	url := base + "/a2a/greeter"
	status, _, data := v1(t, "POST", url+"/message:send", "1.0", `{"message":{"messageId":"r-1","role":"ROLE_USER","parts":[{"text":"Cy"}]}}`)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	if status != 200 || dig(out, "task", "status", "state") != "TASK_STATE_COMPLETED" {
		t.Fatalf("message:send %d %s", status, data)
	}
	id := dig(out, "task", "id").(string)
	status, _, data = v1(t, "GET", url+"/tasks/"+id+"?historyLength=0", "1.0", "")
	_ = json.Unmarshal(data, &out)
	if status != 200 || dig(out, "id") != id || dig(out, "history") != nil {
		t.Fatalf("get %d %s", status, data)
	}
	_, _, data = v1(t, "POST", url+"/message:stream", "1.0", `{"message":{"messageId":"r-2","role":"ROLE_USER","parts":[{"text":"Di"}]}}`)
	events := sseData(t, data)
	if len(events) < 3 || dig(events[0], "task") == nil || dig(events[len(events)-1], "statusUpdate", "status", "state") != "TASK_STATE_COMPLETED" {
		t.Fatalf("stream %s", data)
	}
	// Resubscribing to a finished task is refused, as 1.0 says.
	for _, method := range []string{"POST", "GET"} {
		status, _, data = v1(t, method, url+"/tasks/"+id+":subscribe", "1.0", "")
		if status != 400 || !strings.Contains(string(data), "UNSUPPORTED_OPERATION") {
			t.Fatalf("subscribe with %s: %d %s", method, status, data)
		}
	}
	errorsTable := []struct {
		name, method, path, version, body string
		status                            int
		reason                            string
	}{
		{"unknown task", "GET", "/tasks/run_00000000000000000000000000aa", "1.0", "", 404, "TASK_NOT_FOUND"},
		{"cancel a completed task", "POST", "/tasks/" + id + ":cancel", "1.0", "", 400, "TASK_NOT_CANCELABLE"},
		{"no version", "POST", "/message:send", "", `{}`, 400, "VERSION_NOT_SUPPORTED"},
		{"no message", "POST", "/message:send", "1.0", `{}`, 400, "INVALID_PARAMS"},
		{"not JSON", "POST", "/message:send", "1.0", `{`, 400, "PARSE_ERROR"},
		{"unknown operation", "POST", "/message:shout", "1.0", `{}`, 404, "METHOD_NOT_FOUND"},
		{"bad history length", "GET", "/tasks/" + id + "?historyLength=x", "1.0", "", 400, "INVALID_PARAMS"},
		{"send with GET", "GET", "/message:send", "1.0", "", 405, "UNSUPPORTED_OPERATION"},
		{"a task with POST", "POST", "/tasks/" + id, "1.0", "", 405, "UNSUPPORTED_OPERATION"},
		{"cancel with GET", "GET", "/tasks/" + id + ":cancel", "1.0", "", 405, "UNSUPPORTED_OPERATION"},
	}
	for _, tc := range errorsTable {
		t.Run(tc.name, func(t *testing.T) {
			status, _, data := v1(t, tc.method, url+tc.path, tc.version, tc.body)
			var out map[string]any
			_ = json.Unmarshal(data, &out)
			details, _ := dig(out, "error", "details").([]any)
			if status != tc.status || dig(out, "error", "code") != float64(tc.status) || len(details) != 1 || dig(details[0], "reason") != tc.reason {
				t.Fatalf("%d %s", status, data)
			}
		})
	}
}

// The card lists 1.0's interfaces beside 0.3's fields.
func TestCardListsBothRevisions(t *testing.T) {
	_, base := newServer(t)
	_, _, data := v1(t, "GET", base+"/a2a/greeter/.well-known/agent-card.json", "", "")
	var card struct {
		URL                 string `json:"url"`
		ProtocolVersion     string `json:"protocolVersion"`
		SupportedInterfaces []struct {
			URL, ProtocolBinding, ProtocolVersion string
		} `json:"supportedInterfaces"`
	}
	if err := json.Unmarshal(data, &card); err != nil || card.ProtocolVersion != "0.3.0" || len(card.SupportedInterfaces) != 3 {
		t.Fatalf("%s", data)
	}
	want := []string{"JSONRPC 1.0", "HTTP+JSON 1.0", "JSONRPC 0.3"}
	for i, in := range card.SupportedInterfaces {
		if in.ProtocolBinding+" "+in.ProtocolVersion != want[i] || in.URL != card.URL {
			t.Fatalf("interface %d: %+v", i, in)
		}
	}
}
