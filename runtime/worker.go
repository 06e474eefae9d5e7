package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
)

// turnRetry is how soon a run whose instance is busy with an earlier turn is
// offered again.
const turnRetry = 50 * time.Millisecond

// Start begins executing runs from the work queue on this node.
func (r *Runtime) Start(ctx context.Context) error {
	sub, err := r.bus.NC.Subscribe(bus.SignalPrefix+"*", r.onSignal)
	if err != nil {
		return err
	}
	r.sigSub = sub
	workCtx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	r.stopWork = stop
	r.workDone = make(chan struct{})
	batch := min(r.opts.Workers, 512)
	it, err := r.bus.Queue.Messages(jetstream.PullMaxMessages(batch))
	if err != nil {
		return err
	}
	slots := make(chan struct{}, r.opts.Workers)
	go r.heartbeat(workCtx)
	go func() {
		defer close(r.workDone)
		context.AfterFunc(workCtx, it.Stop)
		var inflight sync.WaitGroup
		for {
			select {
			case slots <- struct{}{}:
			case <-workCtx.Done():
			}
			if workCtx.Err() != nil {
				break
			}
			msg, err := it.Next()
			if err != nil {
				<-slots
				if workCtx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					break
				}
				r.log.Warn("work queue", "err", err)
				continue
			}
			inflight.Go(func() {
				defer func() { <-slots }()
				r.handle(workCtx, msg)
			})
		}
		// Drain: let runs in flight reach their end or a step boundary, then
		// cut the rest; their journals let another worker resume them.
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
			<-drained
		}
	}()
	return nil
}

// Stop stops claiming runs, lets running steps finish (up to the drain
// timeout) and leaves unfinished runs on the queue for the next worker.
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

