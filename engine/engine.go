// Package engine executes runs durably: it is the one API every door of
// Myriad (the HTTP API, MCP, A2A, the CLI, the Go library) uses, and the
// only package that reaches the store.
//
// Every input to a run is a durable message (store.Input): its submission,
// a new turn for its instance, a cancel, an approval decision, an answer,
// a resolution of a call in doubt, a child's report, a timer firing. The
// run's single writer — the worker holding the run's entry on the work
// queue — takes inputs in order and journals each one's effect before the
// run goes on, so a crash at any point leaves an input applied exactly
// once or not yet taken. A run's state is a fold over its journal: the
// agent loop and the flow engine resume by folding it, and the run's
// record (Project) is a projection the writer keeps for readers.
//
//	doors ── Submit / Cancel / Decide / Answer / Resolve ──► inputs (store)
//	                                                           │ router rings the entity's queue entry
//	                                                           ▼
//	               worker: claim ─► take inputs ─► agent.Resume / flow.Resume ─► settle ─► done
//	                                     │ every step appended first
//	                                     ▼
//	                                  journal ──► one feed per node ──► Watch, Wait (doors)
//	                                     └──────► record, instance snapshot (projections)
//
// Instances of agents (agent/key) are entities too: their turns are inputs
// to the instance, which starts them one at a time, in order, and hands
// over to the next the moment a turn ends.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"
	"time"

	"github.com/myriad-ai/myriad/run"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/store"
)

// Errors the doors map onto their status codes.
var (
	ErrNotFound     = errors.New("run not found")
	ErrUnknownAgent = errors.New("unknown agent")
	ErrInvalid      = errors.New("invalid request")
	ErrConflict     = errors.New("conflict")
	// ErrUnavailable refuses a write the store cannot take now (its disk
	// is full): retry later.
	ErrUnavailable = store.ErrUnavailable
	// ErrTooLarge refuses a request the NATS server cannot hold in one
	// message (its max_payload): send less, or raise max_payload.
	ErrTooLarge = errors.New("too large for the store")
)

// Temporary reports a store error a retry a moment later may not meet:
// a cluster electing the leader of a stream, a request that timed out.
func Temporary(err error) bool { return store.Temporary(err) }

// tooLarge says which request outgrew the NATS server's messages, and the
// fix; other errors pass as they are.
func (e *Engine) tooLarge(err error, what string) error {
	if !errors.Is(err, store.ErrTooLarge) {
		return err
	}
	return fmt.Errorf("%w: %s is larger than the NATS server takes in one message (max_payload %d bytes): send less, or raise max_payload",
		ErrTooLarge, what, e.st.PayloadLimit())
}

// Options configure an Engine.
type Options struct {
	Agents map[string]*agent.Agent
	Flows  map[string]*flow.Flow
	// Workers is how many runs this node executes at once.
	Workers int
	Logger  *slog.Logger
	// OnFinish, when set, is called after a run reaches a terminal status on
	// this node (benchmarks use it to measure).
	OnFinish func(rec *run.Record, stats RunStats)
	// DrainTimeout is how long Stop waits for running steps before cutting them.
	DrainTimeout time.Duration
	// MaxDepth bounds how deep trees of child runs grow (default
	// DefaultMaxDepth).
	MaxDepth int
	// Schedules start runs on cron expressions; Start sets them on the
	// NATS server.
	Schedules []Schedule
	// CommandWait bounds how long a command (cancel, decide, answer,
	// resolve) waits for its run to take it before answering with the run
	// as it stands (default 5s).
	CommandWait time.Duration
	// Observers are told of the runs this node accepts and of every entry
	// its writers journal (telemetry). The engine's own log lines (run
	// accepted, started, waiting, ended, at INFO) come first.
	Observers []Observer
	// Models are the configured models by name, for runs forked to use
	// another model than their agent's.
	Models map[string]agent.ModelChoice
	// Budgets limit what runs spend together over rolling windows; each
	// priced call reserves its cost in the budgets that keep its run.
	Budgets []Budget
	// MaxBacklog is how many runs may wait on the work queue before
	// Submit refuses new ones with ErrOverloaded (0: no limit).
	MaxBacklog int
	// Retention deletes ended root runs after a while (zero: never).
	Retention Retention
	// InstanceCache bounds, in bytes, the instance snapshots this node
	// keeps in memory (0: DefaultInstanceCache; negative: none).
	InstanceCache int
	// OnActivation, when set, is told how long each activation of an
	// instance took on this node (benchmarks).
	OnActivation func(d time.Duration, cached bool)
}

// RunStats describe one execution of a run on this node.
type RunStats struct {
	Wall      time.Duration
	ModelTime time.Duration
	ToolTime  time.Duration
	// Steps counts journal entries; ModelCalls and ToolCalls the work among them.
	Steps      int
	ModelCalls int
	ToolCalls  int
}

// DefaultMaxDepth bounds how deep trees of child runs grow.
const DefaultMaxDepth = 5

