// Package flow runs declarative multi-agent workflows: graphs of nodes over
// a shared state.
//
// A flow is a set of nodes. A node does one thing — runs an agent (as a
// child run), calls a tool, calls a Go function, sleeps, or waits for a
// person's input — or nothing (a router or a join point). Its result goes
// into the flow's state under its output key, merged by that key's rule
// (replace, append, merge). Then its edges choose what runs next: next lists
// nodes that all run, in parallel; route lists conditions (CEL expressions
// over the state) of which the first that holds is taken. A node with a join
// waits for its predecessors: all of them, any one, or the first n. A node
// with map runs its action once per item of a list in the state, in
// parallel, and gathers the results in order: map-reduce.
//
//	flows:
//	  summarize:
//	    state:
//	      summaries: {merge: append}
//	    start: [split]
//	    nodes:
//	      split:   {map: state.docs, agent: summarizer, input: "{{.item}}", output: summaries, next: [combine]}
//	      combine: {agent: editor, input: "Combine: {{.state.summaries}}", output: report}
//	    output: report
//
// A flow run is as durable as an agent run: every node start and finish is
// journaled, child runs are parked on rather than waited for, and Resume
// folds the journal to carry on where the run stopped.
package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/myriad-ai/myriad/tool"
)

// Merge is how a node's output is merged into a state key.
type Merge string

// Merge rules.
const (
	// Replace sets the key to the output (the default).
	Replace Merge = "replace"
	// Append adds the output to the key's list; a list output adds each item.
	Append Merge = "append"
	// MergeMap merges an object output into the key's object, key by key.
	MergeMap Merge = "merge"
)

// Merges lists the merge rules, for validation and docs.
var Merges = []Merge{Replace, Append, MergeMap}

// Key declares one key of a flow's state.
type Key struct {
	Merge   Merge
	Initial any
}

// Flow is a flow definition.
type Flow struct {
	Name        string
	Description string
	// State declares keys with their merge rule and initial value; keys not
	// declared are replaced.
	State map[string]Key
	// Start names the nodes that run first, in parallel.
	Start []string
	Nodes map[string]*Node
	// Output names the state key whose value is the run's output; by default
	// the output is the whole state.
	Output string
	// MaxSteps bounds the node runs of one flow run (default 1000).
	MaxSteps int
	// Timeout bounds a run's wall time (0: none).
	Timeout time.Duration
	// Tools are the tools tool nodes may call, by name.
	Tools map[string]tool.Tool
	// ToolPrice, when set, says what one call of a tool costs in US
	// dollars; a tool node's cost is journaled with its end.
	ToolPrice func(tool string) float64

	preds map[string][]string // join node → nodes with an edge into it
	// upstream[join][pred] holds pred and every node that reaches it
	// without passing through join: where a late branch toward the join
	// could still be.
	upstream map[string]map[string]map[string]bool
}

// Node is one step of a flow.
type Node struct {
	// At most one action.
	Agent string
	Tool  string
	Func  Func
	// Sleep waits this long; Until waits until the time a CEL expression
	// gives (a timestamp, or an RFC 3339 string).
	Sleep time.Duration
	Until string
	// Ask waits for a person's input.
	Ask *Ask

	// Input is the agent's task, a text/template over .state, .input, .item
	// and .index.
	Input string
	// Args is a CEL expression giving the tool's arguments (a map).
	Args string
	// Map is a CEL expression giving a list: the action runs once per item,
	// in parallel, and the output is the list of results in item order.
	Map string
	// Output is the state key the result goes to (none: discarded).
	Output string
	// OnError "continue" records a failed action's error as its result
	// ({"error": "..."}) instead of failing the flow.
	OnError string

	// Next lists nodes that all run after this one.
	Next []string
	// Route lists conditional edges: the first that holds is taken.
	Route []Edge
	// Join makes the node wait for its predecessors: "all", "any" or
	// "first-N". Without it, every arrival runs the node.
	Join string
	// MaxVisits bounds how often the node runs in one flow run (default 25):
	// loops end.
	MaxVisits int

	name  string
	join  joinRule
	input *template.Template
	args  cel.Program
	items cel.Program
	until cel.Program
	route []compiledEdge
	ask   *template.Template
}

// Edge is a conditional edge.
type Edge struct {
	// When is a CEL expression over state, input and output; empty holds.
	When string
	To   string
}

// Ask is what a node that waits for input asks.
type Ask struct {
	// Prompt is shown to the person (a text/template like Input).
	Prompt string
	// Schema, when set, is the JSON Schema the answer must match.
	Schema json.RawMessage
	// Timeout, when set, answers with Default if nobody has by then.
	Timeout time.Duration
	Default any

	schema *tool.Schema
}

