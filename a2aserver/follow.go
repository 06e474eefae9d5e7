package a2aserver

import (
	"context"
	"encoding/json"
	"iter"
	"slices"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/nats-io/nats.go"

	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/runtime"
)

// keepAlive is how often an idle stream says the task is still working,
// so proxies do not cut it (the SDK's SSE writer sends no comments).
const keepAlive = 15 * time.Second

// liveBuffer is how many pieces of streamed text a stream holds for a slow
// client.
const liveBuffer = 4096

// listen subscribes to the streamed text of the tree of run id. Streamed
// text is live, beside the journal; the connection's reader puts it in the
// channel in the order it arrives, before the journal entries that follow
// it, which keeps text and steps in order. A client too slow for
// liveBuffer pieces loses some (the journal has the whole text).
func (e *endpoint) listen(id string) (<-chan *nats.Msg, func()) {
	msgs := make(chan *nats.Msg, liveBuffer)
	sub, err := e.s.rt.Bus().NC.ChanSubscribe(bus.LivePrefix+bus.Tree(id)+".*", msgs)
	if err != nil {
		return nil, func() {}
	}
	return msgs, func() { _ = sub.Unsubscribe() }
}

// settleWait bounds how long a stream's end waits for the run's record to
// catch up with its journal (a worker that died between the two leaves it
// behind until another takes the run).
const settleWait = 3 * time.Second

// follow yields a task's events: a status update per journal entry of the
// run tree (and per piece of streamed text), then the result and a final
// status when the run ends, or a final input-required status when a run of
// the tree waits for the client.
//
// It reads the tree's journal from the start, because a run's record lags
// its journal: the end, or a question, may already be written while the
// record (and so the task the client was sent first) does not say so yet.
// Entries up to after are history: they are not reported, but an end or
// an open question among them still ends the stream. liveMsgs (see listen)
// brings the tree's streamed text; nil leaves it out.
func (e *endpoint) follow(ctx context.Context, root *runtime.Record, task *a2a.Task, after uint64, liveMsgs <-chan *nats.Msg) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		if task.Status.State.Terminal() || task.Status.State == a2a.TaskStateInputRequired {
			return // nothing more will happen without the client
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rt := e.s.rt
		events := make(chan journal.Event, 64)
		errc := make(chan error, 1)
		go func() {
			errc <- journal.FollowTree(ctx, rt.Bus(), bus.Tree(root.ID), 0, func(ev journal.Event) bool {
				select {
				case events <- ev:
					return true
				case <-ctx.Done():
					return false
				}
			})
			close(events)
		}()
		tree := rt.NewTree(root)
		status := func(state a2a.TaskState, final bool, msg *a2a.Message, meta map[string]any) *a2a.TaskStatusUpdateEvent {
			ev := a2a.NewStatusUpdateEvent(task, state, msg)
			ev.Final, ev.Metadata = final, meta
			return ev
		}
		// delta handles a live message: streamed text, or a question a
		// tool call asks (which ends the stream: the client must answer).
		// false means stop.
		delta := func(m *nats.Msg) bool {
			var d runtime.Delta
			if json.Unmarshal(m.Data, &d) != nil {
				return true
			}
			if _, member := tree.Path(ctx, d.RunID, nil); !member {
				return true
			}
			meta := map[string]any{metaEvent: map[string]any{"type": d.Type, "path": d.Path, "run_id": d.RunID}}
			switch d.Type {
			case runtime.LiveDelta:
				return yield(status(a2a.TaskStateWorking, false, agentMessage(task, d.Text), meta), nil)
			case runtime.LiveQuestion:
				var q runtime.Question
				if json.Unmarshal(m.Data, &q) != nil {
					return true
				}
				yield(&a2a.TaskStatusUpdateEvent{TaskID: task.ID, ContextID: task.ContextID, Final: true, Metadata: meta,
					Status: inputRequired(task, []ask{{RunID: d.RunID, Path: d.Path, Input: &q.InputRequested}})}, nil)
				return false
			}
			return true
		}
		// live sends the streamed text that has arrived; false means stop.
		live := func() bool {
			for {
				select {
				case m := <-liveMsgs:
					if !delta(m) {
						return false
					}
				default:
					return true
				}
			}
		}
		idle := time.NewTimer(keepAlive)
		defer idle.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-idle.C:
				// A question only announced live may have been missed
				// (asked before this stream listened): the record says.
				if rec, err := rt.Get(ctx, root.ID); err == nil {
					if t, err := e.task(ctx, rec); err == nil && t.Status.State == a2a.TaskStateInputRequired {
						yield(&a2a.TaskStatusUpdateEvent{TaskID: task.ID, ContextID: task.ContextID, Status: t.Status, Final: true}, nil)
						return
					}
				}
				if !yield(status(a2a.TaskStateWorking, false, nil, nil), nil) {
					return
				}
				idle.Reset(keepAlive)
			case m := <-liveMsgs:
				if !delta(m) {
					return
				}
			case ev, ok := <-events:
				if !ok {
					err := <-errc
					if err == nil || ctx.Err() != nil {
						return
					}
					yield(nil, internal(err))
					return
				}
				// Text streamed before this entry is already queued (one
				// connection delivers in order): it goes first.
				if !live() {
					return
				}
				idle.Reset(keepAlive)
				path, member := tree.Path(ctx, ev.RunID, &ev)
				if !member {
					continue
				}
				news := ev.Seq > after
				meta := map[string]any{metaEvent: map[string]any{"type": ev.Type, "path": path, "run_id": ev.RunID, "seq": ev.Seq}}
				var out []a2a.Event
				done := false
				switch {
				case ev.RunID == root.ID && ev.Type == journal.TypeRunCompleted:
					var c journal.RunCompleted
					_ = json.Unmarshal(ev.Data, &c)
					out, done = append(resultEvents(task, c.Output, c.JSON), status(a2a.TaskStateCompleted, true, nil, meta)), true
				case ev.RunID == root.ID && ev.Type == journal.TypeRunFailed:
					var f journal.RunFailed
					_ = json.Unmarshal(ev.Data, &f)
					out, done = []a2a.Event{status(a2a.TaskStateFailed, true, agentMessage(task, f.Code+": "+f.Message), meta)}, true
				case ev.RunID == root.ID && ev.Type == journal.TypeRunCanceled:
					out, done = []a2a.Event{status(a2a.TaskStateCanceled, true, nil, meta)}, true
				case ev.Type == journal.TypeApprovalRequested || ev.Type == journal.TypeInputRequested:
					if a, open := e.openAsk(ctx, ev, path); open {
						out, done = []a2a.Event{&a2a.TaskStatusUpdateEvent{TaskID: task.ID, ContextID: task.ContextID,
							Status: inputRequired(task, []ask{a}), Final: true, Metadata: meta}}, true
					} else if news {
						msg := describe(path, ev)
						if ev.Type == journal.TypeApprovalRequested && !e.s.opts.ClientApprovals {
							msg = path + ": waiting for an operator's approval (GET /v1/approvals)"
						}
						out = []a2a.Event{status(a2a.TaskStateWorking, false, agentMessage(task, msg), meta)}
					}
				case news && ev.Type == journal.TypeRunInDoubt:
					out = []a2a.Event{status(a2a.TaskStateWorking, false, agentMessage(task,
						path+": stopped in doubt about a tool call; an operator resolves it (POST /v1/runs/"+ev.RunID+"/resolve)"), meta)}
				case news:
					out = []a2a.Event{status(a2a.TaskStateWorking, false, agentMessage(task, describe(path, ev)), meta)}
				}
				if done && ev.RunID == root.ID {
					// The journal ends the run before its record says so:
					// let the record catch up, so a tasks/get that follows
					// the final event agrees with it.
					wctx, cancel := context.WithTimeout(ctx, settleWait)
					_, _ = rt.Wait(wctx, root.ID)
					cancel()
				}
				for _, o := range out {
					if !yield(o, nil) {
						return
					}
				}
				if done {
					return
				}
			}
		}
	}
}

