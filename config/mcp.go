package config

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/myriad-ai/myriad/internal/redact"
)

// MCPServer is an MCP server whose tools agents may use.
type MCPServer struct {
	// Command and Args start a stdio server in Dir, with Env added to its
	// environment and EnvFrom (child variable → this process's variable)
	// for secrets.
	Command string            `yaml:"command,omitempty"`
	Args    []string          `yaml:"args,omitempty"`
	Env     map[string]string `yaml:"env,omitempty"`
	EnvFrom map[string]string `yaml:"env_from,omitempty"`
	Dir     string            `yaml:"dir,omitempty"`
	// URL reaches a streamable HTTP server, with Headers and HeaderEnv
	// (header → variable holding its value).
	URL       string            `yaml:"url,omitempty"`
	Headers   map[string]string `yaml:"headers,omitempty"`
	HeaderEnv map[string]string `yaml:"header_env,omitempty"`
	// Timeout bounds each call (default 60s).
	Timeout Duration `yaml:"timeout,omitempty"`
	// Approval is required or never for every tool of the server; by
	// default a tool annotated destructiveHint: true asks.
	Approval string `yaml:"approval,omitempty"`
	// OAuth authorizes Myriad at a url server that asks for OAuth.
	OAuth *MCPOAuth `yaml:"oauth,omitempty"`
	// Price is what one call of any of the server's tools costs, in US
	// dollars (a paid server).
	Price float64              `yaml:"price,omitempty"`
	Extra map[string]yaml.Node `yaml:",inline"`
}

// MCPOAuth is OAuth for a remote MCP server: machine to machine (the
// client credentials grant, with a secret or a private key from the
// environment), or a person's authorization given once (the authorization
// code grant: `myriad mcp login`). The endpoints and scopes are discovered
// from the server.
type MCPOAuth struct {
	// Grant is client_credentials (the default) or authorization_code.
	Grant string `yaml:"grant,omitempty"`
	// TokenFile keeps an authorization_code grant's tokens (default
	// .myriad/oauth/<server>.json beside the project file): a secret.
	TokenFile string `yaml:"token_file,omitempty"`
	ClientID  string `yaml:"client_id,omitempty"`
	// ClientSecretEnv names the variable holding the client secret.
	ClientSecretEnv string `yaml:"client_secret_env,omitempty"`
	// PrivateKeyEnv or PrivateKeyFile holds a PEM private key (EC P-256 or
	// RSA) for private_key_jwt client authentication.
	PrivateKeyEnv  string `yaml:"private_key_env,omitempty"`
	PrivateKeyFile string `yaml:"private_key_file,omitempty"`
	// Scopes are asked for when the server names none.
	Scopes []string `yaml:"scopes,omitempty"`
	// Issuer pins the authorization server: one the MCP server names
	// otherwise gets no credentials.
	Issuer string `yaml:"issuer,omitempty"`
	// Audience is the aud of private_key_jwt assertions (default: the
	// issuer).
	Audience string               `yaml:"audience,omitempty"`
	Extra    map[string]yaml.Node `yaml:",inline"`
}

// MCPContext is a resource or a prompt of an MCP server given to an agent
// with its instructions.
type MCPContext struct {
	Server    string               `yaml:"server"`
	Resource  string               `yaml:"resource,omitempty"`
	Prompt    string               `yaml:"prompt,omitempty"`
	Arguments map[string]string    `yaml:"arguments,omitempty"`
	Extra     map[string]yaml.Node `yaml:",inline"`
}

// OAuth grants for MCP servers.
const (
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
)

// GrantFile is where an authorization_code grant's tokens are kept.
func (c *Config) GrantFile(server string) string {
	if o := c.MCPServers[server].OAuth; o != nil && o.TokenFile != "" {
		return c.Path(o.TokenFile)
	}
	return c.Path(filepath.Join(".myriad", "oauth", server+".json"))
}

// MCPToolRef splits an agent tools entry "server.pattern" into its MCP
// server and tool pattern; ok is false for plain tool names.
func MCPToolRef(entry string) (server, pattern string, ok bool) {
	return strings.Cut(entry, ".")
}

