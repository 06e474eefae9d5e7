package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// Taking inputs. The run's writer takes its inputs in order, as they come,
// and journals what each did — its effect, or input.refused with the
// reason — with the input's position (journal.Event.InputSeq), under the
// same lock as the runner's appends. What it journals while the runner
// runs, the runner folds in when it asks (agent.Env.Inputs), or the run is
// resumed again: so a command's sender hears at once whether it was taken.

// readInputs reads the inputs stored after the last one read.
func (x *execution) readInputs(ctx context.Context) error {
	x.readMu.Lock()
	defer x.readMu.Unlock()
	x.poked.Store(false)
	x.mu.Lock()
	after := max(x.j.InputSeq(), x.readUpTo)
	x.mu.Unlock()
	ins, err := x.e.st.ReadInputs(ctx, x.id, after)
	if err != nil {
		x.poked.Store(true) // read again next time
		return err
	}
	x.mu.Lock()
	for _, in := range ins {
		if in.Seq > x.readUpTo {
			x.pending = append(x.pending, in)
			x.readUpTo = in.Seq
		}
	}
	x.mu.Unlock()
	return nil
}

// onPoke runs when an input is stored for the run (on the node's poke
// subscription: it must not block). Between resumptions the main loop
// reads it; while the runner runs, the listener takes it now.
func (x *execution) onPoke() {
	x.poked.Store(true)
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// listen takes the inputs that come while the runner runs, until done.
func (x *execution) listen(done <-chan struct{}) {
	ctx := context.Background()
	for {
		select {
		case <-done:
			return
		case <-x.wake:
		}
		if err := x.readInputs(ctx); err != nil {
			x.log.Warn("read inputs", "err", err)
			continue
		}
		x.mu.Lock()
		if x.running {
			if err := x.takeLocked(ctx); err != nil {
				x.log.Warn("take inputs", "err", err)
			}
		}
		x.mu.Unlock()
	}
}

// inputsForRunner takes every input read so far, and returns what was
// journaled for inputs since the runner last asked (agent.Env.Inputs).
func (x *execution) inputsForRunner(ctx context.Context) ([]journal.Event, error) {
	if x.poked.Load() {
		if err := x.readInputs(ctx); err != nil {
			return nil, err
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.takeLocked(ctx); err != nil {
		return nil, err
	}
	out := x.unseen
	x.unseen = nil
	return out, nil
}

// takeAll takes every input read and not taken.
func (x *execution) takeAll(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.takeLocked(ctx)
}

// takeLocked takes the pending inputs, in order.
func (x *execution) takeLocked(ctx context.Context) error {
	if slices.ContainsFunc(x.pending, func(m store.InputMsg) bool { return m.Kind == kindDeleted }) {
		return errDeleted
	}
	if len(x.j.Events()) == 0 {
		if err := x.beginLocked(ctx); err != nil {
			return err
		}
	}
	for len(x.pending) > 0 {
		in := x.pending[0]
		k := 1
		var err error
		switch {
		case journal.Terminal(lastType(x.j.Events())):
			// Moot: the run has ended. (Readers see every input up to the
			// end as taken.)
		case in.Kind == kindReport:
			for k < len(x.pending) && x.pending[k].Kind == kindReport {
				k++
			}
			k, err = x.takeReports(ctx, x.pending[:k])
		default:
			err = x.takeOne(ctx, in)
		}
		if errors.Is(err, store.ErrTooLarge) {
			// Taking it again cannot help: refuse it, so what comes
			// after it is taken.
			k, err = 1, x.refuse(ctx, in, invalidf("%s is too large for a journal entry on this NATS server (raise its max_payload)", kindNoun(in.Kind)))
		}
		if err != nil {
			return err
		}
		x.pending = x.pending[k:]
	}
	return nil
}

// beginLocked starts a run whose journal is empty, with its submission.
// The submission may come after other inputs — a cancel sent to a child
// its parent journaled and had not spawned yet, or to a turn its instance
// interrupted before the turn's submission was written — so it is looked
// for among all of them. Without one, nothing is taken (errNotStarted):
// the submission rings the run when it comes. A turn starts when its
// instance says (start), or ends if a cancel comes first; what comes
// before either is moot.
func (x *execution) beginLocked(ctx context.Context) error {
	if i := slices.IndexFunc(x.pending, isSubmission); i >= 0 {
		if err := x.takeSubmission(x.pending[i]); err != nil {
			return err
		}
		if x.pending[i].Kind == kindSubmit {
			var seq uint64
			if i == 0 {
				// In order: run.started takes it. (Out of order, the inputs
				// before it are taken first, and it is passed over after.)
				seq = x.pending[0].Seq
				x.pending = x.pending[1:]
			}
			start := x.sub.started()
			var source []journal.Event
			if x.sub.Fork != nil {
				var err error
				if start, source, err = x.forkStart(ctx); err != nil {
					return err
				}
			}
			if err := x.begin(ctx, seq, start, &journal.RunFailed{Code: agent.CodeTooLarge,
				Message: "the run's input is larger than the NATS server's max_payload allows in a journal entry; shorten the input, or raise max_payload on the NATS server"}); err != nil {
				return err
			}
			return x.copyFork(ctx, source)
		}
	}
	at := slices.IndexFunc(x.pending, func(m store.InputMsg) bool { return m.Kind == kindStart || m.Kind == kindCancel })
	if at < 0 {
		return errNotStarted
	}
	if x.sub == nil {
		// The start carries the turn's submission too.
		for _, m := range x.pending[at:] {
			var st startTurn
			if m.Kind == kindStart && json.Unmarshal(m.Data, &st) == nil && st.Submission != nil {
				x.sub = st.Submission
				break
			}
		}
		if x.sub == nil {
			return errNotStarted
		}
	}
	x.pending = x.pending[at:]
	return nil
}

func isSubmission(m store.InputMsg) bool { return m.Kind == kindSubmit || m.Kind == kindSubmitTurn }

// takeSubmission reads the run's submission.
func (x *execution) takeSubmission(in store.InputMsg) error {
	var sub submission
	if err := json.Unmarshal(in.Data, &sub); err != nil {
		return fmt.Errorf("run %s: unreadable submission: %w", x.id, err)
	}
	x.sub, x.subSeq = &sub, in.Seq
	return nil
}

// takeOne takes one input that is not a report, in a run begun (or, for
// a turn, at its start or cancel).
func (x *execution) takeOne(ctx context.Context, in store.InputMsg) error {
	events := x.j.Events()
	switch in.Kind {
	case kindSubmit, kindSubmitTurn:
		// The submission the run began with (met in order), or the same
		// one sent again: a submission is idempotent.
		x.j.Pass(in.Seq)
		return nil
	case kindStart:
		var st startTurn
		if err := json.Unmarshal(in.Data, &st); err != nil || len(events) > 0 {
			return x.refuse(ctx, in, conflictf("the turn has started before"))
		}
		if x.sub == nil {
			x.sub = st.Submission
		}
		if x.sub == nil {
			return x.refuse(ctx, in, invalidf("a start without the turn's submission"))
		}
		start := x.sub.started()
		start.Turn, start.History, start.HistoryDropped = st.Turn, st.History, st.HistoryDropped
		if st.Input != "" {
			start.Input = st.Input
		}
		if st.Agent != "" && st.Agent != start.Agent {
			start.InstanceAgent, start.Agent = start.Agent, st.Agent
		}
		if st.Refuse != "" {
			start.Refused = &journal.RunFailed{Code: cmp.Or(st.Code, CodeInstanceBusy), Message: st.Refuse}
		}
		return x.begin(ctx, in.Seq, start, &journal.RunFailed{Code: agent.CodeTooLarge,
			Message: "the turn's input and its instance's conversation are larger than the NATS server's max_payload; shorten the input, or raise max_payload on the NATS server"})
	case kindCancel:
		return x.takeCancel(ctx, in)
	case kindDecide:
		return x.takeDecision(ctx, in)
	case kindAnswer:
		return x.takeAnswer(ctx, in)
	case kindResolve:
		return x.takeResolution(ctx, in)
	case kindTimer:
		var t timerFired
		_ = json.Unmarshal(in.Data, &t)
		_, err := x.appendFor(ctx, in.Seq, journal.TypeTimerFired, journal.TimerFired(t))
		return err
	}
	return x.refuse(ctx, in, invalidf("unknown input %q", in.Kind))
}

// CodeInstanceBusy fails a turn sent to a busy instance of an agent that
// rejects concurrent input.
const CodeInstanceBusy = "instance_busy"

// begin journals run.started (for the input at seq, 0: none), and
// run.failed after it when the start is refused (start.Refused). An entry
// larger than the NATS server takes is journaled without its history and
// initial state and with its input cut, refused with tooLarge (nil: the
// caller ends the run otherwise).
func (x *execution) begin(ctx context.Context, seq uint64, start journal.RunStarted, tooLarge *journal.RunFailed) error {
	_, err := x.appendFor(ctx, seq, journal.TypeRunStarted, start)
	if errors.Is(err, store.ErrTooLarge) {
		start.HistoryDropped += len(start.History)
		start.History, start.State = nil, nil
		start.Input, start.InputTruncated = run.CutText(start.Input, cutInputBytes), true
		start.Refused = cmp.Or(start.Refused, tooLarge)
		if _, err = x.appendFor(ctx, seq, journal.TypeRunStarted, start); errors.Is(err, store.ErrTooLarge) {
			start.Metadata = nil
			_, err = x.appendFor(ctx, seq, journal.TypeRunStarted, start)
		}
	}
	if err != nil {
		return err
	}
	// Its submitter indexed it without waiting; a child, a fork's copy or
	// a submission the router completed is indexed here.
	x.e.st.AddToIndex(x.id, entryOfStart(start))
	if start.Refused == nil {
		return nil
	}
	_, err = x.appendLocked(ctx, journal.TypeRunFailed, *start.Refused)
	return err
}

// cutInputBytes is how much of an input too large to journal is kept, so
// the run's journal and record still say what it was.
const cutInputBytes = 4 << 10

// started is the run.started entry of a submission.
func (sub *submission) started() journal.RunStarted {
	return journal.RunStarted{Agent: sub.Agent, Flow: sub.Flow, Instance: sub.Instance, Input: sub.Input, Metadata: sub.Metadata,
		History: sub.History, Parent: sub.Parent, ParentCall: sub.ParentCall, Path: sub.Path, Depth: sub.Depth, State: sub.State,
		Submitted: sub.Submitted}
}

// refuse journals an input the run cannot take, and why.
func (x *execution) refuse(ctx context.Context, in store.InputMsg, why *refusal) error {
	_, err := x.appendFor(ctx, in.Seq, journal.TypeInputRefused, journal.InputRefused{Seq: in.Seq, Kind: in.Kind, Code: why.code(), Reason: why.reason})
	return err
}

func (x *execution) takeCancel(ctx context.Context, in store.InputMsg) error {
	var req cancelRequest
	_ = json.Unmarshal(in.Data, &req)
	reason := req.Reason
	if reason == "" {
		reason = "canceled by request"
	}
	events := x.j.Events()
	if len(events) == 0 {
		// A turn canceled before it started: the journal says what it
		// was, then that it ended. (The cancel takes every input before
		// it, its submission's among them or not.)
		if err := x.begin(ctx, 0, x.sub.started(), nil); err != nil {
			return err
		}
		_, err := x.appendFor(ctx, in.Seq, journal.TypeRunCanceled, journal.RunCanceled{Reason: reason + " (before it started)"})
		return err
	}
	if x.running {
		// The runner ends the run at its next step; if this worker dies
		// first, the next one ends it (see execute).
		if _, err := x.appendFor(ctx, in.Seq, journal.TypeCancelRequested, journal.CancelRequested{Reason: reason}); err != nil {
			return err
		}
		x.cancel(agent.CanceledBecause(reason))
		return nil
	}
	_, err := x.appendFor(ctx, in.Seq, journal.TypeRunCanceled, journal.RunCanceled{Reason: reason, Usage: journal.Usage(events)})
	return err
}

func (x *execution) takeDecision(ctx context.Context, in store.InputMsg) error {
	var d decision
	if err := json.Unmarshal(in.Data, &d); err != nil {
		return x.refuse(ctx, in, invalidf("unreadable decision"))
	}
	ask, no := x.e.checkDecision(x.id, x.j.Events(), d)
	if no != nil {
		return x.refuse(ctx, in, no)
	}
	_, err := x.appendFor(ctx, in.Seq, journal.TypeApprovalDecided, journal.ApprovalDecided{ApprovalID: d.ApprovalID, CallID: ask.CallID,
		Decision: d.Decision.Decision, Arguments: d.Arguments, Reason: d.Reason})
	return err
}

func (x *execution) takeAnswer(ctx context.Context, in store.InputMsg) error {
	var a answer
	if err := json.Unmarshal(in.Data, &a); err != nil {
		return x.refuse(ctx, in, invalidf("unreadable answer"))
	}
	q, no := x.e.checkAnswer(x.id, x.j.Events(), a)
	if no != nil {
		return x.refuse(ctx, in, no)
	}
	var waiting chan json.RawMessage
	if q.Call != "" {
		ch, live := x.asks.Load(a.Key)
		if !live {
			return x.refuse(ctx, in, conflictf("the call that asked %q has ended", a.Key))
		}
		waiting = ch.(chan json.RawMessage)
	}
	if _, err := x.appendFor(ctx, in.Seq, journal.TypeInputReceived, journal.InputReceived{Key: a.Key, Value: a.Value}); err != nil {
		return err
	}
	if waiting != nil {
		waiting <- a.Value
	}
	return nil
}

func (x *execution) takeResolution(ctx context.Context, in store.InputMsg) error {
	var res run.Resolution
	if err := json.Unmarshal(in.Data, &res); err != nil {
		return x.refuse(ctx, in, invalidf("unreadable resolution"))
	}
	d, no := checkResolution(x.id, x.j.Events())
	if no != nil {
		return x.refuse(ctx, in, no)
	}
	_, err := x.appendFor(ctx, in.Seq, journal.TypeToolResolved, journal.ToolResolved{CallID: d.CallID, Action: res.Action, Result: res.Result, Reason: res.Reason})
	return err
}

// maxReportsEntry bounds the reports journaled in one entry, far below
// any NATS server's max_payload (1 MiB by default): reports that queued
// up while a parent was parked are taken a batch at a time.
const maxReportsEntry = 512 << 10

// takeReports journals the reports of children in one entry, as many of
// ins as fit, and returns how many it took. Reports of children that
// reported before (a retried settle) are left out. A report too large
// for the server even alone is cut to a summary.
func (x *execution) takeReports(ctx context.Context, ins []store.InputMsg) (int, error) {
	open := map[string]bool{}
	for _, id := range journal.OpenChildren(x.j.Events()) {
		open[id] = true
	}
	var d journal.ChildrenReported
	size, n := 0, 0
	for _, in := range ins {
		if n > 0 && size+len(in.Data) > maxReportsEntry {
			break
		}
		n++
		size += len(in.Data)
		var rep journal.ChildReport
		if json.Unmarshal(in.Data, &rep) == nil && open[rep.RunID] {
			d.Reports = append(d.Reports, rep)
			delete(open, rep.RunID)
		}
	}
	last := ins[n-1]
	if len(d.Reports) == 0 {
		return n, x.refuse(ctx, last, conflictf("reports of children that reported before"))
	}
	_, err := x.appendFor(ctx, last.Seq, journal.TypeChildrenReported, d)
	if errors.Is(err, store.ErrTooLarge) && len(d.Reports) == 1 {
		// One report larger than the server's max_payload: the parent
		// learns how its child ended, and reads the output from the child.
		rep := &d.Reports[0]
		rep.Output = fmt.Sprintf("[the output of run %s is too large to report here (%d bytes); read it from the run]", rep.RunID, len(rep.Output))
		if len(rep.Error) > 4096 {
			rep.Error = rep.Error[:4096] + " [truncated]"
		}
		_, err = x.appendFor(ctx, last.Seq, journal.TypeChildrenReported, d)
	}
	return n, err
}

// withdrawStale closes the questions tool calls asked in an execution
// that is gone: their calls are not waiting any more.
func (x *execution) withdrawStale(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, q := range journal.OpenQuestions(x.j.Events()) {
		if q.Call == "" {
			continue
		}
		if _, err := x.appendLocked(ctx, journal.TypeInputWithdrawn, journal.InputWithdrawn{Key: q.Key, Reason: "the call that asked was interrupted"}); err != nil {
			return err
		}
	}
	return nil
}

func findQuestion(open []journal.InputRequested, key string) *journal.InputRequested {
	for i := range open {
		if open[i].Key == key {
			return &open[i]
		}
	}
	return nil
}

// runStartedOf returns a journal's run.started.
func runStartedOf(events []journal.Event) journal.RunStarted {
	var st journal.RunStarted
	for _, ev := range events {
		if ev.Type == journal.TypeRunStarted {
			_ = json.Unmarshal(ev.Data, &st)
			break
		}
	}
	return st
}

func lastType(events []journal.Event) string {
	if len(events) == 0 {
		return ""
	}
	return events[len(events)-1].Type
}
