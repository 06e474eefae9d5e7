package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// Observer is told what this node does with runs as it does it: each run
// it accepts, and each journal entry its writers append. Every entry is
// journaled by one writer, so across a cluster each is observed once, on
// the node that wrote it (one that dies between the append and the call
// misses it: observers count, they do not decide). Telemetry is an
// Observer. Calls come on the writer's path: they must be quick and must
// not block.
type Observer interface {
	Accepted(info run.Info)
	Journaled(info run.Info, e Entry)
}

// Entry is a journal entry as its writer appended it.
type Entry struct {
	journal.Event
	// Value is the entry's data as the writer gave it (one of journal's
	// types, by value or by pointer): observers read it rather than
	// decoding Data again on the writer's path. See EntryData.
	Value any
	// Cost is the run's cost, its children's included, on the entry that
	// ends it (nil elsewhere, and when nothing had a price).
	Cost *journal.Cost
}

// EntryData is an entry's data as a T: its Value when that is a T or a *T,
// else decoded from its Data.
func EntryData[T any](e Entry) (T, bool) {
	switch v := e.Value.(type) {
	case T:
		return v, true
	case *T:
		if v != nil {
			return *v, true
		}
	}
	var out T
	err := json.Unmarshal(e.Data, &out)
	return out, err == nil
}

// journaled tells the observers of an entry the run appended, with its
// data as given.
func (x *execution) journaled(ev journal.Event, data any) {
	if len(x.e.observers) == 0 {
		return
	}
	if ev.Type == journal.TypeHandoff {
		x.runInfo()
		if h, ok := EntryData[journal.Handoff](Entry{Event: ev, Value: data}); ok && x.info != nil {
			x.info.Acting = h.To
		}
	}
	info := x.runInfo()
	e := Entry{Event: ev, Value: data}
	if journal.Terminal(ev.Type) {
		e.Cost = journal.CostOf(x.j.Events())
	}
	for _, o := range x.e.observers {
		o.Journaled(info, e)
	}
}

// runInfo is who the run is: from its submission, or (resumed) from its
// run.started entry.
func (x *execution) runInfo() run.Info {
	events := x.j.Events()
	if x.info != nil {
		if x.info.Started.IsZero() && len(events) > 0 && events[0].Type == journal.TypeRunStarted {
			x.info.Started = events[0].Time
		}
		return *x.info
	}
	var info run.Info
	switch {
	case x.sub != nil:
		start := x.sub.started()
		info = run.InfoOf(x.id, &start)
	case len(events) > 0 && events[0].Type == journal.TypeRunStarted:
		var start journal.RunStarted
		_ = json.Unmarshal(events[0].Data, &start)
		info = run.InfoOf(x.id, &start)
	default:
		return run.Info{ID: x.id} // nothing to say yet: not kept
	}
	if len(events) > 0 && events[0].Type == journal.TypeRunStarted {
		info.Started = events[0].Time
	}
	for _, ev := range events { // resumed after a handoff: who holds it now
		if ev.Type == journal.TypeHandoff {
			if h, ok := EntryData[journal.Handoff](Entry{Event: ev}); ok {
				info.Acting = h.To
			}
		}
	}
	x.info = &info
	return info
}

// runLog writes a line at INFO for each event of a run that matters to an
// operator: accepted, started, waiting, in doubt, and its end.
type runLog struct{ log *slog.Logger }

var _ Observer = runLog{}

func (l runLog) Accepted(info run.Info) {
	l.log.Info("run accepted", l.attrs(info)...)
}

func (l runLog) Journaled(info run.Info, ev Entry) {
	attrs := l.attrs(info)
	var msg string
	switch ev.Type {
	case journal.TypeRunStarted:
		msg = "run started"
	case journal.TypeRunWaiting:
		w, _ := EntryData[journal.RunWaiting](ev)
		msg, attrs = "run waiting", append(attrs, "for", strings.Join(w.Reasons(), ","))
	case journal.TypeRunInDoubt:
		d, _ := EntryData[journal.RunInDoubt](ev)
		// A warning: a person must decide.
		l.log.Warn("run in doubt: a non-idempotent tool call may or may not have happened; resolve it with POST /v1/runs/{id}/resolve or myriad runs resolve",
			append(attrs, "tool", d.Name, "call_id", d.CallID, "reason", d.Reason)...)
		return
	case journal.TypeRunCompleted:
		c, _ := EntryData[journal.RunCompleted](ev)
		msg, attrs = "run completed", append(attrs, "input_tokens", c.Usage.InputTokens, "output_tokens", c.Usage.OutputTokens)
	case journal.TypeRunFailed:
		f, _ := EntryData[journal.RunFailed](ev)
		msg, attrs = "run failed", append(attrs, "code", f.Code, "error", run.CutText(f.Message, 500),
			"input_tokens", f.Usage.InputTokens, "output_tokens", f.Usage.OutputTokens)
	case journal.TypeRunCanceled:
		c, _ := EntryData[journal.RunCanceled](ev)
		msg, attrs = "run canceled", append(attrs, "reason", c.Reason)
	case journal.TypeApprovalDecided:
		d, _ := EntryData[journal.ApprovalDecided](ev)
		msg, attrs = "approval decided", append(attrs, "approval_id", d.ApprovalID, "decision", d.Decision, "by_default", d.ByDefault,
			"edited", len(d.Arguments) > 0, "reason", run.CutText(d.Reason, 200))
	case journal.TypeInputReceived:
		in, _ := EntryData[journal.InputReceived](ev)
		msg, attrs = "input received", append(attrs, "key", in.Key, "by_default", in.ByDefault)
	case journal.TypeToolResolved:
		r, _ := EntryData[journal.ToolResolved](ev)
		msg, attrs = "run in doubt resolved", append(attrs, "call_id", r.CallID, "action", r.Action, "reason", run.CutText(r.Reason, 200))
	default:
		return
	}
	if journal.Terminal(ev.Type) && !info.Submitted.IsZero() {
		attrs = append(attrs, "duration", ev.Time.Sub(info.Submitted).Round(time.Millisecond).String())
	}
	if ev.Cost != nil {
		attrs = append(attrs, "cost_usd", ev.Cost.USD)
	}
	l.log.Info(msg, attrs...)
}

func (l runLog) attrs(info run.Info) []any {
	attrs := []any{"run_id", info.ID}
	if info.Flow != "" {
		attrs = append(attrs, "flow", info.Flow)
	} else {
		attrs = append(attrs, "agent", info.Agent)
	}
	attrs = append(attrs, "trace_id", info.TraceID())
	if info.Path != "" {
		attrs = append(attrs, "path", info.Path, "parent", info.Parent)
	}
	if info.Instance != "" {
		attrs = append(attrs, "instance", info.Instance)
	}
	return attrs
}

// Stats is what this node holds at a moment.
type Stats struct {
	// Workers is how many runs the node executes at once; Busy how many
	// runs and instances it is executing.
	Workers, Busy int
	// Followers counts the watches of runs open on the node (SSE, A2A and
	// MCP streams, waits).
	Followers int
}

// Stats reports what this node holds now.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	busy := len(e.active)
	e.mu.Unlock()
	return Stats{Workers: e.opts.Workers, Busy: busy, Followers: e.feed.followers()}
}

// Backlog is the depth of the cluster's work queue: runs and instances
// with work no node has taken (waiting), taken and not yet done, and how
// long the oldest has waited.
type Backlog = store.Backlog

// Backlog reads the depth of the cluster's work queue.
func (e *Engine) Backlog(ctx context.Context) (Backlog, error) {
	return e.st.Backlog(ctx)
}