// Func is a node implemented in Go. It may run again if the node is
// interrupted, so it should be safe to repeat.
type Func func(ctx context.Context, in FuncInput) (any, error)

// FuncInput is what a Func is given.
type FuncInput struct {
	State map[string]any
	Input string
	// Item and Index are set for each item of a map node.
	Item  any
	Index int
}

type compiledEdge struct {
	when cel.Program
	to   string
}

type joinRule struct {
	mode string // "", all, any, first
	n    int
}

// Defaults.
const (
	DefaultMaxSteps  = 1000
	DefaultMaxVisits = 25
	// OnErrorContinue is the Node.OnError value that keeps a flow going.
	OnErrorContinue = "continue"
)

// Error is a problem with one field of a flow definition.
type Error struct {
	Flow string
	// Path is the field within the flow: "nodes.split.map".
	Path string
	Msg  string
}

func (e *Error) Error() string { return "flow " + e.Flow + ": " + e.Path + ": " + e.Msg }

// Init checks the definition and compiles its expressions. It reports
// every problem it finds, joined (errors.Join); each is an *Error, naming
// the field. agents reports whether an agent exists; tool nodes must name
// a key of Tools.
func (f *Flow) Init(agents func(string) bool) error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &Error{Flow: f.Name, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if f.MaxSteps <= 0 {
		f.MaxSteps = DefaultMaxSteps
	}
	if len(f.Nodes) == 0 {
		bad("nodes", "no nodes: a flow needs at least one")
		return errors.Join(errs...)
	}
	if len(f.Start) == 0 {
		bad("start", "name the node(s) to run first (nodes: %s)", f.nodeList())
	}
	for _, s := range f.Start {
		if f.Nodes[s] == nil {
			bad("start", "unknown node %q (nodes: %s)", s, f.nodeList())
		}
	}
	for _, k := range slices.Sorted(maps.Keys(f.State)) {
		switch merge := f.State[k].Merge; merge {
		case "", Replace, Append, MergeMap:
		default:
			bad("state."+k+".merge", "unknown rule %q (known: replace, append, merge)", merge)
		}
	}
	if f.Output != "" {
		written := map[string]bool{"input": true}
		for k := range f.State {
			written[k] = true
		}
		for _, n := range f.Nodes {
			if n != nil && n.Output != "" {
				written[n.Output] = true
			}
		}
		if !written[f.Output] {
			bad("output", "no node writes %q and the state does not declare it (keys: %s)", f.Output, strings.Join(slices.Sorted(maps.Keys(written)), ", "))
		}
	}
	f.preds = map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(f.Nodes)) {
		n := f.Nodes[name]
		if n == nil {
			bad("nodes."+name, "empty node")
			continue
		}
		n.name = name
		if err := f.initNode(n, agents); err != nil {
			field, msg, _ := strings.Cut(err.Error(), ": ")
			bad("nodes."+name+"."+field, "%s", msg)
			continue
		}
		for _, to := range n.targets() {
			f.preds[to] = appendUnique(f.preds[to], name)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // the joins below need every node's edges
	}
	f.upstream = map[string]map[string]map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(f.Nodes)) {
		n := f.Nodes[name]
		if n.join.mode == "" {
			continue
		}
		if len(f.preds[name]) == 0 {
			bad("nodes."+name+".join", "no node has an edge to it, so it would never run")
			continue
		}
		if n.join.mode == "first" && n.join.n > len(f.preds[name]) {
			bad("nodes."+name+".join", "%s waits for more arrivals than the %d node(s) with an edge to it (%s) may give in one pass",
				n.Join, len(f.preds[name]), strings.Join(f.preds[name], ", "))
			continue
		}
		f.upstream[name] = map[string]map[string]bool{}
		for _, p := range f.preds[name] {
			f.upstream[name][p] = f.reaching(p, name)
		}
	}
	return errors.Join(errs...)
}

// reaching returns target and the nodes from which it can be reached
// without passing through avoid.
func (f *Flow) reaching(target, avoid string) map[string]bool {
	into := map[string][]string{}
	for name, n := range f.Nodes {
		for _, to := range n.targets() {
			into[to] = append(into[to], name)
		}
	}
	seen := map[string]bool{target: true}
	queue := []string{target}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, from := range into[cur] {
			if from != avoid && !seen[from] {
				seen[from] = true
				queue = append(queue, from)
			}
		}
	}
	return seen
}

