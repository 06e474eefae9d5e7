package myriad

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/config"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/model/anthropic"
	"github.com/myriad-ai/myriad/model/openai"
	"github.com/myriad-ai/myriad/model/scripted"
	"github.com/myriad-ai/myriad/policy"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/a2atool"
	"github.com/myriad-ai/myriad/tool/builtin"
	"github.com/myriad-ai/myriad/tool/httptool"
	"github.com/myriad-ai/myriad/tool/mcptool"
)

// Version is the release of this build; the linker may override it.
var Version = "0.1.0-dev"

// Project is a set of agents and flows ready to run.
type Project struct {
	Config    *config.Config
	Agents    map[string]*agent.Agent
	Flows     map[string]*flow.Flow
	Schedules []engine.Schedule
	// Budgets limit what runs spend together.
	Budgets []engine.Budget
	// Models are the configured models that could be built, by name.
	Models map[string]agent.ModelChoice
	// MCPServers are the connected MCP servers whose tools agents use.
	MCPServers map[string]*mcptool.Server
	mcpListed  map[string][]tool.Tool
}

// Close ends the project's MCP sessions (stopping stdio servers).
func (p *Project) Close() {
	for _, s := range p.MCPServers {
		_ = s.Close()
	}
}

// mcpTools returns the tools of an MCP server that match pattern,
// connecting to the server the first time.
func (p *Project) mcpTools(cfg *config.Config, server, pattern string) ([]tool.Tool, error) {
	if _, err := p.mcpServer(cfg, server); err != nil {
		return nil, err
	}
	all := p.mcpListed[server]
	sel, err := mcptool.Select(all, []string{pattern})
	if err != nil {
		return nil, err
	}
	if len(sel) == 0 {
		names := make([]string, 0, len(all))
		for _, t := range all {
			names = append(names, strings.TrimPrefix(t.Info().Name, server+mcptool.Separator))
		}
		return nil, fmt.Errorf("%s.%s matches no tool of MCP server %s (its tools: %s)", server, pattern, server, strings.Join(names, ", "))
	}
	return sel, nil
}

// mcpServer returns a configured MCP server, connected and its tools
// listed the first time.
func (p *Project) mcpServer(cfg *config.Config, server string) (*mcptool.Server, error) {
	s, ok := p.MCPServers[server]
	if !ok {
		sc := cfg.MCPServers[server]
		env, err := withEnv("mcp_servers."+server+".env_from", sc.Env, sc.EnvFrom)
		if err != nil {
			return nil, err
		}
		headers, err := withEnv("mcp_servers."+server+".header_env", sc.Headers, sc.HeaderEnv)
		if err != nil {
			return nil, err
		}
		c := mcptool.Config{Name: server, Command: sc.Command, Args: sc.Args, Env: env, Dir: cfg.Path(sc.Dir),
			URL: sc.URL, Headers: headers, Timeout: sc.Timeout.Std(), Approval: sc.Approval}
		if o := sc.OAuth; o != nil {
			if c.OAuth, err = mcpOAuth(cfg, "mcp_servers."+server+".oauth", o); err != nil {
				return nil, err
			}
		}
		s = mcptool.New(c)
		all, err := s.Tools(context.Background())
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("mcp_servers.%s: %w", server, err)
		}
		if p.MCPServers == nil {
			p.MCPServers, p.mcpListed = map[string]*mcptool.Server{}, map[string][]tool.Tool{}
		}
		p.MCPServers[server], p.mcpListed[server] = s, all
	}
	return s, nil
}

// Load reads a myriad.yaml and builds its models, tools and agents.
func Load(path string) (*Project, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return Build(cfg)
}

// Build turns a validated configuration into agents. Secrets are read from
// the environment here, and a missing one is an error that names the
// variable.
func Build(cfg *config.Config) (*Project, error) {
	proj := &Project{Config: cfg, Agents: map[string]*agent.Agent{}, Flows: map[string]*flow.Flow{}}
	if err := proj.build(cfg); err != nil {
		proj.Close() // stop the MCP servers started so far
		return nil, err
	}
	return proj, nil
}

