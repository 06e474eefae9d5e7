// Package config reads and checks myriad.yaml.
//
// A project file has four sections: models, tools, agents and server. Parse
// decodes it strictly (unknown fields are errors), Validate checks every
// reference and value, and every error names the field path and the fix:
//
//	agents.triage.model: unknown model "fats" (known: fast, local)
//
// Secrets never live in the file: a model names the environment variable that
// holds its key (api_key_env: OPENAI_API_KEY).
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/model/scripted"
	"github.com/myriad-ai/myriad/policy"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
)

// Config is a parsed myriad.yaml.
type Config struct {
	Models map[string]*Model `yaml:"models"`
	Tools  map[string]*Tool  `yaml:"tools,omitempty"`
	// MCPServers are MCP servers whose tools agents use ("server.tool").
	MCPServers map[string]*MCPServer `yaml:"mcp_servers,omitempty"`
	// A2AAgents are remote A2A agents that agents call as tools.
	A2AAgents map[string]*A2AAgent `yaml:"a2a_agents,omitempty"`
	Agents    map[string]*Agent    `yaml:"agents"`
	// Flows are graphs of agents, tools and people over a shared state.
	Flows map[string]*Flow `yaml:"flows,omitempty"`
	// Schedules start runs on cron expressions.
	Schedules map[string]*Schedule `yaml:"schedules,omitempty"`
	// Budgets limit what runs spend together over rolling windows.
	Budgets map[string]*Budget `yaml:"budgets,omitempty"`
	Server  Server             `yaml:"server,omitempty"`
	// Extra collects unknown sections, so Validate can name them.
	Extra map[string]yaml.Node `yaml:",inline"`

	// Dir is the directory of the file, against which relative paths resolve.
	Dir string `yaml:"-"`
}

// Model providers.
const (
	ProviderOpenAI    = "openai"
	ProviderAnthropic = "anthropic"
	ProviderScripted  = "scripted"
)

// Model is a named LLM endpoint.
type Model struct {
	Provider string `yaml:"provider"`
	// Model is the provider's model id (gpt-4o-mini, claude-sonnet-4-5, ...).
	Model     string            `yaml:"model,omitempty"`
	BaseURL   string            `yaml:"base_url,omitempty"`
	APIKeyEnv string            `yaml:"api_key_env,omitempty"`
	Headers   map[string]string `yaml:"headers,omitempty"`
	// MaxRetries for transient failures (429, 5xx, connection reset); 0 means the default of 3, -1 none.
	MaxRetries int      `yaml:"max_retries,omitempty"`
	Timeout    Duration `yaml:"timeout,omitempty"`
	MaxTokens  int      `yaml:"max_tokens,omitempty"`
	// Prices are what the model's tokens cost, in US dollars per million,
	// each from a date on (the latest in effect applies).
	Prices []Price `yaml:"prices,omitempty"`
	// Rules and RulesFile configure the scripted provider.
	Rules     []scripted.Rule `yaml:"rules,omitempty"`
	RulesFile string          `yaml:"rules_file,omitempty"`
	// Extra collects unknown fields, so Validate can name them.
	Extra map[string]yaml.Node `yaml:",inline"`
}

// Tool types.
const (
	ToolHTTP = "http"
)

// ApprovalRequired is the tools.X.approval value that makes every call wait
// for a person.
const ApprovalRequired = "required"

// Tool is a tool defined in the file.
type Tool struct {
	Type        string `yaml:"type"`
	Description string `yaml:"description,omitempty"`
	// Parameters is the JSON Schema of the arguments (written as YAML).
	Parameters map[string]any    `yaml:"parameters,omitempty"`
	URL        string            `yaml:"url,omitempty"`
	Headers    map[string]string `yaml:"headers,omitempty"`
	HeaderEnv  map[string]string `yaml:"header_env,omitempty"`
	Timeout    Duration          `yaml:"timeout,omitempty"`
	Idempotent bool              `yaml:"idempotent,omitempty"`
	// Approval parks the run before a call until a person approves, edits
	// or denies it: "required" (every call), "never", or a mapping with a
	// CEL condition and a timeout.
	Approval *Approval `yaml:"approval,omitempty"`
	// Price is what one call costs, in US dollars (a paid API).
	Price float64              `yaml:"price,omitempty"`
	Extra map[string]yaml.Node `yaml:",inline"`
}

