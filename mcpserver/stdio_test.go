package mcpserver_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/mcpserver"
)

// A 2025-11-25 client on stdio (here the in-memory transport, wrapped as
// `myriad mcp` wraps stdio) calls a tool as a task and reads its result.
func TestTasks2025OverAStream(t *testing.T) {
	rt := newRuntime(t, &blocker{entered: make(chan struct{}, 1)})
	st, ct := mcp.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := mcpserver.New(rt, mcpserver.Options{}).Connect(ctx, mcpserver.Transport(st), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	conn, err := ct.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	next := 0.0
	rpc := func(method string, params any) map[string]any {
		t.Helper()
		data, _ := json.Marshal(params)
		req := &jsonrpc.Request{Method: method, Params: data}
		if method != "notifications/initialized" {
			next++
			req.ID, _ = jsonrpc.MakeID(next)
		}
		if err := conn.Write(ctx, req); err != nil {
			t.Fatal(err)
		}
		if !req.ID.IsValid() {
			return nil
		}
		for {
			msg, err := conn.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if resp, ok := msg.(*jsonrpc.Response); ok && resp.ID == req.ID {
				if resp.Error != nil {
					t.Fatalf("%s: %v", method, resp.Error)
				}
				var out map[string]any
				_ = json.Unmarshal(resp.Result, &out)
				return out
			}
		}
	}
	init := rpc("initialize", map[string]any{"protocolVersion": "2025-11-25", "clientInfo": map[string]any{"name": "t", "version": "1"},
		"capabilities": map[string]any{}})
	if field(init, "capabilities", "tasks") == nil {
		t.Fatalf("no tasks capability: %v", init)
	}
	rpc("notifications/initialized", map[string]any{})
	created := rpc("tools/call", map[string]any{"name": "greeter", "arguments": map[string]any{"input": "stdio"}, "task": map[string]any{"ttl": 60000}})
	id, _ := field(created, "task", "taskId").(string)
	if id == "" {
		t.Fatalf("tools/call with a task answered %v", created)
	}
	res := rpc("tasks/result", map[string]any{"taskId": id})
	content, _ := res["content"].([]any)
	if len(content) != 1 || field(content[0], "text") != "hello stdio" {
		t.Fatalf("tasks/result: %v", res)
	}
}
