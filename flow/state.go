package flow

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
)

// activation is one run of a node (node#visit).
type activation struct {
	key   string
	node  *Node
	visit int
	began time.Time
	// stateAt is the state when the node started (a shallow copy: merges
	// never change values in place), to rebuild its children's inputs.
	stateAt map[string]any
	// Child runs, their results by item, and how many reported.
	children []string
	results  []any
	errs     []string
	reported int
	// unconfirmed children may not have been spawned before a crash.
	unconfirmed bool
	until       time.Time
	asked       bool
	answer      json.RawMessage
	answered    bool
	isMap       bool
}

type childRef struct {
	key   string
	index int
}

// run is the fold of a flow run's journal.
type run struct {
	f         *Flow
	start     journal.RunStarted
	startTime time.Time
	state     map[string]any
	visits    map[string]int
	steps     int
	active    map[string]*activation
	order     []string // active keys in start order
	ready     []string // nodes to start, in order
	arrivals  map[string]map[string]int
	owed      map[string]map[string]int
	byChild   map[string]childRef
	// usage is the flow's children's, the flow having no model of its own.
	usage    model.Usage
	terminal string
	lastType string
	// failed is why a node failed the run, once journaled.
	failed   string
	inDoubt  bool
	resolved map[string]journal.ToolResolved
	// childOutput turns a child's output text into a state value.
	childOutput func(agentName, text string) any
}

func newRun(f *Flow) *run {
	return &run{f: f, state: map[string]any{}, visits: map[string]int{}, active: map[string]*activation{},
		arrivals: map[string]map[string]int{}, owed: map[string]map[string]int{}, byChild: map[string]childRef{},
		resolved:    map[string]journal.ToolResolved{},
		childOutput: func(_, text string) any { return text }}
}

// apply folds one journal entry into the run. The engine appends an entry
// and then applies it, so a resumed run and a live one agree by
// construction.
func (r *run) apply(ev journal.Event) error {
	r.lastType = ev.Type
	var err error
	switch ev.Type {
	case journal.TypeRunStarted:
		if err = json.Unmarshal(ev.Data, &r.start); err != nil {
			break
		}
		r.startTime = ev.Time
		for k, key := range r.f.State {
			if key.Initial != nil {
				raw, merr := json.Marshal(key.Initial)
				if merr != nil {
					return fmt.Errorf("state.%s.initial: %w", k, merr)
				}
				r.state[k], _ = decodeJSON(raw)
			}
		}
		r.state["input"] = r.start.Input
		if len(r.start.State) > 0 {
			var given map[string]any
			if err = json.Unmarshal(r.start.State, &given); err != nil {
				break
			}
			for k, v := range given {
				r.state[k] = normalize(v)
			}
		}
		r.ready = append(r.ready, r.f.Start...)
	case journal.TypeNodeStarted:
		var d journal.NodeStarted
		if err = json.Unmarshal(ev.Data, &d); err != nil {
			break
		}
		n := r.f.Nodes[d.Node]
		if n == nil {
			return fmt.Errorf("the journal names node %q, which flow %s no longer has", d.Node, r.f.Name)
		}
		r.popReady(d.Node)
		r.visits[d.Node] = d.Visit
		r.steps++
		a := &activation{key: d.Key, node: n, visit: d.Visit, began: ev.Time, stateAt: maps.Clone(r.state),
			children: d.Children, unconfirmed: len(d.Children) > 0, isMap: n.Map != ""}
		if d.Until != nil {
			a.until = *d.Until
		}
		if len(d.Children) > 0 {
			a.results = make([]any, len(d.Children))
			a.errs = make([]string, len(d.Children))
			for i, c := range d.Children {
				r.byChild[c] = childRef{key: d.Key, index: i}
			}
		}
		r.active[d.Key] = a
		r.order = append(r.order, d.Key)
	case journal.TypeChildrenReported:
		var d journal.ChildrenReported
		if err = json.Unmarshal(ev.Data, &d); err != nil {
			break
		}
		for _, rep := range d.Reports {
			ref, ok := r.byChild[rep.RunID]
			a := r.active[ref.key]
			if !ok || a == nil {
				continue
			}
			delete(r.byChild, rep.RunID)
			r.usage = r.usage.Add(rep.Usage)
			switch rep.Status {
			case "completed":
				a.results[ref.index] = r.childOutput(a.node.Agent, rep.Output)
			case "canceled":
				a.errs[ref.index] = fmt.Sprintf("the %s run was canceled", a.node.Agent)
			default:
				a.errs[ref.index] = fmt.Sprintf("the %s run failed: %s", a.node.Agent, rep.Error)
			}
			a.reported++
		}
	case journal.TypeRunWaiting:
		for _, a := range r.active {
			a.unconfirmed = false
		}
	case journal.TypeInputRequested:
		var d journal.InputRequested
		if err = json.Unmarshal(ev.Data, &d); err == nil && r.active[d.Key] != nil {
			r.active[d.Key].asked = true
		}
	case journal.TypeInputReceived:
		var d journal.InputReceived
		if err = json.Unmarshal(ev.Data, &d); err == nil && r.active[d.Key] != nil {
			r.active[d.Key].answer, r.active[d.Key].answered = d.Value, true
		}
	case journal.TypeNodeFinished:
		var d journal.NodeFinished
		if err = json.Unmarshal(ev.Data, &d); err != nil {
			break
		}
		a := r.active[d.Key]
		if a == nil {
			return fmt.Errorf("node.finished for %s, which is not running", d.Key)
		}
		delete(r.active, d.Key)
		for i, k := range r.order {
			if k == d.Key {
				r.order = append(r.order[:i], r.order[i+1:]...)
				break
			}
		}
		if d.Error != "" && a.node.OnError != OnErrorContinue {
			// The run fails next; nothing moves on. Kept here so that a
			// run resumed between the two entries fails too.
			r.failed = fmt.Sprintf("node %s: %s (set on_error: continue on the node to go on without it)", d.Key, d.Error)
			return nil
		}
		if a.node.Output != "" && len(d.Output) > 0 {
			out, derr := decodeJSON(d.Output)
			if derr != nil {
				return derr
			}
			if r.state[a.node.Output], err = merge(r.f.State[a.node.Output].Merge, r.state[a.node.Output], out); err != nil {
				return fmt.Errorf("node %s: output %s: %w", d.Node, a.node.Output, err)
			}
		}
		for _, to := range d.Next {
			r.arrive(d.Node, to)
		}
		// A late branch that went elsewhere owes its join nothing more.
		for to, owed := range r.owed {
			for p, n := range owed {
				if n > 0 && !r.inFlight(r.f.upstream[to][p]) {
					delete(owed, p)
				}
			}
		}
	case journal.TypeRunInDoubt:
		r.inDoubt = true
	case journal.TypeToolResolved:
		var d journal.ToolResolved
		if err = json.Unmarshal(ev.Data, &d); err == nil {
			r.resolved[d.CallID] = d
		}
		r.inDoubt = false
	case journal.TypeRunCompleted, journal.TypeRunFailed, journal.TypeRunCanceled:
		r.terminal = ev.Type
	}
	if err != nil {
		return fmt.Errorf("journal step %d (%s): %w", ev.Step, ev.Type, err)
	}
	return nil
}

