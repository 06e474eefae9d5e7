package mcptool_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/mcptool"
)

// The test binary doubles as a stdio MCP server (MCPTOOL_SERVE=1), built
// with the official SDK like any third-party server.
func TestMain(m *testing.M) {
	if os.Getenv("MCPTOOL_SERVE") == "1" {
		if err := newServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type echoArgs struct {
	Msg string `json:"msg"`
}

func yes() *bool { b := true; return &b }

func newServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			key, _ := req.Params.Meta[mcptool.MetaIdempotencyKey].(string)
			text := "echo: " + in.Msg + " key=" + key
			if tp, ok := req.Params.Meta[mcptool.MetaTraceParent].(string); ok {
				text += " traceparent=" + tp
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "delete_all", Description: "deletes", Annotations: &mcp.ToolAnnotations{DestructiveHint: yes()}},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "deleted"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "waits for its context"},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			<-ctx.Done()
			return nil, nil, ctx.Err()
		})
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "exits the server"},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			os.Exit(3)
			return nil, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "work", Description: "reports progress"},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			for i := 1; i <= 2; i++ {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(),
					Progress: float64(i), Total: 2, Message: fmt.Sprintf("step %d", i)})
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "worked"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "a tool error"},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "it broke"}}}, nil, nil
		})
	if f := os.Getenv("MCPTOOL_V2_FLAG"); f != "" {
		if _, err := os.Stat(f); err == nil { // a newer server, with one more tool
			mcp.AddTool(s, &mcp.Tool{Name: "v2_only", Description: "new in v2"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
				return &mcp.CallToolResult{}, nil, nil
			})
		}
	}
	return s
}

func stdioServer(t *testing.T, timeout time.Duration) *mcptool.Server {
	t.Helper()
	s := mcptool.New(mcptool.Config{Name: "files", Command: os.Args[0], Env: map[string]string{"MCPTOOL_SERVE": "1"}, Timeout: timeout})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func byName(t *testing.T, tools []tool.Tool) map[string]tool.Tool {
	t.Helper()
	out := map[string]tool.Tool{}
	for _, tl := range tools {
		out[tl.Info().Name] = tl
	}
	return out
}

func call(t *testing.T, tl tool.Tool, args string) (tool.Result, error) {
	t.Helper()
	return tl.Call(context.Background(), &tool.Call{RunID: "run_x", ID: "c1", Arguments: json.RawMessage(args), IdempotencyKey: "run_x/3",
		TraceParent: tool.TraceParent("", "run_x", "run_x/3")})
}

func TestStdioServerTools(t *testing.T) {
	s := stdioServer(t, 2*time.Second)
	tools, err := s.Tools(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all := byName(t, tools)
	echo, del := all["files__echo"], all["files__delete_all"]
	if echo == nil || del == nil || len(all) != 6 {
		t.Fatalf("tools %v", all)
	}
	if i := echo.Info(); !i.Idempotent || i.NeedsApproval || !strings.Contains(string(i.Schema), `"msg"`) {
		t.Errorf("echo info %+v", i)
	}
	if i := del.Info(); i.Idempotent || !i.NeedsApproval {
		t.Errorf("a destructive tool should need approval and not be repeated: %+v", i)
	}
	if i := all["files__slow"].Info(); !i.NeedsApproval || i.Idempotent {
		t.Errorf("an unannotated tool is destructive by the specification's defaults: %+v", i)
	}
	if sel, _ := mcptool.Select(tools, []string{"e*", "slow"}); len(sel) != 2 {
		t.Errorf("select e* and slow: %d tools", len(sel))
	}
	res, err := call(t, echo, `{"msg":"hi"}`)
	if err != nil || res.Content != "echo: hi key=run_x/3 traceparent="+tool.TraceParent("", "run_x", "run_x/3") || res.IsError {
		t.Fatalf("echo: %+v %v", res, err)
	}
	if res, err := call(t, all["files__fail"], `{}`); err != nil || !res.IsError || res.Content != "it broke" {
		t.Fatalf("fail: %+v %v", res, err)
	}
}

func TestCallTimeoutAndCancel(t *testing.T) {
	s := stdioServer(t, 300*time.Millisecond)
	tools, err := s.Tools(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slow := byName(t, tools)["files__slow"]
	if _, err := call(t, slow, `{}`); err == nil || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Fatalf("timeout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := slow.Call(ctx, &tool.Call{Arguments: json.RawMessage(`{}`)})
		done <- err
	}()
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("cancel: %v", err)
	}
}

// A stdio server that dies is started again for the next call.
func TestCrashedServerIsRestarted(t *testing.T) {
	s := stdioServer(t, 5*time.Second)
	tools, err := s.Tools(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all := byName(t, tools)
	if _, err := call(t, all["files__crash"], `{}`); err == nil {
		t.Fatal("a call that killed its server succeeded")
	}
	res, err := call(t, all["files__echo"], `{"msg":"again"}`)
	if err != nil || !strings.HasPrefix(res.Content, "echo: again") {
		t.Fatalf("after the crash: %+v %v", res, err)
	}
}

func TestStreamableHTTPServer(t *testing.T) {
	var auth string
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newServer() }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s := mcptool.New(mcptool.Config{Name: "remote", URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer t0k"}, Approval: "never"})
	t.Cleanup(func() { _ = s.Close() })
	tools, err := s.Tools(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all := byName(t, tools)
	if all["remote__delete_all"].Info().NeedsApproval {
		t.Error("approval: never did not override the annotation")
	}
	res, err := call(t, all["remote__echo"], `{"msg":"over http"}`)
	if err != nil || res.Content != "echo: over http key=run_x/3 traceparent="+tool.TraceParent("", "run_x", "run_x/3") || auth != "Bearer t0k" {
		t.Fatalf("%+v %v auth %q", res, err, auth)
	}
}

// A server that announces a new tool list is read again, and a selection
// offers the new tools.
func TestToolListChanged(t *testing.T) {
	server := newServer()
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	changed := make(chan struct{}, 1)
	s := mcptool.New(mcptool.Config{Name: "remote", URL: srv.URL, OnToolsChanged: func() { changed <- struct{}{} }})
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = s.Close() }) // first: the server waits for our stream
	if _, err := s.Tools(context.Background()); err != nil {
		t.Fatal(err)
	}
	sel := s.Selection([]string{"echo", "new_*"})
	before := sel.Version()
	if n := len(sel.Tools()); n != 1 {
		t.Fatalf("%d tools selected, want echo only", n)
	}
	mcp.AddTool(server, &mcp.Tool{Name: "new_thing", Description: "added later"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "new"}}}, nil, nil
		})
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the new tool list was not read within 10s")
	}
	if sel.Version() == before || len(sel.Tools()) != 2 {
		t.Fatalf("version %d → %d, %d tools", before, sel.Version(), len(sel.Tools()))
	}
}

