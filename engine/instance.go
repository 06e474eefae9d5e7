package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// Instances. An agent instance (agent/key) is an entity of its own, with
// inputs and a journal: a submission to it sends the instance a turn
// (kindTurn) in the same atomic write as the run. The instance's writer
// queues its turns in order and starts one at a time (kindStart, with the
// conversation so far); a turn that ends tells its instance (kindEnded,
// with what it added to the conversation), whose writer starts the next
// turn at once. The instance's snapshot (the store's instance bucket) is
// the fold of its journal up to a point, kept for readers and to resume
// the fold from.

// Instance is an agent instance as its snapshot has it.
type Instance struct {
	Agent string `json:"agent"`
	Key   string `json:"key"`
	// Turns counts the turns started, Done those that ended.
	Turns uint64 `json:"turns"`
	Done  uint64 `json:"done"`
	// Current is the run of the turn running now; Queue the turns waiting.
	Current  string          `json:"current,omitempty"`
	Queue    []QueuedTurn    `json:"queue,omitempty"`
	Messages []model.Message `json:"messages,omitempty"`
	// Dropped counts the messages of the conversation that Messages no
	// longer holds (history_limit, the size bound).
	Dropped int `json:"dropped,omitempty"`
	// Active is the agent holding the conversation after a handoff, when
	// it is not the instance's own agent.
	Active    string    `json:"active,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	// Listed says the instance directory has it.
	Listed bool `json:"listed,omitempty"`

	// Where the snapshot stands in the instance's journal.
	Seq      uint64 `json:"seq,omitempty"`
	Step     int    `json:"step,omitempty"`
	InputSeq uint64 `json:"input_seq,omitempty"`
	LastType string `json:"last_type,omitempty"`
	// CurrentInput and CurrentSubmission are the current turn's, and Ended
	// how turns that a queued turn interrupted ended: an interrupting turn
	// carries the input of the turns it canceled before they answered.
	CurrentInput      string            `json:"current_input,omitempty"`
	CurrentSubmission *submission       `json:"current_submission,omitempty"`
	Ended             map[string]string `json:"ended,omitempty"`
}

// QueuedTurn is a turn waiting for its instance.
type QueuedTurn struct {
	RunID      string      `json:"run_id"`
	Input      string      `json:"input"`
	Submission *submission `json:"submission,omitempty"`
	// Carry are the turns it interrupted, whose input it carries unless
	// they answered.
	Carry []CarriedTurn `json:"carry,omitempty"`
}

// CarriedTurn is a turn an interrupting turn canceled.
type CarriedTurn struct {
	RunID string `json:"run_id"`
	Input string `json:"input"`
	// Started says it was running (it may have answered before the cancel
	// reached it); a queued turn never did.
	Started bool `json:"started,omitempty"`
}

// Busy describes what an instance is busy with ("" when idle).
func (in *Instance) busy() string {
	switch {
	case in.Current != "":
		return fmt.Sprintf("turn %d (run %s)", in.Turns, in.Current)
	case len(in.Queue) > 0:
		return fmt.Sprintf("run %s, waiting for its turn", in.Queue[0].RunID)
	}
	return ""
}

// GetInstance returns an instance's state: its snapshot, the entries of
// its journal since, and the turns and ends sent to it that it has not
// taken yet.
func (e *Engine) GetInstance(ctx context.Context, agentName, key string) (*Instance, error) {
	in, _, err := e.instanceNow(ctx, instanceID(agentName, key))
	if err != nil {
		return nil, err
	}
	if in.Agent == "" {
		in.Agent, in.Key = agentName, key
	}
	return in, nil
}

func (e *Engine) snapshot(ctx context.Context, id string) (*Instance, error) {
	data, err := e.st.Snapshot(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return &Instance{}, nil
	}
	if err != nil {
		return nil, err
	}
	var in Instance
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("instance %s: corrupt snapshot: %w", id, err)
	}
	return &in, nil
}

// instanceNow reads an instance as its writer will have it once it takes
// the inputs it has now, and the position of its newest input.
func (e *Engine) instanceNow(ctx context.Context, id string) (*Instance, uint64, error) {
	w := &instanceWork{e: e, id: id}
	if _, err := w.load(ctx); err != nil {
		return nil, 0, err
	}
	last := w.j.InputSeq()
	ins, err := e.st.ReadInputs(ctx, id, last)
	if err != nil {
		return nil, 0, err
	}
	for _, m := range ins {
		last = m.Seq
		ev := journal.Event{Time: m.Time}
		switch m.Kind {
		case kindTurn:
			var t turnRequest
			if json.Unmarshal(m.Data, &t) != nil || t.Submission == nil {
				continue
			}
			if w.in.Agent == "" {
				w.in.Agent, w.in.Key = t.Submission.Agent, t.Submission.Instance
			}
			ev.Type, ev.Data = journal.TypeTurnQueued, mustJSON(journal.TurnQueued{RunID: t.RunID, Input: t.Submission.Input})
		case kindEnded:
			ev.Type, ev.Data = journal.TypeTurnEnded, m.Data
		default:
			continue
		}
		if err := w.apply(ev); err != nil {
			return nil, 0, err
		}
	}
	end, err := e.currentEnded(ctx, w.in)
	if err != nil {
		return nil, 0, err
	}
	if end != nil {
		if err := w.apply(journal.Event{Type: journal.TypeTurnEnded, Data: mustJSON(end)}); err != nil {
			return nil, 0, err
		}
	}
	return w.in, last, nil
}

// currentEnded returns the end of an instance's current turn if its
// journal says it ended: its settle may not have told the instance yet
// (and the end is what it will send).
func (e *Engine) currentEnded(ctx context.Context, in *Instance) (*turnEnded, error) {
	cur := in.Current
	if cur == "" {
		return nil, nil
	}
	head, ok, err := e.st.LastJournal(ctx, cur)
	if err != nil || !ok || !journal.Terminal(head.Type) {
		return nil, err
	}
	events, err := e.st.LoadJournal(ctx, cur)
	if err != nil {
		return nil, err
	}
	end, err := turnEndOf(project(cur, nil, events), events, e.historyBytes())
	if err != nil {
		return nil, err
	}
	return &end, nil
}

// instanceBusy says what an instance is busy with, counting the turns and
// ends sent to it that it has not taken yet, and the position of its
// newest input (a turn sent only if nothing came after it is decided on
// this state).
func (e *Engine) instanceBusy(ctx context.Context, id string) (last uint64, busy string, err error) {
	in, last, err := e.instanceNow(ctx, id)
	if err != nil {
		return 0, "", err
	}
	return last, in.busy(), nil
}

// instanceWork is a worker's hold on an instance.
type instanceWork struct {
	e   *Engine
	id  string
	log *slog.Logger
	in  *Instance
	j   *store.Journal
	// last is the journal's last entry when it is newer than the snapshot:
	// its messages may not have gone out.
	last *journal.Event
	// poked says an input came after the read.
	poked atomic.Bool
	// taking is the position of the input being taken: the first entry
	// that succeeds takes it.
	taking uint64
}

func (w *instanceWork) interrupt(error) {} // its work is short: let it finish

// workInstance takes an instance's inputs: queues turns, records their
// ends, and starts the next turn.
func (e *Engine) workInstance(workCtx context.Context, c *store.Claim) {
	w := &instanceWork{e: e, id: c.Entity, log: e.log.With("instance", c.Entity)}
	if !e.activate(w.id, w) {
		return
	}
	defer e.deactivate(w.id, w)
	ctx := context.WithoutCancel(workCtx)
	if w.log.Enabled(ctx, slog.LevelDebug) {
		w.log.Debug("instance claimed", "delivered", c.Delivered())
	}
	if err := w.work(ctx); err != nil {
		w.log.Debug("instance work stopped", "err", err)
		if !errors.Is(err, journal.ErrConflict) {
			w.log.Warn("instance", "err", err)
			c.Retry(time.Second)
		}
		return
	}
	e.deactivate(w.id, w)
	e.letGo(ctx, c, w.id, w.poked.Load())
}

func (w *instanceWork) onPoke() { w.poked.Store(true) }

func (w *instanceWork) work(ctx context.Context) error {
	began := time.Now()
	cached, err := w.load(ctx)
	if err != nil {
		return err
	}
	d := time.Since(began)
	w.e.acts.observe(d)
	if on := w.e.opts.OnActivation; on != nil {
		on(d, cached)
	}
	// The last entry's messages may not have gone out before a crash.
	if err := w.redo(ctx); err != nil {
		return err
	}
	// A current turn that ended and has not said so yet ends now: a turn
	// that its submitter was told the instance had room for must not be
	// found busy (readers count the end already, see instanceNow).
	end, err := w.e.currentEnded(ctx, w.in)
	if err != nil {
		return err
	}
	if end != nil {
		if err := w.append(ctx, journal.TypeTurnEnded, *end); err != nil {
			return err
		}
	}
	w.poked.Store(false)
	ins, err := w.e.st.ReadInputs(ctx, w.id, w.j.InputSeq())
	if err != nil {
		return err
	}
	w.log.Debug("instance inputs", "after", w.j.InputSeq(), "count", len(ins), "journal_last", w.j.Last())
	for _, m := range ins {
		w.log.Debug("instance takes", "seq", m.Seq, "kind", m.Kind)
		err := w.take(ctx, m)
		if errors.Is(err, store.ErrTooLarge) {
			// Taking it again cannot help: refuse it.
			err = w.refuseTooLarge(ctx, m)
		}
		if err != nil {
			return err
		}
	}
	if err := w.startNext(ctx); err != nil {
		return err
	}
	if err := w.addToDirectory(ctx); err != nil {
		return err
	}
	w.in.Seq, w.in.Step, w.in.InputSeq = w.j.Last(), w.j.Steps(), w.j.InputSeq()
	w.in.UpdatedAt = time.Now().UTC()
	if queued := w.in.queuedBytes(); queued > w.e.st.PayloadLimit() {
		// Many long turns queued: the journal has them all, and readers
		// and the next worker fold it from the last snapshot that fit.
		// (Not even encoded: a long queue drains one turn at a time.)
		w.log.Debug("instance snapshot skipped while its queue is larger than the NATS server's max_payload", "queued_bytes", queued)
		return nil
	}
	data := mustJSON(w.in)
	err = w.e.st.PutSnapshot(ctx, w.id, data)
	if errors.Is(err, store.ErrTooLarge) {
		w.log.Warn("instance snapshot larger than the NATS server's max_payload: kept in the journal only until it shrinks", "bytes", len(data))
		return nil
	}
	if err == nil {
		w.e.snapshots.put(w.id, data)
	}
	return err
}

// queuedBytes is about what the queued turns weigh in a snapshot.
func (in *Instance) queuedBytes() int {
	n := 0
	for _, q := range in.Queue {
		n += 2 * len(q.Input) // the input, and its submission's copy
	}
	return n
}

// refuseTooLarge refuses an input too large to journal what it asks for,
// and fails the turn it brought, which would otherwise wait for a start.
func (w *instanceWork) refuseTooLarge(ctx context.Context, m store.InputMsg) error {
	refused := journal.InputRefused{Seq: m.Seq, Kind: m.Kind, Code: agent.CodeTooLarge,
		Reason: kindNoun(m.Kind) + " is too large for a journal entry on this NATS server (raise its max_payload)"}
	var t turnRequest
	if m.Kind == kindTurn && json.Unmarshal(m.Data, &t) == nil {
		refused.RunID = t.RunID
	}
	w.taking = m.Seq
	err := w.append(ctx, journal.TypeInputRefused, refused)
	w.taking = 0
	if err != nil || refused.RunID == "" {
		return err
	}
	return w.start(ctx, refused.RunID, tooLargeStart(0, "the turn's input is", t.Submission))
}

// failRefused fails, again, the run of a turn the instance refused (after
// a crash between the refusal and the run's start).
func (w *instanceWork) failRefused(ctx context.Context, refused journal.InputRefused) error {
	if refused.RunID == "" {
		return nil
	}
	ins, err := w.e.st.ReadInputs(ctx, w.id, refused.Seq-1)
	if err != nil {
		return err
	}
	var t turnRequest
	if len(ins) > 0 && ins[0].Seq == refused.Seq {
		_ = json.Unmarshal(ins[0].Data, &t)
	}
	return w.start(ctx, refused.RunID, tooLargeStart(0, "the turn's input is", t.Submission))
}

// tooLargeStart fails a turn whose start does not fit in one message;
// what says what outgrew it. It carries the turn's submission with its
// input cut, so the run can fail whether or not its own copy of the
// submission ever comes.
func tooLargeStart(turn uint64, what string, sub *submission) startTurn {
	st := startTurn{Turn: turn, Code: agent.CodeTooLarge,
		Refuse: what + " larger than the NATS server's max_payload; shorten the input, or raise max_payload on the NATS server"}
	if sub != nil {
		cut := *sub
		cut.Input, cut.History, cut.State = run.CutText(cut.Input, cutInputBytes), nil, nil
		st.Submission = &cut
	}
	return st
}

// load reads the snapshot — this node's cached copy when it has one — and
// folds the journal entries after it; cached says which.
func (w *instanceWork) load(ctx context.Context) (cached bool, err error) {
	var in *Instance
	if data, ok := w.e.snapshots.get(w.id); ok {
		in = &Instance{}
		if err := json.Unmarshal(data, in); err != nil {
			return false, err
		}
		cached = true
	} else if in, err = w.e.snapshot(ctx, w.id); err != nil {
		return false, err
	}
	w.in = in
	events, err := w.e.st.ReadJournals(ctx, store.JournalFilter{ID: w.id}, in.Seq, 0, 0)
	if err != nil {
		return cached, err
	}
	for _, ev := range events {
		if err := w.apply(ev); err != nil {
			return cached, err
		}
	}
	w.j = w.e.st.JournalAt(w.id, in.Seq, in.Step, in.InputSeq)
	if n := len(events); n > 0 {
		w.j = w.e.st.JournalAt(w.id, events[n-1].Seq, events[n-1].Step, max(in.InputSeq, journal.InputSeq(events)))
		w.last = &events[n-1]
	}
	return cached, nil
}

// apply folds one entry of the instance's journal.
func (w *instanceWork) apply(ev journal.Event) error {
	in := w.in
	in.LastType = ev.Type
	switch ev.Type {
	case journal.TypeTurnQueued:
		var d journal.TurnQueued
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
		if d.Rejected != "" {
			return nil
		}
		q := QueuedTurn{RunID: d.RunID, Input: d.Input}
		if len(d.Submission) > 0 {
			q.Submission = new(submission)
			if err := json.Unmarshal(d.Submission, q.Submission); err != nil {
				return err
			}
			if q.Input == "" {
				q.Input = q.Submission.Input
			}
		}
		for _, id := range d.Interrupts {
			if id == in.Current {
				q.carry(CarriedTurn{RunID: id, Input: in.CurrentInput, Started: true})
				continue
			}
			for i, prev := range in.Queue {
				if prev.RunID == id {
					q.carry(prev.Carry...)
					q.carry(CarriedTurn{RunID: id, Input: prev.Input})
					in.Queue = append(in.Queue[:i], in.Queue[i+1:]...)
					break
				}
			}
		}
		in.Queue = append(in.Queue, q)
	case journal.TypeTurnStarted:
		var d journal.TurnStarted
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
		in.CurrentSubmission, in.CurrentInput = nil, d.Input
		if len(in.Queue) > 0 && in.Queue[0].RunID == d.RunID {
			in.CurrentSubmission = in.Queue[0].Submission
			if in.CurrentInput == "" {
				in.CurrentInput = in.Queue[0].Input
			}
			in.Queue = in.Queue[1:]
		}
		in.Current, in.Turns = d.RunID, d.Turn
		in.Ended = nil
	case journal.TypeTurnEnded:
		var d journal.TurnEnded
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
		if d.RunID != in.Current {
			// A queued turn canceled before it started: it never will.
			for i, q := range in.Queue {
				if q.RunID == d.RunID {
					in.Queue = append(in.Queue[:i], in.Queue[i+1:]...)
					break
				}
			}
			return nil
		}
		if in.queuedCarries(d.RunID) {
			if in.Ended == nil {
				in.Ended = map[string]string{}
			}
			in.Ended[d.RunID] = d.Status
		}
		in.Current, in.CurrentInput, in.CurrentSubmission = "", "", nil
		in.Done++
		if d.Status == string(run.StatusCompleted) {
			limit := DefaultHistoryLimit
			if a := w.e.agents[in.Agent]; a != nil && a.HistoryLimit > 0 {
				limit = a.HistoryLimit
			}
			if d.Replace {
				in.Dropped += len(in.Messages)
				in.Messages = nil
			}
			all := len(in.Messages) + len(d.Messages)
			in.Messages = TrimHistory(append(in.Messages, d.Messages...), limit, w.e.historyBytes())
			in.Dropped += all - len(in.Messages)
			in.Active = d.Active
		}
	}
	return nil
}

// carry adds turns a queued turn interrupted, each once (a turn queued
// behind another carries what that one carried, and may interrupt the
// same current turn).
func (q *QueuedTurn) carry(turns ...CarriedTurn) {
	for _, t := range turns {
		if !slices.ContainsFunc(q.Carry, func(c CarriedTurn) bool { return c.RunID == t.RunID }) {
			q.Carry = append(q.Carry, t)
		}
	}
}

func (in *Instance) queuedCarries(runID string) bool {
	for _, q := range in.Queue {
		for _, c := range q.Carry {
			if c.RunID == runID {
				return true
			}
		}
	}
	return false
}

// append journals an entry and folds it.
func (w *instanceWork) append(ctx context.Context, typ string, data any) error {
	ev, err := w.j.AppendFor(ctx, w.taking, typ, data)
	if err != nil {
		return err
	}
	return w.apply(ev)
}

// take takes one input of the instance.
func (w *instanceWork) take(ctx context.Context, m store.InputMsg) error {
	w.taking = m.Seq
	defer func() { w.taking = 0 }()
	switch m.Kind {
	case kindTurn:
		var t turnRequest
		if err := json.Unmarshal(m.Data, &t); err != nil || t.Submission == nil {
			return w.append(ctx, journal.TypeInputRefused, journal.InputRefused{Seq: m.Seq, Kind: m.Kind, Code: "invalid", Reason: "unreadable turn"})
		}
		if known, err := w.known(ctx, t.RunID); err != nil || known {
			if err != nil {
				return err
			}
			return w.append(ctx, journal.TypeInputRefused, journal.InputRefused{Seq: m.Seq, Kind: m.Kind, Code: "conflict", Reason: "a turn the instance has had before"})
		}
		return w.queue(ctx, t)
	case kindEnded:
		var t turnEnded
		if err := json.Unmarshal(m.Data, &t); err != nil {
			return w.append(ctx, journal.TypeInputRefused, journal.InputRefused{Seq: m.Seq, Kind: m.Kind, Code: "invalid", Reason: "unreadable end"})
		}
		return w.append(ctx, journal.TypeTurnEnded, t)
	}
	return w.append(ctx, journal.TypeInputRefused, journal.InputRefused{Seq: m.Seq, Kind: m.Kind, Code: "invalid", Reason: "not an input of an instance"})
}

// known reports a turn the instance has had: queued, running, or started
// before (a turn sent again after a crash, later than its deduplication).
func (w *instanceWork) known(ctx context.Context, runID string) (bool, error) {
	if w.in.Current == runID {
		return true, nil
	}
	for _, q := range w.in.Queue {
		if q.RunID == runID {
			return true, nil
		}
	}
	_, started, err := w.e.st.LastJournal(ctx, runID)
	return started, err
}

// queue takes a turn into the queue, or refuses it, or makes it cancel
// the turns before it, as the agent's concurrent_input says.
func (w *instanceWork) queue(ctx context.Context, t turnRequest) error {
	if w.in.Agent == "" {
		// The first turn names the instance.
		w.in.Agent, w.in.Key = t.Submission.Agent, t.Submission.Instance
	}
	// The input is the submission's: journaled once.
	q := journal.TurnQueued{RunID: t.RunID, Submission: mustJSON(t.Submission)}
	a := w.e.agents[w.in.Agent]
	if busy := w.in.busy(); busy != "" && a != nil {
		switch {
		case a.RejectBusy:
			q.Rejected = fmt.Sprintf("instance %s/%s is busy with %s (this agent rejects concurrent input; retry when it is done)", w.in.Agent, w.in.Key, busy)
		case a.InterruptBusy:
			if w.in.Current != "" {
				q.Interrupts = append(q.Interrupts, w.in.Current)
			}
			for _, prev := range w.in.Queue {
				q.Interrupts = append(q.Interrupts, prev.RunID)
			}
		}
	}
	if err := w.append(ctx, journal.TypeTurnQueued, q); err != nil {
		return err
	}
	return w.sendQueued(ctx, q)
}

// sendQueued sends what queuing a turn calls for: its refusal, or the
// cancels of the turns it interrupts.
func (w *instanceWork) sendQueued(ctx context.Context, q journal.TurnQueued) error {
	if q.Rejected != "" {
		st := startTurn{Refuse: q.Rejected}
		if len(q.Submission) > 0 {
			st.Submission = new(submission)
			_ = json.Unmarshal(q.Submission, st.Submission)
		}
		return w.start(ctx, q.RunID, st)
	}
	for _, id := range q.Interrupts {
		if _, err := w.e.st.Send(ctx, store.Input{To: id, Kind: kindCancel, Data: mustJSON(cancelRequest{Reason: "interrupted by a new turn: run " + q.RunID + " carries its input"}), MsgID: "cancel/" + id}); err != nil {
			return err
		}
	}
	return nil
}

// startNext starts the next queued turn if none runs.
func (w *instanceWork) startNext(ctx context.Context) error {
	if w.in.Current != "" || len(w.in.Queue) == 0 {
		return nil
	}
	next := w.in.Queue[0]
	input := next.Input
	var carried []string
	room := w.e.historyBytes() - len(next.Input)
	for _, c := range slices.Backward(next.Carry) {
		if c.Started {
			if st := w.in.Ended[c.RunID]; st == string(run.StatusCompleted) || st == string(run.StatusFailed) {
				continue // it answered (or failed on its own) before the cancel
			}
		}
		if room -= len(c.Input); room < 0 {
			// The newest inputs it carries fit; the older ones go.
			w.log.Warn("an interrupting turn carries too much input: the oldest interrupted inputs are left out", "run_id", next.RunID)
			break
		}
		carried = append(carried, c.Input)
	}
	slices.Reverse(carried)
	if len(carried) > 0 {
		input = strings.Join(append(carried, next.Input), "\n\n")
	}
	turn := w.in.Turns + 1
	// The input goes once: in the queued turn's submission, unless the
	// turn carries others.
	started := journal.TurnStarted{RunID: next.RunID, Turn: turn}
	if input != next.Input {
		started.Input = input
	}
	if err := w.append(ctx, journal.TypeTurnStarted, started); err != nil {
		return err
	}
	return w.start(ctx, next.RunID, startTurn{Submission: next.Submission, Turn: turn, History: w.in.Messages, HistoryDropped: w.in.Dropped,
		Agent: w.in.Active, Input: started.Input})
}

// start sends a turn its start, or its failure when the start is larger
// than a message may be (the run has its submission: the failure needs
// none).
func (w *instanceWork) start(ctx context.Context, runID string, st startTurn) error {
	_, err := w.e.st.Send(ctx, store.Input{To: runID, Kind: kindStart, Data: mustJSON(st), MsgID: "start/" + runID})
	if errors.Is(err, store.ErrTooLarge) {
		w.log.Warn("turn start larger than the NATS server's max_payload: the turn fails", "run_id", runID)
		_, err = w.e.st.Send(ctx, store.Input{To: runID, Kind: kindStart, Data: mustJSON(tooLargeStart(st.Turn, "the turn's input and its instance's conversation are", st.Submission)), MsgID: "start/" + runID})
	}
	return err
}

// redo sends again what the journal's last entry called for, in case the
// last worker died before sending it (the snapshot is written after, so
// only an entry newer than the snapshot may lack its messages). Sending
// twice is harmless: the inputs are deduplicated and a run takes one
// start.
func (w *instanceWork) redo(ctx context.Context) error {
	if w.last == nil {
		return nil
	}
	switch w.last.Type {
	case journal.TypeTurnStarted:
		var d journal.TurnStarted
		if err := json.Unmarshal(w.last.Data, &d); err != nil {
			return err
		}
		st := startTurn{Submission: w.in.CurrentSubmission, Turn: d.Turn, History: w.in.Messages, HistoryDropped: w.in.Dropped,
			Agent: w.in.Active, Input: d.Input}
		if st.Submission != nil && st.Input == st.Submission.Input {
			st.Input = "" // journaled before turn.started left it out
		}
		return w.start(ctx, d.RunID, st)
	case journal.TypeTurnQueued:
		var d journal.TurnQueued
		if err := json.Unmarshal(w.last.Data, &d); err != nil {
			return err
		}
		return w.sendQueued(ctx, d)
	case journal.TypeInputRefused:
		var d journal.InputRefused
		if err := json.Unmarshal(w.last.Data, &d); err != nil {
			return err
		}
		return w.failRefused(ctx, d)
	}
	return nil
}

// DefaultHistoryLimit is how many messages of an instance's conversation are
// kept when an agent sets no limit: enough for long chats.
const DefaultHistoryLimit = 200

// historyBytes bounds an instance's conversation in bytes (as JSON): a
// quarter of the largest message the store takes, so that the snapshot and
// each turn's start (the conversation, the input, the submission) fit in
// one message however long the inputs and answers are.
func (e *Engine) historyBytes() int {
	return min(2<<20, e.st.PayloadLimit()/4)
}

// TrimHistory keeps at most the last limit messages, and at most maxBytes
// of them as JSON, starting at a user message so that no tool result or
// tool call is left without its pair. A limit or maxBytes of zero sets no
// bound.
func TrimHistory(msgs []model.Message, limit, maxBytes int) []model.Message {
	msgs = trimCount(msgs, limit)
	if maxBytes <= 0 {
		return msgs
	}
	// The earliest user message from which the rest fits; none when even
	// the last turn does not (the conversation starts afresh rather than
	// grow past what a message can hold).
	from, size := len(msgs), 0
	for i := len(msgs) - 1; i >= 0; i-- {
		b, _ := json.Marshal(msgs[i])
		if size += len(b) + 1; size > maxBytes {
			break
		}
		if msgs[i].Role == model.RoleUser {
			from = i
		}
	}
	return msgs[from:]
}

func trimCount(msgs []model.Message, limit int) []model.Message {
	if limit <= 0 || len(msgs) <= limit {
		return msgs
	}
	start := len(msgs) - limit
	for i := start; i < len(msgs); i++ {
		if msgs[i].Role == model.RoleUser {
			return msgs[i:]
		}
	}
	// The kept part holds no user message (one long tool-heavy turn): keep
	// from the last user message instead, over the limit, rather than lose
	// the whole conversation.
	for i := start - 1; i >= 0; i-- {
		if msgs[i].Role == model.RoleUser {
			return msgs[i:]
		}
	}
	return msgs[start:]
}