// Price is a model's price from a date on, in US dollars per million
// tokens.
type Price struct {
	// Input and Output are required (0 when free): a price that leaves
	// one out would make it free without a word.
	Input       *float64 `yaml:"input"`
	Output      *float64 `yaml:"output"`
	CachedInput float64  `yaml:"cached_input,omitempty"`
	// From is the day (YYYY-MM-DD, UTC) or time (RFC 3339) it takes
	// effect; empty: always.
	From  string               `yaml:"from,omitempty"`
	Extra map[string]yaml.Node `yaml:",inline"`
}

// Prices are a model's prices as the model package reads them.
func (m *Model) PriceList() model.Prices {
	var out model.Prices
	for _, p := range m.Prices {
		from, _ := parseFrom(p.From)
		var in, output float64
		if p.Input != nil {
			in = *p.Input
		}
		if p.Output != nil {
			output = *p.Output
		}
		out = append(out, model.Price{Input: in, Output: output, CachedInput: p.CachedInput, From: from})
	}
	return out
}

// parseFrom reads a price's from: a day or a time.
func parseFrom(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// money reports an amount a price or budget can be: finite, not negative
// (YAML's .nan and .inf are numbers too).
func money(v float64) bool { return v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }

// checkPrices names what is wrong with a model's prices.
func checkPrices(add func(path, format string, args ...any), p string, prices []Price) {
	seen := map[string]bool{}
	for i, pr := range prices {
		pp := fmt.Sprintf("%s.prices[%d]", p, i)
		unknownFields(add, pp, pr.Extra, pr)
		for _, f := range []struct {
			name string
			v    *float64
		}{{"input", pr.Input}, {"output", pr.Output}} {
			if f.v == nil {
				add(pp+"."+f.name, "missing: US dollars per million %s tokens (0 if they are free)", f.name)
			}
		}
		if pr.Input != nil && !money(*pr.Input) || pr.Output != nil && !money(*pr.Output) || !money(pr.CachedInput) {
			add(pp, "prices must be numbers of 0 or more (US dollars per million tokens)")
		}
		if _, err := parseFrom(pr.From); err != nil {
			add(pp+".from", "%q is not a day (2026-06-01) or a time (2026-06-01T00:00:00Z)", pr.From)
		}
		if seen[pr.From] {
			add(pp+".from", "two prices take effect at %q: give each its own from", pr.From)
		}
		seen[pr.From] = true
	}
}

// Approval says when a tool's calls wait for a person.
type Approval struct {
	// Mode is "required" or "never" when written as a plain string.
	Mode string `yaml:"-"`
	// When is a CEL condition over args (the call's arguments) and tool:
	// only calls where it holds wait.
	When string `yaml:"when,omitempty"`
	// Timeout applies OnTimeout (approve or deny; default deny) when nobody
	// decides in time.
	Timeout   Duration             `yaml:"timeout,omitempty"`
	OnTimeout string               `yaml:"on_timeout,omitempty"`
	Extra     map[string]yaml.Node `yaml:",inline"`
}

// UnmarshalYAML accepts "required" or "never", or the mapping form.
func (a *Approval) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&a.Mode)
	}
	type plain Approval
	return n.Decode((*plain)(a))
}

// Required reports whether the approval asks at all.
func (a *Approval) Required() bool { return a != nil && a.Mode != "never" }

