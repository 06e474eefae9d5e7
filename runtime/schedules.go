package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/bus"
)

// Schedule starts runs on a cron expression. The NATS server keeps and
// fires schedules (scheduled messages on bus.ScheduleStream), so a cluster
// fires each one once, and a schedule outlives the nodes that set it.
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
}

// installSchedules sets this node's schedules on the server, leaving alone
// those already set the same way (re-setting one restarts its clock), and
// removes schedules the configuration no longer has.
func (r *Runtime) installSchedules(ctx context.Context) error {
	stream, err := r.bus.JS.Stream(ctx, bus.ScheduleStream)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range r.opts.Schedules {
		subject := bus.CronSubject(s.Name)
		want[subject] = true
		data, _ := json.Marshal(s)
		if prev, err := stream.GetLastMsgForSubject(ctx, subject); err == nil && bytes.Equal(prev.Data, data) {
			continue
		}
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		msg.Header.Set("Nats-Schedule", s.Cron)
		msg.Header.Set("Nats-Schedule-Target", bus.CronTarget(s.Name))
		if s.TimeZone != "" {
			msg.Header.Set("Nats-Schedule-Time-Zone", s.TimeZone)
		}
		if _, err := r.bus.JS.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("schedules.%s: the NATS server refused it: %w", s.Name, err)
		}
		r.log.Info("schedule set", "schedule", s.Name, "cron", s.Cron)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(bus.CronSubject("*")))
	if err != nil {
		return err
	}
	for subject := range info.State.Subjects {
		if !want[subject] {
			if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
				return err
			}
			r.log.Info("schedule removed", "schedule", strings.TrimPrefix(subject, bus.CronSubject("")))
		}
	}
	return nil
}

// fireSchedule starts the run a due schedule calls for. The fired message
// carries the schedule as it was set; its stream sequence makes the
// submission idempotent, so a redelivery starts no second run.
func (r *Runtime) fireSchedule(ctx context.Context, name string, msg jetstream.Msg) error {
	var s Schedule
	if err := json.Unmarshal(msg.Data(), &s); err != nil {
		return fmt.Errorf("schedule %s: unreadable: %w", name, err)
	}
	meta, err := msg.Metadata()
	if err != nil {
		return err
	}
	rec, created, err := r.Submit(ctx, SubmitRequest{Agent: s.Agent, Flow: s.Flow, Input: s.Input, State: s.State,
		Metadata:       map[string]string{"schedule": s.Name},
		IdempotencyKey: fmt.Sprintf("schedule/%s/%d", s.Name, meta.Sequence.Stream)})
	if errors.Is(err, ErrUnknownAgent) {
		r.log.Warn("schedule names something this node lacks; skipped", "schedule", s.Name, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if created {
		r.log.Info("schedule started a run", "schedule", s.Name, "run_id", rec.ID)
	}
	return nil
}
