package mcpserver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/mcpserver"
	"github.com/myriad-ai/myriad/run"
)

// sessionOverHTTP connects a 2025-11-25 client, with a session, to /mcp.
func sessionOverHTTP(t *testing.T, rt *engine.Engine) (*mcp.ClientSession, string) {
	t.Helper()
	srv := httptest.NewServer(api.New(rt, api.Options{MCP: mcpserver.Handler(mcpserver.New(rt, mcpserver.Options{}), 0)}))
	t.Cleanup(srv.Close)
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp"},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	return cs, srv.URL
}

// theRunEndsCanceled waits for the one run of agent to end canceled.
func theRunEndsCanceled(t *testing.T, rt *engine.Engine, agent string) {
	t.Helper()
	runs, _, err := rt.List(context.Background(), run.Filter{Agent: agent})
	if err != nil || len(runs) != 1 {
		t.Fatalf("%v %v", runs, err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if rec, err := rt.Wait(wctx, runs[0].ID); err != nil || rec.Status != run.StatusCanceled {
		t.Fatalf("run %+v %v", rec, err)
	}
}

// A 2025-11-25 client that cancels a call and closes its session at once
// still cancels the run: closing must not let it run on unwatched.
func TestCancelThenCloseCancelsTheRun(t *testing.T) {
	block := &blocker{entered: make(chan struct{}, 1)}
	rt := newRuntime(t, block)
	cs, _ := sessionOverHTTP(t, rt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "waiter", Arguments: map[string]any{"input": "go"}})
		done <- err
	}()
	<-block.entered
	cancel()
	<-done
	_ = cs.Close()
	theRunEndsCanceled(t, rt, "waiter")
}

// A client that closes its session (HTTP DELETE) with a call going cancels
// the call's run: its caller is gone.
func TestClosingTheSessionCancelsTheRun(t *testing.T) {
	block := &blocker{entered: make(chan struct{}, 1)}
	rt := newRuntime(t, block)
	cs, url := sessionOverHTTP(t, rt)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: "waiter", Arguments: map[string]any{"input": "go"}})
	}()
	<-block.entered
	// The Go client's Close waits for its calls; other clients (the
	// TypeScript SDK's) send the DELETE at once, as here.
	del, _ := http.NewRequest(http.MethodDelete, url+"/mcp", nil)
	del.Header.Set("Mcp-Session-Id", cs.ID())
	del.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(del) // the SDK alone waits for the call forever
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	theRunEndsCanceled(t, rt, "waiter")
}