func (proj *Project) build(cfg *config.Config) error {
	// Only models and tools some agent uses are built, so an unused model's
	// missing API key does not stop an offline project from starting.
	models := map[string]model.Provider{}
	tools := map[string]tool.Tool{}
	for _, name := range cfg.AgentNames() {
		ac := cfg.Agents[name]
		for _, tn := range ac.Tools {
			if tools[tn] != nil {
				continue
			}
			t, err := buildNamedTool(cfg, tn)
			if err != nil {
				return err
			}
			if t != nil {
				tools[tn] = t
			}
		}
		if _, done := models[ac.Model]; done {
			continue
		}
		p, err := buildModel(cfg, ac.Model, cfg.Models[ac.Model])
		if err != nil {
			return err
		}
		models[ac.Model] = p
	}
	for _, fc := range cfg.Flows {
		for _, n := range fc.Nodes {
			if n == nil || n.Tool == "" || tools[n.Tool] != nil {
				continue
			}
			if t, err := buildNamedTool(cfg, n.Tool); err != nil {
				return err
			} else if t != nil {
				tools[n.Tool] = t
			} else if t, ok := builtin.Lookup(n.Tool); ok {
				tools[n.Tool] = t
			}
		}
	}
	for name, fc := range cfg.Flows {
		proj.Flows[name] = fc.Definition(name, tools)
		proj.Flows[name].ToolPrice = toolPrices(cfg)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Schedules)) {
		s := cfg.Schedules[name]
		var state json.RawMessage
		if s.State != nil {
			state, _ = json.Marshal(s.State)
		}
		proj.Schedules = append(proj.Schedules, engine.Schedule{Name: name, Cron: s.CronPattern(), TimeZone: s.TimeZone,
			Agent: s.Agent, Flow: s.Flow, Input: s.Input, State: state})
	}
	// Forks may switch a run to any model that can be built; an unused
	// one that cannot (its key is not set) is left out.
	proj.Models = map[string]agent.ModelChoice{}
	for name, mc := range cfg.Models {
		p := models[name]
		if p == nil {
			var err error
			if p, err = buildModel(cfg, name, mc); err != nil {
				continue
			}
		}
		proj.Models[name] = agent.ModelChoice{Name: name, Provider: p, Prices: mc.PriceList(), MaxOutputTokens: mc.MaxTokens}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Budgets)) {
		b := cfg.Budgets[name]
		proj.Budgets = append(proj.Budgets, engine.Budget{Name: name, Agent: b.Agent, MetadataKey: b.MetadataKey,
			USD: b.USD, Window: b.Window.Std()})
	}
	for _, name := range cfg.AgentNames() {
		ac := cfg.Agents[name]
		a := &agent.Agent{
			Name: name, Description: ac.Description, Instructions: ac.Instructions,
			ModelName: ac.Model, Model: models[ac.Model], ToolPrice: toolPrices(cfg),
			MaxTurns: ac.MaxTurns, Timeout: ac.Timeout.Std(), TokenBudget: ac.TokenBudget, CostBudget: ac.CostBudget, Stream: ac.Stream,
			HistoryLimit: ac.HistoryLimit, RejectBusy: ac.ConcurrentInput == "reject",
			InterruptBusy: ac.ConcurrentInput == "interrupt", MaxChildren: ac.MaxChildren, MaxConcurrent: ac.MaxConcurrent,
		}
		if m := cfg.Models[ac.Model]; m != nil {
			a.Prices, a.MaxOutputTokens = m.PriceList(), m.MaxTokens
		}
		for _, sa := range ac.SubAgents {
			a.SubAgents = append(a.SubAgents, agent.SubAgent{Agent: sa.Agent, Description: sa.Description,
				Context: agent.ContextScope(sa.Context), State: sa.State})
		}
		if m := ac.Messaging; m != nil {
			a.Messaging = agent.Messaging{To: m.To, AskTimeout: m.AskTimeout.Std(), MaxBroadcast: m.MaxBroadcast}
		}
		for _, h := range ac.Handoffs {
			a.Handoffs = append(a.Handoffs, agent.Handoff{Agent: h.Agent, Description: h.Description})
		}
		// An agent's patterns for one MCP server make one source, which
		// follows the server's changes to its tool list.
		var servers []string
		patterns := map[string][]string{}
		for i, tn := range ac.Tools {
			if server, pattern, isMCP := config.MCPToolRef(tn); isMCP {
				if _, err := proj.mcpTools(cfg, server, pattern); err != nil {
					return fmt.Errorf("agents.%s.tools[%d]: %w", name, i, err)
				}
				if patterns[server] == nil {
					servers = append(servers, server)
				}
				patterns[server] = append(patterns[server], pattern)
				continue
			}
			approval, section := (*config.Approval)(nil), "tools"
			if tc := cfg.Tools[tn]; tc != nil {
				approval = tc.Approval
			} else if ac := cfg.A2AAgents[tn]; ac != nil {
				approval, section = ac.Approval, "a2a_agents"
			}
			if approval.Required() {
				rule := agent.ApprovalRule{Timeout: approval.Timeout.Std(), OnTimeout: approval.OnTimeout}
				if approval.When != "" {
					c, err := policy.Compile(approval.When)
					if err != nil {
						return fmt.Errorf("%s.%s.approval.when: %w", section, tn, err)
					}
					rule.When = c
				}
				if a.Approvals == nil {
					a.Approvals = map[string]agent.ApprovalRule{}
				}
				a.Approvals[tn] = rule
			}
			if t, ok := tools[tn]; ok {
				a.Tools = append(a.Tools, t)
			} else if t, ok := builtin.Lookup(tn); ok {
				a.Tools = append(a.Tools, t)
			} else {
				return fmt.Errorf("agents.%s.tools: unknown tool %q", name, tn)
			}
		}
		for _, server := range servers {
			a.Sources = append(a.Sources, proj.MCPServers[server].Selection(patterns[server]))
		}
		for i, mc := range ac.MCPContext {
			s, err := proj.mcpServer(cfg, mc.Server)
			if err != nil {
				return fmt.Errorf("agents.%s.mcp_context[%d]: %w", name, i, err)
			}
			if mc.Resource != "" {
				a.Context = append(a.Context, s.Resource(mc.Resource))
			} else {
				a.Context = append(a.Context, s.Prompt(mc.Prompt, mc.Arguments))
			}
		}
		if ac.OutputSchema != nil {
			raw, _ := json.Marshal(ac.OutputSchema)
			s, err := tool.CompileSchema(raw)
			if err != nil {
				return fmt.Errorf("agents.%s.output_schema: %w", name, err)
			}
			a.OutputSchema = s
		}
		if err := a.Init(); err != nil {
			return err
		}
		proj.Agents[name] = a
	}
	return nil
}

