package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/tool"
)

// turnWait is how soon a run whose instance is busy with an earlier turn is
// offered again: quickly at first, then backing off to 2 s, so a turn that
// waits behind a long or parked one does not spin.
func turnWait(msg jetstream.Msg) time.Duration {
	d := 50 * time.Millisecond
	if meta, err := msg.Metadata(); err == nil {
		d *= time.Duration(min(meta.NumDelivered, 40))
	}
	return d
}

// unknownAgentDeliveries is how many times a run of an agent this node does
// not define is offered to the cluster before it fails.
const unknownAgentDeliveries = 10

// Start begins executing runs from the work queue on this node.
func (r *Runtime) Start(ctx context.Context) error {
	if err := r.installSchedules(ctx); err != nil {
		return err
	}
	sub, err := r.bus.NC.Subscribe(bus.SignalPrefix+"*", r.onSignal)
	if err != nil {
		return err
	}
	r.sigSub = sub
	workCtx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	r.stopWork = stop
	r.workDone = make(chan struct{})
	// Pull a little ahead of the free workers: every message pulled is
	// heartbeated from the moment it arrives, so none is redelivered while
	// it waits here for a worker.
	// Short pull expiries: a pull the server and client disagree about
	// (seen under bursts of thousands of runs) then stalls claims for at
	// most a couple of seconds instead of the 30 s default.
	it, err := r.bus.Queue.Messages(jetstream.PullMaxMessages(min(r.opts.Workers, 256)), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		return err
	}
	fired, err := r.bus.Fired.Messages(jetstream.PullMaxMessages(64), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		return err
	}
	context.AfterFunc(workCtx, fired.Stop)
	go r.watchFired(workCtx, fired)
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	go r.heartbeat(hbCtx)
	slots := make(chan struct{}, r.opts.Workers)
	go func() {
		defer close(r.workDone)
		defer stopHeartbeat()
		// On stop, drain: no new pulls, and what is already buffered comes
		// out of Next to be handed back below rather than waiting out AckWait.
		context.AfterFunc(workCtx, it.Drain)
		var inflight sync.WaitGroup
		for {
			msg, err := it.Next()
			if err != nil {
				if workCtx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					break
				}
				r.log.Warn("work queue", "err", err)
				continue
			}
			if workCtx.Err() != nil {
				_ = msg.Nak()
				continue
			}
			r.hold(msg)
			select {
			case slots <- struct{}{}:
			case <-workCtx.Done():
				r.release(msg)
				_ = msg.Nak()
				continue
			}
			inflight.Go(func() {
				defer func() { <-slots }()
				defer r.release(msg)
				defer func() {
					// A panicking tool or provider must not take the node
					// down; the run is offered again later.
					if p := recover(); p != nil {
						r.log.Error("run panicked", "run_id", string(msg.Data()), "panic", p, "stack", string(debug.Stack()))
						_ = msg.NakWithDelay(10 * bus.AckWait)
					}
				}()
				r.handle(workCtx, msg)
			})
		}
		// Drain: let runs in flight reach their end or a step boundary, then
		// cut the rest; their journals let another worker resume them. The
		// heartbeat goes on until then, so nobody takes them over early.
		drained := make(chan struct{})
		go func() { inflight.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(r.opts.DrainTimeout):
			r.mu.Lock()
			for _, a := range r.active {
				a.cancel(agent.ErrShutdown)
			}
			r.mu.Unlock()
			select {
			case <-drained:
			case <-time.After(r.opts.DrainTimeout):
				// A tool that ignores its context: give up on it. Its run
				// is resumed elsewhere once this process is gone.
				r.log.Warn("stopping with runs still in flight")
			}
		}
	}()
	return nil
}

// Stop stops claiming runs, lets running steps finish (up to the drain
// timeout) and hands unfinished runs back to the queue for the next worker.
func (r *Runtime) Stop() {
	if r.stopWork == nil {
		return
	}
	r.stopWork(agent.ErrShutdown)
	<-r.workDone
	if r.sigSub != nil {
		_ = r.sigSub.Unsubscribe()
	}
}

