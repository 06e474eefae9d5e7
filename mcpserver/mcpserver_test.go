package mcpserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	"github.com/myriad-ai/myriad/tool/mcptool"
)

// blocker is a tool that waits until its run is canceled.
type blocker struct{ entered chan struct{} }

func (b *blocker) Info() tool.Info {
	return tool.Info{Name: "block", Description: "waits", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (b *blocker) Call(ctx context.Context, _ *tool.Call) (tool.Result, error) {
	b.entered <- struct{}{}
	<-ctx.Done()
	return tool.Result{}, ctx.Err()
}

func newRuntime(t *testing.T, block *blocker) *engine.Engine {
	t.Helper()
	b, _ := storetest.Open(t)
	rt, err := engine.New(b, engine.Options{
		Agents: map[string]*agent.Agent{
			"greeter": {Description: "says hello", Model: scriptedtest.Model(t, `- reply: {text: "hello {{.Input}}"}`)},
			"waiter":  {Model: scriptedtest.Model(t, `- reply: {tool_calls: [{name: block}]}`), Tools: []tool.Tool{block}},
		},
		Flows: map[string]*flow.Flow{"shout": {Start: []string{"up"}, Output: "out", Nodes: map[string]*flow.Node{
			"up": {Agent: "greeter", Input: "{{.state.input}}!", Output: "out"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	return rt
}

func connect(t *testing.T, server *mcp.Server, progress func(*mcp.ProgressNotificationParams)) *mcp.ClientSession {
	t.Helper()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := server.Connect(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			if progress != nil {
				progress(req.Params)
			}
		}})
	cs, err := client.Connect(context.Background(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "")
}

func TestAgentsAndFlowsAreTools(t *testing.T) {
	rt := newRuntime(t, &blocker{entered: make(chan struct{}, 1)})
	var mu sync.Mutex
	var steps []string
	cs := connect(t, mcpserver.New(rt, mcpserver.Options{Version: "test"}), func(p *mcp.ProgressNotificationParams) {
		mu.Lock()
		steps = append(steps, p.Message)
		mu.Unlock()
	})
	ctx := context.Background()
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	if strings.Join(names, " ") != "greeter shout waiter" {
		t.Fatalf("tools %v", names)
	}
	params := &mcp.CallToolParams{Name: "greeter", Arguments: map[string]any{"input": "Ada"}}
	params.SetProgressToken("p1")
	res, err := cs.CallTool(ctx, params)
	if err != nil || res.IsError || text(res) != "hello Ada" {
		t.Fatalf("greeter: %+v %v", res, err)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "shout", Arguments: map[string]any{"input": "Bo"}})
	if err != nil || res.IsError || text(res) != "hello Bo!" {
		t.Fatalf("shout: %+v %v", res, err)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "greeter", Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.Contains(text(res), "input") {
		t.Fatalf("missing input: %+v %v", res, err)
	}
	// The caller's trace context and idempotency key go with the run.
	tp := tool.TraceParent("", "run_caller", "run_caller/1")
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "greeter", Arguments: map[string]any{"input": "Cy"},
		Meta: mcp.Meta{mcptool.MetaTraceParent: tp, mcptool.MetaIdempotencyKey: "run_caller/1"}})
	if err != nil || res.IsError {
		t.Fatalf("%+v %v", res, err)
	}
	runs, _, err := rt.List(ctx, run.Filter{Agent: "greeter"})
	if err != nil || len(runs) == 0 || runs[0].Metadata["traceparent"] != tp {
		t.Fatalf("the newest run's metadata: %+v %v", runs, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(steps) == 0 || !strings.HasPrefix(steps[0], "greeter: run.started") {
		t.Errorf("progress %v", steps)
	}
}

// Canceling the MCP call cancels the run.
func TestCancelingTheCallCancelsTheRun(t *testing.T) {
	block := &blocker{entered: make(chan struct{}, 1)}
	rt := newRuntime(t, block)
	cs := connect(t, mcpserver.New(rt, mcpserver.Options{}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "waiter", Arguments: map[string]any{"input": "go"}})
		done <- err
	}()
	<-block.entered
	cancel()
	<-done
	theRunEndsCanceled(t, rt, "waiter")
}

// /mcp on the API server, behind its token.
func TestStreamableHTTPBehindTheAPIToken(t *testing.T) {
	rt := newRuntime(t, &blocker{entered: make(chan struct{}, 1)})
	srv := httptest.NewServer(api.New(rt, api.Options{Token: "s3cret", MCP: mcpserver.Handler(mcpserver.New(rt, mcpserver.Options{}), 0)}))
	t.Cleanup(srv.Close)
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	if _, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp"}, nil); err == nil {
		t.Fatal("connected without the token")
	}
	hc := &http.Client{Transport: bearer{"s3cret"}}
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "greeter", Arguments: map[string]any{"input": "http"}})
	if err != nil || text(res) != "hello http" {
		t.Fatalf("%+v %v", res, err)
	}
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// A child run that waits for a person ends the call with a message that
// says where, instead of holding it open.
func TestChildWaitingForAPersonEndsTheCall(t *testing.T) {
	b, _ := storetest.Open(t)
	ship, err := tool.NewFunc("ship", "ships", func(context.Context, *tool.Call, struct{}) (string, error) { return "shipped", nil })
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{
		"boss": {Model: scriptedtest.Model(t, `
- when: {last_role: tool}
  reply: {text: "done"}
- reply: {tool_calls: [{name: worker, arguments: {task: ship it}}]}
`), SubAgents: []agent.SubAgent{{Agent: "worker"}}},
		"worker": {Model: scriptedtest.Model(t, `- reply: {tool_calls: [{name: ship}]}`), Tools: []tool.Tool{ship.RequireApproval()}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	cs := connect(t, mcpserver.New(rt, mcpserver.Options{}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "boss", Arguments: map[string]any{"input": "go"}})
	if err != nil || !res.IsError || !strings.Contains(text(res), "waits for a person in boss/worker#1") {
		t.Fatalf("%+v %v", res, err)
	}
	// Called itself, the run says which approval to decide, and where.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "worker", Arguments: map[string]any{"input": "go"}})
	if err != nil || !res.IsError || !strings.Contains(text(res), "waits for a person (approval): decide with POST /v1/runs/run_") ||
		!strings.Contains(text(res), "/approvals/1-0 and a body like") {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestClientIsAskedTheRunsQuestions: a client that supports elicitation is
// asked what the run asks (a flow's question, a tool call's question) and
// its answers go on; a declined question ends the call saying where a
// person must answer.
func TestClientIsAskedTheRunsQuestions(t *testing.T) {
	b, _ := storetest.Open(t)
	pick, err := tool.NewFunc("pick", "picks a seat", func(ctx context.Context, call *tool.Call, _ struct{}) (string, error) {
		answer, err := call.Ask(ctx, tool.Question{Prompt: "Which seat?",
			Schema: json.RawMessage(`{"type":"object","properties":{"seat":{"type":"string"}},"required":["seat"]}`)})
		return "picked " + string(answer), err
	})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{
		Agents: map[string]*agent.Agent{"booker": {Model: scriptedtest.Model(t, `
- when: {last_tool: pick}
  reply: {text: "{{.LastToolResult}}"}
- reply: {tool_calls: [{name: pick}]}`), Tools: []tool.Tool{pick}}},
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
	answers := map[string]*mcp.ElicitResult{
		"review: Ship v2?":    {Action: "accept", Content: map[string]any{"answer": "yes, ship it"}},
		"review: Ship v3?":    {Action: "decline"},
		"booker: Which seat?": {Action: "accept", Content: map[string]any{"seat": "12A"}},
	}
	// A client that cannot be asked is told where a person answers.
	t.Run("no elicitation", func(t *testing.T) {
		cs := connect(t, mcpserver.New(rt, mcpserver.Options{}), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "booker", Arguments: map[string]any{"input": "a seat"}})
		if err != nil || !res.IsError || !strings.Contains(text(res), `asks "Which seat?"; answer with POST /v1/runs/`) {
			t.Fatalf("%+v %q %v", res, text(res), err)
		}
		id := strings.Fields(strings.TrimPrefix(text(res), "run "))[0]
		if _, err := rt.Cancel(ctx, id); err != nil { // the run still asks: nobody will answer
			t.Fatal(err)
		}
	})
	// 2025-11-25 asks on the session while the call goes on; 2026-07-28
	// answers the call with the questions and the client calls again.
	// Each over an in-memory connection and over streamable HTTP (where
	// 2026-07-28 has no session).
	srv := httptest.NewServer(api.New(rt, api.Options{MCP: mcpserver.Handler(mcpserver.New(rt, mcpserver.Options{}), 0)}))
	t.Cleanup(srv.Close)
	for _, mode := range []string{"2025-11-25", "2026-07-28", "2025-11-25/http", "2026-07-28/http"} {
		version, overHTTP := strings.CutSuffix(mode, "/http")
		t.Run(mode, func(t *testing.T) {
			var asked []string
			var ct mcp.Transport = &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp"}
			if !overHTTP {
				var st mcp.Transport
				st, ct = mcp.NewInMemoryTransports()
				ss, err := mcpserver.New(rt, mcpserver.Options{}).Connect(context.Background(), st, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = ss.Close() })
			}
			var mu sync.Mutex
			client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, &mcp.ClientOptions{
				ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					mu.Lock()
					defer mu.Unlock()
					asked = append(asked, req.Params.Message)
					if a, ok := answers[req.Params.Message]; ok {
						return a, nil
					}
					return &mcp.ElicitResult{Action: "cancel"}, nil
				}})
			cs, err := client.Connect(context.Background(), ct, &mcp.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cs.Close() })
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %s, want %s", got, version)
			}
			tests := []struct {
				tool, input, want string
				isError           bool
			}{
				{"review", "v2", "yes, ship it", false},
				{"review", "v3", "with POST /v1/runs/run_", true},
				{"booker", "a seat please", `picked {"seat":"12A"}`, false},
			}
			for _, tc := range tests {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: map[string]any{"input": tc.input}})
				cancel()
				if err != nil {
					t.Fatalf("%s %q: %v", tc.tool, tc.input, err)
				}
				if res.IsError != tc.isError || !strings.Contains(text(res), tc.want) {
					t.Fatalf("%s %q: %+v %q %v", tc.tool, tc.input, res, text(res), err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(asked) != 3 {
				t.Fatalf("asked %q", asked)
			}
		})
	}
}

// TestStatelessRevisionOverHTTP: the SDK's client keeps 2026-07-28 over
// streamable HTTP, without a session, and calls an agent and a flow; a
// canceled call cancels its run; a 2025-11-25 client gets a session.
func TestStatelessRevisionOverHTTP(t *testing.T) {
	block := &blocker{entered: make(chan struct{}, 1)}
	rt := newRuntime(t, block)
	srv := httptest.NewServer(api.New(rt, api.Options{MCP: mcpserver.Handler(mcpserver.New(rt, mcpserver.Options{}), 0)}))
	t.Cleanup(srv.Close)
	connect := func(version string) *mcp.ClientSession {
		client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
		cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp"},
			&mcp.ClientSessionOptions{ProtocolVersion: version})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.Close() })
		if got := cs.InitializeResult().ProtocolVersion; got != version {
			t.Fatalf("negotiated %s, want %s", got, version)
		}
		return cs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := connect(mcpserver.StatelessRevision)
	if cs.ID() != "" {
		t.Fatalf("2026-07-28 has a session %q", cs.ID())
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "greeter", Arguments: map[string]any{"input": "stateless"}})
	if err != nil || text(res) != "hello stateless" {
		t.Fatalf("%+v %v", res, err)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "shout", Arguments: map[string]any{"input": "Bo"}})
	if err != nil || text(res) != "hello Bo!" {
		t.Fatalf("%+v %v", res, err)
	}
	callCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: "waiter", Arguments: map[string]any{"input": "go"}})
		done <- err
	}()
	<-block.entered
	stop()
	<-done
	runs, _, err := rt.List(ctx, run.Filter{Agent: "waiter"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("%v %v", runs, err)
	}
	if rec, err := rt.Wait(ctx, runs[0].ID); err != nil || rec.Status != run.StatusCanceled {
		t.Fatalf("run %+v %v", rec, err)
	}
	if old := connect("2025-11-25"); old.ID() == "" {
		t.Fatal("2025-11-25 has no session")
	}
}