// heartbeat tells JetStream every held run is still being worked on, well
// within bus.AckWait.
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
		for _, a := range r.active {
			_ = a.msg.InProgress()
		}
		r.mu.Unlock()
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
	rec, err := r.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		log.Error("queued run has no record; dropping the queue entry")
		_ = msg.Term()
		return
	}
	if err != nil {
		log.Warn("read run record", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	log = log.With("agent", rec.Agent)
	if rec.Turn > 0 {
		in, err := r.GetInstance(ctx, rec.Agent, rec.Instance)
		if err != nil {
			_ = msg.NakWithDelay(time.Second)
			return
		}
		if in.Done+1 < rec.Turn {
			_ = msg.NakWithDelay(turnRetry)
			return
		}
		if in.Done >= rec.Turn && rec.Status.Terminal() {
			_ = msg.Ack()
			return
		}
	}
	w, events, err := journal.Open(ctx, r.bus, id)
	if err != nil {
		log.Warn("load journal", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if n := len(events); n > 0 && journal.Terminal(events[n-1].Type) {
		if _, err := r.settle(ctx, id, events); err != nil {
			log.Warn("settle run", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.Ack()
		return
	}
	if rec.Status == StatusInDoubt && rec.Resolution == nil {
		// A stale delivery of a parked run: Resolve queues it again.
		_ = msg.Ack()
		return
	}
	a := r.agents[rec.Agent]

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	r.active[id] = &activeRun{msg: msg, cancel: cancel}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.active, id)
		r.mu.Unlock()
	}()
	began := time.Now()
	resolution := rec.Resolution
	rec, err = r.update(ctx, id, func(rec *Record) error {
		now := time.Now().UTC()
		rec.Status = StatusRunning
		if rec.StartedAt == nil {
			rec.StartedAt = &now
		}
		rec.Resolution = nil
		rec.InDoubt = nil
		return nil
	})
	if err != nil {
		log.Warn("mark run running", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if rec.CancelRequested {
		cancel(agent.ErrCanceled)
	}
	if len(events) == 0 {
		start := journal.RunStarted{Agent: rec.Agent, Instance: rec.Instance, Input: rec.Input, Metadata: rec.Metadata}
		if rec.Turn > 0 {
			in, err := r.GetInstance(ctx, rec.Agent, rec.Instance)
			if err != nil {
				_ = msg.NakWithDelay(time.Second)
				return
			}
			start.History = in.Messages
		}
		if a == nil {
			start.Agent = rec.Agent
		}
		ev, err := w.Append(ctx, journal.TypeRunStarted, start)
		if err != nil {
			r.lost(log, err)
			return
		}
		events = append(events, ev)
	}
	if resolution != nil && events[len(events)-1].Type == journal.TypeRunInDoubt {
		ev, err := w.Append(ctx, journal.TypeToolResolved, resolution)
		if err != nil {
			r.lost(log, err)
			return
		}
		events = append(events, ev)
	}
	var outcome agent.Outcome
	if a == nil {
		_, err = w.Append(ctx, journal.TypeRunFailed, journal.RunFailed{Code: agent.CodeUnknownAgent,
			Message: fmt.Sprintf("agent %q is not defined on this node (known: %s)", rec.Agent, strings.Join(r.agentNames(), ", "))})
		outcome = agent.Failed
	} else {
		outcome, err = a.Resume(runCtx, id, events, w, agent.Hooks{})
	}
	if outcome == agent.Stopped || err != nil {
		r.lost(log, err)
		return
	}
	events, err = journal.Load(ctx, r.bus, id)
	if err != nil {
		log.Warn("reload journal", "err", err)
		return
	}
	final, err := r.settle(ctx, id, events)
	if err != nil {
		log.Warn("settle run", "err", err)
		return
	}
	_ = msg.Ack()
	if r.opts.OnFinish != nil && final.Status.Terminal() {
		r.opts.OnFinish(final, statsOf(events, time.Since(began)))
	}
	log.Debug("run settled", "status", final.Status)
}

// lost logs why this worker gave up a run without acking it: JetStream will
// hand it to another worker after bus.AckWait.
func (r *Runtime) lost(log *slog.Logger, err error) {
	switch {
	case errors.Is(err, journal.ErrConflict):
		log.Warn("another worker owns this run now; stopping")
	case errors.Is(err, agent.ErrShutdown):
		log.Info("left run for another worker (shutting down)")
	case err != nil:
		log.Error("run stopped", "err", err)
	}
}

// settle brings the record (and the instance) in line with the journal's
// end: terminal or in doubt. It is idempotent, so any worker may repeat it.
func (r *Runtime) settle(ctx context.Context, id string, events []journal.Event) (*Record, error) {
	if len(events) == 0 {
		return nil, fmt.Errorf("run %s has an empty journal", id)
	}
	last := events[len(events)-1]
	// The instance moves on before the record says the run ended, so
	// whoever sees the end also sees the conversation it left.
	if cur, err := r.Get(ctx, id); err != nil {
		return nil, err
	} else if cur.Turn > 0 && journal.Terminal(last.Type) {
		_, err := r.updateInstance(ctx, cur.Agent, cur.Instance, func(in *Instance) error {
			if in.Done >= cur.Turn {
				return errSkip
			}
			in.Done = cur.Turn
			if last.Type == journal.TypeRunCompleted {
				msgs, err := agent.Messages(events)
				if err != nil {
					return err
				}
				in.Messages = msgs
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	rec, err := r.update(ctx, id, func(rec *Record) error {
		now := last.Time
		rec.Steps = last.Step
		switch last.Type {
		case journal.TypeRunCompleted:
			var d journal.RunCompleted
			_ = json.Unmarshal(last.Data, &d)
			rec.Status, rec.Output, rec.OutputJSON, rec.Usage = StatusCompleted, d.Output, d.JSON, d.Usage
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
		default:
			return fmt.Errorf("run %s: journal ends with %s, which does not settle a run", id, last.Type)
		}
		rec.EndedAt = &now
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

func usageOf(events []journal.Event) (u model.Usage) {
	for _, ev := range events {
		if ev.Type == journal.TypeModelResponse {
			var d journal.ModelResponse
			if json.Unmarshal(ev.Data, &d) == nil {
				u = u.Add(d.Usage)
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