func (r *Runtime) hold(msg jetstream.Msg) {
	r.mu.Lock()
	r.held[msg] = struct{}{}
	r.mu.Unlock()
}

func (r *Runtime) release(msg jetstream.Msg) {
	r.mu.Lock()
	delete(r.held, msg)
	r.mu.Unlock()
}

// heartbeat tells JetStream that every message this node holds is still
// being worked on, well within bus.AckWait.
func (r *Runtime) heartbeat(ctx context.Context) {
	t := time.NewTicker(bus.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(r.held))
		for m := range r.held {
			msgs = append(msgs, m)
		}
		r.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress()
		}
	}
}

func (r *Runtime) onSignal(m *nats.Msg) {
	id := strings.TrimPrefix(m.Subject, bus.SignalPrefix)
	if string(m.Data) != "cancel" {
		return
	}
	r.mu.Lock()
	a := r.active[id]
	r.mu.Unlock()
	if a != nil {
		a.cancel(agent.ErrCanceled)
	}
}

// handle executes one claimed run until it ends, parks, or this worker
// loses it.
func (r *Runtime) handle(workCtx context.Context, msg jetstream.Msg) {
	id := string(msg.Data())
	log := r.log.With("run_id", id)
	ctx := context.WithoutCancel(workCtx)
	rec, rev, err := r.get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		if meta, merr := msg.Metadata(); merr == nil && meta.NumDelivered < 5 {
			// On a replicated bucket a fresh record may not have reached
			// the replica that answered yet.
			_ = msg.NakWithDelay(time.Second)
			return
		}
		log.Error("queued run has no record; dropping the queue entry")
		_ = msg.Term()
		return
	}
	if err != nil {
		log.Warn("read run record", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if rec.Flow != "" {
		log = log.With("flow", rec.Flow)
	} else {
		log = log.With("agent", rec.Agent)
	}
	if rec.Wake != "" && msg.Subject() != rec.Wake {
		if rec.Status == StatusQueued {
			// The owning entry may never have been published (its
			// publisher died): make sure it exists before dropping this one.
			if err := r.enqueue(ctx, id, rec.Wake); err != nil {
				_ = msg.NakWithDelay(time.Second)
				return
			}
		}
		_ = msg.Ack() // a leftover entry: another one owns the run now
		return
	}
	var history []model.Message
	startAgent := rec.Agent
	if rec.Turn > 0 {
		in, _, err := r.getInstance(ctx, rec.Agent, rec.Instance)
		if err != nil {
			_ = msg.NakWithDelay(time.Second)
			return
		}
		switch {
		case in.Done >= rec.Turn && (rec.Status.Terminal() || rec.Status == StatusInDoubt && rec.Resolution == nil):
			_ = msg.Ack() // this turn is over and settled; a stale delivery
			return
		case in.Done >= rec.Turn:
			// The instance moved on but the record was never settled (the
			// last worker died in between): settle it from the journal below.
		case in.Done+1 < rec.Turn:
			if r.skipOrphanTurn(ctx, in, in.Done+1) {
				_ = msg.Nak()
			} else {
				_ = msg.NakWithDelay(turnWait(msg))
			}
			return
		}
		history = in.Messages
		if in.Active != "" {
			// A handoff in an earlier turn left the conversation with
			// another agent: it answers this turn too.
			startAgent = in.Active
		}
	}
	// One copy of a run per node: a redelivery that races its own active
	// copy is left alone; the active copy acks the shared message.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	if other, busy := r.active[id]; busy {
		r.mu.Unlock()
		if other.msg.Subject() != msg.Subject() {
			// A new entry (a wake-up) queued while the active copy is
			// finishing: offer it again shortly rather than after AckWait.
			_ = msg.NakWithDelay(20 * time.Millisecond)
		}
		return
	}
	self := &activeRun{msg: msg, cancel: cancel}
	r.active[id] = self
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if r.active[id] == self {
			delete(r.active, id)
		}
		r.mu.Unlock()
	}()
	if rec.Status == StatusRunning {
		// Taking over a run: a cancel signalled before we registered above
		// was lost, so read the record again for its cancel flag.
		if rec, rev, err = r.get(ctx, id); err != nil {
			_ = msg.NakWithDelay(time.Second)
			return
		}
	}

	// A run no worker ever started, and nobody asked to cancel, has an empty
	// journal (workers set StartedAt before their first append, and cancel
	// sets CancelRequested before writing): skip reading it.
	var w *journal.Writer
	fresh := rec.StartedAt == nil && !rec.CancelRequested
	if fresh {
		w = journal.NewWriter(r.bus, id)
	} else {
		w, err = journal.Open(ctx, r.bus, id)
	}
	if err != nil {
		log.Warn("load journal", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	events := w.Events()
	if n := len(events); n > 0 && (journal.Terminal(events[n-1].Type) ||
		events[n-1].Type == journal.TypeRunInDoubt && rec.Resolution == nil) {
		// Journaled but not yet settled (the last worker died in between).
		if _, err := r.settle(ctx, rec, events); err != nil {
			log.Warn("settle run", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.Ack()
		return
	}
	if rec.Status.Terminal() || rec.Status == StatusInDoubt && rec.Resolution == nil ||
		rec.Status == StatusWaiting && len(rec.Decisions) == 0 {
		if rec.Status == StatusWaiting && rec.WakeAt != nil {
			// Its settle may have died before setting the timer: set it
			// (again; a schedule replaces itself) before letting go.
			if err := r.scheduleWake(ctx, id, *rec.WakeAt); err != nil {
				_ = msg.NakWithDelay(time.Second)
				return
			}
		}
		_ = msg.Ack() // a stale delivery of a settled or parked run
		return
	}
	if len(events) > 0 {
		if rec.Status == StatusRunning {
			// A worker held it and is gone: recovery worth a line.
			log.Info("resuming run from its journal", "steps", len(events), "resolution", rec.Resolution != nil)
		} else {
			// A parked run woken by a decision, an answer, a child or a timer.
			log.Debug("continuing run", "steps", len(events), "wakes", rec.Wakes)
		}
	}

	a := r.runnerFor(rec)
	if a == nil {
		// During a rolling deploy another node may know the agent: offer the
		// run around for a while before failing it.
		if meta, merr := msg.Metadata(); merr == nil && meta.NumDelivered < unknownAgentDeliveries {
			_ = msg.NakWithDelay(time.Second)
			return
		}
	}

	began := time.Now()
	if rec.Status != StatusRunning {
		rec, rev, err = r.updateFromRev(ctx, rec, rev, func(rec *Record) error {
			if rec.Status.Terminal() {
				return errSkip
			}
			now := time.Now().UTC()
			rec.Status = StatusRunning
			// Whatever a child reported so far, this worker reads now.
			rec.Nudged = false
			if rec.StartedAt == nil {
				rec.StartedAt = &now
			}
			return nil
		})
		if err != nil {
			log.Warn("mark run running", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		if rec.Status.Terminal() {
			_ = msg.Ack() // settled meanwhile by another worker
			return
		}
	}
	if slices.ContainsFunc(rec.InputRequests, func(q journal.InputRequested) bool { return q.Call != "" }) {
		// Questions of tool calls in flight: a worker taking the run has
		// none, so these are left over from one that died. (A call asks
		// again when it is made again.)
		if rec, rev, err = r.updateFromRev(ctx, rec, rev, func(rec *Record) error {
			var stale []string
			rec.InputRequests = slices.DeleteFunc(rec.InputRequests, func(q journal.InputRequested) bool {
				if q.Call != "" {
					stale = append(stale, q.Key)
				}
				return q.Call != ""
			})
			rec.Inputs = slices.DeleteFunc(rec.Inputs, func(in journal.InputReceived) bool { return slices.Contains(stale, in.Key) })
			return nil
		}); err != nil {
			log.Warn("drop stale questions", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
	}
	if rec.CancelRequested {
		cancel(agent.ErrCanceled)
	}
	if len(events) == 0 {
		start := journal.RunStarted{Agent: startAgent, Instance: rec.Instance, Input: rec.Input, Metadata: rec.Metadata, History: history,
			Parent: rec.Parent, ParentCall: rec.ParentCall, Path: rec.Path, Depth: rec.Depth, Flow: rec.Flow, State: rec.State}
		if rec.Parent != "" {
			start.History = rec.History
		}
		if _, err := w.Append(ctx, journal.TypeRunStarted, start); err != nil {
			if fresh && errors.Is(err, journal.ErrConflict) {
				// The journal was not empty after all; StartedAt is set now,
				// so the next delivery reads it. Not at once: if another
				// worker is advancing the run, let it.
				_ = msg.NakWithDelay(bus.AckWait)
				return
			}
			r.lost(ctx, log, rec, err)
			return
		}
		if len(rec.State) > 0 || len(rec.History) > 0 {
			// Journaled now: drop the copy from the record, which every
			// wake-up by a child reads (a big initial state made a fan-out
			// of thousands spend its time decoding it).
			if rec, rev, err = r.updateFromRev(ctx, rec, rev, func(rec *Record) error {
				rec.State, rec.History = nil, nil
				return nil
			}); err != nil {
				log.Warn("trim run record", "err", err)
				_ = msg.NakWithDelay(time.Second)
				return
			}
		}
	}
	if err := r.journalDecisions(ctx, w, rec); err != nil {
		r.lost(ctx, log, rec, err)
		return
	}
	if rec.Resolution != nil && w.Events()[len(w.Events())-1].Type == journal.TypeRunInDoubt {
		if _, err := w.Append(ctx, journal.TypeToolResolved, rec.Resolution); err != nil {
			r.lost(ctx, log, rec, err)
			return
		}
	}
	var outcome agent.Outcome
	if err := r.journalInputs(ctx, w, rec); err != nil {
		r.lost(ctx, log, rec, err)
		return
	}
	if a == nil {
		msg := fmt.Sprintf("agent %q is not defined on this node (known: %s)", rec.Agent, strings.Join(r.agentNames(), ", "))
		if rec.Flow != "" {
			msg = fmt.Sprintf("flow %q is not defined on this node (known: %s)", rec.Flow, strings.Join(r.flowNames(), ", "))
		}
		_, err = w.Append(ctx, journal.TypeRunFailed, journal.RunFailed{Code: agent.CodeUnknownAgent, Message: msg})
		outcome = agent.Failed
	} else {
		outcome, err = a.Resume(runCtx, id, w.Events(), w, agent.Env{OnDelta: r.publishDelta(rec), OnProgress: r.publishProgress(rec), Children: r, Lookup: r.lookupAgent,
			Answer: r.answerOf(id), Ask: r.askDuringCall(rec), TraceParent: rec.Metadata["traceparent"]})
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		// Retrying cannot help: end the run with a small entry that fits.
		_, err = w.Append(ctx, journal.TypeRunFailed, journal.RunFailed{Code: agent.CodeTooLarge,
			Message: "a step of this run is larger than the NATS server's max_payload; shorten the input or tool results, or raise max_payload on the NATS server"})
		if err == nil {
			outcome = agent.Failed
		}
	}
	if outcome == agent.Stopped || err != nil {
		if errors.Is(err, agent.ErrShutdown) || errors.Is(context.Cause(runCtx), agent.ErrShutdown) {
			_ = msg.Nak() // hand it over at once
		}
		r.lost(ctx, log, rec, err)
		return
	}
	final, err := r.settleFrom(ctx, rec, rev, w.Events())
	if err != nil {
		log.Warn("settle run", "err", err)
		return
	}
	_ = msg.Ack()
	if final.CancelRequested && (final.Status == StatusWaiting || final.Status == StatusInDoubt) {
		// A cancel that came while the run was parking: end it now.
		if _, err := r.endParked(ctx, final); err != nil {
			log.Warn("cancel parked run", "err", err)
		}
	}
	if r.opts.OnFinish != nil && final.Status.Terminal() {
		r.opts.OnFinish(final, statsOf(w.Events(), time.Since(began)))
	}
	switch final.Status {
	case StatusInDoubt:
		if final.InDoubt == nil {
			break
		}
		log.Warn("run in doubt: a non-idempotent tool call may or may not have happened; resolve it with POST /v1/runs/{id}/resolve or myriad runs resolve",
			"tool", final.InDoubt.Name, "call_id", final.InDoubt.CallID)
	case StatusFailed:
		log.Info("run failed", "code", final.Error.Code, "error", final.Error.Message)
	default:
		log.Debug("run settled", "status", final.Status)
	}
}

// Delta is streamed model text, published live on bus.LiveSubject.
type Delta struct {
	// Type is "model.delta".
	Type  string `json:"type"`
	RunID string `json:"run_id"`
	Path  string `json:"path"`
	Turn  int    `json:"turn"`
	Text  string `json:"text"`
}

// ToolProgress is progress a running tool call reports, published live on
// bus.LiveSubject.
type ToolProgress struct {
	// Type is "tool.progress".
	Type   string `json:"type"`
	RunID  string `json:"run_id"`
	Path   string `json:"path"`
	CallID string `json:"call_id"`
	Tool   string `json:"tool"`
	tool.Progress
}

// Live event types, on bus.LiveSubject.
const (
	LiveDelta    = "model.delta"
	LiveProgress = "tool.progress"
)

// publishProgress returns the hook that publishes a run's tool progress.
func (r *Runtime) publishProgress(rec *Record) func(string, string, tool.Progress) {
	id, path, subject := rec.ID, rec.PathOrAgent(), bus.LiveSubject(rec.ID)
	return func(callID, name string, p tool.Progress) {
		data, _ := json.Marshal(ToolProgress{Type: LiveProgress, RunID: id, Path: path, CallID: callID, Tool: name, Progress: p})
		_ = r.bus.NC.Publish(subject, data) // best effort: live only
	}
}

// publishDelta returns the hook that publishes a run's streamed text.
func (r *Runtime) publishDelta(rec *Record) func(int, model.Delta) {
	id, path := rec.ID, rec.PathOrAgent()
	subject := bus.LiveSubject(id)
	return func(turn int, d model.Delta) {
		if d.Text == "" {
			return
		}
		data, _ := json.Marshal(Delta{Type: LiveDelta, RunID: id, Path: path, Turn: turn, Text: d.Text})
		_ = r.bus.NC.Publish(subject, data) // best effort: the journal is the record
	}
}

// lost logs why this worker gave up a run without acking it: JetStream
// hands it to another worker after bus.AckWait. When another worker won the
// journal, the record may still say running: settle it from the journal if
// the winner has already ended or parked the run.
func (r *Runtime) lost(ctx context.Context, log *slog.Logger, rec *Record, err error) {
	switch {
	case errors.Is(err, journal.ErrConflict):
		log.Warn("another worker advanced this run; stopping")
		events, lerr := journal.Load(ctx, r.bus, rec.ID)
		if lerr == nil && len(events) > 0 {
			last := events[len(events)-1].Type
			if journal.Terminal(last) || last == journal.TypeRunInDoubt {
				_, _ = r.settle(ctx, rec, events)
			}
		}
	case errors.Is(err, agent.ErrShutdown):
		log.Info("left run for another worker (shutting down)")
	case err != nil:
		log.Error("run stopped", "err", err)
	}
}

func (r *Runtime) settle(ctx context.Context, run *Record, events []journal.Event) (*Record, error) {
	return r.settleFrom(ctx, run, 0, events)
}

// settleFrom is settle starting from the record at revision rev (0: unknown).
func (r *Runtime) settleFrom(ctx context.Context, run *Record, rev uint64, events []journal.Event) (*Record, error) {
	id := run.ID
	if len(events) == 0 {
		return nil, fmt.Errorf("run %s has an empty journal", id)
	}
	last := events[len(events)-1]
	// The instance moves on before the record says the run ended, so
	// whoever sees the end also sees the conversation it left. Only the
	// turn whose predecessor is done may move it: a turn canceled while
	// queued behind a running one waits for its worker to settle it.
	if journal.Terminal(last.Type) {
		// Children outlive nothing: cancel those still running. Then tell
		// the parent. Both repeat harmlessly if this settle is retried.
		if err := r.cancelChildren(ctx, events); err != nil {
			return nil, err
		}
		if run.Parent != "" {
			if err := r.report(ctx, run, last); err != nil {
				return nil, err
			}
		}
	}
	if run.Turn > 0 && journal.Terminal(last.Type) {
		_, err := r.updateInstance(ctx, run.Agent, run.Instance, func(in *Instance) error {
			if in.Done+1 != run.Turn {
				return errSkip
			}
			in.Done = run.Turn
			delete(in.Pending, turnKey(run.Turn))
			if last.Type == journal.TypeRunCompleted {
				msgs, err := agent.Messages(events)
				if err != nil {
					return err
				}
				limit := DefaultHistoryLimit
				if a := r.agents[run.Agent]; a != nil && a.HistoryLimit > 0 {
					limit = a.HistoryLimit
				}
				in.Messages = TrimHistory(msgs, limit)
				in.Active = agent.Holder(events)
				if in.Active == run.Agent {
					in.Active = ""
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var requeued bool
	rec, err := r.updateFrom(ctx, run, rev, func(rec *Record) error {
		requeued = false
		// Never move a record backwards: a late settle from older events
		// must not undo a newer settle, an operator's resolution or a wake.
		if rec.Steps > last.Step || rec.Steps == last.Step &&
			(rec.Status.Terminal() || last.Type == journal.TypeRunInDoubt && rec.Resolution != nil ||
				(last.Type == journal.TypeApprovalRequested || last.Type == journal.TypeApprovalDecided) && len(rec.Decisions) > 0 ||
				last.Type == journal.TypeRunWaiting && rec.Status == StatusQueued) {
			return errSkip
		}
		now := last.Time
		rec.Steps = last.Step
		rec.Resolution = nil // journaled by now (tool.resolved), or moot
		rec.Approvals, rec.Decisions = nil, nil
		rec.WaitingFor, rec.History, rec.State, rec.WakeAt = "", nil, nil, nil
		// Questions stay listed, and answers kept, until the journal has
		// the answers: an answer may come while the run is busy elsewhere.
		rec.InputRequests = nil
		if !journal.Terminal(last.Type) {
			rec.InputRequests = pendingInputs(events)
		}
		rec.Inputs = keepAnswers(rec.Inputs, rec.InputRequests)
		switch last.Type {
		case journal.TypeRunWaiting:
			var d journal.RunWaiting
			_ = json.Unmarshal(last.Data, &d)
			rec.Usage = usageOf(events)
			rec.WakeAt = d.Until
			if rec.Nudged {
				// A child reported after this worker last read the inbox.
				rec.requeue()
				requeued = true
				return nil
			}
			rec.Status = StatusWaiting
			// What wakes it: children and timers wake it by themselves; a
			// person's answer is awaited only when nothing else will.
			switch {
			case len(d.Children) > 0:
				rec.WaitingFor = WaitChildren
			case len(d.Inputs) > 0:
				rec.WaitingFor = WaitInput // WakeAt, if set, is its deadline
			default:
				rec.WaitingFor = WaitTimer
			}
			if len(rec.Inputs) > 0 {
				// An answer came while the run was busy: go on at once.
				rec.requeue()
				requeued = true
			}
			return nil
		case journal.TypeRunCompleted:
			var d journal.RunCompleted
			_ = json.Unmarshal(last.Data, &d)
			rec.Status, rec.Output, rec.OutputJSON, rec.Usage = StatusCompleted, d.Output, d.JSON, d.Usage
			if len(rec.Output) > MaxRecordOutput {
				rec.Output, rec.OutputTruncated = rec.Output[:MaxRecordOutput], true
				if len(rec.OutputJSON) > MaxRecordOutput {
					rec.OutputJSON = nil
				}
			}
		case journal.TypeRunFailed:
			var d journal.RunFailed
			_ = json.Unmarshal(last.Data, &d)
			rec.Status, rec.Usage = StatusFailed, d.Usage
			rec.Error = &RunError{Code: d.Code, Message: d.Message}
		case journal.TypeRunCanceled:
			var d journal.RunCanceled
			_ = json.Unmarshal(last.Data, &d)
			rec.Status, rec.Usage = StatusCanceled, d.Usage
		case journal.TypeRunInDoubt:
			var d journal.RunInDoubt
			_ = json.Unmarshal(last.Data, &d)
			rec.Status, rec.InDoubt = StatusInDoubt, &d
			rec.Usage = usageOf(events)
			return nil
		case journal.TypeApprovalRequested, journal.TypeApprovalDecided:
			// Parked: some approvals of the turn are still undecided (the
			// last entry is a decision when only part of them came in).
			pending := pendingApprovals(events)
			if len(pending) == 0 {
				return fmt.Errorf("run %s: journal ends with %s and nothing pending, which does not settle a run", id, last.Type)
			}
			// Decisions already given for approvals still pending stay.
			var kept []journal.ApprovalDecided
			for _, d := range rec.Decisions {
				for _, p := range pending {
					if p.ApprovalID == d.ApprovalID {
						kept = append(kept, d)
					}
				}
			}
			rec.Status, rec.Approvals, rec.Decisions = StatusWaiting, pending, kept
			rec.WaitingFor, rec.WakeAt = WaitApproval, nil
			for _, p := range pending {
				// The first deadline wakes the run to apply its default.
				if p.Deadline != nil && (rec.WakeAt == nil || p.Deadline.Before(*rec.WakeAt)) {
					rec.WakeAt = p.Deadline
				}
			}
			rec.Usage = usageOf(events)
			return nil
		default:
			return fmt.Errorf("run %s: journal ends with %s, which does not settle a run", id, last.Type)
		}
		rec.EndedAt = &now
		return nil
	})
	if err != nil {
		return nil, err
	}
	if requeued {
		if err := r.enqueue(ctx, id, rec.Wake); err != nil {
			return nil, err
		}
	} else if rec.Status == StatusWaiting && rec.WakeAt != nil {
		if err := r.scheduleWake(ctx, id, *rec.WakeAt); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

func usageOf(events []journal.Event) (u model.Usage) {
	for _, ev := range events {
		switch ev.Type {
		case journal.TypeModelResponse:
			var d journal.ModelResponse
			if json.Unmarshal(ev.Data, &d) == nil {
				u = u.Add(d.Usage)
			}
		case journal.TypeContextSummarized:
			var d journal.ContextSummarized
			if json.Unmarshal(ev.Data, &d) == nil {
				u = u.Add(d.Usage)
			}
		case journal.TypeToolFinished:
			var d journal.ToolFinished
			if json.Unmarshal(ev.Data, &d) == nil && d.ChildUsage != nil {
				u = u.Add(*d.ChildUsage)
			}
		case journal.TypeChildrenReported:
			var d journal.ChildrenReported
			if json.Unmarshal(ev.Data, &d) == nil {
				for _, rep := range d.Reports {
					u = u.Add(rep.Usage)
				}
			}
		}
	}
	return u
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

// pendingApprovals lists the approvals of the last turn that have no
// decision in the journal.
func pendingApprovals(events []journal.Event) []journal.ApprovalRequested {
	var pending []journal.ApprovalRequested
	decided := map[string]bool{}
	for i := len(events) - 1; i >= 0 && events[i].Type != journal.TypeModelResponse; i-- {
		switch events[i].Type {
		case journal.TypeApprovalDecided:
			var d journal.ApprovalDecided
			if json.Unmarshal(events[i].Data, &d) == nil {
				decided[d.ApprovalID] = true
			}
		case journal.TypeApprovalRequested:
			var a journal.ApprovalRequested
			if json.Unmarshal(events[i].Data, &a) == nil && !decided[a.ApprovalID] {
				pending = append([]journal.ApprovalRequested{a}, pending...)
			}
		}
	}
	return pending
}

// journalDecisions appends the decisions stored on the record that the
// journal does not have yet.
func (r *Runtime) journalDecisions(ctx context.Context, w *journal.Writer, rec *Record) error {
	if len(rec.Decisions) == 0 {
		return nil
	}
	pending := map[string]bool{}
	for _, a := range pendingApprovals(w.Events()) {
		pending[a.ApprovalID] = true
	}
	for _, d := range rec.Decisions {
		if !pending[d.ApprovalID] {
			continue
		}
		if _, err := w.Append(ctx, journal.TypeApprovalDecided, d); err != nil {
			return err
		}
	}
	return nil
}
