package engine

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/myriad-ai/myriad/internal/redact"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// Runner executes the runs of one agent or flow.
type Runner interface {
	Resume(ctx context.Context, runID string, events []journal.Event, j agent.Journal, env agent.Env) (agent.Outcome, error)
}

var (
	_ Runner = (*agent.Agent)(nil)
	_ Runner = (*flow.Flow)(nil)
)

// unknownAgentDeliveries is how many times a run of an agent this node does
// not define is offered to the cluster before it fails.
const unknownAgentDeliveries = 10

// execution is one worker's hold on a run, from its claim to its release.
// The worker is the run's single writer: it takes the run's inputs in
// order, resumes the run's agent or flow, and settles.
type execution struct {
	e     *Engine
	id    string
	claim *store.Claim
	log   *slog.Logger
	began time.Time

	// mu serialises appends: the runner's, and the inputs taken while it
	// runs (a cancel, an answer to a tool call's question).
	mu      sync.Mutex
	j       *store.Journal
	sub     *submission
	subSeq  uint64           // the submission's position
	pending []store.InputMsg // read, not taken yet
	// unseen are entries appended for inputs that the runner has not
	// folded: the run is resumed again if it ends its turn with any.
	unseen  []journal.Event
	running bool
	cancel  context.CancelCauseFunc

	wake     chan struct{} // pokes while the runner runs
	readMu   sync.Mutex    // one read of the inputs at a time
	readUpTo uint64        // the last input read
	poked    atomic.Bool   // an input was stored since the last read
	asks     sync.Map      // open questions of tool calls: key → chan json.RawMessage

	recMu    sync.Mutex // orders record writes
	settling bool

	info *run.Info // who the run is, for observers (see runInfo)

	slot chan struct{} // the agent's slot it holds (max_concurrent)
}

// unstartedAgent is the agent of a run that has not started, from its
// submission ("" when it has started, or its submission is not here).
func (x *execution) unstartedAgent() string {
	if len(x.j.Events()) > 0 {
		return ""
	}
	for _, in := range x.pending {
		if isSubmission(in) {
			var sub submission
			if json.Unmarshal(in.Data, &sub) == nil {
				return sub.Agent
			}
		}
	}
	return ""
}

// takeSlot takes one of the slots of an agent with max_concurrent; false
// when this node runs as many of its runs as it may.
func (x *execution) takeSlot(agentName string) bool {
	slots := x.e.slots[agentName]
	if slots == nil || x.slot != nil {
		return true
	}
	select {
	case slots <- struct{}{}:
		x.slot = slots
		return true
	default:
		return false
	}
}

func (x *execution) giveSlot() {
	if x.slot != nil {
		<-x.slot
		x.slot = nil
	}
}

// leaveForSlot hands the run's entry back, for when its agent has a slot.
func (x *execution) leaveForSlot() {
	n := x.claim.Delivered()
	x.log.Debug("left on the queue: its agent's max_concurrent runs execute on this node", "deliveries", n)
	x.claim.Retry(slotRetry(n))
}

// slotRetry is how long a run left on the queue for want of a slot waits
// before it is offered again: soon at first, then backing off to 2 s, so
// that many waiting runs do not keep the workers busy offering them.
func slotRetry(delivered uint64) time.Duration {
	return min(50*time.Millisecond<<min(delivered, 6), 2*time.Second)
}

// workRun executes one claimed run until it ends, parks, or this worker
// loses it.
func (e *Engine) workRun(workCtx context.Context, c *store.Claim) {
	x := &execution{e: e, id: c.Entity, claim: c, log: e.log.With("run_id", c.Entity), began: time.Now(), wake: make(chan struct{}, 1)}
	if !e.activate(x.id, x) {
		return
	}
	defer e.deactivate(x.id, x)
	defer x.giveSlot()
	ctx := context.WithoutCancel(workCtx)
	// Active before it reads its inputs: a poke for an input stored after
	// the read reaches it (see Engine.onPoke).
	// A submission's first delivery finds the journal empty (a
	// redelivery may not: assume nothing).
	if err := x.load(ctx, c.Data != nil && c.Delivered() == 1, c.Data); err != nil {
		x.log.Warn("load run", "err", err)
		c.Retry(time.Second)
		return
	}
	if name := x.unstartedAgent(); name != "" && !x.takeSlot(name) {
		// Not started while its agent has no slot here: its run.started
		// comes when it does start.
		x.leaveForSlot()
		return
	}
	lazy := time.AfterFunc(runningAfter, x.markRunning)
	defer lazy.Stop()
	switch err := x.execute(ctx); {
	case errors.Is(err, journal.ErrConflict):
		// Another worker holds the run (this one's entry was given away
		// while it could not heartbeat): leave the entry alone.
		x.log.Warn("another worker advanced this run; stopping")
		return
	case errors.Is(err, agent.ErrShutdown):
		x.log.Info("left run for another worker (shutting down)")
		c.Release()
		return
	case errors.Is(err, errNotHere):
		x.log.Debug("offered to another node: the run's agent is not defined here", "deliveries", c.Delivered())
		c.Retry(time.Second)
		return
	case errors.Is(err, errNoSlot):
		x.leaveForSlot()
		return
	case errors.Is(err, errNotStarted):
		// A turn waiting for its instance (the instance starts it), or a
		// run rung by an input that came before its submission (which
		// rings it again).
	case errors.Is(err, errSettled):
		x.log.Debug("inputs after the run's end: nothing to do")
	case errors.Is(err, errDeleted):
		x.log.Debug("the run was deleted: nothing to do")
	case err != nil:
		x.log.Error("run stopped", "err", redact.Error(err))
		c.Retry(time.Second)
		return
	default:
		if err := x.settle(ctx); err != nil {
			x.log.Warn("settle run", "err", err)
			c.Retry(time.Second)
			return
		}
	}
	e.deactivate(x.id, x)
	e.letGo(ctx, c, x.id, x.poked.Load())
}

