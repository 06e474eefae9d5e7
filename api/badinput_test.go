package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/a2aserver"
	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/mcpserver"
	"github.com/myriad-ai/myriad/openaiserver"
)

// chunked hides a body's length, so that a server cannot refuse it by its
// Content-Length and must count what it reads.
type chunked struct{ io.Reader }

// TestBadInputAtEveryDoor: every route answers a body past
// server.max_body_bytes with 413 and a JSON error, a wrong method with 405
// and Allow, and quotes no more than 200 characters of a name it was sent.
func TestBadInputAtEveryDoor(t *testing.T) {
	_, rt := newServer(t, "", true)
	a2a, err := a2aserver.New(rt, a2aserver.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(rt, api.Options{MaxBodyBytes: 4096, Version: "test", A2A: a2a,
		MCP:    mcpserver.Handler(mcpserver.New(rt, mcpserver.Options{}), 4096),
		OpenAI: openaiserver.New(rt, openaiserver.Options{})})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	big := strings.Repeat("x", 5000)
	rpc := `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","messageId":"m","parts":[{"kind":"text","text":"` + big + `"}]}}}`
	mcpCall := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"` + big + `","version":"1"}}}`
	tests := []struct {
		name, method, path, body string
		hideLength               bool
		status                   int
		code                     string // error.code
		allow                    string
	}{
		{"runs", "POST", "/v1/runs", `{"agent":"greeter","input":"` + big + `"}`, false, 413, api.CodeTooLarge, ""},
		{"runs, chunked", "POST", "/v1/runs", `{"agent":"greeter","input":"` + big + `"}`, true, 413, api.CodeTooLarge, ""},
		{"input", "POST", "/v1/runs/run_00000000000000000000000000aa/input", `{"key":"` + big + `"}`, false, 413, api.CodeTooLarge, ""},
		{"decision", "POST", "/v1/runs/run_00000000000000000000000000aa/approvals/1-0", `{"decision":"` + big + `"}`, true, 413, api.CodeTooLarge, ""},
		{"a2a", "POST", "/a2a/greeter", rpc, false, 413, api.CodeTooLarge, ""},
		{"a2a, chunked", "POST", "/a2a/greeter", rpc, true, 413, api.CodeTooLarge, ""},
		{"mcp", "POST", "/mcp", mcpCall, false, 413, api.CodeTooLarge, ""},
		{"mcp, chunked", "POST", "/mcp", mcpCall, true, 413, api.CodeTooLarge, ""},
		{"chat completions", "POST", "/v1/chat/completions", `{"model":"greeter","messages":[{"role":"user","content":"` + big + `"}]}`, false, 413, "request_too_large", ""},
		{"chat completions, chunked", "POST", "/v1/chat/completions", `{"model":"greeter","messages":[{"role":"user","content":"` + big + `"}]}`, true, 413, "request_too_large", ""},
		{"get a run with a body", "GET", "/v1/runs", big, false, 200, "", ""},

		{"cancel with GET", "GET", "/v1/runs/run_00000000000000000000000000aa/cancel", "", false, 405, api.CodeMethodNotAllowed, "POST"},
		{"delete the runs", "DELETE", "/v1/runs", "", false, 405, api.CodeMethodNotAllowed, "GET, HEAD, POST"},
		{"put a run", "PUT", "/v1/runs/run_00000000000000000000000000aa", "", false, 405, api.CodeMethodNotAllowed, "DELETE, GET, HEAD"},
		{"get chat completions", "GET", "/v1/chat/completions", "", false, 405, api.CodeMethodNotAllowed, "POST"},
		{"delete models", "DELETE", "/v1/models", "", false, 405, api.CodeMethodNotAllowed, "GET, HEAD"},
		{"get an a2a endpoint", "GET", "/a2a/greeter", "", false, 405, api.CodeMethodNotAllowed, "POST"},
		{"put an a2a endpoint", "PUT", "/a2a/greeter", "", false, 405, api.CodeMethodNotAllowed, "POST"},
		{"post healthz", "POST", "/healthz", "", false, 405, api.CodeMethodNotAllowed, "GET, HEAD"},

		{"long route", "GET", "/v2/" + strings.Repeat("p", 5000), "", false, 404, api.CodeNotFound, ""},
		{"long run id", "GET", "/v1/runs/" + strings.Repeat("r", 5000), "", false, 404, api.CodeNotFound, ""},
		{"long a2a name", "POST", "/a2a/" + strings.Repeat("a", 5000), `{}`, false, 404, "unknown_agent", ""},
		{"long a2a card name", "GET", "/a2a/" + strings.Repeat("a", 5000) + "/.well-known/agent-card.json", "", false, 404, "unknown_agent", ""},
		{"long agent name", "POST", "/v1/runs", `{"agent":"` + strings.Repeat("a", 4000) + `","input":"x"}`, false, 404, api.CodeUnknownAgent, ""},
		{"long model name", "GET", "/v1/models/" + strings.Repeat("m", 5000), "", false, 404, "model_not_found", ""},
		{"long unknown field", "POST", "/v1/runs", `{"` + strings.Repeat("f", 3000) + `":1}`, false, 400, api.CodeBadRequest, ""},
		{"long a2a 1.0 task id", "GET", "/a2a/greeter/tasks/" + strings.Repeat("t", 3000) + "?A2A-Version=1.0", "", false, 404, "", ""},
		{"long query parameter", "GET", "/v1/runs?" + strings.Repeat("q", 5000) + "=1", "", false, 400, api.CodeBadRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.hideLength {
				body = chunked{body}
			}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, body)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, data)
			}
			if tc.code == "" {
				return
			}
			var out struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(data, &out); err != nil || out.Error.Code != tc.code {
				t.Fatalf("want code %s: %.300s", tc.code, data)
			}
			if len(out.Error.Message) > 600 {
				t.Fatalf("a %d-byte message echoes the request: %.300s", len(out.Error.Message), out.Error.Message)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}