// Engine submits, executes, reads and watches runs.
type Engine struct {
	st     *store.Store
	opts   Options
	log    *slog.Logger
	agents map[string]*agent.Agent
	flows  map[string]*flow.Flow
	feed   *feed
	// shared makes concurrent identical reads one read: a thousand
	// followers arriving at one run read its record and history once.
	shared singleflight.Group

	// snapshots caches instance snapshots (passivate.go); acts tallies
	// activations.
	snapshots *snapshotCache
	acts      activations

	mu     sync.Mutex
	active map[string]holder
	held   map[*store.Claim]struct{}

	stopWork  context.CancelCauseFunc
	workDone  chan struct{}
	ownStore  bool
	observers []Observer
	// carry are the metadata keys child runs take from their parents,
	// for the budgets kept by them.
	carry []string
	// ledgers are the budget ledgers as this node last wrote them
	// (cachedLedger by key).
	ledgers sync.Map
	// admission is the backlog as last read for admission.
	admission admission
	// slots bound the runs of an agent with max_concurrent that this
	// node executes at once (by agent).
	slots map[string]chan struct{}
}

// New returns an engine over an open store. Call Start to execute runs on
// this node; an engine that is not started can still submit, read and
// watch.
func New(st *store.Store, opts Options) (*Engine, error) {
	if opts.Workers <= 0 {
		opts.Workers = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.CommandWait <= 0 {
		opts.CommandWait = 5 * time.Second
	}
	if err := checkBudgets(opts.Budgets); err != nil {
		return nil, err
	}
	for name, a := range opts.Agents {
		if a.Name == "" {
			a.Name = name
		}
		if err := a.Init(); err != nil {
			return nil, err
		}
		if err := CheckMessaging(a.Messaging); err != nil {
			return nil, fmt.Errorf("agent %s: messaging: %w", name, err)
		}
	}
	for name, f := range opts.Flows {
		if f.Name == "" {
			f.Name = name
		}
		if _, clash := opts.Agents[name]; clash {
			return nil, fmt.Errorf("flow %s: an agent has the same name; runs name one or the other", name)
		}
		if err := f.Init(func(a string) bool { return opts.Agents[a] != nil }); err != nil {
			return nil, err
		}
	}
	e := &Engine{st: st, opts: opts, log: opts.Logger, agents: opts.Agents, flows: opts.Flows,
		active: map[string]holder{}, held: map[*store.Claim]struct{}{}}
	e.feed = newFeed(st, opts.Logger)
	switch {
	case opts.InstanceCache == 0:
		e.snapshots = newSnapshotCache(DefaultInstanceCache)
	case opts.InstanceCache > 0:
		e.snapshots = newSnapshotCache(opts.InstanceCache)
	}
	e.carry = carried(opts.Budgets)
	e.slots = map[string]chan struct{}{}
	for name, a := range opts.Agents {
		if a.MaxConcurrent > 0 {
			e.slots[name] = make(chan struct{}, a.MaxConcurrent)
		}
	}
	e.observers = append([]Observer{runLog{opts.Logger}}, opts.Observers...)
	return e, nil
}

// Agents returns the agent definitions in name order.
func (e *Engine) Agents() []*agent.Agent {
	out := make([]*agent.Agent, 0, len(e.agents))
	for _, a := range e.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Flows returns the flow definitions in name order.
func (e *Engine) Flows() []*flow.Flow {
	out := make([]*flow.Flow, 0, len(e.flows))
	for _, f := range e.flows {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Ready reports whether the node can take runs: nil, or why not.
func (e *Engine) Ready() error { return e.st.Ready() }

func (e *Engine) agentNames() []string {
	names := make([]string, 0, len(e.agents))
	for n := range e.agents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (e *Engine) flowNames() []string {
	names := make([]string, 0, len(e.flows))
	for n := range e.flows {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "nothing"
	}
	return strings.Join(list, ", ")
}

func (e *Engine) lookupAgent(name string) *agent.Agent { return e.agents[name] }

// model finds a configured model by name (agent.Env.Models).
func (e *Engine) model(name string) (agent.ModelChoice, bool) {
	m, ok := e.opts.Models[name]
	return m, ok
}

// StoreOptions say where an engine keeps runs: an embedded NATS server
// with its files under DataDir (or in memory), or the NATS cluster at
// NATSURL.
type StoreOptions struct {
	NATSURL string
	DataDir string
	// Memory keeps everything in memory: nothing survives the process.
	Memory bool
	// Replicas for streams on a cluster (1 when embedded).
	Replicas int
	// SyncAlways fsyncs every write of an embedded server (power-loss
	// safety).
	SyncAlways bool
	// Cluster, when set, makes the embedded server a node of a cluster
	// of Myriad nodes (docs/operations.md).
	Cluster *Cluster
}

// Cluster is how a node's embedded NATS server joins its peers (the
// store's own type: doors fill it in without reaching the store).
type Cluster = store.Cluster

// Open opens a store and an engine on it; Close closes both.
func Open(ctx context.Context, so StoreOptions, opts Options) (*Engine, error) {
	stOpts := store.Options{URL: so.NATSURL, DataDir: so.DataDir, Memory: so.Memory, Replicas: so.Replicas,
		SyncAlways: so.SyncAlways, Logger: opts.Logger}
	stOpts.Cluster = so.Cluster
	st, err := store.Open(ctx, stOpts)
	if err != nil {
		return nil, err
	}
	e, err := New(st, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	e.ownStore = true
	return e, nil
}

// Close stops the engine (see Stop) and closes its store if Open opened it.
func (e *Engine) Close() {
	e.Stop()
	if e.ownStore {
		e.st.Close()
	}
}

// Embedded reports whether the engine's store runs its own NATS server.
func (e *Engine) Embedded() bool { return e.st.Embedded() }
