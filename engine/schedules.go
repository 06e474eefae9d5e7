package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/myriad-ai/myriad/store"
)

// Schedule starts runs on a cron expression. The NATS server keeps and
// fires schedules, so a cluster fires each one once, and a schedule
// outlives the nodes that set it.
type Schedule struct {
	Name string `json:"name"`
	// Cron is a six-field cron expression (seconds first), an @-shorthand,
	// or "@every <duration>".
	Cron     string          `json:"cron"`
	TimeZone string          `json:"time_zone,omitempty"`
	Agent    string          `json:"agent,omitempty"`
	Flow     string          `json:"flow,omitempty"`
	Input    string          `json:"input"`
	State    json.RawMessage `json:"state,omitempty"`
	// Sweep makes the schedule the retention sweep (see retention.go),
	// not a run.
	Sweep bool `json:"sweep,omitempty"`
}

// installSchedules sets this node's schedules on the server.
func (e *Engine) installSchedules(ctx context.Context) error {
	crons := make([]store.Cron, len(e.opts.Schedules))
	for i, s := range e.opts.Schedules {
		crons[i] = store.Cron{Name: s.Name, Spec: s.Cron, TimeZone: s.TimeZone, Data: mustJSON(s)}
	}
	if e.opts.Retention.shortest() > 0 {
		crons = append(crons, store.Cron{Name: sweepSchedule, Spec: sweepEvery, Data: mustJSON(Schedule{Name: sweepSchedule, Sweep: true})})
	}
	set, removed, err := e.st.SetCrons(ctx, crons)
	for _, name := range set {
		e.log.Info("schedule set", "schedule", name)
	}
	for _, name := range removed {
		e.log.Info("schedule removed", "schedule", name)
	}
	return err
}

// watchFires turns due timers into inputs of their runs, and due schedules
// into runs, until ctx ends.
func (e *Engine) watchFires(ctx context.Context, fires *store.Fires) {
	for {
		f, err := fires.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				return
			}
			continue
		}
		ctx := context.WithoutCancel(ctx)
		switch {
		case f.Timer != "":
			_, err = e.st.Send(ctx, store.Input{To: f.Timer, Kind: kindTimer, Data: mustJSON(timerFired{At: time.Now().UTC()}),
				MsgID: fmt.Sprintf("timer/%s/%d", f.Timer, f.Seq)})
		case f.Cron != "":
			err = e.fireSchedule(ctx, f)
		}
		if err != nil {
			e.log.Warn("fire", "timer", f.Timer, "schedule", f.Cron, "err", err)
			f.Retry(time.Second)
			continue
		}
		f.Done()
	}
}

// fireSchedule starts the run a due schedule calls for. The fire carries
// the schedule as it was set; its position makes the submission
// idempotent, so a second delivery starts no second run.
func (e *Engine) fireSchedule(ctx context.Context, f *store.Fire) error {
	var s Schedule
	if err := json.Unmarshal(f.Data, &s); err != nil {
		return fmt.Errorf("schedule %s: unreadable: %w", f.Cron, err)
	}
	if s.Sweep {
		return e.sweep(ctx, time.Now())
	}
	rec, created, err := e.Submit(ctx, SubmitRequest{Agent: s.Agent, Flow: s.Flow, Input: s.Input, State: s.State,
		Metadata:       map[string]string{"schedule": s.Name},
		IdempotencyKey: fmt.Sprintf("schedule/%s/%d", s.Name, f.Seq), scheduled: true})
	if errors.Is(err, ErrUnknownAgent) {
		e.log.Warn("schedule names something this node lacks; skipped", "schedule", s.Name, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if created {
		e.log.Info("schedule started a run", "schedule", s.Name, "run_id", rec.ID)
	}
	return nil
}
