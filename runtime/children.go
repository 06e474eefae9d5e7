package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/journal"
)

// Child runs. A parent's call to a sub-agent journals the child's id, then
// spawns the child: a run like any other, with its own record, queue entry
// and journal. The parent parks (run.waiting) instead of holding a worker.
// When a child ends, its settle posts a report to the parent's inbox
// (bus.InboxPrefix) and wakes the parent, which journals the reports it
// finds and either goes on or parks again. A report that arrives while the
// parent is busy nudges it, so the parent cannot park past it.

var _ agent.Children = (*Runtime)(nil)

// DefaultMaxDepth bounds how deep trees of child runs grow.
const DefaultMaxDepth = 5

// ChildID implements agent.Children.
func (r *Runtime) ChildID(parentID, callID string) string { return ChildRunID(parentID, callID) }

// Spawn implements agent.Children: it stores the child's record and queues
// it, unless it exists already.
func (r *Runtime) Spawn(ctx context.Context, c agent.ChildRun) error {
	if _, ok := r.agents[c.Agent]; !ok {
		return fmt.Errorf("%w: agent %q is not defined on this node", agent.ErrSpawnRefused, c.Agent)
	}
	if c.Depth > r.opts.MaxDepth {
		return fmt.Errorf("%w: %s would be %d levels deep, and the limit is %d (raise server.max_depth)",
			agent.ErrSpawnRefused, c.Path, c.Depth, r.opts.MaxDepth)
	}
	rec := &Record{ID: c.ID, Agent: c.Agent, Input: c.Input, Metadata: c.Metadata, Status: StatusQueued,
		CreatedAt: time.Now().UTC(), Wake: bus.QueuePrefix + c.ID, Parent: c.Parent, ParentCall: c.ParentCall,
		Path: c.Path, Depth: c.Depth, History: c.History}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := r.bus.Runs.Create(ctx, c.ID, data); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("store child run %s: %w", c.ID, err)
		}
		prev, err := r.Get(ctx, c.ID)
		if err != nil {
			return err
		}
		if prev.Parent != c.Parent || prev.Agent != c.Agent {
			return fmt.Errorf("child run %s exists already for parent %q and agent %q, not %q and %q: ids collide", c.ID, prev.Parent, prev.Agent, c.Parent, c.Agent)
		}
		if prev.Status != StatusQueued || prev.StartedAt != nil {
			return nil // spawned before, and on its way
		}
	}
	return r.enqueue(ctx, c.ID, bus.QueuePrefix+c.ID)
}

// Reports implements agent.Children. Reports are few per wake, so each is
// one direct read of the next message on the parent's inbox subject.
func (r *Runtime) Reports(ctx context.Context, parentID string, afterSeq uint64) ([]agent.ChildResult, error) {
	subject := bus.InboxPrefix + parentID
	var out []agent.ChildResult
	for seq := afterSeq + 1; ; {
		m, err := r.bus.Inbox.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the inbox of run %s: %w", parentID, err)
		}
		var res agent.ChildResult
		if err := json.Unmarshal(m.Data, &res); err != nil {
			return nil, fmt.Errorf("run %s: corrupt child report %d: %w", parentID, m.Sequence, err)
		}
		res.Seq = m.Sequence
		out = append(out, res)
		seq = m.Sequence + 1
	}
}

// report posts a finished child's outcome to its parent's inbox and wakes
// the parent. Both steps may repeat: the inbox drops a second copy, and a
// parent ignores reports it has journaled.
func (r *Runtime) report(ctx context.Context, run *Record, last journal.Event) error {
	res := agent.ChildResult{RunID: run.ID, CallID: run.ParentCall}
	switch last.Type {
	case journal.TypeRunCompleted:
		var d journal.RunCompleted
		_ = json.Unmarshal(last.Data, &d)
		res.Status, res.Output, res.Usage = string(StatusCompleted), d.Output, d.Usage
		if len(res.Output) > agent.MaxToolResultBytes {
			res.Output = res.Output[:agent.MaxToolResultBytes] + "\n[truncated]"
		}
	case journal.TypeRunFailed:
		var d journal.RunFailed
		_ = json.Unmarshal(last.Data, &d)
		res.Status, res.Error, res.Usage = string(StatusFailed), d.Code+": "+d.Message, d.Usage
	default:
		var d journal.RunCanceled
		_ = json.Unmarshal(last.Data, &d)
		res.Status, res.Usage = string(StatusCanceled), d.Usage
	}
	data, _ := json.Marshal(res)
	if _, err := r.bus.JS.Publish(ctx, bus.InboxPrefix+run.Parent, data, jetstream.WithMsgID(run.ID)); err != nil {
		return fmt.Errorf("report run %s to its parent %s: %w", run.ID, run.Parent, err)
	}
	return r.wake(ctx, run.Parent)
}

// wake queues a run parked for its children, or nudges it if it is not
// parked (yet).
func (r *Runtime) wake(ctx context.Context, id string) error {
	var queued bool
	var early *time.Time
	rec, err := r.update(ctx, id, func(rec *Record) error {
		queued, early = false, nil
		if rec.Status == StatusQueued {
			// Queued already, but perhaps without its entry (whoever queued
			// it died before publishing): publishing it again is harmless.
			queued = true
			if rec.Nudged {
				return errSkip
			}
		}
		switch {
		case rec.Status.Terminal():
			return errSkip
		case rec.Status == StatusWaiting && (rec.WaitingFor == WaitChildren || rec.WaitingFor == WaitTimer):
			rec.requeue()
			queued = true
		case rec.Status == StatusWaiting && rec.WakeAt != nil:
			// A run waiting for a person wakes only for its deadline.
			if time.Now().Before(*rec.WakeAt) {
				early = rec.WakeAt // a timer that fired early (clocks differ): set it again
				return errSkip
			}
			rec.requeue()
			queued = true
		case rec.Nudged:
			return errSkip
		default:
			rec.Nudged = true
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil // the parent is gone: nobody to tell
	}
	if early != nil {
		return r.scheduleWake(ctx, id, *early)
	}
	if err != nil || !queued {
		return err
	}
	return r.enqueue(ctx, id, rec.Wake)
}

// requeue sets a parked run back on the queue under a new entry.
func (rec *Record) requeue() {
	rec.Status, rec.WaitingFor, rec.Nudged = StatusQueued, "", false
	rec.Wakes++
	rec.Wake = fmt.Sprintf("%s%s.wake.%d", bus.QueuePrefix, rec.ID, rec.Wakes)
}

// cancelChildren cancels the children a run leaves behind when it ends.
func (r *Runtime) cancelChildren(ctx context.Context, events []journal.Event) error {
	for _, id := range journal.OpenChildren(events) {
		if _, err := r.Cancel(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("cancel child run %s: %w", id, err)
		}
	}
	return nil
}

func (r *Runtime) lookupAgent(name string) *agent.Agent { return r.agents[name] }
