package flow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/tool"
)

// Error codes a flow run can fail with.
const (
	CodeNodeFailed = "node_failed"
	CodeMaxSteps   = "max_steps_exceeded"
	CodeMaxVisits  = "max_visits_exceeded"
	CodeExpression = "expression_error"
	CodeJoin       = "join_incomplete"
	// MaxItems bounds the items of one map node.
	MaxItems = 10_000
)

// engine carries one Resume call.
type engine struct {
	f     *Flow
	r     *run
	j     agent.Journal
	env   agent.Env
	runID string
	mu    sync.Mutex
}

// Resume continues a flow run from its journal, like agent.Agent.Resume.
func (f *Flow) Resume(ctx context.Context, runID string, events []journal.Event, j agent.Journal, env agent.Env) (agent.Outcome, error) {
	r := newRun(f)
	if env.Lookup != nil {
		r.childOutput = func(agentName, text string) any {
			if a := env.Lookup(agentName); a != nil && a.OutputSchema != nil {
				if v, err := decodeJSON([]byte(extractJSON(text))); err == nil {
					return v
				}
			}
			return text
		}
	}
	for _, ev := range events {
		if err := r.apply(ev); err != nil {
			return agent.Stopped, err
		}
	}
	switch r.terminal {
	case journal.TypeRunCompleted:
		return agent.Completed, nil
	case journal.TypeRunCanceled:
		return agent.Canceled, nil
	case journal.TypeRunFailed:
		return agent.Failed, nil
	}
	if r.startTime.IsZero() {
		return agent.Stopped, errors.New("journal does not begin with run.started")
	}
	if r.inDoubt {
		return agent.InDoubt, nil
	}
	e := &engine{f: f, r: r, j: j, env: env, runID: runID}
	if r.failed != "" {
		// A node failed and the worker stopped before failing the run.
		return e.fail(ctx, CodeNodeFailed, r.failed)
	}
	if f.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, r.startTime.Add(f.Timeout), errTimeout)
		defer cancel()
	}
	return e.loop(ctx)
}

var errTimeout = errors.New("flow timeout")

// append journals an entry and folds it into the run.
func (e *engine) append(ctx context.Context, typ string, data any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev, err := e.j.Append(ctx, typ, data)
	if err != nil {
		return err
	}
	if e.env.OnEvent != nil {
		e.env.OnEvent(ev)
	}
	if err := e.r.apply(ev); err != nil {
		return fmt.Errorf("flow %s: %w", e.f.Name, err)
	}
	return nil
}

func (e *engine) fail(ctx context.Context, code, msg string) (agent.Outcome, error) {
	if err := e.append(context.WithoutCancel(ctx), journal.TypeRunFailed, journal.RunFailed{Code: code, Message: msg, Usage: e.r.usage}); err != nil {
		return agent.Stopped, err
	}
	return agent.Failed, nil
}

func (e *engine) interrupted(ctx context.Context) (agent.Outcome, error) {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, agent.ErrCanceled):
		if err := e.append(context.WithoutCancel(ctx), journal.TypeRunCanceled, journal.RunCanceled{Reason: agent.CancelReason(cause), Usage: e.r.usage}); err != nil {
			return agent.Stopped, err
		}
		return agent.Canceled, nil
	case errors.Is(cause, errTimeout):
		return e.fail(ctx, agent.CodeTimeout, fmt.Sprintf("the flow exceeded its timeout of %s (raise flows.%s.timeout)", e.f.Timeout, e.f.Name))
	}
	return agent.Stopped, cause
}

// failure is a reason to fail the run, as opposed to an error that stops
// this worker.
type failure struct{ code, msg string }

func (f *failure) Error() string { return f.msg }

func (e *engine) outcome(ctx context.Context, err error) (agent.Outcome, error) {
	var fl *failure
	if errors.As(err, &fl) {
		return e.fail(ctx, fl.code, fl.msg)
	}
	if ctx.Err() != nil {
		return e.interrupted(ctx)
	}
	return agent.Stopped, err
}

