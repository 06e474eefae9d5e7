package mcpserver

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// liftTaskParam moves a 2025-11-25 tools/call's params.task into its
// _meta, where the SDK keeps it, and leaves every other request alone.
func TestLiftTaskParam(t *testing.T) {
	tests := []struct{ name, body, wantMeta string }{
		{"a task call", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","task":{"ttl":5}}}`, `{"ttl":5}`},
		{"with _meta", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","task":{},"_meta":{"k":"v"}}}`, `{}`},
		{"not a task", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"task":1}}}`, ``},
		{"another method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"task":{}}}`, ``},
		{"not JSON", `{"task"`, ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("POST", "/mcp", strings.NewReader(tc.body))
			liftTaskParam(r)
			data, _ := io.ReadAll(r.Body)
			var msg struct {
				Params struct {
					Task json.RawMessage            `json:"task"`
					Meta map[string]json.RawMessage `json:"_meta"`
				} `json:"params"`
			}
			_ = json.Unmarshal(data, &msg)
			if tc.wantMeta == "" {
				if string(data) != tc.body {
					t.Fatalf("changed: %s", data)
				}
				return
			}
			if msg.Params.Task != nil || string(msg.Params.Meta[metaTaskRequest]) != tc.wantMeta || r.ContentLength != int64(len(data)) {
				t.Fatalf("lifted: %s", data)
			}
			if tc.name == "with _meta" && string(msg.Params.Meta["k"]) != `"v"` {
				t.Fatalf("lost _meta: %s", data)
			}
		})
	}
}