// Progress notifications reach the call's Progress hook.
func TestProgress(t *testing.T) {
	s := stdioServer(t, 5*time.Second)
	tools, err := s.Tools(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan tool.Progress, 2)
	res, err := byName(t, tools)["files__work"].Call(context.Background(), &tool.Call{Arguments: json.RawMessage(`{}`),
		Progress: func(p tool.Progress) { got <- p }})
	if err != nil || res.Content != "worked" {
		t.Fatalf("%+v %v", res, err)
	}
	// Notifications may trail the answer; both arrive.
	messages := map[string]bool{}
	for range 2 {
		select {
		case p := <-got:
			messages[p.Message] = p.Total == 2
		case <-time.After(5 * time.Second):
			t.Fatalf("progress so far %v", messages)
		}
	}
	if !messages["step 1"] || !messages["step 2"] {
		t.Fatalf("progress %v", messages)
	}
}

func execCommand(cfg *mcptool.Config) *exec.Cmd {
	c := exec.Command(cfg.Command, cfg.Args...)
	c.Env = os.Environ()
	for k, v := range cfg.Env {
		c.Env = append(c.Env, k+"="+v)
	}
	return c
}

// A server that restarts with other tools (an upgrade) is listed again.
func TestRestartedServerIsListedAgain(t *testing.T) {
	flag := t.TempDir() + "/v2"
	changed := make(chan struct{}, 4)
	s := mcptool.New(mcptool.Config{Name: "files", Command: os.Args[0], Timeout: 5 * time.Second,
		Env: map[string]string{"MCPTOOL_SERVE": "1", "MCPTOOL_V2_FLAG": flag}, OnToolsChanged: func() { changed <- struct{}{} }})
	t.Cleanup(func() { _ = s.Close() })
	tools, err := s.Tools(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sel := s.Selection([]string{"*"})
	before := len(sel.Tools())
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	all := byName(t, tools)
	_, _ = call(t, all["files__crash"], `{}`)
	if _, err := call(t, all["files__echo"], `{"msg":"x"}`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the restarted server's tools were not read within 10s")
	}
	if n := len(sel.Tools()); n != before+1 {
		t.Fatalf("%d tools after the restart, want %d", n, before+1)
	}
}
