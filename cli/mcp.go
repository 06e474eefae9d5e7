package cli

import (
	"context"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/mcpserver"
)

// mcpCmd serves the project's agents and flows as MCP tools on stdio, for
// MCP clients (desktop assistants, IDEs) that start their servers
// themselves. Logs go to stderr: stdout is the protocol.
func mcpCmd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "mcp", "mcp [--config myriad.yaml] [--data DIR]")
	path := fs.String("config", defaultConfig(), "the project file")
	data := fs.String("data", "", "keep runs here (default: a temporary directory, removed on exit)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error (on stderr)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	proj, err := myriad.Load(*path)
	if err != nil {
		return err
	}
	defer proj.Close() // MCP servers started for it stop with the command
	dir, cleanup, err := dataDir(*data, "mcp", false)
	if err != nil {
		return err
	}
	defer cleanup()
	log := newLogger(e.stderr, *logLevel)
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{DataDir: dir, Logger: log})
	if err != nil {
		return err
	}
	defer node.Close()
	server := mcpserver.New(node.Runtime, mcpserver.Options{Version: myriad.Version, Logger: log})
	err = server.Run(ctx, &mcp.StdioTransport{})
	if err != nil && (ctx.Err() != nil || errors.Is(err, context.Canceled)) {
		return nil // stopped by a signal, or the client closed stdin
	}
	return err
}
