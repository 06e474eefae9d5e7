package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/tool"
)

// Flow is a flow definition: a graph of nodes over a shared state.
type Flow struct {
	Description string `yaml:"description,omitempty"`
	// State declares keys: their merge rule and initial value.
	State map[string]*FlowKey `yaml:"state,omitempty"`
	// Start names the node(s) that run first.
	Start StringList           `yaml:"start"`
	Nodes map[string]*FlowNode `yaml:"nodes"`
	// Output names the state key that is the run's output.
	Output   string               `yaml:"output,omitempty"`
	MaxSteps int                  `yaml:"max_steps,omitempty"`
	Timeout  Duration             `yaml:"timeout,omitempty"`
	Extra    map[string]yaml.Node `yaml:",inline"`
}

// FlowKey declares one state key.
type FlowKey struct {
	Merge   string               `yaml:"merge,omitempty"`
	Initial any                  `yaml:"initial,omitempty"`
	Extra   map[string]yaml.Node `yaml:",inline"`
}

// FlowNode is one node of a flow.
type FlowNode struct {
	Agent     string               `yaml:"agent,omitempty"`
	Tool      string               `yaml:"tool,omitempty"`
	Sleep     Duration             `yaml:"sleep,omitempty"`
	Until     string               `yaml:"until,omitempty"`
	Ask       *FlowAsk             `yaml:"ask,omitempty"`
	Input     string               `yaml:"input,omitempty"`
	Args      string               `yaml:"args,omitempty"`
	Map       string               `yaml:"map,omitempty"`
	Output    string               `yaml:"output,omitempty"`
	OnError   string               `yaml:"on_error,omitempty"`
	Next      StringList           `yaml:"next,omitempty"`
	Route     []FlowEdge           `yaml:"route,omitempty"`
	Join      string               `yaml:"join,omitempty"`
	MaxVisits int                  `yaml:"max_visits,omitempty"`
	Extra     map[string]yaml.Node `yaml:",inline"`
}

// FlowAsk is what a node that waits for a person asks.
type FlowAsk struct {
	Prompt string         `yaml:"prompt"`
	Schema map[string]any `yaml:"schema,omitempty"`
	// Timeout answers with Default when nobody has by then.
	Timeout Duration             `yaml:"timeout,omitempty"`
	Default any                  `yaml:"default,omitempty"`
	Extra   map[string]yaml.Node `yaml:",inline"`
}

// FlowEdge is a conditional edge.
type FlowEdge struct {
	When  string               `yaml:"when,omitempty"`
	To    string               `yaml:"to"`
	Extra map[string]yaml.Node `yaml:",inline"`
}

// StringList is a list of strings that may be written as one string.
type StringList []string

// UnmarshalYAML accepts "a" as short for [a].
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = StringList{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*l = list
	return nil
}

// Schedule starts runs on a cron expression.
type Schedule struct {
	// Cron is a cron expression: five fields (minute hour day month
	// weekday), six with seconds first, @hourly/@daily/..., or @every 1h.
	Cron string `yaml:"cron"`
	// TimeZone is an IANA zone for cron fields ("Europe/Paris"; default UTC).
	TimeZone string `yaml:"time_zone,omitempty"`
	// Agent or Flow is what runs, with Input (and a flow's initial State).
	Agent string               `yaml:"agent,omitempty"`
	Flow  string               `yaml:"flow,omitempty"`
	Input string               `yaml:"input"`
	State map[string]any       `yaml:"state,omitempty"`
	Extra map[string]yaml.Node `yaml:",inline"`
}

// Definition builds the flow a configured flow describes, with the tools
// its tool nodes call (a name with a nil tool is enough to validate).
func (f *Flow) Definition(name string, tools map[string]tool.Tool) *flow.Flow {
	def := &flow.Flow{Name: name, Description: f.Description, Start: f.Start, Output: f.Output,
		MaxSteps: f.MaxSteps, Timeout: f.Timeout.Std(), Tools: tools,
		State: map[string]flow.Key{}, Nodes: map[string]*flow.Node{}}
	for k, key := range f.State {
		if key != nil {
			def.State[k] = flow.Key{Merge: flow.Merge(key.Merge), Initial: key.Initial}
		}
	}
	for n, node := range f.Nodes {
		if node == nil {
			def.Nodes[n] = nil
			continue
		}
		fn := &flow.Node{Agent: node.Agent, Tool: node.Tool, Sleep: node.Sleep.Std(), Until: node.Until,
			Input: node.Input, Args: node.Args, Map: node.Map, Output: node.Output, OnError: node.OnError,
			Next: node.Next, Join: node.Join, MaxVisits: node.MaxVisits}
		if node.Ask != nil {
			fn.Ask = &flow.Ask{Prompt: node.Ask.Prompt, Timeout: node.Ask.Timeout.Std(), Default: node.Ask.Default}
			if node.Ask.Schema != nil {
				fn.Ask.Schema, _ = json.Marshal(node.Ask.Schema)
			}
		}
		for _, e := range node.Route {
			fn.Route = append(fn.Route, flow.Edge{When: e.When, To: e.To})
		}
		def.Nodes[n] = fn
	}
	return def
}