// openAsk reports whether a question entry still waits for the client. A
// record that has not caught up with the entry cannot have been answered
// (answers go through the record), so the question is open; otherwise the
// record says.
func (e *endpoint) openAsk(ctx context.Context, ev journal.Event, path string) (ask, bool) {
	a := ask{RunID: ev.RunID, Path: path}
	switch ev.Type {
	case journal.TypeApprovalRequested:
		if !e.s.opts.ClientApprovals {
			return a, false
		}
		var q journal.ApprovalRequested
		if json.Unmarshal(ev.Data, &q) != nil {
			return a, false
		}
		a.Approval = &q
	case journal.TypeInputRequested:
		var q journal.InputRequested
		if json.Unmarshal(ev.Data, &q) != nil {
			return a, false
		}
		a.Input = &q
	}
	rec, err := e.s.rt.Get(ctx, ev.RunID)
	if err != nil {
		return a, false
	}
	if rec.Status.Terminal() {
		return a, false
	}
	if rec.Steps < ev.Step {
		return a, true
	}
	if a.Approval != nil {
		return a, slices.ContainsFunc(rec.PendingApprovals(), func(p journal.ApprovalRequested) bool { return p.ApprovalID == a.Approval.ApprovalID })
	}
	return a, slices.ContainsFunc(rec.PendingInputs(), func(p journal.InputRequested) bool { return p.Key == a.Input.Key })
}
