package mcptool_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/mcptool"
)

// The overhead of calling an MCP tool through Myriad's tool source, against
// calling the same server directly with the SDK, over both transports.

func benchDirect(b *testing.B, transport mcp.Transport) {
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(context.Background(), transport, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"msg": "x"}, Meta: mcp.Meta{mcptool.MetaIdempotencyKey: "run_x/3"}}
	for b.Loop() {
		if _, err := cs.CallTool(context.Background(), params); err != nil {
			b.Fatal(err)
		}
	}
}

func benchMyriad(b *testing.B, cfg mcptool.Config) {
	s := mcptool.New(cfg)
	defer s.Close()
	tools, err := s.Tools(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var echo tool.Tool
	for _, t := range tools {
		if t.Info().Name == cfg.Name+"__echo" {
			echo = t
		}
	}
	call := &tool.Call{RunID: "run_x", ID: "c", Arguments: json.RawMessage(`{"msg":"x"}`), IdempotencyKey: "run_x/3",
		TraceParent: tool.TraceParent("", "run_x", "run_x/3")}
	for b.Loop() {
		if _, err := echo.Call(context.Background(), call); err != nil {
			b.Fatal(err)
		}
	}
}

func httpServer(b *testing.B) string {
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newServer() }, nil))
	b.Cleanup(srv.Close)
	return srv.URL
}

func BenchmarkCallHTTPDirect(b *testing.B) {
	benchDirect(b, &mcp.StreamableClientTransport{Endpoint: httpServer(b)})
}

func BenchmarkCallHTTPMyriad(b *testing.B) {
	benchMyriad(b, mcptool.Config{Name: "remote", URL: httpServer(b)})
}

func stdioCommand() *mcptool.Config {
	return &mcptool.Config{Name: "files", Command: os.Args[0], Env: map[string]string{"MCPTOOL_SERVE": "1"}}
}

func BenchmarkCallStdioDirect(b *testing.B) {
	cmd := stdioCommand()
	c := execCommand(cmd)
	benchDirect(b, &mcp.CommandTransport{Command: c})
}

func BenchmarkCallStdioMyriad(b *testing.B) {
	benchMyriad(b, *stdioCommand())
}