func (e *engine) loop(ctx context.Context) (agent.Outcome, error) {
	r := e.r
	for {
		if ctx.Err() != nil {
			return e.interrupted(ctx)
		}
		// Finish what is done: children all reported, timers due, answers in.
		progressed, out, err := e.finishDone(ctx)
		if out == nil && err == nil && len(r.ready) > 0 {
			out, err = e.startReady(ctx)
			progressed = true
		}
		switch {
		case out != nil:
			return *out, err
		case errors.Is(err, errInDoubt):
			return agent.InDoubt, nil
		case err != nil:
			return e.outcome(ctx, err)
		}
		if progressed {
			continue
		}
		if err := e.respawn(ctx); err != nil {
			return e.outcome(ctx, err)
		}
		got, err := e.takeInputs(ctx)
		if err != nil {
			return e.outcome(ctx, err)
		}
		if got {
			continue
		}
		if len(r.active) == 0 {
			return e.complete(ctx)
		}
		return e.park(ctx)
	}
}

var errInDoubt = errors.New("in doubt")

// finishDone finishes every active node whose work is over. out is set
// when the run ended (failed) in the process.
func (e *engine) finishDone(ctx context.Context) (progressed bool, out *agent.Outcome, err error) {
	r := e.r
	now := time.Now()
	for _, key := range append([]string(nil), r.order...) {
		a := r.active[key]
		if a == nil {
			continue
		}
		var result any
		var errMsg string
		switch {
		case len(a.children) > 0:
			if a.reported < len(a.children) {
				continue
			}
			result, errMsg = gather(a)
		case a.node.Ask != nil:
			if !a.answered && !a.asked {
				if err := e.ask(ctx, a); err != nil {
					return false, nil, err
				}
			}
			if !a.answered && !a.until.IsZero() && !now.Before(a.until) {
				// The deadline passed. An answer that came while this
				// worker ran wins over the default; otherwise the default
				// applies.
				if _, err := e.takeInputs(ctx); err != nil {
					return false, nil, err
				}
				if !a.answered {
					in := journal.InputReceived{Key: a.key, ByDefault: true}
					in.Value, _ = json.Marshal(a.node.Ask.Default)
					if err := e.append(ctx, journal.TypeInputReceived, in); err != nil {
						return false, nil, err
					}
				}
			}
			if !a.answered {
				continue
			}
			result, err = decodeJSON(a.answer)
			if err != nil {
				return false, nil, err
			}
		case !a.until.IsZero():
			if now.Before(a.until) {
				continue
			}
		case a.node.Agent != "":
			// An agent node without children mapped over no items.
			result = []any{}
		default:
			// Started and never finished: interrupted synchronous work.
			res, msg, err := e.rerun(ctx, a)
			if err != nil {
				return false, nil, err
			}
			result, errMsg = res, msg
		}
		o, err := e.finish(ctx, a, result, errMsg)
		if err != nil || o != nil {
			return true, o, err
		}
		progressed = true
	}
	return progressed, nil, nil
}

// gather turns a node's child results into its output.
func gather(a *activation) (any, string) {
	var firstErr string
	results := make([]any, len(a.results))
	for i := range a.results {
		results[i] = a.results[i]
		if a.errs[i] != "" {
			if firstErr == "" {
				firstErr = a.errs[i]
				if a.isMap {
					firstErr = fmt.Sprintf("item %d: %s", i, a.errs[i])
				}
			}
			results[i] = map[string]any{"error": a.errs[i]}
		}
	}
	if a.node.OnError == OnErrorContinue {
		firstErr = ""
	}
	if !a.isMap {
		return results[0], firstErr
	}
	return results, firstErr
}