// letGo acknowledges an entity's entry. An input that came after the last
// read found the entry held: ring again now that it is free (the router
// would, later), once the server has the acknowledgement.
func (e *Engine) letGo(ctx context.Context, c *store.Claim, id string, poked bool) {
	if e.log.Enabled(ctx, slog.LevelDebug) { // every run passes here
		e.log.Debug("let go", "entity", id, "poked", poked, "delivered", c.Delivered())
	}
	if !poked {
		c.Finish()
		return
	}
	if err := c.Done(ctx); err != nil {
		e.log.Warn("release", "entity", id, "err", err)
	}
	if _, err := e.st.Ring(ctx, id, "input"); err != nil {
		e.log.Warn("ring", "entity", id, "err", err)
	}
}

var (
	errNoSlot     = errors.New("the run's agent runs as many runs as its max_concurrent on this node")
	errNotHere    = errors.New("the run's agent or flow is not defined on this node")
	errNotStarted = errors.New("the run waits for its submission, or its instance")
	errSettled    = errors.New("the run ended and was settled before")
	errDeleted    = errors.New("the run was deleted")
)

// settledBefore reports a run that ended before this worker came, and
// whose record says so at its last entry: it was settled (the record
// comes last), and an input that came after the end is moot. Settling
// again would report to its parent and run OnFinish again.
func (x *execution) settledBefore(ctx context.Context, lastSeq uint64) bool {
	data, err := x.e.st.Record(ctx, x.id)
	if err != nil {
		return false
	}
	var rec run.Record
	return json.Unmarshal(data, &rec) == nil && rec.Status.Terminal() && rec.Position == lastSeq
}

// runningAfter is how long a run executes before its record says running:
// most runs settle sooner, and then the record is written once.
const runningAfter = 100 * time.Millisecond

// load reads the run's journal and its inputs not taken yet. A run queued
// with its submission has an empty journal, unless a worker died after
// starting it (or a parent spawned it again): fresh assumes the first, and
// the first append finds out; submission is the queue entry's.
func (x *execution) load(ctx context.Context, fresh bool, submission []byte) error {
	var events []journal.Event
	if !fresh {
		var err error
		if events, err = x.e.st.LoadJournal(ctx, x.id); err != nil {
			return err
		}
	}
	x.j = x.e.st.JournalFrom(x.id, events)
	x.pending, x.readUpTo = nil, 0
	if len(events) == 0 && submission != nil {
		// Not an input of the stream: it has no position.
		x.pending = append(x.pending, store.InputMsg{To: x.id, Kind: kindSubmit, Data: submission})
	}
	x.sub, x.info = nil, nil
	return x.readInputs(ctx)
}