// inFlight reports whether any of nodes is running or ready to run.
func (r *run) inFlight(nodes map[string]bool) bool {
	for _, a := range r.active {
		if nodes[a.node.name] {
			return true
		}
	}
	for _, n := range r.ready {
		if nodes[n] {
			return true
		}
	}
	return false
}

// waitingJoin names a join that has arrivals but never fired, and the
// predecessors it still waits for.
func (r *run) waitingJoin() (string, []string) {
	for _, to := range slices.Sorted(maps.Keys(r.arrivals)) {
		var missing []string
		got := 0
		for _, p := range r.f.preds[to] {
			if r.arrivals[to][p] > 0 {
				got++
			} else {
				missing = append(missing, p)
			}
		}
		if got > 0 {
			return to, missing
		}
	}
	return "", nil
}

func (r *run) popReady(node string) {
	for i, n := range r.ready {
		if n == node {
			r.ready = append(r.ready[:i], r.ready[i+1:]...)
			return
		}
	}
}

// arrive records that from finished with an edge to to, and readies to
// unless it is a join still waiting for more of its predecessors.
func (r *run) arrive(from, to string) {
	n := r.f.Nodes[to]
	if n == nil {
		return
	}
	if n.join.mode == "" {
		r.ready = append(r.ready, to)
		return
	}
	if r.owed[to][from] > 0 {
		// A late branch of a join that fired without it: it ends here.
		r.owed[to][from]--
		return
	}
	if r.arrivals[to] == nil {
		r.arrivals[to] = map[string]int{}
	}
	r.arrivals[to][from]++
	preds := r.f.preds[to]
	arrived, total := 0, 0
	for _, p := range preds {
		if r.arrivals[to][p] > 0 {
			arrived++
		}
		total += r.arrivals[to][p]
	}
	var fire bool
	switch n.join.mode {
	case "all":
		fire = arrived == len(preds)
	case "any":
		fire = true
	case "first":
		fire = total >= n.join.n
	}
	if !fire {
		return
	}
	r.ready = append(r.ready, to)
	if r.owed[to] == nil {
		r.owed[to] = map[string]int{}
	}
	for _, p := range preds {
		if r.arrivals[to][p] > 0 {
			r.arrivals[to][p]--
		} else if n.join.mode != "all" && r.inFlight(r.f.upstream[to][p]) {
			// A branch toward this join is still on its way: when it
			// arrives, it belongs to this firing and ends there.
			r.owed[to][p]++
		}
	}
	if n.join.mode == "first" {
		// The extra arrivals counted toward n belong to this firing too.
		clear(r.arrivals[to])
	}
}

// merge returns a key's new value once output arrives. It never changes
// old in place: activations keep shallow copies of the state.
func merge(rule Merge, old, output any) (any, error) {
	switch rule {
	case Append:
		var list []any
		switch o := old.(type) {
		case nil:
		case []any:
			list = o
		default:
			list = []any{o}
		}
		out := make([]any, len(list), len(list)+1)
		copy(out, list)
		if more, ok := output.([]any); ok {
			return append(out, more...), nil
		}
		return append(out, output), nil
	case MergeMap:
		add, ok := output.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("the merge rule needs an object, and the node gave %T", output)
		}
		out := map[string]any{}
		if o, ok := old.(map[string]any); ok {
			maps.Copy(out, o)
		}
		maps.Copy(out, add)
		return out, nil
	}
	return output, nil
}