// finish journals a node's end and where the flow goes next. It returns a
// non-nil outcome when the node's failure ends the run.
func (e *engine) finish(ctx context.Context, a *activation, result any, errMsg string) (*agent.Outcome, error) {
	n := a.node
	d := journal.NodeFinished{Node: n.name, Visit: a.visit, Key: a.key, Error: errMsg,
		DurationMS: float64(time.Since(a.began).Microseconds()) / 1000}
	if n.Tool != "" {
		d.Tool = n.Tool
		if e.f.ToolPrice != nil {
			calls := 1
			if items, ok := result.([]any); ok && a.isMap {
				calls = len(items) // one call per item
			}
			d.CostUSD = e.f.ToolPrice(n.Tool) * float64(calls)
		}
	}
	if errMsg != "" && n.OnError != OnErrorContinue {
		if err := e.append(context.WithoutCancel(ctx), journal.TypeNodeFinished, d); err != nil {
			return nil, err
		}
		out, err := e.fail(ctx, CodeNodeFailed, e.r.failed)
		return &out, err
	}
	if errMsg != "" {
		result = map[string]any{"error": errMsg}
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return nil, &failure{CodeNodeFailed, fmt.Sprintf("node %s: its result is not JSON: %v", a.key, err)}
	}
	if result != nil {
		d.Output = raw
	}
	// Routes see the state as it will be once the output is merged.
	state := e.r.state
	if n.Output != "" && result != nil {
		state = cloneState(state)
		if state[n.Output], err = merge(e.f.State[n.Output].Merge, state[n.Output], normalize(result)); err != nil {
			return nil, &failure{CodeNodeFailed, fmt.Sprintf("node %s: output %s: %v", a.key, n.Output, err)}
		}
	}
	if d.Next, err = e.next(n, state, result); err != nil {
		return nil, err
	}
	return nil, e.append(context.WithoutCancel(ctx), journal.TypeNodeFinished, d)
}