// validateFlows checks flows and schedules.
func (c *Config) validateFlows(add func(path, format string, args ...any)) {
	tools := map[string]tool.Tool{}
	for n := range c.flowToolNames() {
		tools[n] = nil
	}
	for _, name := range sortedKeys(c.Flows) {
		f, p := c.Flows[name], "flows."+name
		if !namePattern.MatchString(name) {
			add(p, "invalid name: use letters, digits, '_' or '-', starting with a letter")
		}
		if _, clash := c.Agents[name]; clash {
			add(p, "an agent has the same name; rename one (runs name one or the other)")
		}
		if f == nil {
			add(p, "empty flow: set start and nodes")
			continue
		}
		unknownFields(add, p, f.Extra, *f)
		for k, key := range f.State {
			if key != nil {
				unknownFields(add, p+".state."+k, key.Extra, *key)
			}
		}
		for _, n := range sortedKeys(f.Nodes) {
			node := f.Nodes[n]
			if node == nil {
				continue
			}
			np := p + ".nodes." + n
			unknownFields(add, np, node.Extra, *node)
			if node.Ask != nil {
				unknownFields(add, np+".ask", node.Ask.Extra, *node.Ask)
			}
			for i, e := range node.Route {
				unknownFields(add, fmt.Sprintf("%s.route[%d]", np, i), e.Extra, e)
			}
			if tc := c.Tools[node.Tool]; tc != nil && tc.Approval.Required() {
				add(np+".tool", "tool %s needs approval, and flow nodes call tools directly: put an ask node before it, or call it from an agent", node.Tool)
			}
		}
		err := f.Definition(name, tools).Init(func(a string) bool { return c.Agents[a] != nil })
		for _, err := range joined(err) {
			var fe *flow.Error
			if !errors.As(err, &fe) {
				add(p, "%v", err)
				continue
			}
			msg := fe.Msg
			if strings.HasPrefix(fe.Path, "nodes.") && strings.HasSuffix(fe.Path, ".agent") && strings.HasPrefix(msg, "unknown agent") {
				msg += fmt.Sprintf(" (known: %s)", list(c.AgentNames()))
			}
			if strings.HasSuffix(fe.Path, ".tool") && strings.HasPrefix(msg, "unknown tool") {
				msg += fmt.Sprintf(" (known: %s)", list(sortedSet(c.flowToolNames())))
			}
			add(p+"."+fe.Path, "%s", msg)
		}
	}
	for _, name := range sortedKeys(c.Schedules) {
		s, p := c.Schedules[name], "schedules."+name
		if !namePattern.MatchString(name) {
			add(p, "invalid name: use letters, digits, '_' or '-', starting with a letter")
		}
		if s == nil {
			add(p, "empty schedule: set cron, agent (or flow) and input")
			continue
		}
		unknownFields(add, p, s.Extra, *s)
		if msg := checkCron(s.Cron); msg != "" {
			add(p+".cron", "%s", msg)
		}
		if s.TimeZone != "" {
			if _, err := time.LoadLocation(s.TimeZone); err != nil {
				add(p+".time_zone", "unknown time zone %q (use an IANA name like Europe/Paris)", s.TimeZone)
			} else if strings.HasPrefix(s.Cron, "@every") {
				add(p+".time_zone", "@every schedules take no time zone")
			}
		}
		switch {
		case s.Agent != "" && s.Flow != "":
			add(p, "set agent or flow, not both")
		case s.Agent != "":
			if c.Agents[s.Agent] == nil {
				add(p+".agent", "unknown agent %q (known: %s)", s.Agent, list(c.AgentNames()))
			}
			if s.State != nil {
				add(p+".state", "only flows take a state")
			}
		case s.Flow != "":
			if c.Flows[s.Flow] == nil {
				add(p+".flow", "unknown flow %q (known: %s)", s.Flow, list(sortedKeys(c.Flows)))
			}
		default:
			add(p, "set agent or flow: what the schedule runs")
		}
		if strings.TrimSpace(s.Input) == "" {
			add(p+".input", "missing: the message each run starts with")
		}
	}
}

// checkCron checks the shape of a cron expression; the NATS server, which
// fires schedules, has the last word when the node starts.
func checkCron(expr string) string {
	switch {
	case expr == "":
		return "missing: write a cron expression like \"0 3 * * *\" (03:00 daily), @hourly, or @every 10m"
	case strings.HasPrefix(expr, "@every "):
		d, err := time.ParseDuration(strings.TrimPrefix(expr, "@every "))
		if err != nil || d < time.Second {
			return fmt.Sprintf("%q: @every takes a duration of at least 1s, like @every 10m", expr)
		}
		return ""
	case strings.HasPrefix(expr, "@"):
		switch expr {
		case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
			return ""
		}
		return fmt.Sprintf("%q: unknown shorthand (known: @yearly, @monthly, @weekly, @daily, @hourly, @every <duration>)", expr)
	}
	if n := len(strings.Fields(expr)); n != 5 && n != 6 {
		return fmt.Sprintf("%q has %d fields; write 5 (minute hour day month weekday) or 6 (seconds first)", expr, n)
	}
	return ""
}

// CronPattern is a schedule's cron expression as the NATS server takes it:
// six fields, seconds first.
func (s *Schedule) CronPattern() string {
	if len(strings.Fields(s.Cron)) == 5 {
		return "0 " + s.Cron
	}
	return s.Cron
}

// joined is the errors err joins (errors.Join), or err alone.
func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