// Agent is an agent definition.
type Agent struct {
	Description  string   `yaml:"description,omitempty"`
	Model        string   `yaml:"model"`
	Instructions string   `yaml:"instructions,omitempty"`
	Tools        []string `yaml:"tools,omitempty"`
	// MaxTurns bounds the model calls of one run (default 10).
	MaxTurns int `yaml:"max_turns,omitempty"`
	// Timeout bounds one run's wall time (default 10m).
	Timeout Duration `yaml:"timeout,omitempty"`
	// TokenBudget bounds the tokens of one run; 0 means no limit.
	TokenBudget int `yaml:"token_budget,omitempty"`
	// CostBudget bounds what one run spends, its children included, in US
	// dollars at the configured prices; 0 means no limit.
	CostBudget float64 `yaml:"cost_budget,omitempty"`
	// OutputSchema asks for a JSON answer and validates it.
	OutputSchema map[string]any `yaml:"output_schema,omitempty"`
	// Stream asks the model to stream its answers.
	Stream bool `yaml:"stream,omitempty"`
	// HistoryLimit caps the messages an instance keeps between runs
	// (default 200).
	HistoryLimit int `yaml:"history_limit,omitempty"`
	// ConcurrentInput says what a message to a busy instance does: queue
	// (the default: it runs after the current turn), reject (409), or
	// interrupt (cancel the unfinished turns and answer all their input).
	ConcurrentInput string `yaml:"concurrent_input,omitempty"`
	// SubAgents are agents this agent's model may call like tools; each
	// call is a child run.
	SubAgents []SubAgent `yaml:"sub_agents,omitempty"`
	// Handoffs are agents this agent's model may hand the conversation to.
	Handoffs []Handoff `yaml:"handoffs,omitempty"`
	// MaxChildren caps the child runs one run of this agent starts
	// (default 100).
	MaxChildren int `yaml:"max_children,omitempty"`
	// MaxConcurrent caps the runs of this agent one node executes at once
	// (0: only server.workers bounds them); the others wait on the queue.
	MaxConcurrent int `yaml:"max_concurrent,omitempty"`
	// Retention is how long this agent's ended runs are kept (default
	// server.retention).
	Retention Duration `yaml:"retention,omitempty"`
	// MCPContext is read from MCP servers when a run starts and given to
	// the model with the instructions.
	MCPContext []MCPContext `yaml:"mcp_context,omitempty"`
	// Messaging bounds the messages this agent's send_message, ask_agent
	// and broadcast_message calls send.
	Messaging *Messaging `yaml:"messaging,omitempty"`
	// Extra collects unknown fields, so Validate can name them.
	Extra map[string]yaml.Node `yaml:",inline"`
}

// Messaging is agents.X.messaging: what the agent's runs may message.
type Messaging struct {
	// To are addresses ("support/customer-42") and patterns ("research/*",
	// "*/team-a/*") the agent may message; left out, any instance.
	To []string `yaml:"to,omitempty"`
	// AskTimeout bounds an ask_agent call's wait (default 1m).
	AskTimeout Duration `yaml:"ask_timeout,omitempty"`
	// MaxBroadcast caps one broadcast_message call's recipients (default
	// 100).
	MaxBroadcast int                  `yaml:"max_broadcast,omitempty"`
	Extra        map[string]yaml.Node `yaml:",inline"`
}

// SubAgent is one entry of agents.X.sub_agents: an agent name, or a mapping
// that says what the child is given.
type SubAgent struct {
	Agent       string `yaml:"agent"`
	Description string `yaml:"description,omitempty"`
	// Context is task (the default), history or summary.
	Context string `yaml:"context,omitempty"`
	// State names metadata keys of the parent run passed to the child.
	State []string             `yaml:"state,omitempty"`
	Extra map[string]yaml.Node `yaml:",inline"`
}

// UnmarshalYAML accepts "researcher" as short for {agent: researcher}.
func (s *SubAgent) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&s.Agent)
	}
	type plain SubAgent
	return n.Decode((*plain)(s))
}

// Handoff is one entry of agents.X.handoffs: an agent name, or a mapping
// with a description that tells the model when to hand over.
type Handoff struct {
	Agent       string               `yaml:"agent"`
	Description string               `yaml:"description,omitempty"`
	Extra       map[string]yaml.Node `yaml:",inline"`
}

// UnmarshalYAML accepts "billing" as short for {agent: billing}.
func (h *Handoff) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&h.Agent)
	}
	type plain Handoff
	return n.Decode((*plain)(h))
}