func secret(path, env string) (string, error) {
	if env == "" {
		return "", nil
	}
	v := os.Getenv(env)
	if v == "" {
		return "", fmt.Errorf("%s.api_key_env: environment variable %s is empty or unset: export it, or remove api_key_env for an endpoint without a key", path, env)
	}
	return v, nil
}

func buildModel(cfg *config.Config, name string, m *config.Model) (model.Provider, error) {
	path := "models." + name
	switch m.Provider {
	case config.ProviderScripted:
		rules := m.Rules
		if m.RulesFile != "" {
			var err error
			if rules, err = scripted.LoadRules(cfg.Path(m.RulesFile)); err != nil {
				return nil, fmt.Errorf("%s.rules_file: %w", path, err)
			}
		}
		p, err := scripted.New(rules)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return p, nil
	case config.ProviderOpenAI:
		key, err := secret(path, m.APIKeyEnv)
		if err != nil {
			return nil, err
		}
		p, err := openai.New(openai.Config{BaseURL: m.BaseURL, Model: m.Model, APIKey: key, Headers: m.Headers,
			MaxRetries: m.MaxRetries, Timeout: m.Timeout.Std()})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return p, nil
	case config.ProviderAnthropic:
		key, err := secret(path, m.APIKeyEnv)
		if err != nil {
			return nil, err
		}
		p, err := anthropic.New(anthropic.Config{BaseURL: m.BaseURL, Model: m.Model, APIKey: key, Headers: m.Headers,
			MaxRetries: m.MaxRetries, Timeout: m.Timeout.Std(), MaxTokens: m.MaxTokens})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("%s.provider: unknown provider %q", path, m.Provider)
}

// mcpOAuth builds the OAuth handler of a remote MCP server, reading its
// secret or key.
func mcpOAuth(cfg *config.Config, path string, o *config.MCPOAuth) (auth.OAuthHandler, error) {
	if o.Grant == config.GrantAuthorizationCode {
		server := strings.TrimSuffix(strings.TrimPrefix(path, "mcp_servers."), ".oauth")
		return mcptool.GrantHandler(cfg.GrantFile(server), cfg.MCPServers[server].URL,
			fmt.Sprintf("run `myriad mcp login %s --config <this project file>` once", server), nil), nil
	}
	cc := mcptool.ClientCredentials{ClientID: o.ClientID, Scopes: o.Scopes, Issuer: o.Issuer, Audience: o.Audience}
	switch {
	case o.ClientSecretEnv != "":
		if cc.ClientSecret = os.Getenv(o.ClientSecretEnv); cc.ClientSecret == "" {
			return nil, fmt.Errorf("%s.client_secret_env: environment variable %s is empty or unset", path, o.ClientSecretEnv)
		}
	case o.PrivateKeyEnv != "":
		if cc.PrivateKeyPEM = []byte(os.Getenv(o.PrivateKeyEnv)); len(cc.PrivateKeyPEM) == 0 {
			return nil, fmt.Errorf("%s.private_key_env: environment variable %s is empty or unset", path, o.PrivateKeyEnv)
		}
	default:
		var err error
		if cc.PrivateKeyPEM, err = os.ReadFile(cfg.Path(o.PrivateKeyFile)); err != nil {
			return nil, fmt.Errorf("%s.private_key_file: %w", path, err)
		}
	}
	h, err := cc.OAuthHandler()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// buildNamedTool builds the configured tool or remote A2A agent a name
// refers to; it returns nil for other names (built-in tools).
func buildNamedTool(cfg *config.Config, name string) (tool.Tool, error) {
	if t := cfg.Tools[name]; t != nil {
		var schema json.RawMessage
		if t.Parameters != nil {
			schema, _ = json.Marshal(t.Parameters)
		}
		headers, err := withEnv("tools."+name+".header_env", t.Headers, t.HeaderEnv)
		if err != nil {
			return nil, err
		}
		return httptool.New(httptool.Config{Name: name, Description: t.Description, Schema: schema, URL: t.URL,
			Headers: headers, Timeout: t.Timeout.Std(), Idempotent: t.Idempotent}), nil
	}
	if a := cfg.A2AAgents[name]; a != nil {
		headers, err := withEnv("a2a_agents."+name+".header_env", a.Headers, a.HeaderEnv)
		if err != nil {
			return nil, err
		}
		return a2atool.New(a2atool.Config{Name: name, URL: a.URL, Description: a.Description, Headers: headers,
			Timeout: a.Timeout.Std(), Idempotent: a.Idempotent}), nil
	}
	return nil, nil
}

// toolPrices says what one call of a tool costs, as the configuration
// prices it: a tool, a remote A2A agent, or any tool of an MCP server.
func toolPrices(cfg *config.Config) func(string) float64 {
	return func(name string) float64 {
		if t := cfg.Tools[name]; t != nil {
			return t.Price
		}
		if a := cfg.A2AAgents[name]; a != nil {
			return a.Price
		}
		if server, _, ok := strings.Cut(name, mcptool.Separator); ok {
			if s := cfg.MCPServers[server]; s != nil {
				return s.Price
			}
		}
		return 0
	}
}

// withEnv adds values read from the environment (secrets: fromEnv maps a
// key to its variable) to the ones written in the file; path names the
// field in errors.
func withEnv(path string, values, fromEnv map[string]string) (map[string]string, error) {
	out := maps.Clone(values)
	if out == nil {
		out = map[string]string{}
	}
	for k, env := range fromEnv {
		v := os.Getenv(env)
		if v == "" {
			return nil, fmt.Errorf("%s.%s: environment variable %s is empty or unset", path, k, env)
		}
		out[k] = v
	}
	return out, nil
}

// NodeOptions configure a node.
type NodeOptions struct {
	// DataDir holds the embedded NATS server's files; required unless NATSURL
	// or Memory is set.
	DataDir string
	// NATSURL joins an external NATS server or cluster instead of embedding one.
	NATSURL string
	// Memory keeps everything in memory: nothing survives the process.
	Memory bool
	// Cluster, when set, makes the embedded NATS server a node of a
	// cluster of Myriad nodes (docs/operations.md).
	Cluster *engine.Cluster
	// Replicas is how many copies streams and buckets keep on a cluster
	// (default: 3 when it has three nodes or more, else 1).
	Replicas int
	// Workers is the number of runs executed at once (default from the config).
	Workers int
	// NoWorkers makes a node that submits and reads but executes nothing.
	NoWorkers bool
	Logger    *slog.Logger
	// OnFinish observes finished runs (benchmarks).
	OnFinish func(*run.Record, engine.RunStats)
	// Observers are told of every run the node accepts and every entry
	// it journals (package telemetry).
	Observers []engine.Observer
	// OnActivation is told how long each activation of an instance took
	// (benchmarks).
	OnActivation func(d time.Duration, cached bool)
}

// Node is a running Myriad: the engine executing the project's agents,
// on an embedded NATS server or a cluster.
type Node struct {
	Project *Project
	// Engine submits, reads, watches and steers runs.
	Engine *engine.Engine
}

// Open starts a node.
func Open(ctx context.Context, proj *Project, o NodeOptions) (*Node, error) {
	workers := o.Workers
	if workers == 0 && proj.Config != nil {
		workers = proj.Config.Server.Workers
	}
	var maxDepth, maxBacklog, cacheBytes int
	var retention engine.Retention
	if cfg := proj.Config; cfg != nil {
		maxDepth, maxBacklog = cfg.Server.MaxDepth, cfg.Server.MaxBacklog
		cacheBytes = cfg.Server.InstanceCacheMB << 20 // -1 stays negative: no cache
		retention.Default = cfg.Server.Retention.Std()
		for name, a := range cfg.Agents {
			if a != nil && a.Retention > 0 {
				if retention.Agents == nil {
					retention.Agents = map[string]time.Duration{}
				}
				retention.Agents[name] = a.Retention.Std()
			}
		}
	}
	rt, err := engine.Open(ctx, engine.StoreOptions{NATSURL: o.NATSURL, DataDir: o.DataDir, Memory: o.Memory, Cluster: o.Cluster, Replicas: o.Replicas},
		engine.Options{Agents: proj.Agents, Flows: proj.Flows, Schedules: proj.Schedules, Budgets: proj.Budgets, Models: proj.Models,
			Workers: workers, Logger: o.Logger, OnFinish: o.OnFinish, MaxDepth: maxDepth, MaxBacklog: maxBacklog, Retention: retention, Observers: o.Observers,
			InstanceCache: cacheBytes, OnActivation: o.OnActivation})
	if err != nil {
		return nil, err
	}
	if !o.NoWorkers {
		if err := rt.Start(ctx); err != nil {
			rt.Close()
			return nil, err
		}
	}
	return &Node{Project: proj, Engine: rt}, nil
}

// Close stops the workers (letting running steps finish), the store and
// the project's MCP servers.
func (n *Node) Close() {
	n.Engine.Close()
	n.Project.Close()
}
