package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/journal"
)

// Runner executes the runs of one agent or flow.
type Runner interface {
	Resume(ctx context.Context, runID string, events []journal.Event, j agent.Journal, env agent.Env) (agent.Outcome, error)
}

var (
	_ Runner = (*agent.Agent)(nil)
	_ Runner = (*flow.Flow)(nil)
)

// runnerFor returns what executes a run, or nil if this node lacks it.
func (r *Runtime) runnerFor(rec *Record) Runner {
	if rec.Flow != "" {
		if f := r.flows[rec.Flow]; f != nil {
			return f
		}
		return nil
	}
	if a := r.agents[rec.Agent]; a != nil {
		return a
	}
	return nil
}

// Flows returns the flow definitions in name order.
func (r *Runtime) Flows() []*flow.Flow {
	out := make([]*flow.Flow, 0, len(r.flows))
	for _, f := range r.flows {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (r *Runtime) flowNames() []string {
	names := make([]string, 0, len(r.flows))
	for n := range r.flows {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Question returns the open question a run asks at key: on its record,
// or only in its journal yet (its worker has not settled); nil when it
// asks nothing there.
func (r *Runtime) Question(ctx context.Context, id, key string) (*journal.InputRequested, error) {
	rec, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Status.Terminal() {
		return nil, nil
	}
	for _, q := range rec.PendingInputs() {
		if q.Key == key {
			return &q, nil
		}
	}
	events, err := journal.Load(ctx, r.bus, id)
	if err != nil {
		return nil, err
	}
	for _, q := range pendingInputs(events) {
		if q.Key == key {
			return &q, nil
		}
	}
	return nil, nil
}

// ProvideInput answers the question a waiting flow run asks at one node
// visit (key "review#1") and queues the run again.
func (r *Runtime) ProvideInput(ctx context.Context, id, key string, value json.RawMessage) (*Record, error) {
	if len(value) == 0 {
		return nil, fmt.Errorf("%w: value: missing (any JSON value)", ErrInvalid)
	}
	if !json.Valid(value) {
		return nil, fmt.Errorf("%w: value: not valid JSON", ErrInvalid)
	}
	ctx = context.WithoutCancel(ctx)
	// A question the journal has but the record does not list yet (its
	// worker has not settled) can be answered already: someone following
	// the journal saw it. The answer waits on the record like one given
	// while the run was busy.
	journaled, _ := r.Question(ctx, id, key)
	var wake bool
	rec, err := r.update(ctx, id, func(rec *Record) error {
		wake = false
		var ask *journal.InputRequested
		for i := range rec.InputRequests {
			if rec.InputRequests[i].Key == key {
				ask = &rec.InputRequests[i]
			}
		}
		if ask == nil {
			ask = journaled
		}
		for _, in := range rec.Inputs {
			if in.Key == key {
				if string(in.Value) == string(value) && rec.Status == StatusQueued {
					wake = true // the same answer again after a failed enqueue
					return errSkip
				}
				return fmt.Errorf("%w: %s of run %s is already answered", ErrConflict, key, id)
			}
		}
		if rec.Status.Terminal() || ask == nil {
			keys := make([]string, 0, len(rec.InputRequests))
			for _, q := range rec.InputRequests {
				keys = append(keys, q.Key)
			}
			return fmt.Errorf("%w: run %s is %s and asks nothing at %q (it asks: %s)", ErrConflict, id, rec.Status, key, orNone(keys))
		}
		if ask.Call != "" {
			if err := checkToolAnswer(ask, value); err != nil {
				return fmt.Errorf("%w: value: %v", ErrInvalid, err)
			}
		} else if f := r.flows[rec.Flow]; f != nil {
			if err := f.ValidateInput(ask.Node, value); err != nil {
				return fmt.Errorf("%w: value: %v", ErrInvalid, err)
			}
		}
		rec.Inputs = append(rec.Inputs, journal.InputReceived{Key: key, Value: value})
		switch rec.Status {
		case StatusWaiting:
			rec.requeue()
			wake = true
		case StatusQueued:
			// Its next worker journals the answer.
		default:
			// Running: the answer is kept until its worker parks, which
			// then queues the run again (see settle).
		}
		return nil
	})
	if err != nil || !wake {
		return rec, err
	}
	return rec, r.enqueue(ctx, id, rec.Wake)
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "nothing"
	}
	return strings.Join(list, ", ")
}

// journalInputs appends the answers stored on the record that the journal
// does not have yet.
func (r *Runtime) journalInputs(ctx context.Context, w *journal.Writer, rec *Record) error {
	if len(rec.Inputs) == 0 {
		return nil
	}
	pending := map[string]bool{}
	for _, q := range pendingInputs(w.Events()) {
		pending[q.Key] = true
	}
	for _, in := range rec.Inputs {
		if pending[in.Key] {
			if _, err := w.Append(ctx, journal.TypeInputReceived, in); err != nil {
				return err
			}
		}
	}
	return nil
}

// pendingInputs lists the questions of a journal that have no answer.
func pendingInputs(events []journal.Event) []journal.InputRequested {
	var asked []journal.InputRequested
	answered := map[string]bool{}
	for _, ev := range events {
		switch ev.Type {
		case journal.TypeInputRequested:
			var q journal.InputRequested
			if json.Unmarshal(ev.Data, &q) == nil {
				asked = append(asked, q)
			}
		case journal.TypeInputReceived:
			var a journal.InputReceived
			if json.Unmarshal(ev.Data, &a) == nil {
				answered[a.Key] = true
			}
		}
	}
	var out []journal.InputRequested
	for _, q := range asked {
		if !answered[q.Key] {
			out = append(out, q)
		}
	}
	return out
}

// Timers. A sleeping flow node parks its run with a wake time; the run's
// settle asks the NATS server to deliver a timer entry to the work queue
// at that time (a scheduled message, bus.TimerSubject), which wakes the
// run like a child's report does. The server keeps the schedule, so it
// survives restarts and fires once in a cluster.

// scheduleWake asks for a timer entry at t. Scheduling the same time twice
// is refused by the stream, which is what we want.
func (r *Runtime) scheduleWake(ctx context.Context, id string, t time.Time) error {
	// Schedules have whole seconds: round up, never fire before t.
	if s := t.Truncate(time.Second); s.Before(t) {
		t = s.Add(time.Second)
	}
	msg := &nats.Msg{Subject: bus.TimerSubject(id, t), Data: []byte(id), Header: nats.Header{}}
	msg.Header.Set("Nats-Schedule", "@at "+t.UTC().Format(time.RFC3339))
	msg.Header.Set("Nats-Schedule-Target", bus.TimerTarget(id))
	_, err := r.bus.JS.PublishMsg(ctx, msg)
	if err != nil && !alreadyQueued(err) {
		return fmt.Errorf("schedule a wake-up of run %s at %s: %w", id, t.Format(time.RFC3339), err)
	}
	return nil
}

// watchFired handles due timers and schedules until ctx ends.
func (r *Runtime) watchFired(ctx context.Context, it jetstream.MessagesContext) {
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			continue
		}
		ctx := context.WithoutCancel(ctx)
		switch subject := msg.Subject(); {
		case strings.HasPrefix(subject, bus.TimerTarget("")):
			id := strings.TrimPrefix(subject, bus.TimerTarget(""))
			if err := r.wake(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
				r.log.Warn("timer wake-up", "run_id", id, "err", err)
				_ = msg.NakWithDelay(time.Second)
				continue
			}
		case strings.HasPrefix(subject, bus.CronTarget("")):
			if err := r.fireSchedule(ctx, strings.TrimPrefix(subject, bus.CronTarget("")), msg); err != nil {
				r.log.Warn("schedule", "subject", subject, "err", err)
				_ = msg.NakWithDelay(time.Second)
				continue
			}
		}
		_ = msg.Ack()
	}
}

// keepAnswers keeps the answers whose questions are still open.
func keepAnswers(answers []journal.InputReceived, open []journal.InputRequested) []journal.InputReceived {
	var kept []journal.InputReceived
	for _, a := range answers {
		for _, q := range open {
			if q.Key == a.Key {
				kept = append(kept, a)
				break
			}
		}
	}
	return kept
}

// answerOf reads answers stored on a run's record since its worker took it.
func (r *Runtime) answerOf(id string) func(context.Context, string) (json.RawMessage, bool) {
	return func(ctx context.Context, key string) (json.RawMessage, bool) {
		rec, err := r.Get(ctx, id)
		if err != nil {
			return nil, false
		}
		for _, in := range rec.Inputs {
			if in.Key == key {
				return in.Value, true
			}
		}
		return nil, false
	}
}
