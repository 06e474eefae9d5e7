package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/cli"
	"github.com/myriad-ai/myriad/internal/oauthtest"
)

// browser watches what a command prints and opens the first address it
// is told to open, as a person would.
type browser struct {
	t      *testing.T
	mu     sync.Mutex
	buf    bytes.Buffer
	opened bool
}

var address = regexp.MustCompile(`(?m)^  (http://\S+)$`)

func (b *browser) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if m := address.FindStringSubmatch(b.buf.String()); m != nil && !b.opened {
		b.opened = true
		oauthtest.Browse(b.t)(m[1])
	}
	return len(p), nil
}

// TestMCPLogin: a person authorizes Myriad once with `myriad mcp login`;
// the project then reaches the OAuth-protected server with the saved grant.
func TestMCPLogin(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "crm", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "lookup", Description: "looks up", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "customer 42 prefers email"}}}, nil, nil
		})
	as := oauthtest.New(t, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "myriad.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
models:
  m:
    provider: scripted
    rules:
      - when: {last_tool: crm__lookup}
        reply: {text: "{{.LastToolResult}}"}
      - reply: {tool_calls: [{name: crm__lookup}]}
mcp_servers:
  crm:
    url: %s
    oauth: {grant: authorization_code}
agents:
  a: {model: m, tools: [crm.lookup]}
`, as.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Before the login, the project cannot reach the server, and says why.
	if code, _, stderr := runCLI(t, "run", "--config", cfg, "a", "who is 42?"); code == 0 || !strings.Contains(stderr, "myriad mcp login crm") {
		t.Fatalf("before login: exit %d, %s", code, stderr)
	}
	var out bytes.Buffer
	b := &browser{t: t}
	if code := cli.Main(context.Background(), []string{"mcp", "login", "crm", "--config", cfg}, &out, b); code != 0 {
		t.Fatalf("login: exit %d\n%s\n%s", code, out.String(), b.buf.String())
	}
	file := filepath.Join(dir, ".myriad", "oauth", "crm.json")
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 || !strings.Contains(out.String(), file) {
		t.Fatalf("the saved grant: %v %v\n%s", st, err, out.String())
	}
	if code, stdout, stderr := runCLI(t, "run", "--config", cfg, "a", "who is 42?"); code != 0 || !strings.Contains(stdout, "customer 42 prefers email") {
		t.Fatalf("after login: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// Login is only for servers a person authorizes.
	if code, _, stderr := runCLI(t, "mcp", "login", "nope", "--config", cfg); code == 0 || !strings.Contains(stderr, "mcp_servers.nope: no such MCP server") {
		t.Fatalf("an unknown server: exit %d, %s", code, stderr)
	}
}