func (c *Config) validateMCP(add func(path, format string, args ...any)) {
	for _, name := range sortedKeys(c.MCPServers) {
		s, p := c.MCPServers[name], "mcp_servers."+name
		if !namePattern.MatchString(name) || strings.Contains(name, "__") {
			add(p, "invalid name: use letters, digits, '_' (not two in a row) or '-', starting with a letter")
		}
		if s == nil {
			add(p, "empty server: set command (stdio) or url (streamable HTTP)")
			continue
		}
		unknownFields(add, p, s.Extra, *s)
		if !money(s.Price) {
			add(p+".price", "must be a number of 0 or more (US dollars per call)")
		}
		switch {
		case s.Command != "" && s.URL != "":
			add(p, "set command (stdio) or url (streamable HTTP), not both")
		case s.Command == "" && s.URL == "":
			add(p, "set command (stdio) or url (streamable HTTP)")
		case s.URL != "":
			if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(p+".url", "invalid URL %q: write it like https://mcp.example.com/mcp", redact.URL(s.URL))
			}
			if len(s.Args) > 0 || len(s.Env) > 0 || len(s.EnvFrom) > 0 || s.Dir != "" {
				add(p, "args, env, env_from and dir are for command servers")
			}
		default:
			if len(s.Headers) > 0 || len(s.HeaderEnv) > 0 {
				add(p, "headers and header_env are for url servers")
			}
		}
		for k, env := range s.EnvFrom {
			if msg := checkEnvName(env); msg != "" {
				add(p+".env_from."+k, "%s", msg)
			}
		}
		for h, env := range s.HeaderEnv {
			if msg := checkEnvName(env); msg != "" {
				add(p+".header_env."+h, "%s", msg)
			}
		}
		if s.Timeout < 0 {
			add(p+".timeout", "must be positive")
		}
		if o := s.OAuth; o != nil {
			op := p + ".oauth"
			unknownFields(add, op, o.Extra, *o)
			if s.URL == "" {
				add(op, "oauth is for url servers")
			}
			code := o.Grant == GrantAuthorizationCode
			switch o.Grant {
			case "", GrantClientCredentials, GrantAuthorizationCode:
			default:
				add(op+".grant", "unknown value %q (known: client_credentials, authorization_code)", o.Grant)
			}
			if o.ClientID == "" && !code {
				add(op+".client_id", "missing: the client id registered at the server's authorization server")
			}
			if code && (o.PrivateKeyEnv != "" || o.PrivateKeyFile != "" || o.Audience != "") {
				add(op, "private keys and audience are for grant: client_credentials")
			}
			if !code && o.TokenFile != "" {
				add(op+".token_file", "is for grant: authorization_code")
			}
			if code && o.ClientID != "" && o.Issuer == "" {
				add(op+".issuer", "missing: a pre-registered client's credentials must go only to its authorization server: name it (e.g. https://auth.example.com)")
			}
			for field, raw := range map[string]string{"url": s.URL, "oauth.issuer": o.Issuer} {
				if u, err := url.Parse(raw); raw != "" && err == nil && u.Scheme == "http" && !loopback(u.Hostname()) {
					add(p+"."+field, "OAuth needs https (plain http only to a loopback address): %q", redact.URL(raw))
				}
			}
			if o.Issuer != "" {
				if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					add(op+".issuer", "invalid URL %q: write the authorization server's issuer, e.g. https://auth.example.com", redact.URL(o.Issuer))
				}
			}
			n := 0
			for _, set := range []string{o.ClientSecretEnv, o.PrivateKeyEnv, o.PrivateKeyFile} {
				if set != "" {
					n++
				}
			}
			if n != 1 && !code {
				add(op, "set one of client_secret_env, private_key_env and private_key_file (or grant: authorization_code, for a person to authorize Myriad)")
			}
			for field, env := range map[string]string{"client_secret_env": o.ClientSecretEnv, "private_key_env": o.PrivateKeyEnv} {
				if env != "" {
					if msg := checkEnvName(env); msg != "" {
						add(op+"."+field, "%s", msg)
					}
				}
			}
		}
		if s.Approval != "" && s.Approval != ApprovalRequired && s.Approval != "never" {
			add(p+".approval", "unknown value %q (known: required, never; leave it out to follow the tools' annotations)", s.Approval)
		}
	}
}

// validateMCPContext checks an agent's mcp_context entries.
func (c *Config) validateMCPContext(add func(path, format string, args ...any), name string, a *Agent) {
	for i, mc := range a.MCPContext {
		p := fmt.Sprintf("agents.%s.mcp_context[%d]", name, i)
		unknownFields(add, p, mc.Extra, mc)
		if c.MCPServers[mc.Server] == nil {
			add(p+".server", "unknown MCP server %q (known: %s)", mc.Server, list(sortedKeys(c.MCPServers)))
		}
		if (mc.Resource == "") == (mc.Prompt == "") {
			add(p, "set resource (a URI) or prompt (a name), one of them")
		}
		if mc.Resource != "" && len(mc.Arguments) > 0 {
			add(p+".arguments", "arguments are for prompts")
		}
	}
}

// checkMCPToolRef checks an agent tools entry that names MCP tools.
func (c *Config) checkMCPToolRef(entry string) string {
	server, pattern, _ := MCPToolRef(entry)
	if c.MCPServers[server] == nil {
		return fmt.Sprintf("unknown MCP server %q in %q (known: %s)", server, entry, list(sortedKeys(c.MCPServers)))
	}
	if _, err := path.Match(pattern, ""); err != nil || pattern == "" {
		return fmt.Sprintf("%q: after the server name, write a tool name or a pattern like read_* or *", entry)
	}
	return ""
}

func loopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