// execute takes the run's inputs and resumes it until it has nothing more
// to do now: it ended, parked, or waits for its instance. A shutdown does
// not cut ctx: it interrupts the runner at a step boundary (interrupt).
func (x *execution) execute(ctx context.Context) error {
	if err := x.withdrawStale(ctx); err != nil {
		return err
	}
	loaded := len(x.j.Events())
	for {
		if err := x.takeAll(ctx); err != nil {
			if errors.Is(err, journal.ErrConflict) && len(x.j.Events()) == 0 {
				// Not fresh after all: read the journal and go again.
				if err := x.load(ctx, false, x.claim.Data); err != nil {
					return err
				}
				if err := x.withdrawStale(ctx); err != nil {
					return err
				}
				loaded = len(x.j.Events())
				continue
			}
			return err
		}
		// A fork whose copy a crash cut short copies the rest first.
		x.mu.Lock()
		err := x.copyFork(ctx, nil)
		x.mu.Unlock()
		if err != nil {
			return err
		}
		events := x.j.Events()
		if len(events) == 0 {
			return errNotStarted
		}
		last := events[len(events)-1]
		if journal.Terminal(last.Type) {
			if len(events) == loaded && x.settledBefore(ctx, last.Seq) {
				return errSettled
			}
			return nil
		}
		if refused := refusedStart(last); refused != nil {
			// Refused as it started, by a worker that died before
			// failing it.
			_, err := x.append(ctx, journal.TypeRunFailed, *refused)
			return err
		}
		if why, ok := cancelRequested(events); ok {
			// A cancel taken by a worker that died before ending the run.
			if _, err := x.append(ctx, journal.TypeRunCanceled, journal.RunCanceled{Reason: why, Usage: journal.Usage(events)}); err != nil {
				return err
			}
			return nil
		}
		again, err := x.resume(ctx)
		if err != nil || !again {
			return err
		}
	}
}

// resume runs the run's agent or flow once. again reports inputs taken
// while it ran that it did not see: it must be resumed again.
func (x *execution) resume(ctx context.Context) (again bool, err error) {
	rec := project(x.id, x.sub, x.j.Events())
	runner := x.e.runnerFor(rec)
	if runner == nil {
		if x.claim.Delivered() < unknownAgentDeliveries {
			// During a rolling deploy another node may know it.
			return false, errNotHere
		}
		msg := fmt.Sprintf("agent %q is not defined on this node (known: %s)", rec.Agent, strings.Join(x.e.agentNames(), ", "))
		if rec.Flow != "" {
			msg = fmt.Sprintf("flow %q is not defined on this node (known: %s)", rec.Flow, strings.Join(x.e.flowNames(), ", "))
		}
		_, err := x.append(ctx, journal.TypeRunFailed, journal.RunFailed{Code: agent.CodeUnknownAgent, Message: msg})
		return false, err
	}
	if !x.takeSlot(rec.Agent) {
		return false, errNoSlot
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// A shutdown interrupts the run at a step boundary (see serve's drain);
	// only then is the run's context cut.
	x.mu.Lock()
	x.running, x.cancel, x.unseen = true, cancel, nil
	events := x.j.Events()
	x.mu.Unlock()
	if events[len(events)-1].Type != journal.TypeRunStarted {
		x.log.Debug("resuming run", "steps", len(events))
	}
	env := agent.Env{OnDelta: x.publishDelta(rec), OnProgress: x.publishProgress(rec), Children: x.e, Lookup: x.e.lookupAgent,
		Inputs: x.inputsForRunner, Ask: x.askDuringCall(rec), TraceParent: rec.Metadata["traceparent"],
		Budget: x.e.budgetFor(rec.Metadata), Carry: x.e.carry, Models: x.e.model, Messenger: x.e.messenger(rec, x.e.agents[rec.Agent])}
	done := make(chan struct{})
	go x.listen(done)
	outcome, err := runner.Resume(runCtx, x.id, events, x, env)
	close(done)
	x.mu.Lock()
	x.running, x.cancel = false, nil
	unseen := len(x.unseen) > 0
	x.mu.Unlock()
	if errors.Is(err, store.ErrTooLarge) {
		// Retrying cannot help: end the run with a small entry that fits.
		_, err = x.append(ctx, journal.TypeRunFailed, journal.RunFailed{Code: agent.CodeTooLarge,
			Message: "a step of this run is larger than the NATS server's max_payload; shorten the input or tool results, or raise max_payload on the NATS server"})
		return false, err
	}
	if err != nil || outcome == agent.Stopped {
		if err == nil {
			err = context.Cause(runCtx)
		}
		if errors.Is(context.Cause(runCtx), agent.ErrShutdown) {
			return false, agent.ErrShutdown
		}
		return false, err
	}
	if outcome == agent.Completed || outcome == agent.Failed || outcome == agent.Canceled {
		return false, nil
	}
	// Parked or in doubt: inputs that came meanwhile may move it on.
	if x.poked.Load() {
		if err := x.readInputs(ctx); err != nil {
			return false, err
		}
	}
	x.mu.Lock()
	more := len(x.pending) > 0
	x.mu.Unlock()
	return unseen || more, nil
}

// interrupt cuts the run's context (a shutdown after the drain timeout).
func (x *execution) interrupt(cause error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cancel != nil {
		x.cancel(cause)
	}
}

// Append implements agent.Journal for the runner.
func (x *execution) Append(ctx context.Context, typ string, data any) (journal.Event, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ev, err := x.j.Append(ctx, typ, data)
	if err == nil {
		x.journaled(ev, data)
	}
	return ev, err
}

// Steps is the number of entries in the journal (for idempotency keys).
func (x *execution) Steps() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.j.Steps()
}

