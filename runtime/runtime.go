// Package runtime executes runs durably.
//
// A submitted run becomes a record (bus.RunsBucket) and a message on the work
// queue (bus.QueueStream). Workers on every node pull from the queue, claim a
// run, heartbeat while they hold it, and drive its agent through
// agent.Resume, which journals each step before taking the next. A worker that
// dies stops heartbeating; JetStream redelivers the run to another worker,
// which replays the journal and carries on. Nothing reads a worker's memory:
// clients read records and journals.
package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/journal"
)

// Options configure a Runtime.
type Options struct {
	Agents map[string]*agent.Agent
	Flows  map[string]*flow.Flow
	// Workers is how many runs this node executes at once.
	Workers int
	Logger  *slog.Logger
	// OnFinish, when set, is called after a run reaches a terminal status on
	// this node (benchmarks use it to measure).
	OnFinish func(rec *Record, stats RunStats)
	// DrainTimeout is how long Stop waits for running steps before cutting them.
	DrainTimeout time.Duration
	// MaxDepth bounds how deep trees of child runs grow (default
	// DefaultMaxDepth).
	MaxDepth int
	// Schedules start runs on cron expressions; Start sets them on the
	// NATS server.
	Schedules []Schedule
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

// Runtime submits, executes and reads runs.
type Runtime struct {
	bus    *bus.Bus
	opts   Options
	log    *slog.Logger
	agents map[string]*agent.Agent
	flows  map[string]*flow.Flow

	mu     sync.Mutex
	active map[string]*activeRun
	held   map[jetstream.Msg]struct{} // queue messages to heartbeat

	stopWork context.CancelCauseFunc
	workDone chan struct{}
	sigSub   *nats.Subscription
}

type activeRun struct {
	msg    jetstream.Msg
	cancel context.CancelCauseFunc
}

// Errors the API maps onto status codes.
var (
	ErrNotFound     = errors.New("run not found")
	ErrUnknownAgent = errors.New("unknown agent")
	ErrInvalid      = errors.New("invalid request")
	ErrConflict     = errors.New("conflict")
)

// New returns a runtime over an open bus. Call Start to execute runs on
// this node; a runtime that is not started can still submit and read.
func New(b *bus.Bus, opts Options) (*Runtime, error) {
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
	for name, a := range opts.Agents {
		if a.Name == "" {
			a.Name = name
		}
		if err := a.Init(); err != nil {
			return nil, err
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
	return &Runtime{bus: b, opts: opts, log: opts.Logger, agents: opts.Agents, flows: opts.Flows,
		active: map[string]*activeRun{}, held: map[jetstream.Msg]struct{}{}}, nil
}

// Agents returns the agent definitions in name order.
func (r *Runtime) Agents() []*agent.Agent {
	out := make([]*agent.Agent, 0, len(r.agents))
	for _, a := range r.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Bus returns the runtime's bus.
func (r *Runtime) Bus() *bus.Bus { return r.bus }

// SubmitRequest starts a run.
type SubmitRequest struct {
	// Agent or Flow names what runs.
	Agent string
	Flow  string
	Input string
	// State is a flow run's initial state (a JSON object), over the
	// flow's declared initial values.
	State json.RawMessage
	// Instance is the key of the agent instance to continue ("customer-42"),
	// or "agent/key".
	Instance string
	Metadata map[string]string
	// IdempotencyKey makes the submission idempotent: the same key returns the
	// run it first created.
	IdempotencyKey string
	// ID, when set, is the new run's id (from NewRunID), so a caller can
	// listen on the run's subjects before it starts; empty makes one.
	ID string
}

// idempotencyTakeover is how old a claimed idempotency key without a run
// must be before another submission may take it over.
const idempotencyTakeover = 30 * time.Second

var instanceKey = regexp.MustCompile(`^[A-Za-z0-9_=-][A-Za-z0-9_=.-]{0,127}$`)

// Submit accepts a run. created is false when an idempotency key matched a
// run submitted before.
func (r *Runtime) Submit(ctx context.Context, req SubmitRequest) (rec *Record, created bool, err error) {
	switch {
	case req.Flow != "" && req.Agent != "":
		return nil, false, fmt.Errorf("%w: name an agent or a flow, not both", ErrInvalid)
	case req.Flow != "":
		if _, ok := r.flows[req.Flow]; !ok {
			if _, isAgent := r.agents[req.Flow]; isAgent {
				return nil, false, fmt.Errorf("%w: %q is an agent, not a flow: send it as agent", ErrUnknownAgent, req.Flow)
			}
			return nil, false, fmt.Errorf("%w: flow %q (known: %s)", ErrUnknownAgent, req.Flow, orNone(r.flowNames()))
		}
		if req.Instance != "" {
			return nil, false, fmt.Errorf("%w: instance: flows have no instances; keep state in the flow's state", ErrInvalid)
		}
		if len(req.State) > 0 {
			var obj map[string]any
			if json.Unmarshal(req.State, &obj) != nil || obj == nil {
				return nil, false, fmt.Errorf("%w: state: must be a JSON object", ErrInvalid)
			}
		}
	default:
		if _, ok := r.agents[req.Agent]; !ok {
			if _, isFlow := r.flows[req.Agent]; isFlow {
				return nil, false, fmt.Errorf("%w %q: it is a flow: send it as flow", ErrUnknownAgent, req.Agent)
			}
			known := strings.Join(r.agentNames(), ", ")
			if len(r.flows) > 0 {
				known += "; flows: " + strings.Join(r.flowNames(), ", ")
			}
			return nil, false, fmt.Errorf("%w %q (known: %s)", ErrUnknownAgent, req.Agent, known)
		}
		if len(req.State) > 0 {
			return nil, false, fmt.Errorf("%w: state: only flow runs take a state", ErrInvalid)
		}
	}
	if strings.TrimSpace(req.Input) == "" {
		return nil, false, fmt.Errorf("%w: input: must not be empty", ErrInvalid)
	}
	if req.Instance != "" {
		if a, k, ok := strings.Cut(req.Instance, "/"); ok {
			if a != req.Agent {
				return nil, false, fmt.Errorf("%w: instance: %q belongs to agent %q, not %q", ErrInvalid, req.Instance, a, req.Agent)
			}
			req.Instance = k
		}
		if !instanceKey.MatchString(req.Instance) {
			return nil, false, fmt.Errorf("%w: instance: %q must be 1-128 letters, digits, '_', '-', '=' or '.', not starting with '.'", ErrInvalid, req.Instance)
		}
	}
	// Past this point a half-done submission would leave a reserved turn or
	// a record without a queue entry: finish it even if the client leaves.
	ctx = context.WithoutCancel(ctx)
	id := req.ID
	if id == "" {
		id = NewRunID()
	} else if !runIDPattern.MatchString(id) {
		return nil, false, fmt.Errorf("%w: id: %q is not a run id", ErrInvalid, id)
	}
	var idemKey string
	if req.IdempotencyKey != "" {
		sum := sha256.Sum256([]byte(req.IdempotencyKey))
		idemKey = hex.EncodeToString(sum[:])
		if _, err := r.bus.Idem.Create(ctx, idemKey, []byte(id)); err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return nil, false, err
			}
			prev, err := r.bus.Idem.Get(ctx, idemKey)
			if err != nil {
				return nil, false, err
			}
			rec, _, err := r.get(ctx, string(prev.Value()))
			if err == nil {
				if rec.Status == StatusQueued && rec.StartedAt == nil {
					// The first submission may have failed to enqueue (it
					// then answered with an error): a retry heals it. The
					// queue refuses the copy if the first one got through.
					if err := r.enqueue(ctx, rec.ID, bus.QueuePrefix+rec.ID); err != nil {
						return nil, false, err
					}
				}
				return rec, false, nil
			}
			if !errors.Is(err, ErrNotFound) {
				return nil, false, err
			}
			if time.Since(prev.Created()) < idempotencyTakeover {
				return nil, false, fmt.Errorf("%w: a submission with this idempotency key is in progress; retry in a moment", ErrConflict)
			}
			// The first submission died between claiming the key and writing
			// its record: take the key over.
			if _, err := r.bus.Idem.Update(ctx, idemKey, []byte(id), prev.Revision()); err != nil {
				return nil, false, fmt.Errorf("%w: a submission with this idempotency key is in progress", ErrConflict)
			}
		}
	}
	rec = &Record{ID: id, Agent: req.Agent, Flow: req.Flow, State: req.State, Instance: req.Instance, Input: req.Input, Metadata: req.Metadata,
		Status: StatusQueued, CreatedAt: time.Now().UTC(), Wake: bus.QueuePrefix + id}
	if req.Instance != "" && r.agents[req.Agent].InterruptBusy {
		if rec.Input, err = r.interruptTurns(ctx, req.Agent, req.Instance, req.Input); err != nil {
			return nil, false, err
		}
	}
	if req.Instance != "" {
		if rec.Turn, err = r.reserveTurn(ctx, req.Agent, req.Instance, id); err != nil {
			return nil, false, err
		}
	}
	data, _ := json.Marshal(rec)
	if _, err := r.bus.Runs.Create(ctx, id, data); err != nil {
		return nil, false, fmt.Errorf("store run: %w", err)
	}
	if err := r.enqueue(ctx, id, bus.QueuePrefix+id); err != nil {
		return nil, false, err
	}
	return rec, true, nil
}

// enqueue puts a run on the work queue. The queue holds at most one entry
// per run, so enqueueing a run that is already waiting changes nothing, and
// retrying a failed publish is safe.
func (r *Runtime) enqueue(ctx context.Context, runID, subject string) error {
	var err error
	for attempt, wait := 0, 50*time.Millisecond; attempt < 4; attempt, wait = attempt+1, wait*2 {
		if attempt > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		_, err = r.bus.JS.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: []byte(runID)})
		if err == nil || alreadyQueued(err) {
			return nil
		}
	}
	return fmt.Errorf("enqueue run %s: %w (the run is stored; repeat the request to retry)", runID, err)
}