// Server configures myriad serve.
type Server struct {
	Listen string `yaml:"listen,omitempty"`
	// APITokenEnv names the variable holding the bearer token clients must send.
	APITokenEnv string `yaml:"api_token_env,omitempty"`
	// Workers is the number of runs one node executes at once.
	Workers int `yaml:"workers,omitempty"`
	// MaxBodyBytes limits request bodies.
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty"`
	// MaxDepth bounds how deep trees of child runs grow (default 5).
	MaxDepth int `yaml:"max_depth,omitempty"`
	// PublicURL is the base URL clients reach the API at, written into A2A
	// agent cards (default: the Host of each request).
	PublicURL string `yaml:"public_url,omitempty"`
	// A2A says which agents are published over A2A.
	A2A A2AServer `yaml:"a2a,omitempty"`
	// Cluster makes the embedded NATS server join other Myriad nodes.
	Cluster *Cluster `yaml:"cluster,omitempty"`
	// Replicas is how many copies streams and buckets keep on a cluster
	// (default 3 when it has three nodes or more).
	Replicas int `yaml:"replicas,omitempty"`
	// MaxBacklog is how many runs may wait on the work queue before new
	// submissions are refused with 429 (0: no limit).
	MaxBacklog int `yaml:"max_backlog,omitempty"`
	// Retention is how long ended runs are kept (0: forever).
	Retention Duration `yaml:"retention,omitempty"`
	// InstanceCacheMB bounds the instance snapshots one node keeps in
	// memory, in MiB (default 64; -1: none).
	InstanceCacheMB int `yaml:"instance_cache_mb,omitempty"`
	// Extra collects unknown fields, so Validate can name them.
	Extra map[string]yaml.Node `yaml:",inline"`
}

// Defaults.
const (
	DefaultListen       = "127.0.0.1:8420"
	DefaultMaxTurns     = 10
	DefaultRunTimeout   = 10 * time.Minute
	DefaultToolTimeout  = 30 * time.Second
	DefaultWorkers      = 256
	DefaultMaxBodyBytes = 1 << 20
	// MaxBodyBytesLimit bounds server.max_body_bytes.
	MaxBodyBytesLimit = 2 << 20
)

// Duration is a time.Duration written as "30s" or "5m".
type Duration time.Duration

// UnmarshalYAML accepts Go duration strings.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q (write it like 30s, 5m, 1h or 7d)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// parseDuration is time.ParseDuration with days too ("7d", "1d12h"): a
// day is 24 hours.
func parseDuration(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 16)
	if err != nil {
		return 0, err
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		d += r
	}
	return d, nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// FieldError is a problem with one field of the file.
type FieldError struct {
	Path string // e.g. agents.triage.model
	Msg  string // what is wrong and how to fix it
}

// Error cuts long words: a name of a megabyte is not echoed whole.
func (e *FieldError) Error() string { return run.CutWords(e.Path) + ": " + run.CutWords(e.Msg) }

// Errors is every problem found in a file.
type Errors []*FieldError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Default returns an empty configuration with defaults applied.
func Default() *Config {
	c := &Config{Models: map[string]*Model{}, Tools: map[string]*Tool{}, Agents: map[string]*Agent{}}
	c.applyDefaults()
	return c
}

// Load reads, parses and validates a file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w (pass the path of a myriad.yaml with --config)", err)
	}
	c, err := Parse(data)
	var fieldErrs Errors
	if errors.As(err, &fieldErrs) {
		return nil, fmt.Errorf("%s:\n%w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Dir = filepath.Dir(path)
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s:\n%w", path, err)
	}
	return c, nil
}

// envRef is ${NAME} or ${NAME:-default}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// ExpandEnv replaces ${NAME} and ${NAME:-default} with environment values, so
// one file serves several setups (model: ${MYRIAD_MODEL:-local}). Secrets
// still belong in api_key_env, which is read at start and never expanded
// into the configuration.
func ExpandEnv(data []byte) []byte {
	return envRef.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := envRef.FindSubmatch(m)
		if v, ok := os.LookupEnv(string(sub[1])); ok && v != "" {
			return []byte(v)
		}
		return sub[2]
	})
}