func cloneState(s map[string]any) map[string]any {
	out := make(map[string]any, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

// next chooses the nodes that follow n.
func (e *engine) next(n *Node, state map[string]any, output any) ([]string, error) {
	if len(n.Next) > 0 {
		return n.Next, nil
	}
	v := vars{state: state, input: e.r.start.Input, output: output}
	for i, edge := range n.route {
		if edge.when == nil {
			return []string{edge.to}, nil
		}
		ok, err := evalBool(edge.when, v)
		if err != nil {
			return nil, &failure{CodeExpression, fmt.Sprintf("flows.%s.nodes.%s.route[%d].when: %v", e.f.Name, n.name, i, err)}
		}
		if ok {
			return []string{edge.to}, nil
		}
	}
	return nil, nil
}

// startReady starts every node that is ready, then runs the synchronous
// ones (tools, functions, routers) in parallel and finishes them. out is
// set when a node's failure ended the run.
func (e *engine) startReady(ctx context.Context) (out *agent.Outcome, err error) {
	r := e.r
	batch := append([]string(nil), r.ready...)
	var now []*activation
	for _, name := range batch {
		n := e.f.Nodes[name]
		if r.steps >= e.f.MaxSteps {
			return nil, &failure{CodeMaxSteps, fmt.Sprintf("the flow ran %d nodes without finishing (raise flows.%s.max_steps)", r.steps, e.f.Name)}
		}
		visit := r.visits[name] + 1
		if visit > n.MaxVisits {
			return nil, &failure{CodeMaxVisits, fmt.Sprintf("node %s would run a %dth time; its limit is %d (raise flows.%s.nodes.%s.max_visits, or give the loop a way out)",
				name, visit, n.MaxVisits, e.f.Name, name)}
		}
		a, err := e.startNode(ctx, n, visit)
		if err != nil {
			return nil, err
		}
		if a != nil && len(a.children) == 0 && a.until.IsZero() && n.Ask == nil {
			now = append(now, a)
		}
	}
	results := make([]any, len(now))
	msgs := make([]string, len(now))
	errs := make([]error, len(now))
	var wg sync.WaitGroup
	for i, a := range now {
		wg.Go(func() { results[i], msgs[i], errs[i] = e.execute(ctx, a, a.stateAt) })
	}
	wg.Wait()
	for i, a := range now {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if out, err := e.finish(ctx, a, results[i], msgs[i]); err != nil || out != nil {
			return out, err
		}
	}
	return nil, nil
}

// startNode journals a node's start, spawning its children first-thing
// after. It returns the node's activation.
func (e *engine) startNode(ctx context.Context, n *Node, visit int) (*activation, error) {
	key := fmt.Sprintf("%s#%d", n.name, visit)
	d := journal.NodeStarted{Node: n.name, Visit: visit, Key: key}
	v := vars{state: e.r.state, input: e.r.start.Input}
	var items []any
	if n.items != nil {
		var err error
		if items, err = evalList(n.items, v); err != nil {
			return nil, &failure{CodeExpression, fmt.Sprintf("flows.%s.nodes.%s.map: %v", e.f.Name, n.name, err)}
		}
		if len(items) > MaxItems {
			return nil, &failure{CodeNodeFailed, fmt.Sprintf("node %s: %d items to map over; the limit is %d", key, len(items), MaxItems)}
		}
		d.Items = len(items)
	}
	var children []agent.ChildRun
	if n.Agent != "" {
		if e.env.Children == nil {
			return nil, &failure{CodeNodeFailed, fmt.Sprintf("node %s: agent nodes need the Myriad runtime", key)}
		}
		var err error
		if children, err = e.childRuns(n, key, e.r.state, items); err != nil {
			return nil, err
		}
		for _, c := range children {
			d.Children = append(d.Children, c.ID)
		}
	}
	switch {
	case n.Sleep > 0:
		until := time.Now().Add(n.Sleep).UTC()
		d.Until = &until
	case n.Ask != nil && n.Ask.Timeout > 0:
		until := time.Now().Add(n.Ask.Timeout).UTC()
		d.Until = &until
	case n.until != nil:
		until, err := evalTime(n.until, v)
		if err != nil {
			return nil, &failure{CodeExpression, fmt.Sprintf("flows.%s.nodes.%s.until: %v", e.f.Name, n.name, err)}
		}
		until = until.UTC()
		d.Until = &until
	}
	if n.Agent != "" && n.Map != "" && len(items) == 0 {
		// Nothing to map: the node finishes at once with an empty list.
		if err := e.append(ctx, journal.TypeNodeStarted, d); err != nil {
			return nil, err
		}
		a := e.r.active[key]
		_, err := e.finish(ctx, a, []any{}, "")
		return nil, err
	}
	if err := e.append(ctx, journal.TypeNodeStarted, d); err != nil {
		return nil, err
	}
	for _, c := range children {
		if err := e.env.Children.Spawn(ctx, c); err != nil {
			return nil, e.spawnError(key, err)
		}
	}
	a := e.r.active[key]
	a.unconfirmed = false // spawned: only a resumed run must spawn again
	return a, nil
}

func (e *engine) spawnError(key string, err error) error {
	if errors.Is(err, agent.ErrSpawnRefused) {
		return &failure{CodeNodeFailed, fmt.Sprintf("node %s: %v", key, err)}
	}
	return err
}

// childRuns builds the child runs of an agent node: one, or one per item.
func (e *engine) childRuns(n *Node, key string, state map[string]any, items []any) ([]agent.ChildRun, error) {
	base := e.r.start.Path
	if base == "" {
		base = e.f.Name
	}
	one := func(callID, path string, v vars, index int) (agent.ChildRun, error) {
		in, err := e.render(n, v, index)
		if err != nil {
			return agent.ChildRun{}, err
		}
		// The child's calls continue this run's trace, and it is kept by
		// the same shared budgets.
		meta := map[string]string{"traceparent": tool.TraceParent(e.env.TraceParent, e.runID, e.runID+"/"+callID)}
		for _, k := range e.env.Carry {
			if v, ok := e.r.start.Metadata[k]; ok {
				meta[k] = v
			}
		}
		return agent.ChildRun{ID: e.env.Children.ChildID(e.runID, callID), Agent: n.Agent, Input: in,
			Parent: e.runID, ParentCall: callID, Path: base + "/" + path, Depth: e.r.start.Depth + 1, Metadata: meta}, nil
	}
	v := vars{state: state, input: e.r.start.Input}
	if n.Map == "" {
		c, err := one(key, key, v, 0)
		return []agent.ChildRun{c}, err
	}
	out := make([]agent.ChildRun, len(items))
	for i, item := range items {
		v.item = item
		var err error
		if out[i], err = one(fmt.Sprintf("%s/%d", key, i), fmt.Sprintf("%s.%d", key, i), v, i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// render builds an agent node's task.
func (e *engine) render(n *Node, v vars, index int) (string, error) {
	if n.input == nil {
		if v.item != nil {
			return text(v.item), nil
		}
		return v.input, nil
	}
	var b bytes.Buffer
	data := map[string]any{"state": v.state, "input": v.input, "item": v.item, "index": index}
	if err := n.input.Execute(&b, data); err != nil {
		return "", &failure{CodeExpression, fmt.Sprintf("flows.%s.nodes.%s.input: %v", e.f.Name, n.name, err)}
	}
	if strings.TrimSpace(b.String()) == "" {
		return "", &failure{CodeNodeFailed, fmt.Sprintf("node %s: its input rendered empty", n.name)}
	}
	return b.String(), nil
}

// text shows a state value to a model: strings as they are, the rest as JSON.
func text(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// respawn spawns again the children of nodes started since the run last
// parked: a crash may have come between the journal and the spawns.
func (e *engine) respawn(ctx context.Context) error {
	for _, key := range e.r.order {
		a := e.r.active[key]
		if !a.unconfirmed {
			continue
		}
		var items []any
		if a.node.items != nil {
			var err error
			if items, err = evalList(a.node.items, vars{state: a.stateAt, input: e.r.start.Input}); err != nil {
				return &failure{CodeExpression, err.Error()}
			}
		}
		children, err := e.childRuns(a.node, key, a.stateAt, items)
		if err != nil {
			return err
		}
		for i, c := range children {
			if i < len(a.children) && a.results[i] == nil && a.errs[i] == "" {
				c.ID = a.children[i]
				if err := e.env.Children.Spawn(ctx, c); err != nil {
					return e.spawnError(key, err)
				}
			}
		}
		a.unconfirmed = false
	}
	return nil
}

// takeInputs folds in the inputs that reached the run since it was
// resumed — children's reports, answers — which the engine journals. got
// reports whether there were any.
func (e *engine) takeInputs(ctx context.Context) (got bool, err error) {
	if e.env.Inputs == nil {
		return false, nil
	}
	evs, err := e.env.Inputs(ctx)
	if err != nil {
		return false, err
	}
	for _, ev := range evs {
		if err := e.r.apply(ev); err != nil {
			return false, fmt.Errorf("flow %s: %w", e.f.Name, err)
		}
	}
	return len(evs) > 0, nil
}

// ask journals the question of a node that waits for input.
func (e *engine) ask(ctx context.Context, a *activation) error {
	var b bytes.Buffer
	data := map[string]any{"state": a.stateAt, "input": e.r.start.Input, "item": nil, "index": 0}
	if err := a.node.ask.Execute(&b, data); err != nil {
		return &failure{CodeExpression, fmt.Sprintf("flows.%s.nodes.%s.ask.prompt: %v", e.f.Name, a.node.name, err)}
	}
	return e.append(ctx, journal.TypeInputRequested, journal.InputRequested{Node: a.node.name, Key: a.key, Prompt: b.String(), Schema: a.node.Ask.Schema})
}

// ValidateInput checks a person's answer to a node against its schema.
func (f *Flow) ValidateInput(node string, value json.RawMessage) error {
	n := f.Nodes[node]
	if n == nil || n.Ask == nil {
		return fmt.Errorf("flow %s has no node %q that asks for input", f.Name, node)
	}
	if n.Ask.schema == nil {
		return nil
	}
	return n.Ask.schema.Validate(value)
}

// complete ends the run with its output key (or whole state), unless a
// join still waits for branches that can no longer come.
func (e *engine) complete(ctx context.Context) (agent.Outcome, error) {
	if join, missing := e.r.waitingJoin(); join != "" {
		return e.fail(ctx, CodeJoin, fmt.Sprintf("node %s (join: %s) still waits for %s, which will not run: a route upstream took another way; drop the join (every arrival runs the node) or use join: any",
			join, e.f.Nodes[join].Join, strings.Join(missing, ", ")))
	}
	state, err := json.Marshal(e.r.state)
	if err != nil {
		return e.fail(ctx, CodeNodeFailed, fmt.Sprintf("the final state is not JSON: %v", err))
	}
	done := journal.RunCompleted{JSON: state, Output: string(state), Usage: e.r.usage}
	if e.f.Output != "" {
		done.Output = text(e.r.state[e.f.Output])
	}
	if err := e.append(context.WithoutCancel(ctx), journal.TypeRunCompleted, done); err != nil {
		return agent.Stopped, err
	}
	return agent.Completed, nil
}

// park journals what the run waits for, unless the journal says so already.
func (e *engine) park(ctx context.Context) (agent.Outcome, error) {
	var w journal.RunWaiting
	for _, key := range e.r.order {
		a := e.r.active[key]
		for i, c := range a.children {
			if a.results[i] == nil && a.errs[i] == "" {
				w.Children = append(w.Children, c)
			}
		}
		if !a.until.IsZero() && (w.Until == nil || a.until.Before(*w.Until)) {
			until := a.until
			w.Until = &until
		}
		if a.asked && !a.answered {
			w.Inputs = append(w.Inputs, a.key)
		}
	}
	if e.f.Timeout > 0 {
		// Wake at the deadline even if nothing else does.
		deadline := e.r.startTime.Add(e.f.Timeout).UTC()
		if w.Until == nil || deadline.Before(*w.Until) {
			w.Until = &deadline
		}
	}
	if e.r.lastType != journal.TypeRunWaiting {
		if err := e.append(ctx, journal.TypeRunWaiting, w); err != nil {
			return agent.Stopped, err
		}
	}
	return agent.Waiting, nil
}

// execute runs a synchronous node — a tool, a function, or nothing — for
// its one input or each of its items.
func (e *engine) execute(ctx context.Context, a *activation, state map[string]any) (any, string, error) {
	n := a.node
	if n.Tool == "" && n.Func == nil {
		return nil, "", nil // a router or join point
	}
	v := vars{state: state, input: e.r.start.Input}
	if n.items == nil {
		return e.call(ctx, a, v, -1)
	}
	items, err := evalList(n.items, v)
	if err != nil {
		return nil, "", &failure{CodeExpression, fmt.Sprintf("flows.%s.nodes.%s.map: %v", e.f.Name, n.name, err)}
	}
	results := make([]any, len(items))
	msgs := make([]string, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, item := range items {
		iv := v
		iv.item = item
		wg.Go(func() { results[i], msgs[i], errs[i] = e.call(ctx, a, iv, i) })
	}
	wg.Wait()
	var first string
	for i := range items {
		if errs[i] != nil {
			return nil, "", errs[i]
		}
		if msgs[i] != "" {
			if first == "" {
				first = fmt.Sprintf("item %d: %s", i, msgs[i])
			}
			results[i] = map[string]any{"error": msgs[i]}
		}
	}
	return results, first, nil
}

// call runs one tool or function call of a node.
func (e *engine) call(ctx context.Context, a *activation, v vars, index int) (result any, errMsg string, err error) {
	n := a.node
	defer func() {
		if p := recover(); p != nil {
			result, errMsg, err = nil, fmt.Sprintf("panicked: %v", p), nil
		}
	}()
	if n.Func != nil {
		out, ferr := n.Func(ctx, FuncInput{State: v.state, Input: v.input, Item: v.item, Index: index})
		if ferr != nil {
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			return nil, redact.Text(ferr.Error()), nil
		}
		raw, merr := json.Marshal(out)
		if merr != nil {
			return nil, fmt.Sprintf("its result is not JSON: %v", merr), nil
		}
		out, _ = decodeJSON(raw)
		return out, "", nil
	}
	t := e.f.Tools[n.Tool]
	args := json.RawMessage(`{}`)
	if n.args != nil {
		val, aerr := eval(n.args, v)
		if aerr != nil {
			return nil, "", &failure{CodeExpression, fmt.Sprintf("flows.%s.nodes.%s.args: %v", e.f.Name, n.name, aerr)}
		}
		args, _ = json.Marshal(val)
	}
	if s, serr := tool.CompileSchema(t.Info().Schema); serr == nil {
		if verr := s.Validate(args); verr != nil {
			return nil, fmt.Sprintf("invalid arguments for %s: %v", n.Tool, verr), nil
		}
	}
	id := a.key
	if index >= 0 {
		id = fmt.Sprintf("%s/%d", a.key, index)
	}
	key := e.runID + "/" + id
	call := &tool.Call{RunID: e.runID, ID: id, Arguments: args, IdempotencyKey: key, TraceParent: tool.TraceParent(e.env.TraceParent, e.runID, key)}
	if ask := e.env.Ask; ask != nil {
		call.Ask = func(ctx context.Context, q tool.Question) (json.RawMessage, error) { return ask(ctx, id, n.Tool, q) }
	}
	hold, herr := e.reserve(ctx, n.Tool)
	if herr != nil {
		return nil, "", herr
	}
	res, cerr := t.Call(ctx, call)
	// The node's cost counts every call made, as its node.finished says.
	hold.Settle(context.WithoutCancel(ctx), e.price(n.Tool))
	if cerr != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		return nil, redact.Text(cerr.Error()), nil
	}
	res.Content = redact.Text(res.Content)
	if res.IsError {
		return nil, res.Content, nil
	}
	if v, derr := decodeJSON([]byte(res.Content)); derr == nil {
		return v, "", nil
	}
	return res.Content, "", nil
}

// price is what one call of a tool costs.
func (e *engine) price(name string) float64 {
	if e.f.ToolPrice == nil {
		return 0
	}
	return e.f.ToolPrice(name)
}

// reserve holds a tool call's price against the budgets the run shares
// (agent.Env.Budget); a refusal fails the run with agent.CodeBudget.
func (e *engine) reserve(ctx context.Context, toolName string) (agent.Reservation, error) {
	usd := e.price(toolName)
	if e.env.Budget == nil || usd <= 0 {
		return settled{}, nil
	}
	hold, err := e.env.Budget.Reserve(ctx, e.f.Name, usd)
	if errors.Is(err, agent.ErrBudgetExceeded) {
		return nil, &failure{agent.CodeBudget, err.Error()}
	}
	return hold, err
}

// settled is a reservation of nothing.
type settled struct{}

func (settled) Settle(context.Context, float64) {}

// rerun handles a synchronous node that started and never finished: its
// work is repeated when that is safe, and otherwise the run is in doubt
// until an operator resolves it.
func (e *engine) rerun(ctx context.Context, a *activation) (any, string, error) {
	n := a.node
	if n.Tool != "" && !e.f.Tools[n.Tool].Info().Idempotent {
		res, ok := e.r.resolved[a.key]
		switch {
		case !ok:
			rec := journal.RunInDoubt{CallID: a.key, Name: n.Tool,
				Reason: fmt.Sprintf("tool %s is not idempotent and node %s started it but never finished; resolve with retry, skip or fail", n.Tool, a.key)}
			if err := e.append(ctx, journal.TypeRunInDoubt, rec); err != nil {
				return nil, "", err
			}
			return nil, "", errInDoubt
		case res.Action == journal.ResolveSkip:
			if v, err := decodeJSON([]byte(res.Result)); err == nil {
				return v, "", nil
			}
			return res.Result, "", nil
		case res.Action == journal.ResolveFail:
			return nil, "an operator failed this in-doubt call: " + res.Reason, nil
		}
	}
	return e.execute(ctx, a, a.stateAt)
}

// extractJSON tolerates a JSON answer wrapped in a Markdown code fence.
func extractJSON(s string) string {
	start := strings.IndexAny(s, "{[")
	end := strings.LastIndexAny(s, "}]")
	if start < 0 || end < start {
		return s
	}
	return s[start : end+1]
}