// append journals an entry the engine writes itself (not the runner's).
func (x *execution) append(ctx context.Context, typ string, data any) (journal.Event, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.appendLocked(ctx, typ, data)
}

func (x *execution) appendLocked(ctx context.Context, typ string, data any) (journal.Event, error) {
	return x.appendFor(ctx, 0, typ, data)
}

// appendFor journals the entry that takes the input at position inputSeq
// (see store.Journal.AppendFor); x.mu must be held.
func (x *execution) appendFor(ctx context.Context, inputSeq uint64, typ string, data any) (journal.Event, error) {
	ev, err := x.j.AppendFor(ctx, inputSeq, typ, data)
	if err == nil {
		x.journaled(ev, data)
		if x.running {
			x.unseen = append(x.unseen, ev)
		}
	}
	return ev, err
}

// runnerFor returns what executes a run, or nil if this node lacks it.
func (e *Engine) runnerFor(rec *run.Record) Runner {
	if rec.Flow != "" {
		if f := e.flows[rec.Flow]; f != nil {
			return f
		}
		return nil
	}
	if a := e.agents[rec.Agent]; a != nil {
		return a
	}
	return nil
}

// refusedStart returns the refusal of a run.started entry that refuses
// its run (journal.RunStarted.Refused), nil for any other entry.
func refusedStart(ev journal.Event) *journal.RunFailed {
	if ev.Type != journal.TypeRunStarted || !bytes.Contains(ev.Data, []byte(`"refused":`)) {
		return nil
	}
	var st struct {
		Refused *journal.RunFailed `json:"refused"`
	}
	_ = json.Unmarshal(ev.Data, &st)
	return st.Refused
}

// cancelRequested reports a cancel the journal took that did not end the
// run yet.
func cancelRequested(events []journal.Event) (reason string, ok bool) {
	for i := len(events) - 1; i >= 0; i-- {
		switch events[i].Type {
		case journal.TypeCancelRequested:
			var d journal.CancelRequested
			_ = json.Unmarshal(events[i].Data, &d)
			return cmp.Or(d.Reason, "canceled by request"), true
		case journal.TypeRunCompleted, journal.TypeRunFailed, journal.TypeRunCanceled:
			return "", false
		}
	}
	return "", false
}

// markRunning writes the record of a run that has been executing for a
// while, so readers see it running.
func (x *execution) markRunning() {
	x.mu.Lock()
	events := append([]journal.Event(nil), x.j.Events()...)
	sub := x.sub
	x.mu.Unlock()
	x.writeRecord(context.Background(), project(x.id, sub, events), false)
}

// writeRecord writes the run's record; once the settle has written it,
// nothing earlier may overwrite it.
func (x *execution) writeRecord(ctx context.Context, rec *run.Record, final bool) error {
	x.recMu.Lock()
	defer x.recMu.Unlock()
	if x.settling && !final {
		return nil
	}
	if final {
		x.settling = true
	}
	if !final && (rec.Steps == 0 || rec.Status.Terminal()) {
		// A run's ended record is its settle's alone, written last: a
		// worker that finds it knows the settle is done (settledBefore).
		// The lazy "running" write firing while the settle waits on a
		// slow store must not write it early, or a retried settle would
		// skip telling the run's instance and parent.
		return nil
	}
	err := x.e.st.PutRecord(ctx, x.id, mustJSON(rec))
	if errors.Is(err, store.ErrTooLarge) {
		// A NATS server with a small max_payload: the journal has it
		// all, the record a part.
		err = x.e.st.PutRecord(ctx, x.id, mustJSON(rec.Shrunk(16<<10)))
	}
	if errors.Is(err, store.ErrTooLarge) && final {
		// Even so (long metadata): what any record holds. (A record
		// not written before the end leaves readers to the journal.)
		tiny := rec.Shrunk(512)
		tiny.Metadata, tiny.Approvals, tiny.InputRequests, tiny.InDoubt = nil, nil, nil, nil
		err = x.e.st.PutRecord(ctx, x.id, mustJSON(tiny))
	}
	return err
}

func statsOf(events []journal.Event, wall time.Duration) RunStats {
	s := RunStats{Wall: wall, Steps: len(events)}
	for _, ev := range events {
		switch ev.Type {
		case journal.TypeModelResponse:
			var d journal.ModelResponse
			if json.Unmarshal(ev.Data, &d) == nil {
				s.ModelTime += time.Duration(d.DurationMS * float64(time.Millisecond))
				s.ModelCalls++
			}
		case journal.TypeToolFinished:
			var d journal.ToolFinished
			if json.Unmarshal(ev.Data, &d) == nil {
				s.ToolTime += time.Duration(d.DurationMS * float64(time.Millisecond))
				s.ToolCalls++
			}
		}
	}
	return s
}
