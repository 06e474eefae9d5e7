package engine

import (
	"context"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// settle does what a run's journal calls for once the worker lets go, and
// writes the run's record: a run that ended cancels the children it leaves
// behind, reports to its parent and tells its instance; a run that waits
// for a time sets its timer. Every step may repeat (a worker that dies
// here leaves the entry to the next one, which settles again), and the
// record comes last.
func (x *execution) settle(ctx context.Context) error {
	x.mu.Lock()
	events := x.j.Events()
	sub := x.sub
	x.mu.Unlock()
	rec := project(x.id, sub, events)
	switch {
	case rec.Status.Terminal():
		if err := x.e.cancelChildren(ctx, events); err != nil {
			return err
		}
		if rec.Parent != "" {
			if err := x.e.report(ctx, rec); err != nil {
				return err
			}
		}
		if rec.Instance != "" {
			if err := x.e.endTurn(ctx, rec, events); err != nil {
				return err
			}
		}
	case rec.WakeAt != nil:
		if err := x.e.st.SetTimer(ctx, x.id, *rec.WakeAt); err != nil {
			return err
		}
	}
	if err := x.writeRecord(ctx, rec, true); err != nil {
		return err
	}
	switch rec.Status {
	case run.StatusCompleted, run.StatusFailed, run.StatusCanceled:
		if x.e.opts.OnFinish != nil {
			x.e.opts.OnFinish(rec, statsOf(events, time.Since(x.began)))
		}
	}
	return nil
}

// endTurn tells a run's instance that the turn ended, with what it added
// to the conversation.
func (e *Engine) endTurn(ctx context.Context, rec *run.Record, events []journal.Event) error {
	end, err := turnEndOf(rec, events, e.historyBytes())
	if err != nil {
		return err
	}
	_, err = e.st.Send(ctx, store.Input{To: instanceID(rec.Agent, rec.Instance), Kind: kindEnded, Data: mustJSON(end), MsgID: "ended/" + rec.ID})
	return err
}

// turnEndOf is how a turn that ended tells its instance. What the turn
// added to the conversation is cut to maxBytes, the most an instance
// keeps, so that the end fits in one message.
func turnEndOf(rec *run.Record, events []journal.Event, maxBytes int) (turnEnded, error) {
	end := turnEnded{RunID: rec.ID, Status: string(rec.Status)}
	if rec.Status == run.StatusCompleted {
		msgs, err := agent.Messages(events)
		if err != nil {
			return end, err
		}
		if n := len(runStartedOf(events).History); n <= len(msgs) {
			end.Messages = msgs[n:]
		}
		if kept := TrimHistory(end.Messages, 0, maxBytes); len(kept) < len(end.Messages) {
			end.Messages, end.Replace = kept, true
		}
		if holder := agent.Holder(events); holder != rec.Agent {
			end.Active = holder
		}
	}
	return end, nil
}
