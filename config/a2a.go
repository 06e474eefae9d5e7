package config

import (
	"net/url"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/tool"
)

// A2AAgent is a remote A2A agent that local agents call as a tool named
// after it.
type A2AAgent struct {
	// URL is the agent's base URL, where its card is at
	// /.well-known/agent-card.json (a Myriad agent:
	// http://host:8420/a2a/NAME), or the card's own URL (ending in .json).
	URL string `yaml:"url"`
	// Description tells the model what the agent does (default: the card's
	// description is not read at load time, so say it here).
	Description string            `yaml:"description,omitempty"`
	Headers     map[string]string `yaml:"headers,omitempty"`
	HeaderEnv   map[string]string `yaml:"header_env,omitempty"`
	// Timeout bounds each call (default 10m: remote agents take their time).
	Timeout Duration `yaml:"timeout,omitempty"`
	// Idempotent says a call cut by a crash may be sent again. Myriad
	// remotes take the message id as an idempotency key, so a repeat
	// joins the first task: set it for them.
	Idempotent bool      `yaml:"idempotent,omitempty"`
	Approval   *Approval `yaml:"approval,omitempty"`
	// Price is what one call costs, in US dollars.
	Price float64              `yaml:"price,omitempty"`
	Extra map[string]yaml.Node `yaml:",inline"`
}

// A2AServer configures how `myriad serve` publishes agents over A2A.
type A2AServer struct {
	// Default is the agent or flow whose card is served at
	// /.well-known/agent-card.json (default: the only one, if there is one).
	Default string `yaml:"default,omitempty"`
	// Publish lists the agents and flows published (default: all).
	Publish []string `yaml:"publish,omitempty"`
	// Approvals says who decides the approvals of runs started over A2A:
	// "operator" (default: through the API or the console; the task stays
	// working) or "client" (the task is input-required and the A2A client
	// replies approve or deny).
	Approvals string               `yaml:"approvals,omitempty"`
	Extra     map[string]yaml.Node `yaml:",inline"`
}

// DefaultA2ATimeout bounds a call of a remote A2A agent.
const DefaultA2ATimeout = Duration(10 * 60 * 1e9)

func (c *Config) validateA2A(add func(path, format string, args ...any)) {
	for _, name := range sortedKeys(c.A2AAgents) {
		a, p := c.A2AAgents[name], "a2a_agents."+name
		if err := tool.CheckName(name); err != nil {
			add(p, "%v", err)
		}
		if _, clash := c.Tools[name]; clash || slices.Contains(BuiltinTools, name) {
			add(p, "a tool is named %s too: agents list both by name, so rename one", name)
		}
		if a == nil {
			add(p, "empty agent: set url")
			continue
		}
		unknownFields(add, p, a.Extra, *a)
		if !money(a.Price) {
			add(p+".price", "must be a number of 0 or more (US dollars per call)")
		}
		if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(p+".url", "invalid URL %q: write the agent's base URL (its card is at /.well-known/agent-card.json below it), e.g. http://127.0.0.1:8420/a2a/billing", redact.URL(a.URL))
		}
		for h, env := range a.HeaderEnv {
			if msg := checkEnvName(env); msg != "" {
				add(p+".header_env."+h, "%s", msg)
			}
		}
		if a.Timeout < 0 {
			add(p+".timeout", "must be positive")
		}
		validateApproval(add, p+".approval", a.Approval)
	}
	s, p := c.Server.A2A, "server.a2a"
	unknownFields(add, p, s.Extra, s)
	isRunnable := func(n string) bool { return c.Agents[n] != nil || c.Flows[n] != nil }
	runnable := func() string {
		names := c.AgentNames()
		for n := range c.Flows {
			names = append(names, n)
		}
		slices.Sort(names)
		return list(names)
	}
	for i, n := range s.Publish {
		if !isRunnable(n) {
			add(p+".publish", "[%d]: unknown agent or flow %q (known: %s)", i, n, runnable())
		}
	}
	if s.Default != "" {
		switch {
		case !isRunnable(s.Default):
			add(p+".default", "unknown agent or flow %q (known: %s)", s.Default, runnable())
		case len(s.Publish) > 0 && !slices.Contains(s.Publish, s.Default):
			add(p+".default", "%q is not in server.a2a.publish", s.Default)
		}
	}
	if s.Approvals != "" && s.Approvals != "operator" && s.Approvals != "client" {
		add(p+".approvals", "unknown value %q (known: operator, client)", s.Approvals)
	}
	if c.Server.PublicURL != "" {
		if u, err := url.Parse(c.Server.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("server.public_url", "invalid URL %q: write the base URL clients reach the API at, e.g. https://agents.example.com", redact.URL(c.Server.PublicURL))
		}
	}
}
