package a2aserver

import (
	"context"
	"encoding/json"
	"iter"
	"time"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// keepAlive is how often an idle stream says the task is still working,
// so proxies do not cut it (the SDK's SSE writer sends no comments).
const keepAlive = 15 * time.Second

// listen starts following the tree of run id — its journal and its live
// messages — before the run may exist, so that none of its streamed text
// is missed.
func (e *endpoint) listen(ctx context.Context, id string) (*engine.Following, error) {
	f, err := e.s.rt.Follow(ctx, id, true, true)
	if err != nil {
		return nil, internal(err)
	}
	return f, nil
}

// follow yields a task's events: a status update per journal entry of the
// run tree (and per piece of streamed text), then the result and a final
// status when the run ends, or a final input-required status when a run of
// the tree waits for the client.
//
// It reads the tree's journal from the start, because a question or the
// end may be there already. Entries up to after are history: they are not
// reported, but an end or an open question among them still ends the
// stream.
func (e *endpoint) follow(ctx context.Context, f *engine.Following, root *run.Record, task *a2a.Task, after uint64) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		if task.Status.State.Terminal() || task.Status.State == a2a.TaskStateInputRequired {
			return // nothing more will happen without the client
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		updates := make(chan run.Update, 64)
		errc := make(chan error, 1)
		go func() {
			defer close(updates)
			for u, err := range f.Watch(ctx, 0, false) {
				if err != nil {
					errc <- err
					return
				}
				select {
				case updates <- u:
				case <-ctx.Done():
					return
				}
			}
		}()
		status := func(state a2a.TaskState, final bool, msg *a2a.Message, meta map[string]any) *a2a.TaskStatusUpdateEvent {
			ev := a2a.NewStatusUpdateEvent(task, state, msg)
			ev.Final, ev.Metadata = final, meta
			return ev
		}
		idle := time.NewTimer(keepAlive)
		defer idle.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-idle.C:
				if !yield(status(a2a.TaskStateWorking, false, nil, nil), nil) {
					return
				}
				idle.Reset(keepAlive)
			case u, ok := <-updates:
				if !ok {
					select {
					case err := <-errc:
						if ctx.Err() == nil {
							yield(nil, internal(err))
						}
					default:
					}
					return
				}
				idle.Reset(keepAlive)
				if u.Live != nil {
					if !e.live(task, u.Live, yield, status) {
						return
					}
					continue
				}
				out, done := e.entry(ctx, task, root, u.Event, after, status)
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

type statusFunc func(state a2a.TaskState, final bool, msg *a2a.Message, meta map[string]any) *a2a.TaskStatusUpdateEvent

// live reports streamed text as a working status; false means stop.
func (e *endpoint) live(task *a2a.Task, l *run.LiveEvent, yield func(a2a.Event, error) bool, status statusFunc) bool {
	if l.Type != run.LiveDelta {
		return true
	}
	var d run.Delta
	if json.Unmarshal(l.Data, &d) != nil {
		return true
	}
	meta := map[string]any{metaEvent: map[string]any{"type": d.Type, "path": l.Path, "run_id": l.RunID}}
	return yield(status(a2a.TaskStateWorking, false, agentMessage(task, d.Text), meta), nil)
}

// entry turns one journal entry of the tree into the task's events; done
// says the stream ends with them.
func (e *endpoint) entry(ctx context.Context, task *a2a.Task, root *run.Record, ev *run.TreeEvent, after uint64, status statusFunc) (out []a2a.Event, done bool) {
	path := ev.Path
	news := ev.Seq > after
	meta := map[string]any{metaEvent: map[string]any{"type": ev.Type, "path": path, "run_id": ev.RunID, "seq": ev.Seq}}
	switch {
	case ev.RunID == root.ID && ev.Type == journal.TypeRunCompleted:
		var c journal.RunCompleted
		_ = json.Unmarshal(ev.Data, &c)
		return append(resultEvents(task, c.Output, c.JSON), status(a2a.TaskStateCompleted, true, nil, meta)), true
	case ev.RunID == root.ID && ev.Type == journal.TypeRunFailed:
		var f journal.RunFailed
		_ = json.Unmarshal(ev.Data, &f)
		return []a2a.Event{status(a2a.TaskStateFailed, true, agentMessage(task, f.Code+": "+f.Message), meta)}, true
	case ev.RunID == root.ID && ev.Type == journal.TypeRunCanceled:
		return []a2a.Event{status(a2a.TaskStateCanceled, true, nil, meta)}, true
	case ev.Type == journal.TypeRunWaiting:
		// The run parks on what it asked: the client is asked everything
		// open at once, when a read of the task says so too.
		if asks := e.waitAsks(ctx, &ev.Event, path); len(asks) > 0 {
			return []a2a.Event{&a2a.TaskStatusUpdateEvent{TaskID: task.ID, ContextID: task.ContextID,
				Status: inputRequired(task, asks), Final: true, Metadata: meta}}, true
		}
		if news {
			return []a2a.Event{status(a2a.TaskStateWorking, false, agentMessage(task, describe(path, ev.Event)), meta)}, false
		}
	case ev.Type == journal.TypeInputRequested && callQuestion(ev.Data):
		// A running call's question: no run.waiting follows it.
		if a, open := e.openAsk(ctx, &ev.Event, path); open {
			return []a2a.Event{&a2a.TaskStatusUpdateEvent{TaskID: task.ID, ContextID: task.ContextID,
				Status: inputRequired(task, []ask{a}), Final: true, Metadata: meta}}, true
		}
		if news {
			return []a2a.Event{status(a2a.TaskStateWorking, false, agentMessage(task, describe(path, ev.Event)), meta)}, false
		}
	case news && ev.Type == journal.TypeApprovalRequested && !e.s.opts.ClientApprovals:
		return []a2a.Event{status(a2a.TaskStateWorking, false, agentMessage(task, path+": waiting for an operator's approval (GET /v1/approvals)"), meta)}, false
	case news && ev.Type == journal.TypeRunInDoubt:
		return []a2a.Event{status(a2a.TaskStateWorking, false, agentMessage(task,
			path+": stopped in doubt about a tool call; an operator resolves it (POST /v1/runs/"+ev.RunID+"/resolve)"), meta)}, false
	case news:
		return []a2a.Event{status(a2a.TaskStateWorking, false, agentMessage(task, describe(path, ev.Event)), meta)}, false
	}
	return nil, false
}

// callQuestion reports an input.requested entry that a running tool call
// asks (an MCP server's elicitation), not a flow's ask node.
func callQuestion(data json.RawMessage) bool {
	var q journal.InputRequested
	return json.Unmarshal(data, &q) == nil && q.Call != ""
}

// waitAsks lists what a run.waiting entry parks on that the client may
// still give: its undecided approvals (when clients decide them) and its
// unanswered questions.
func (e *endpoint) waitAsks(ctx context.Context, ev *journal.Event, path string) []ask {
	var w journal.RunWaiting
	if json.Unmarshal(ev.Data, &w) != nil {
		return nil
	}
	var out []ask
	if e.s.opts.ClientApprovals {
		for _, id := range w.Approvals {
			if open, err := e.s.rt.Approval(ctx, ev.RunID, id); err == nil && open != nil {
				out = append(out, ask{RunID: ev.RunID, Path: path, Approval: open})
			}
		}
	}
	for _, key := range w.Inputs {
		if open, err := e.s.rt.Question(ctx, ev.RunID, key); err == nil && open != nil {
			out = append(out, ask{RunID: ev.RunID, Path: path, Input: open})
		}
	}
	return out
}

// openAsk reports whether a running call's question still waits for the
// client: the run's journal says (a question answered, or withdrawn, or a
// run that ended, asks nothing).
func (e *endpoint) openAsk(ctx context.Context, ev *journal.Event, path string) (ask, bool) {
	a := ask{RunID: ev.RunID, Path: path}
	var q journal.InputRequested
	if json.Unmarshal(ev.Data, &q) != nil {
		return a, false
	}
	open, err := e.s.rt.Question(ctx, ev.RunID, q.Key)
	if err != nil || open == nil {
		return a, false
	}
	a.Input = open
	return a, true
}