func (f *Flow) initNode(n *Node, agents func(string) bool) error {
	actions := 0
	for _, set := range []bool{n.Agent != "", n.Tool != "", n.Func != nil, n.Sleep > 0 || n.Until != "", n.Ask != nil} {
		if set {
			actions++
		}
	}
	if actions > 1 {
		return fmt.Errorf("agent: a node does one thing: set only one of agent, tool, sleep/until, ask (or func in Go)")
	}
	if n.Sleep < 0 {
		return fmt.Errorf("sleep: must be positive")
	}
	if n.Ask != nil && n.Ask.Timeout < 0 {
		return fmt.Errorf("ask: timeout must be positive")
	}
	if n.Agent != "" && agents != nil && !agents(n.Agent) {
		return fmt.Errorf("agent: unknown agent %q", n.Agent)
	}
	if _, ok := f.Tools[n.Tool]; n.Tool != "" && !ok {
		return fmt.Errorf("tool: unknown tool %q", n.Tool)
	}
	var err error
	if n.Input != "" {
		if n.Agent == "" {
			return fmt.Errorf("input: only agent nodes take an input (tools take args)")
		}
		if n.input, err = parseTemplate(n.Input); err != nil {
			return fmt.Errorf("input: %w", err)
		}
	}
	if n.Args != "" {
		if n.Tool == "" {
			return fmt.Errorf("args: only tool nodes take args")
		}
		if n.args, err = compile(n.Args); err != nil {
			return fmt.Errorf("args: %w", err)
		}
	}
	if n.Map != "" {
		if n.Agent == "" && n.Tool == "" && n.Func == nil {
			return fmt.Errorf("map: a map node needs an agent, tool or func to run per item")
		}
		if n.items, err = compile(n.Map); err != nil {
			return fmt.Errorf("map: %w", err)
		}
	}
	if n.Until != "" {
		if n.until, err = compile(n.Until); err != nil {
			return fmt.Errorf("until: %w", err)
		}
	}
	if n.Ask != nil {
		if n.ask, err = parseTemplate(n.Ask.Prompt); err != nil {
			return fmt.Errorf("ask.prompt: %w", err)
		}
		if len(n.Ask.Schema) > 0 {
			if n.Ask.schema, err = tool.CompileSchema(n.Ask.Schema); err != nil {
				return fmt.Errorf("ask.schema: %w", err)
			}
		}
	}
	switch n.OnError {
	case "", OnErrorContinue, "fail":
	default:
		return fmt.Errorf("on_error: unknown value %q (known: fail, continue)", n.OnError)
	}
	if len(n.Next) > 0 && len(n.Route) > 0 {
		return fmt.Errorf("next: set next (all run) or route (the first that holds runs), not both")
	}
	for i, to := range n.Next {
		if f.Nodes[to] == nil {
			return fmt.Errorf("next[%d]: unknown node %q (nodes: %s)", i, to, f.nodeList())
		}
	}
	for i, e := range n.Route {
		if f.Nodes[e.To] == nil {
			return fmt.Errorf("route[%d].to: unknown node %q (nodes: %s)", i, e.To, f.nodeList())
		}
		ce := compiledEdge{to: e.To}
		if e.When != "" {
			if ce.when, err = compile(e.When); err != nil {
				return fmt.Errorf("route[%d].when: %w", i, err)
			}
		}
		n.route = append(n.route, ce)
	}
	if n.join, err = parseJoin(n.Join); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if n.MaxVisits <= 0 {
		n.MaxVisits = DefaultMaxVisits
	}
	return nil
}

func (n *Node) targets() []string {
	if len(n.Next) > 0 {
		return n.Next
	}
	out := make([]string, 0, len(n.Route))
	for _, e := range n.Route {
		out = append(out, e.To)
	}
	return out
}

func parseJoin(s string) (joinRule, error) {
	switch {
	case s == "":
		return joinRule{}, nil
	case s == "all" || s == "any":
		return joinRule{mode: s}, nil
	case strings.HasPrefix(s, "first-"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "first-"))
		if err != nil || n < 1 {
			return joinRule{}, fmt.Errorf("%q: write first-N with N ≥ 1, e.g. first-2", s)
		}
		return joinRule{mode: "first", n: n}, nil
	}
	return joinRule{}, fmt.Errorf("unknown join %q (known: all, any, first-N)", s)
}

func (f *Flow) nodeList() string { return strings.Join(slices.Sorted(maps.Keys(f.Nodes)), ", ") }

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func parseTemplate(text string) (*template.Template, error) {
	return template.New("").Option("missingkey=error").Funcs(template.FuncMap{"json": toJSON}).Parse(text)
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