// Parse decodes a file strictly and applies defaults. It does not validate.
// ${NAME} references are expanded first (see ExpandEnv).
func Parse(data []byte) (*Config, error) {
	data = ExpandEnv(data)
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty: it needs at least models and agents sections")
		}
		return nil, explainYAML(data, err)
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil {
		if fe := fraction(&doc, reflect.TypeFor[Config](), ""); fe != nil {
			return nil, Errors{fe}
		}
	}
	c.applyDefaults()
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.Models == nil {
		c.Models = map[string]*Model{}
	}
	if c.Tools == nil {
		c.Tools = map[string]*Tool{}
	}
	if c.Agents == nil {
		c.Agents = map[string]*Agent{}
	}
	for _, a := range c.Agents {
		if a == nil {
			continue
		}
		if a.MaxTurns == 0 {
			a.MaxTurns = DefaultMaxTurns
		}
		if a.Timeout == 0 {
			a.Timeout = Duration(DefaultRunTimeout)
		}
	}
	for _, t := range c.Tools {
		if t != nil && t.Timeout == 0 {
			t.Timeout = Duration(DefaultToolTimeout)
		}
	}
	for _, a := range c.A2AAgents {
		if a != nil && a.Timeout == 0 {
			a.Timeout = DefaultA2ATimeout
		}
	}
	if c.Server.Listen == "" {
		c.Server.Listen = DefaultListen
	}
	if c.Server.Workers == 0 {
		c.Server.Workers = DefaultWorkers
	}
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = DefaultMaxBodyBytes
	}
}

var namePattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,63}$`)

// BuiltinTools are the tool names every agent may list without defining them.
var BuiltinTools = []string{"ask_agent", "broadcast_message", "current_time", "send_message"}

// Validate checks the whole file and returns every problem as Errors.
func (c *Config) Validate() error {
	var errs Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	for _, k := range sortedKeys(c.Extra) {
		add(k, "unknown section (known: %s)", strings.Join(yamlFields(*c), ", "))
	}
	unknownFields(add, "server", c.Server.Extra, c.Server)
	if len(c.Agents) == 0 {
		add("agents", "no agents defined: add at least one under agents:")
	}
	for _, name := range sortedKeys(c.Models) {
		m, p := c.Models[name], "models."+name
		if !namePattern.MatchString(name) {
			add(p, "invalid name: use letters, digits, '_' or '-', starting with a letter")
		}
		if m == nil {
			add(p, "empty model: set provider (openai, anthropic or scripted)")
			continue
		}
		unknownFields(add, p, m.Extra, *m)
		checkPrices(add, p, m.Prices)
		switch m.Provider {
		case ProviderOpenAI, ProviderAnthropic:
			if m.Model == "" {
				add(p+".model", "missing: name the provider's model id, e.g. model: gpt-4o-mini")
			}
			if m.BaseURL != "" {
				if u, err := url.Parse(m.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					add(p+".base_url", "invalid URL %q: write it like https://api.openai.com/v1", redact.URL(m.BaseURL))
				}
			}
			if m.APIKeyEnv != "" {
				if msg := checkEnvName(m.APIKeyEnv); msg != "" {
					add(p+".api_key_env", "%s", msg)
				}
			}
			if len(m.Rules) > 0 || m.RulesFile != "" {
				add(p+".rules", "rules are for provider: scripted only")
			}
		case ProviderScripted:
			if len(m.Rules) == 0 && m.RulesFile == "" {
				add(p+".rules", "a scripted model needs rules (or rules_file)")
			}
			if len(m.Rules) > 0 && m.RulesFile != "" {
				add(p+".rules_file", "set rules or rules_file, not both")
			}
			if len(m.Rules) > 0 {
				if _, err := scripted.New(m.Rules); err != nil {
					add(p+".rules", "%v", err)
				}
			}
			if m.RulesFile != "" {
				if _, err := scripted.LoadRules(c.Path(m.RulesFile)); err != nil {
					add(p+".rules_file", "%v", err)
				}
			}
		case "":
			add(p+".provider", "missing: choose openai, anthropic or scripted")
		default:
			add(p+".provider", "unknown provider %q (known: openai, anthropic, scripted)", m.Provider)
		}
		if m.MaxRetries < -1 {
			add(p+".max_retries", "must be -1 (no retries), 0 (default 3) or more")
		}
		if m.Timeout < 0 {
			add(p+".timeout", "must be positive (or left out for no per-call limit)")
		}
		if m.MaxTokens < 0 {
			add(p+".max_tokens", "must be positive")
		}
	}
	for _, name := range sortedKeys(c.Tools) {
		t, p := c.Tools[name], "tools."+name
		if err := tool.CheckName(name); err != nil {
			add(p, "%v", err)
		}
		if t == nil {
			add(p, "empty tool: set type: http")
			continue
		}
		unknownFields(add, p, t.Extra, *t)
		if !money(t.Price) {
			add(p+".price", "must be a number of 0 or more (US dollars per call)")
		}
		switch t.Type {
		case ToolHTTP:
			if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(p+".url", "invalid URL %q: an http tool needs url: http(s)://host/path", redact.URL(t.URL))
			}
		case "":
			add(p+".type", "missing: set type: http")
		default:
			add(p+".type", "unknown tool type %q (known: http)", t.Type)
		}
		if t.Description == "" {
			add(p+".description", "missing: models choose tools by their description")
		}
		if t.Parameters != nil {
			raw, _ := json.Marshal(t.Parameters)
			if _, err := tool.CompileSchema(raw); err != nil {
				add(p+".parameters", "%v", err)
			}
		}
		for h, env := range t.HeaderEnv {
			if msg := checkEnvName(env); msg != "" {
				add(p+".header_env."+h, "%s", msg)
			}
		}
		if t.Timeout < 0 {
			add(p+".timeout", "must be positive")
		}
		validateApproval(add, p+".approval", t.Approval)
	}
	known := c.toolNames()
	for _, name := range sortedKeys(c.Agents) {
		a, p := c.Agents[name], "agents."+name
		if !namePattern.MatchString(name) {
			add(p, "invalid name: use letters, digits, '_' or '-', starting with a letter")
		}
		if a == nil {
			add(p, "empty agent: set at least model")
			continue
		}
		unknownFields(add, p, a.Extra, *a)
		if a.Model == "" {
			add(p+".model", "missing (known models: %s)", list(sortedKeys(c.Models)))
		} else if _, ok := c.Models[a.Model]; !ok {
			add(p+".model", "unknown model %q (known: %s)", a.Model, list(sortedKeys(c.Models)))
		}
		seen := map[string]bool{}
		for i, tn := range a.Tools {
			if seen[tn] {
				add(fmt.Sprintf("%s.tools[%d]", p, i), "tool %q listed twice", tn)
			}
			seen[tn] = true
			if _, _, isMCP := MCPToolRef(tn); isMCP {
				if msg := c.checkMCPToolRef(tn); msg != "" {
					add(fmt.Sprintf("%s.tools[%d]", p, i), "%s", msg)
				}
				continue
			}
			if !known[tn] {
				add(fmt.Sprintf("%s.tools[%d]", p, i), "unknown tool %q (known: %s)", tn, list(sortedSet(known)))
			}
		}
		if a.MaxTurns < 0 {
			add(p+".max_turns", "must not be negative (leave it out for the default of %d)", DefaultMaxTurns)
		}
		switch a.ConcurrentInput {
		case "", "queue", "reject", "interrupt":
		default:
			add(p+".concurrent_input", "unknown value %q (known: queue, reject, interrupt)", a.ConcurrentInput)
		}
		if a.HistoryLimit < 0 {
			add(p+".history_limit", "must be positive (or left out for the default of 200 messages)")
		}
		if a.TokenBudget < 0 {
			add(p+".token_budget", "must be 0 (no limit) or positive")
		}
		if !money(a.CostBudget) {
			add(p+".cost_budget", "must be 0 (no limit) or positive (US dollars)")
		} else if m := c.Models[a.Model]; a.CostBudget > 0 && m != nil && len(m.Prices) == 0 {
			add(p+".cost_budget", "model %s has no prices, so nothing this agent does costs anything: give models.%s.prices", a.Model, a.Model)
		}
		if a.Timeout < 0 {
			add(p+".timeout", "must be positive")
		}
		if a.OutputSchema != nil {
			raw, _ := json.Marshal(a.OutputSchema)
			if _, err := tool.CompileSchema(raw); err != nil {
				add(p+".output_schema", "%v", err)
			}
		}
		c.validateTeam(add, name, a)
		c.validateMCPContext(add, name, a)
	}
	if c.Server.APITokenEnv != "" {
		if msg := checkEnvName(c.Server.APITokenEnv); msg != "" {
			add("server.api_token_env", "%s", msg)
		}
	}
	if c.Server.MaxBodyBytes < 0 || c.Server.MaxBodyBytes > MaxBodyBytesLimit {
		add("server.max_body_bytes", "must be between 1 and %d (a run's input must fit one NATS message with room to spare)", MaxBodyBytesLimit)
	}
	if c.Server.Workers < 0 {
		add("server.workers", "must be positive")
	}
	if c.Server.InstanceCacheMB < -1 {
		add("server.instance_cache_mb", "must be positive, or -1 for no cache (left out: 64)")
	}
	if c.Server.MaxBacklog < 0 {
		add("server.max_backlog", "must be positive (or left out for no limit)")
	}
	if r := c.Server.Retention.Std(); r != 0 && r < time.Minute {
		add("server.retention", "must be a minute or more (or left out to keep runs forever)")
	}
	c.validateFlows(add)
	c.validateBudgets(add)
	c.validateCluster(add)
	c.validateA2A(add)
	c.validateMCP(add)
	if c.Server.MaxDepth < 0 {
		add("server.max_depth", "must be positive (or left out for the default of 5)")
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkEnvName explains what is wrong with a field that must name an
// environment variable. It never repeats the value: a value that is not a
// variable name is often the secret itself, pasted by mistake.
func checkEnvName(v string) string {
	if looksLikeSecret(v) {
		return "this looks like a key, not the name of an environment variable: remove it from the file (and rotate it), export it, and write the variable's name here, e.g. OPENAI_API_KEY"
	}
	if !envName.MatchString(v) {
		return "must be the name of an environment variable (letters, digits and '_', e.g. OPENAI_API_KEY); the file holds the variable's name, never the secret"
	}
	return ""
}

// looksLikeSecret spots API keys by their usual prefixes, or by being long
// mixed-case strings with digits, which variable names rarely are.
func looksLikeSecret(v string) bool {
	for _, p := range []string{"sk-", "sk_", "ghp_", "gho_", "github_pat_", "hf_", "xox", "AKIA", "AIza", "glpat-"} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	var lower, digit bool
	for _, r := range v {
		lower = lower || unicode.IsLower(r)
		digit = digit || unicode.IsDigit(r)
	}
	return len(v) >= 20 && lower && digit
}

// unknownFields reports each field of extra as unknown, listing the fields
// the section does know.
func unknownFields(add func(path, format string, args ...any), path string, extra map[string]yaml.Node, section any) {
	for _, k := range sortedKeys(extra) {
		known := yamlFields(section)
		add(path+"."+k, "unknown field (known: %s)%s", strings.Join(known, ", "), didYouMean(k, known))
	}
}

// yamlFields lists the YAML names of a struct's fields.
func yamlFields(section any) []string {
	t := reflect.TypeOf(section)
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

func (c *Config) toolNames() map[string]bool {
	known := map[string]bool{}
	for n := range c.Tools {
		known[n] = true
	}
	for _, n := range BuiltinTools {
		known[n] = true
	}
	for n := range c.A2AAgents {
		known[n] = true
	}
	return known
}

// MessagingTools are the built-in tools that message agent instances: an
// agent's runs may call them, a flow's nodes may not (a flow is no
// instance and sends as no one).
var MessagingTools = []string{"ask_agent", "broadcast_message", "send_message"}

// flowToolNames are the tools a flow's node may call.
func (c *Config) flowToolNames() map[string]bool {
	known := c.toolNames()
	for _, n := range MessagingTools {
		delete(known, n)
	}
	return known
}

// AgentNames returns the agents in name order.
func (c *Config) AgentNames() []string { return sortedKeys(c.Agents) }

// Path resolves a path written in the file against the file's directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Dir == "" {
		return p
	}
	return filepath.Join(c.Dir, p)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedSet(m map[string]bool) []string { return sortedKeys(m) }

func list(names []string) string {
	if len(names) == 0 {
		return "none defined"
	}
	return strings.Join(names, ", ")
}

// ContextScopes are the values of agents.X.sub_agents[i].context.
var ContextScopes = []string{"task", "history", "summary"}

// validateTeam checks an agent's sub-agents and handoffs.
func (c *Config) validateTeam(add func(path, format string, args ...any), name string, a *Agent) {
	p := "agents." + name
	agents := list(c.AgentNames())
	toolSet := map[string]bool{}
	for _, tn := range a.Tools {
		toolSet[tn] = true
	}
	seen := map[string]bool{}
	for i, sa := range a.SubAgents {
		sp := fmt.Sprintf("%s.sub_agents[%d]", p, i)
		unknownFields(add, sp, sa.Extra, sa)
		switch {
		case sa.Agent == "":
			add(sp+".agent", "missing: name the agent to call (known: %s)", agents)
		case c.Agents[sa.Agent] == nil:
			add(sp, "unknown agent %q (known: %s)", sa.Agent, agents)
		case seen[sa.Agent]:
			add(sp, "agent %q listed twice", sa.Agent)
		case toolSet[sa.Agent]:
			add(sp, "%q is also one of this agent's tools: the model could not tell them apart", sa.Agent)
		}
		seen[sa.Agent] = true
		if sa.Context != "" && !slices.Contains(ContextScopes, sa.Context) {
			add(sp+".context", "unknown value %q (known: %s)", sa.Context, strings.Join(ContextScopes, ", "))
		}
	}
	seen = map[string]bool{}
	for i, h := range a.Handoffs {
		hp := fmt.Sprintf("%s.handoffs[%d]", p, i)
		unknownFields(add, hp, h.Extra, h)
		switch {
		case h.Agent == "":
			add(hp+".agent", "missing: name the agent to hand over to (known: %s)", agents)
		case c.Agents[h.Agent] == nil:
			add(hp, "unknown agent %q (known: %s)", h.Agent, agents)
		case h.Agent == name:
			add(hp, "an agent cannot hand the conversation to itself")
		case seen[h.Agent]:
			add(hp, "agent %q listed twice", h.Agent)
		}
		seen[h.Agent] = true
	}
	if a.MaxChildren < 0 {
		add(p+".max_children", "must be positive (or left out for the default of 100)")
	}
	if a.MaxConcurrent < 0 {
		add(p+".max_concurrent", "must be positive (or left out for no limit but server.workers)")
	}
	if r := a.Retention.Std(); r != 0 && r < time.Minute {
		add(p+".retention", "must be a minute or more (or left out for server.retention)")
	}
	if m := a.Messaging; m != nil {
		validateMessaging(add, p+".messaging", m, c)
	}
}

// validateMessaging checks agents.X.messaging: each entry of to is
// agent/key, agent/path/* or */path/*, naming a configured agent.
func validateMessaging(add func(path, format string, args ...any), p string, m *Messaging, c *Config) {
	unknownFields(add, p, m.Extra, *m)
	for i, to := range m.To {
		agentName, _, ok := strings.Cut(to, "/")
		switch {
		case !ok || agentName == "" || strings.HasSuffix(to, "/"):
			add(fmt.Sprintf("%s.to[%d]", p, i), "%q is not an address or pattern: write agent/key, agent/team/* or */team/*", to)
		case agentName != "*" && c.Agents[agentName] == nil:
			add(fmt.Sprintf("%s.to[%d]", p, i), "unknown agent %q (known: %s)", agentName, strings.Join(c.AgentNames(), ", "))
		}
	}
	if m.AskTimeout.Std() < 0 {
		add(p+".ask_timeout", "must be positive (or left out for 1m)")
	}
	if m.MaxBroadcast < 0 {
		add(p+".max_broadcast", "must be positive (or left out for 100)")
	}
}

// validateApproval checks an approval setting of a tool or remote agent.
func validateApproval(add func(path, format string, args ...any), p string, a *Approval) {
	if a == nil {
		return
	}
	unknownFields(add, p, a.Extra, *a)
	if a.Mode != "" && a.Mode != ApprovalRequired && a.Mode != "never" {
		add(p, "unknown value %q (known: required, never, or a mapping with when, timeout, on_timeout)", a.Mode)
	}
	if a.When != "" {
		if _, err := policy.Compile(a.When); err != nil {
			add(p+".when", "%v", err)
		}
	}
	if a.Timeout < 0 {
		add(p+".timeout", "must be positive")
	}
	if a.OnTimeout != "" && a.OnTimeout != "approve" && a.OnTimeout != "deny" {
		add(p+".on_timeout", "unknown value %q (known: approve, deny)", a.OnTimeout)
	}
	if a.OnTimeout != "" && a.Timeout == 0 {
		add(p+".on_timeout", "needs a timeout")
	}
}
