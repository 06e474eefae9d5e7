package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// myriad mcp is an MCP server on stdio, as a desktop client starts it.
func TestMyriadMCPOverStdio(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "myriad.yaml")
	os.WriteFile(cfg, []byte(`
models:
  local: {provider: scripted, rules: [{reply: {text: "hello {{.Input}}"}}]}
agents:
  greeter: {model: local, description: Says hello.}
`), 0o600)
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.CommandTransport{Command: exec.Command(binPath, "mcp", "--config", cfg)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	list, err := cs.ListTools(context.Background(), nil)
	if err != nil || len(list.Tools) != 1 || list.Tools[0].Name != "greeter" || list.Tools[0].Description != "Says hello." {
		t.Fatalf("tools %+v %v", list, err)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "greeter", Arguments: map[string]any{"input": "stdio"}})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "hello stdio" {
		t.Fatalf("%+v %v", res, err)
	}
}
