package a2aserver_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzJSONRPC posts arbitrary bodies to an agent's A2A endpoint: every
// answer is a JSON-RPC response (or an SSE stream of them), never a crash
// or a hang.
func FuzzJSONRPC(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","messageId":"m1","parts":[{"kind":"text","text":"hi"}]}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"message/send","params":{"message":{"role":"user","messageId":"m2","parts":[{"kind":"data","data":{"a":1}},{"kind":"file","file":{"uri":"https://x/y.pdf"}}]}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"message/send","params":{"message":{"role":"user","messageId":"m3","taskId":"run_00000000000000000000000000ff","parts":[{"kind":"text","text":"approve"}]}}}`,
		`{"jsonrpc":"2.0","id":4,"method":"message/stream","params":{"message":{"role":"user","messageId":"m4","parts":[{"kind":"text","text":"yo"}]}}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tasks/get","params":{"id":"run_x","historyLength":-3}}`,
		`{"jsonrpc":"2.0","id":6,"method":"tasks/cancel","params":{"id":"../.."}}`,
		`{"jsonrpc":"2.0","id":7,"method":"tasks/resubscribe","params":{"id":"run_>.*"}}`,
		`{"jsonrpc":"2.0","id":8,"method":"message/send","params":{"message":{"role":"user","messageId":"","parts":[]}}}`,
		`{"jsonrpc":"2.0","id":9,"method":"message/send","params":{"message":{"role":"user","messageId":"m9","parts":[{"kind":"file","file":{"bytes":"AAAA"}}]}}}`,
		`{"jsonrpc":"2.0","id":10,"method":"nope"}`,
		`{"jsonrpc":"1.0"}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	_, base := newServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _ := http.NewRequest("POST", base+"/a2a/greeter", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := authed.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if isStream(t, resp, data) {
			return
		}
		var out struct {
			JSONRPC string `json:"jsonrpc"`
		}
		if err := json.Unmarshal(data, &out); err != nil || out.JSONRPC != "2.0" {
			t.Fatalf("answer %d %q: %v", resp.StatusCode, data, err)
		}
	})
}

// FuzzA2A1 posts arbitrary bodies to the A2A 1.0 bindings, JSON-RPC and
// HTTP+JSON: every answer is JSON-RPC (or google.rpc.Status for HTTP+JSON)
// or an SSE stream of JSON, never a crash or a hang.
func FuzzA2A1(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"f1","role":"ROLE_USER","parts":[{"text":"hi"}]}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"SendStreamingMessage","params":{"message":{"messageId":"f2","role":"ROLE_USER","parts":[{"data":{"a":1}},{"url":"https://x/y.pdf","mediaType":"application/pdf"}]},"configuration":{"returnImmediately":true}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"GetTask","params":{"id":"run_x","historyLength":-3}}`,
		`{"jsonrpc":"2.0","id":4,"method":"CancelTask","params":{"id":"../.."}}`,
		`{"jsonrpc":"2.0","id":5,"method":"SubscribeToTask","params":{"id":"run_>.*"}}`,
		`{"jsonrpc":"2.0","id":6,"method":"SendMessage","params":{"message":{"messageId":"f6","role":"ROLE_AGENT","taskId":"run_00000000000000000000000000ff","parts":[{"raw":"AAAA"}]}}}`,
		`{"jsonrpc":"2.0","id":7,"method":"SendMessage","params":{"message":{"messageId":"f7","role":"ROLE_USER","parts":[{"data":[1,2]}]}}}`,
		`{"message":{"messageId":"f8","role":"ROLE_USER","parts":[{"text":"rest"}]}}`,
		`[]`, ``, `{"jsonrpc":"2.0","id":null,"method":"ListTasks","params":{}}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	_, base := newServer(f)
	f.Fuzz(func(t *testing.T, body []byte, rest bool) {
		url := base + "/a2a/greeter"
		if rest {
			url += "/message:send"
		}
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("A2A-Version", "1.0")
		resp, err := authed.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if isStream(t, resp, data) {
			return
		}
		var out struct {
			JSONRPC string          `json:"jsonrpc"`
			Task    json.RawMessage `json:"task"`
			Message json.RawMessage `json:"message"`
			Error   *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("answer %d %q: %v", resp.StatusCode, data, err)
		}
		if rest && out.Task == nil && out.Message == nil && (out.Error == nil || out.Error.Code != resp.StatusCode) {
			t.Fatalf("HTTP+JSON answer %d %q", resp.StatusCode, data)
		}
		if !rest && out.JSONRPC != "2.0" {
			t.Fatalf("JSON-RPC answer %d %q", resp.StatusCode, data)
		}
	})
}

// isStream reports an SSE answer, checking that each of its data lines is
// JSON.
func isStream(t *testing.T, resp *http.Response, data []byte) bool {
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && !json.Valid([]byte(d)) {
			t.Fatalf("stream line %q is not JSON", d)
		}
	}
	return true
}