// alreadyQueued reports the server refusing a second entry for one run.
func alreadyQueued(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "maximum messages per subject")
}

func (r *Runtime) agentNames() []string {
	names := make([]string, 0, len(r.agents))
	for n := range r.agents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Get returns a run's record.
func (r *Runtime) Get(ctx context.Context, id string) (*Record, error) {
	rec, _, err := r.get(ctx, id)
	return rec, err
}

// Root runs have 28 hex digits; child runs 40 (see ChildRunID).
var runIDPattern = regexp.MustCompile(`^run_[0-9a-f]{28}(?:[0-9a-f]{12})?$`)

// ValidRunID reports whether id has the shape of a run id.
func ValidRunID(id string) bool { return runIDPattern.MatchString(id) }

func (r *Runtime) get(ctx context.Context, id string) (*Record, uint64, error) {
	if !runIDPattern.MatchString(id) {
		return nil, 0, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	e, err := r.bus.Runs.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, 0, err
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, 0, fmt.Errorf("run %s: corrupt record: %w", id, err)
	}
	return &rec, e.Revision(), nil
}

// update applies fn to a record with compare-and-set, retrying on races.
// fn returning errSkip leaves the record as it is.
func (r *Runtime) update(ctx context.Context, id string, fn func(*Record) error) (*Record, error) {
	return r.updateFrom(ctx, &Record{ID: id}, 0, fn)
}

// updateFrom is update starting from a record already read at revision rev
// (0: read it first), which saves a round trip when nobody raced.
func (r *Runtime) updateFrom(ctx context.Context, rec *Record, rev uint64, fn func(*Record) error) (*Record, error) {
	rec, _, err := r.updateFromRev(ctx, rec, rev, fn)
	return rec, err
}

// updateFromRev is updateFrom that also returns the record's new revision.
func (r *Runtime) updateFromRev(ctx context.Context, rec *Record, rev uint64, fn func(*Record) error) (*Record, uint64, error) {
	id := rec.ID
	// fn edits its argument, and the caller's record may be shared: work on
	// a copy.
	cp := *rec
	rec = &cp
	for attempt := 0; ; attempt++ {
		if rev == 0 || attempt > 0 {
			var err error
			if rec, rev, err = r.get(ctx, id); err != nil {
				return nil, 0, err
			}
		}
		if err := fn(rec); err != nil {
			if errors.Is(err, errSkip) {
				return rec, rev, nil
			}
			return rec, rev, err
		}
		data, _ := json.Marshal(rec)
		newRev, err := r.bus.Runs.Update(ctx, id, data, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return rec, newRev, nil
	}
}

var errSkip = errors.New("skip")

// ListFilter selects runs.
type ListFilter struct {
	Agent  string
	Flow   string
	Status Status
	// Parent keeps the children of one run; Roots keeps runs that have no
	// parent.
	Parent string
	Roots  bool
	Limit  int
	// Cursor is the last id of the previous page.
	Cursor string
}

// List returns runs, newest first, and the cursor of the next page.
func (r *Runtime) List(ctx context.Context, f ListFilter) ([]*Record, string, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 50
	}
	lister, err := r.bus.Runs.ListKeys(ctx)
	if err != nil {
		return nil, "", err
	}
	var ids []string
	for k := range lister.Keys() {
		ids = append(ids, k)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	var out []*Record
	next := ""
	for _, id := range ids {
		if f.Cursor != "" && id >= f.Cursor {
			continue
		}
		rec, err := r.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if (f.Agent != "" && rec.Agent != f.Agent) || (f.Flow != "" && rec.Flow != f.Flow) || (f.Status != "" && rec.Status != f.Status) ||
			(f.Parent != "" && rec.Parent != f.Parent) || (f.Roots && rec.Parent != "") {
			continue
		}
		if len(out) == f.Limit {
			next = out[len(out)-1].ID
			break
		}
		out = append(out, rec)
	}
	return out, next, nil
}

// Events returns a run's journal.
func (r *Runtime) Events(ctx context.Context, id string) ([]journal.Event, error) {
	if _, err := r.Get(ctx, id); err != nil {
		return nil, err
	}
	return journal.Load(ctx, r.bus, id)
}

// LastEvent returns a run's last journal entry; ok is false when the
// journal is empty.
func (r *Runtime) LastEvent(ctx context.Context, id string) (ev journal.Event, ok bool, err error) {
	m, err := r.bus.Journal.GetLastMsgForSubject(ctx, bus.JournalSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return journal.Event{}, false, nil
	}
	if err != nil {
		return journal.Event{}, false, err
	}
	ev, err = journal.Decode(m.Sequence, m.Data)
	return ev, err == nil, err
}

// Cancel asks a run to stop. A run no worker holds is canceled at once; a
// running one is signalled and ends as canceled at its next step.
func (r *Runtime) Cancel(ctx context.Context, id string) (*Record, error) {
	rec, err := r.update(ctx, id, func(rec *Record) error {
		if rec.Status.Terminal() || rec.CancelRequested {
			return errSkip
		}
		rec.CancelRequested = true
		return nil
	})
	if err != nil || rec.Status.Terminal() {
		return rec, err
	}
	if rec.Status != StatusRunning {
		// Nobody holds the run: write its end ourselves. The expected-sequence
		// append fails if a worker took it meanwhile; the signal covers that.
		if done, err := r.endParked(ctx, rec); err != nil || done != nil {
			return done, err
		}
	}
	if err := r.bus.NC.Publish(bus.SignalPrefix+id, []byte("cancel")); err != nil {
		return nil, err
	}
	return rec, nil
}

// endParked journals run.canceled for a run that no worker holds.
func (r *Runtime) endParked(ctx context.Context, rec *Record) (*Record, error) {
	w, err := journal.Open(ctx, r.bus, rec.ID)
	if err != nil {
		return nil, err
	}
	events := w.Events()
	if len(events) > 0 && journal.Terminal(events[len(events)-1].Type) {
		// Ended already (perhaps by an earlier cancel whose settle failed):
		// make sure the record says so.
		return r.settle(ctx, rec, events)
	}
	if _, err := w.Append(ctx, journal.TypeRunCanceled, journal.RunCanceled{Reason: "canceled by request", Usage: usageOf(events)}); err != nil {
		if errors.Is(err, journal.ErrConflict) {
			return nil, nil
		}
		return nil, err
	}
	return r.settle(ctx, rec, w.Events())
}

// Resolution decides what to do with a run in doubt.
type Resolution struct {
	Action string `json:"action"`
	Result string `json:"result,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Resolve decides the fate of a run in doubt and queues it again.
func (r *Runtime) Resolve(ctx context.Context, id string, res Resolution) (*Record, error) {
	switch res.Action {
	case journal.ResolveRetry, journal.ResolveSkip, journal.ResolveFail:
	case "":
		return nil, fmt.Errorf("%w: action: missing (retry, skip or fail)", ErrInvalid)
	default:
		return nil, fmt.Errorf("%w: action: %q is not one of retry, skip, fail", ErrInvalid, res.Action)
	}
	// Past validation, finish even if the client hangs up: a record queued
	// without its entry would wait for nothing.
	ctx = context.WithoutCancel(ctx)
	rec, err := r.update(ctx, id, func(rec *Record) error {
		if rec.Status == StatusQueued && rec.Resolution != nil && rec.Resolution.Action == res.Action {
			// The same decision again, after a failed enqueue: enqueue again.
			return errSkip
		}
		if rec.Status != StatusInDoubt || rec.InDoubt == nil {
			return fmt.Errorf("%w: run %s is %s, not in_doubt", ErrConflict, id, rec.Status)
		}
		rec.Resolution = &journal.ToolResolved{CallID: rec.InDoubt.CallID, Action: res.Action, Result: res.Result, Reason: res.Reason}
		rec.Status = StatusQueued
		// Its own subject: the entry that parked the run may not be acked
		// yet, and one subject holds only one entry.
		rec.Wake = fmt.Sprintf("%s%s.resolve.%d", bus.QueuePrefix, id, rec.Steps)
		return nil
	})
	if err != nil {
		return rec, err
	}
	return rec, r.enqueue(ctx, id, rec.Wake)
}

// Decision is a person's answer to an approval.
type Decision struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	// Arguments replace the model's arguments when approving with edits.
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// Decide answers one approval of a waiting run. Once every approval of the
// run is decided, the run is queued again.
func (r *Runtime) Decide(ctx context.Context, id, approvalID string, d Decision) (*Record, error) {
	switch d.Decision {
	case journal.Approve, journal.Deny:
	case "":
		return nil, fmt.Errorf("%w: decision: missing (approve or deny)", ErrInvalid)
	default:
		return nil, fmt.Errorf("%w: decision: %q is not approve or deny", ErrInvalid, d.Decision)
	}
	if len(d.Arguments) > 0 {
		var obj map[string]any
		if d.Decision != journal.Approve || json.Unmarshal(d.Arguments, &obj) != nil || obj == nil {
			return nil, fmt.Errorf("%w: arguments: a JSON object, and only with approve", ErrInvalid)
		}
	}
	ctx = context.WithoutCancel(ctx)
	var ready bool
	rec, err := r.update(ctx, id, func(rec *Record) error {
		var ask *journal.ApprovalRequested
		for i := range rec.Approvals {
			if rec.Approvals[i].ApprovalID == approvalID {
				ask = &rec.Approvals[i]
			}
		}
		if rec.Status == StatusQueued && ask != nil && len(rec.Decisions) == len(rec.Approvals) {
			for _, prev := range rec.Decisions {
				if prev.ApprovalID == approvalID && prev.Decision == d.Decision {
					// The same decision again after a failed enqueue: enqueue
					// again (harmless if the first got through).
					ready = true
					return errSkip
				}
			}
		}
		if rec.Status != StatusWaiting || ask == nil {
			return fmt.Errorf("%w: run %s has no pending approval %q (it is %s)", ErrConflict, id, approvalID, rec.Status)
		}
		if len(d.Arguments) > 0 {
			if err := r.checkArguments(rec.Agent, ask.Name, d.Arguments); err != nil {
				return fmt.Errorf("%w: arguments: %v", ErrInvalid, err)
			}
		}
		for _, prev := range rec.Decisions {
			if prev.ApprovalID == approvalID {
				return fmt.Errorf("%w: approval %q is already decided (%s)", ErrConflict, approvalID, prev.Decision)
			}
		}
		rec.Decisions = append(rec.Decisions, journal.ApprovalDecided{ApprovalID: approvalID, CallID: ask.CallID,
			Decision: d.Decision, Arguments: d.Arguments, Reason: d.Reason})
		ready = len(rec.Decisions) == len(rec.Approvals)
		if ready {
			rec.Status = StatusQueued
			rec.Wake = fmt.Sprintf("%s%s.decided.%d", bus.QueuePrefix, id, rec.Steps)
		}
		return nil
	})
	if err != nil || !ready {
		return rec, err
	}
	return rec, r.enqueue(ctx, id, rec.Wake)
}

// checkArguments validates edited arguments against the tool's schema, so
// a bad edit is refused to the person rather than shown to the model.
func (r *Runtime) checkArguments(agentName, toolName string, args json.RawMessage) error {
	a := r.agents[agentName]
	if a == nil {
		return nil // another node's agent: its worker validates before the call
	}
	return a.ValidateArguments(toolName, args)
}

// PendingApproval is one call waiting for a person.
type PendingApproval struct {
	RunID string `json:"run_id"`
	// Agent is the agent that asked (after a handoff, not the run's first).
	Agent string `json:"agent"`
	journal.ApprovalRequested
}

// PendingApprovals lists the calls waiting for a decision, newest run first.
func (r *Runtime) PendingApprovals(ctx context.Context, agentName string) ([]PendingApproval, error) {
	var out []PendingApproval
	cursor := ""
	for {
		runs, next, err := r.List(ctx, ListFilter{Status: StatusWaiting, Limit: 1000, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, rec := range runs {
			for _, a := range rec.PendingApprovals() {
				p := PendingApproval{RunID: rec.ID, Agent: rec.Agent, ApprovalRequested: a}
				if a.Agent != "" {
					p.Agent = a.Agent // the agent holding the conversation
				}
				if agentName == "" || p.Agent == agentName || rec.Agent == agentName {
					out = append(out, p)
				}
			}
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// Wait blocks until a run is terminal, in doubt or waiting for a person, or
// ctx ends. A run waiting for its child runs is not done waiting.
func (r *Runtime) Wait(ctx context.Context, id string) (*Record, error) {
	if !runIDPattern.MatchString(id) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	// A watch delivers only updates the stream has stored. (A plain
	// subscription to the key's subject would see an update before it is
	// stored, and sometimes updates the stream then refuses.)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := r.bus.Runs.Watch(wctx, id, jetstream.UpdatesOnly())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	rec, err := r.Get(ctx, id)
	for err == nil && !settled(rec) {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return rec, fmt.Errorf("wait for run %s: the connection to NATS closed", id)
			}
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				var next Record
				if json.Unmarshal(e.Value(), &next) == nil {
					rec = &next
				}
			}
		case <-ctx.Done():
			return rec, ctx.Err()
		}
	}
	return rec, err
}

// settled reports a run that needs someone to act (or nothing more): a run
// waiting for its own children or a timer is still at work.
func settled(rec *Record) bool {
	return rec.Status.Terminal() || rec.Status == StatusInDoubt ||
		rec.Status == StatusWaiting && rec.WaitingFor != WaitChildren && rec.WaitingFor != WaitTimer
}
