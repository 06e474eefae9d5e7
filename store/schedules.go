package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Timers and cron schedules are scheduled messages the NATS server keeps
// and fires (Nats-Schedule), so they survive restarts of every node and
// fire once in a cluster.

// SetTimer asks for a timer that fires for entity id at t (rounded up to
// the second: schedules have whole seconds). Setting the same time twice
// is harmless.
func (s *Store) SetTimer(ctx context.Context, id string, t time.Time) error {
	if r := t.Truncate(time.Second); r.Before(t) {
		t = r.Add(time.Second)
	}
	msg := &nats.Msg{Subject: timerSubject(id, t), Data: []byte(id), Header: nats.Header{}}
	msg.Header.Set("Nats-Schedule", "@at "+t.UTC().Format(time.RFC3339))
	msg.Header.Set("Nats-Schedule-Target", timerTarget(id))
	_, err := s.js.PublishMsg(ctx, msg)
	s.noteWrite(err)
	if err != nil && !alreadyQueued(err) {
		return fmt.Errorf("set a timer for %s at %s: %w", id, t.Format(time.RFC3339), err)
	}
	return nil
}

// Cron is a cron schedule as the server keeps it: Data is fired with it.
type Cron struct {
	Name     string
	Spec     string
	TimeZone string
	Data     []byte
}

// SetCrons makes the server hold exactly these schedules: it leaves alone
// those set the same way already (setting one again restarts its clock),
// and removes the others. It returns the names it set and removed.
func (s *Store) SetCrons(ctx context.Context, crons []Cron) (set, removed []string, err error) {
	want := map[string]bool{}
	for _, c := range crons {
		subject := cronSubject(c.Name)
		want[subject] = true
		if prev, err := s.schedules.GetLastMsgForSubject(ctx, subject); err == nil && bytes.Equal(prev.Data, c.Data) {
			continue
		}
		msg := &nats.Msg{Subject: subject, Data: c.Data, Header: nats.Header{}}
		msg.Header.Set("Nats-Schedule", c.Spec)
		msg.Header.Set("Nats-Schedule-Target", cronTarget(c.Name))
		if c.TimeZone != "" {
			msg.Header.Set("Nats-Schedule-Time-Zone", c.TimeZone)
		}
		if _, err := s.js.PublishMsg(ctx, msg); err != nil {
			return set, removed, fmt.Errorf("schedules.%s: the NATS server refused it: %w", c.Name, err)
		}
		set = append(set, c.Name)
	}
	info, err := s.schedules.Info(ctx, jetstream.WithSubjectFilter(cronSubject("*")))
	if err != nil {
		return set, removed, err
	}
	for subject := range info.State.Subjects {
		if !want[subject] {
			if err := s.schedules.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
				return set, removed, err
			}
			removed = append(removed, strings.TrimPrefix(subject, cronSubject("")))
		}
	}
	return set, removed, nil
}

// CronNames lists the cron schedules the server holds.
func (s *Store) CronNames(ctx context.Context) ([]string, error) {
	info, err := s.schedules.Info(ctx, jetstream.WithSubjectFilter(cronSubject("*")))
	if err != nil {
		return nil, err
	}
	var names []string
	for subject := range info.State.Subjects {
		names = append(names, strings.TrimPrefix(subject, cronSubject("")))
	}
	return names, nil
}

// Fire is a timer or a cron schedule that came due.
type Fire struct {
	// Timer is the entity a timer fires for; Cron the schedule's name.
	Timer string
	Cron  string
	Data  []byte
	// Seq is the fire's stream position: unique per fire, so it keys the
	// run a schedule starts.
	Seq uint64
	msg jetstream.Msg
}

// Done acknowledges the fire.
func (f *Fire) Done() { _ = f.msg.Ack() }

// Retry hands the fire back, to come again after delay.
func (f *Fire) Retry(delay time.Duration) { _ = f.msg.NakWithDelay(delay) }

// Fires hands due timers and schedules to this node.
type Fires struct{ it jetstream.MessagesContext }

// TakeFires starts pulling fires.
func (s *Store) TakeFires() (*Fires, error) {
	it, err := s.fired.Messages(jetstream.PullMaxMessages(64), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		return nil, err
	}
	return &Fires{it: it}, nil
}

// Next waits for the next fire.
func (f *Fires) Next() (*Fire, error) {
	for {
		msg, err := f.it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil, ErrClosed
			}
			return nil, err
		}
		meta, err := msg.Metadata()
		if err != nil {
			_ = msg.Nak()
			continue
		}
		fire := &Fire{Data: msg.Data(), Seq: meta.Sequence.Stream, msg: msg}
		switch subject := msg.Subject(); {
		case strings.HasPrefix(subject, timerTarget("")):
			fire.Timer = strings.TrimPrefix(subject, timerTarget(""))
		case strings.HasPrefix(subject, cronTarget("")):
			fire.Cron = strings.TrimPrefix(subject, cronTarget(""))
		default:
			_ = msg.Ack()
			continue
		}
		return fire, nil
	}
}

// Stop stops pulling fires.
func (f *Fires) Stop() { f.it.Stop() }

// DropTimers removes the pending timers of an entity: a deleted run's
// (tests simulate a lost timer with it).
func (s *Store) DropTimers(ctx context.Context, id string) error {
	return s.schedules.Purge(ctx, jetstream.WithPurgeSubject(schedulePrefix+"timer."+id+".*"))
}
