// Command mcpconformance is the MCP client under test when .ci/run runs
// the official conformance suite (@modelcontextprotocol/conformance)
// against Myriad's MCP client: it does what each client scenario asks,
// through Myriad's own MCP tool source (tool/mcptool), so the suite checks
// the code agents use. The suite passes the server URL as the last
// argument and the scenario in MCP_CONFORMANCE_SCENARIO.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/mcptool"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mcpconformance:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) < 2 {
		return fmt.Errorf("usage: mcpconformance SERVER-URL")
	}
	url := os.Args[len(os.Args)-1]
	scenario := os.Getenv("MCP_CONFORMANCE_SCENARIO")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	oauth, err := oauthHandler(scenario)
	if err != nil {
		return err
	}
	s := mcptool.New(mcptool.Config{Name: "s", URL: url, Timeout: 10 * time.Second, OAuth: oauth})
	defer s.Close()
	tools, err := s.Tools(ctx)
	if err != nil {
		return err
	}
	// The person behind the calls: asked something, they accept without
	// filling anything in (the elicitation scenario checks that the
	// schema's defaults are then applied).
	accept := func(context.Context, tool.Question) (json.RawMessage, error) { return json.RawMessage(`{}`), nil }
	switch scenario {
	case "tools_call":
		for _, t := range tools {
			if t.Info().Name == "s"+mcptool.Separator+"add_numbers" {
				res, err := t.Call(ctx, &tool.Call{RunID: "conformance", ID: "1", Arguments: json.RawMessage(`{"a": 2, "b": 3}`), IdempotencyKey: "conformance/1", Ask: accept})
				if err != nil {
					return err
				}
				fmt.Println(res.Content)
				return nil
			}
		}
		return fmt.Errorf("the server has no add_numbers tool")
	default:
		if (strings.HasPrefix(scenario, "auth/") || strings.HasPrefix(scenario, "elicitation")) && len(tools) > 0 {
			// A call may need more scopes than listing did (step-up): the
			// scenario checks that the client asks for them.
			res, err := tools[0].Call(ctx, &tool.Call{RunID: "conformance", ID: "1", Arguments: json.RawMessage(`{}`), IdempotencyKey: "conformance/1", Ask: accept})
			if err != nil {
				return err
			}
			fmt.Println(res.Content)
			return nil
		}
		// initialize and the rest: connecting and listing tools is the
		// client's whole job here.
		fmt.Printf("%d tools\n", len(tools))
		return nil
	}
}
