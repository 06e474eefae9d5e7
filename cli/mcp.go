package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/config"
	"github.com/myriad-ai/myriad/mcpserver"
	"github.com/myriad-ai/myriad/tool/mcptool"
)

// mcpCmd serves the project's agents and flows as MCP tools on stdio, for
// MCP clients (desktop assistants, IDEs) that start their servers
// themselves. Logs go to stderr: stdout is the protocol.
func mcpCmd(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "login" {
		return mcpLogin(ctx, e, args[1:])
	}
	fs := newFlags(e, "mcp", "mcp [--config myriad.yaml] [--data DIR] | mcp login SERVER [--config myriad.yaml]")
	path := fs.String("config", defaultConfig(), "the project file")
	data := fs.String("data", "", "keep runs here (default: a temporary directory, removed on exit)")
	logs := logFlags(fs, "warn")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log, err := logs.logger(e.stderr)
	if err != nil {
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
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{DataDir: dir, Logger: log})
	if err != nil {
		return err
	}
	defer node.Close()
	server := mcpserver.New(node.Engine, mcpserver.Options{Version: myriad.Version, Logger: log})
	err = server.Run(ctx, mcpserver.Transport(&mcp.StdioTransport{}))
	if err != nil && (ctx.Err() != nil || errors.Is(err, context.Canceled)) {
		return nil // stopped by a signal, or the client closed stdin
	}
	return err
}

// mcpLogin has a person authorize Myriad at a remote MCP server whose
// oauth grant is authorization_code, once: it prints the address to open,
// takes the browser's return on a loopback port, and saves the grant (a
// secret) where serve, run and mcp find it.
func mcpLogin(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "mcp login", "mcp login SERVER [--config myriad.yaml] [--listen 127.0.0.1:0]")
	path := fs.String("config", defaultConfig(), "the project file")
	listen := fs.String("listen", "127.0.0.1:0", "where the browser comes back to (the redirect URI's host and port)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return errors.New("name one MCP server")
	}
	name := rest[0]
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	sc := cfg.MCPServers[name]
	switch {
	case sc == nil:
		return fmt.Errorf("mcp_servers.%s: no such MCP server in %s", name, *path)
	case sc.OAuth == nil || sc.OAuth.Grant != config.GrantAuthorizationCode:
		return fmt.Errorf("mcp_servers.%s.oauth.grant: login is for authorization_code (add oauth: {grant: authorization_code})", name)
	}
	o := sc.OAuth
	lo := mcptool.LoginOptions{URL: sc.URL, ClientID: o.ClientID, Scopes: o.Scopes, Issuer: o.Issuer, Listen: *listen,
		Open: func(u string) {
			fmt.Fprintf(e.stderr, "Open this address in a browser to let Myriad use %s:\n\n  %s\n\nWaiting for the authorization (Ctrl-C to give up)...\n", name, u)
		}}
	if o.ClientSecretEnv != "" {
		if lo.ClientSecret = os.Getenv(o.ClientSecretEnv); lo.ClientSecret == "" {
			return fmt.Errorf("mcp_servers.%s.oauth.client_secret_env: environment variable %s is empty or unset", name, o.ClientSecretEnv)
		}
	}
	g, err := mcptool.Login(ctx, lo)
	if err != nil {
		return fmt.Errorf("mcp_servers.%s: %w", name, err)
	}
	file := cfg.GrantFile(name)
	if err := mcptool.SaveGrant(file, g); err != nil {
		return fmt.Errorf("save the authorization: %w", err)
	}
	fmt.Fprintf(e.stdout, "Authorized. Saved in %s (a secret: keep it out of version control).\n", file)
	return nil
}
