package mcpserver_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/mcpserver"
	"github.com/myriad-ai/myriad/run"
)

// A tool call with arguments its schema refuses is answered with what is
// wrong and the fix; no run starts.
func TestToolArgumentsAreChecked(t *testing.T) {
	rt := newRuntime(t, &blocker{entered: make(chan struct{}, 1)})
	cs := connect(t, mcpserver.New(rt, mcpserver.Options{}), nil)
	tests := []struct {
		name, tool, args, says string
	}{
		{"misspelt argument", "greeter", `{"inptu":"hi"}`, `unknown argument "inptu" (known: input, instance)`},
		{"no input", "greeter", `{}`, "input: missing"},
		{"no arguments", "greeter", `null`, "input: missing"},
		{"a number for a string", "greeter", `{"input":5}`, "input must be a string, not a number"},
		{"an object for an instance", "greeter", `{"input":"a","instance":{}}`, "instance must be a string, not an object"},
		{"a flow's state not an object", "shout", `{"input":"a","state":[1]}`, "state must be an object"},
		{"a flow's misspelt argument", "shout", `{"input":"a","sate":{}}`, `unknown argument "sate" (known: input, state)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tc.tool, Arguments: json.RawMessage(tc.args)})
			if err != nil || !res.IsError || !strings.Contains(text(res), tc.says) {
				t.Fatalf("%+v %v, want %q", res, err, tc.says)
			}
		})
	}
	runs, _, err := rt.List(context.Background(), run.Filter{})
	if err != nil || len(runs) != 0 {
		t.Fatalf("runs started: %v %v", runs, err)
	}
	// An unknown tool's name is quoted cut, not echoed whole.
	_, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: strings.Repeat("x", 100000)})
	if err == nil || !strings.Contains(err.Error(), "unknown tool") || len(err.Error()) > 500 {
		t.Fatalf("unknown tool: %d bytes: %.300v", len(err.Error()), err)
	}
}
