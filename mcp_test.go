package myriad_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// The test binary doubles as a stdio MCP server (MYRIAD_TEST_MCP=1).
func TestMain(m *testing.M) {
	if os.Getenv("MYRIAD_TEST_MCP") == "1" {
		if err := mcpServer("stdio").Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func mcpServer(name string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, nil)
	type args struct {
		Msg string `json:"msg"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " says " + in.Msg}}}, nil, nil
		})
	s.AddResource(&mcp.Resource{URI: "mem://notes", Name: "notes", MIMEType: "text/plain"},
		func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: "mem://notes", Text: "NOTES: the customer prefers email"}}}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "style", Arguments: []*mcp.PromptArgument{{Name: "tone"}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "STYLE: be " + req.Params.Arguments["tone"]}}}}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "exits"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			os.Exit(3)
			return nil, nil, nil
		})
	return s
}

// An agent uses the tools of a stdio MCP server and of a streamable HTTP
// one, and survives the stdio server crashing mid-run.
func TestAgentWithMCPServers(t *testing.T) {
	httpSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return mcpServer("http") }, nil))
	t.Cleanup(httpSrv.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "myriad.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
models:
  local:
    provider: scripted
    rules:
      - when: {tool_results: 3}
        reply: {text: "{{join .Results \" | \"}}"}
      - when: {tool_results: 1}
        reply: {tool_calls: [{name: files__echo, arguments: {msg: "after the crash"}}, {name: remote__echo, arguments: {msg: "over http"}}]}
      - reply: {tool_calls: [{name: files__crash}]}
mcp_servers:
  files:
    command: %q
    env: {MYRIAD_TEST_MCP: "1"}
    timeout: 10s
    approval: never   # its crash tool is unannotated, so it would ask
  remote:
    url: %s
agents:
  a: {model: local, tools: [files.*, remote.echo]}
`, os.Args[0], httpSrv.URL)), 0o600)
	proj, err := myriad.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Close) // before the HTTP server closes: it waits for our stream
	var names []string
	for _, tl := range proj.Agents["a"].CurrentTools() {
		names = append(names, tl.Name)
	}
	if got := strings.Join(names, " "); got != "files__echo files__crash remote__echo" && got != "files__crash files__echo remote__echo" {
		t.Fatalf("tools %s", got)
	}
	node, err := myriad.Open(context.Background(), proj, myriad.NodeOptions{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, _, err := node.Engine.Submit(ctx, engine.SubmitRequest{Agent: "a", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err = node.Engine.Wait(ctx, rec.ID); err != nil || rec.Status != run.StatusCompleted {
		t.Fatalf("%+v %v", rec, err)
	}
	if !strings.Contains(rec.Output, "stdio says after the crash") || !strings.Contains(rec.Output, "http says over http") {
		t.Fatalf("output %q", rec.Output)
	}
}

func TestMCPToolPatternThatMatchesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "myriad.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
models:
  local: {provider: scripted, rules: [{reply: {text: hi}}]}
mcp_servers:
  files: {command: %q, env: {MYRIAD_TEST_MCP: "1"}}
agents:
  a: {model: local, tools: [files.ecko]}
`, os.Args[0])), 0o600)
	_, err := myriad.Load(cfg)
	if err == nil || !strings.Contains(err.Error(), "agents.a.tools[0]: files.ecko matches no tool of MCP server files (its tools: ") {
		t.Fatalf("error %v", err)
	}
}

// Resources and prompts of an MCP server are read when a run starts and
// given to the model with the instructions; the journal keeps them.
func TestAgentWithMCPContext(t *testing.T) {
	node := openProject(t, fmt.Sprintf(`
models:
  local:
    provider: scripted
    rules:
      - when: {system: "(?s)^Help\\..*NOTES: the customer prefers email.*STYLE: be brief"}
        reply: {text: "context seen"}
      - reply: {text: "no context"}
mcp_servers:
  files: {command: %q, env: {MYRIAD_TEST_MCP: "1"}}
agents:
  a:
    model: local
    instructions: Help.
    mcp_context:
      - {server: files, resource: "mem://notes"}
      - {server: files, prompt: style, arguments: {tone: brief}}
`, os.Args[0]))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, _, err := node.Engine.Submit(ctx, engine.SubmitRequest{Agent: "a", Input: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err = node.Engine.Wait(ctx, rec.ID); err != nil || rec.Output != "context seen" {
		t.Fatalf("%+v %v", rec, err)
	}
	evs, err := node.Engine.Events(ctx, rec.ID)
	if err != nil || len(evs) < 2 || evs[1].Type != "context.loaded" {
		t.Fatalf("journal %v %v", evs, err)
	}
}

// An MCP server asks a question mid-call (elicitation): it goes on the
// run's record, a person answers it through the runtime (POST
// /v1/runs/{id}/input), and the call goes on with the answer.
func TestMCPServerAsksAPerson(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "booking", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "book", Description: "books a seat", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "Which seat?", RequestedSchema: map[string]any{
				"type": "object", "properties": map[string]any{"seat": map[string]any{"type": "string"}}, "required": []string{"seat"}}})
			if err != nil {
				return nil, nil, err
			}
			text := res.Action
			if res.Action == "accept" {
				text = fmt.Sprintf("booked %v", res.Content["seat"])
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	node := openProject(t, fmt.Sprintf(`
models:
  local:
    provider: scripted
    rules:
      - when: {last_tool: booking__book}
        reply: {text: "{{.LastToolResult}}"}
      - reply: {tool_calls: [{name: booking__book}]}
mcp_servers:
  booking: {url: %q, timeout: 200ms}
agents:
  a: {model: local, tools: [booking.book]}
`, srv.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		answer, want string
	}{
		{`{"seat": "12A"}`, "booked 12A"},
		{`"decline"`, "decline"},
	}
	for _, tc := range tests {
		rec, _, err := node.Engine.Submit(ctx, engine.SubmitRequest{Agent: "a", Input: "book me a seat"})
		if err != nil {
			t.Fatal(err)
		}
		q := callQuestion(ctx, t, node.Engine, rec.ID)
		cur, err := node.Engine.Get(ctx, rec.ID)
		if err != nil || cur.Status != run.StatusRunning || len(cur.InputRequests) != 1 || cur.InputRequests[0].Prompt != "Which seat?" ||
			!strings.Contains(string(cur.InputRequests[0].Schema), "seat") || !cur.Asking() {
			t.Fatalf("the record while asking: %+v %v", cur, err)
		}
		// An answer against the question's schema is refused to the
		// person, who can answer again.
		if _, err := node.Engine.ProvideInput(ctx, rec.ID, q.Key, json.RawMessage(`{"seat": 12}`)); !errors.Is(err, engine.ErrInvalid) {
			t.Fatalf("an answer against the schema: %v", err)
		}
		// The person takes longer than the call's timeout: the clock does
		// not run while they think.
		<-time.After(600 * time.Millisecond)
		if _, err := node.Engine.ProvideInput(ctx, rec.ID, q.Key, json.RawMessage(tc.answer)); err != nil {
			t.Fatal(err)
		}
		if rec, err = node.Engine.Wait(ctx, rec.ID); err != nil || rec.Output != tc.want || len(rec.InputRequests) != 0 {
			t.Fatalf("answered %s: %+v %v", tc.answer, rec, err)
		}
	}
}

// callQuestion waits for the question a tool call of a run asks.
func callQuestion(ctx context.Context, t *testing.T, e *engine.Engine, id string) journal.InputRequested {
	t.Helper()
	for u, err := range e.Watch(ctx, engine.WatchOptions{Run: id}) {
		if err != nil {
			t.Fatal(err)
		}
		var q journal.InputRequested
		if u.Event != nil && u.Event.Type == journal.TypeInputRequested && json.Unmarshal(u.Event.Data, &q) == nil && q.Call != "" {
			return q
		}
	}
	t.Fatal("no question")
	return journal.InputRequested{}
}

// openProject loads a project file written inline and opens an in-memory
// node on it.
func openProject(t *testing.T, yaml string) *myriad.Node {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "myriad.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	proj, err := myriad.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Close)
	node, err := myriad.Open(context.Background(), proj, myriad.NodeOptions{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	return node
}
