package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// Get returns a run's record as its journal has it now: the copy its
// writer keeps when that copy is up to date (always, once the run ended)
// and whole, else the journal read again.
func (e *Engine) Get(ctx context.Context, id string) (*run.Record, error) {
	v, err, _ := e.shared.Do("get\x00"+id, func() (any, error) {
		return e.get(context.WithoutCancel(ctx), id)
	})
	if err != nil {
		return nil, err
	}
	rec := *v.(*run.Record) // each caller its own
	return &rec, nil
}

func (e *Engine) get(ctx context.Context, id string) (*run.Record, error) {
	rec, err := e.stored(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return e.project(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	return e.fresh(ctx, rec)
}

// fresh returns a record that is up to date with its run's journal: the
// one given (always, once the run ended) or one read from the journal.
func (e *Engine) fresh(ctx context.Context, rec *run.Record) (*run.Record, error) {
	if rec.InputTruncated || rec.OutputTruncated {
		// Cut, perhaps only to fit a message: the journal has more.
		return e.project(ctx, rec.ID)
	}
	if rec.Status.Terminal() {
		return rec, nil
	}
	head, ok, err := e.st.LastJournal(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	if !ok || head.Seq == rec.Position {
		return rec, nil
	}
	return e.project(ctx, rec.ID)
}

// stored reads the copy of a run's record its writer keeps.
func (e *Engine) stored(ctx context.Context, id string) (*run.Record, error) {
	if !runIDPattern.MatchString(id) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, run.Quote(id))
	}
	data, err := e.st.Record(ctx, id)
	if err != nil {
		return nil, err
	}
	var rec run.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("run %s: corrupt record: %w", id, err)
	}
	return &rec, nil
}

// project derives a run's record from its journal (and its submission,
// for a run not started).
func (e *Engine) project(ctx context.Context, id string) (*run.Record, error) {
	events, sub, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return project(id, sub, events), nil
}

// load reads a run's journal, or, for a run not started, its submission.
func (e *Engine) load(ctx context.Context, id string) ([]journal.Event, *submission, error) {
	events, err := e.st.LoadJournal(ctx, id)
	if err != nil || len(events) > 0 {
		return events, nil, err
	}
	sub, err := e.submission(ctx, id)
	if errors.Is(err, ErrNotFound) {
		// Started between the two reads? (A submission leaves the queue
		// once its run.started is journaled.)
		if events, err = e.st.LoadJournal(ctx, id); err == nil && len(events) == 0 {
			err = fmt.Errorf("%w: %s", ErrNotFound, run.Quote(id))
		}
	}
	return events, sub, err
}

// submission reads the submission of a run not started: on the work
// queue, or among its inputs (an instance's turn).
func (e *Engine) submission(ctx context.Context, id string) (*submission, error) {
	kind, data, err := e.st.Queued(ctx, id)
	if err == nil && (kind != kindSubmit || data == nil) {
		err = store.ErrNotFound // rung by an input, not queued by a submission
	}
	if errors.Is(err, store.ErrNotFound) {
		// Usually its first input, but a cancel can come first.
		var ins []store.InputMsg
		ins, err = e.st.ReadInputs(ctx, id, 0)
		if i := slices.IndexFunc(ins, isSubmission); err == nil && i >= 0 {
			data = ins[i].Data
		} else if err == nil {
			err = store.ErrNotFound
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, run.Quote(id))
	}
	if err != nil {
		return nil, err
	}
	var sub submission
	if err := json.Unmarshal(data, &sub); err != nil {
		return nil, fmt.Errorf("run %s: unreadable submission: %w", id, err)
	}
	return &sub, nil
}

// exists reports whether a run was submitted.
func (e *Engine) exists(ctx context.Context, id string) (bool, error) {
	if _, ok, err := e.st.LastJournal(ctx, id); err != nil || ok {
		return ok, err
	}
	_, err := e.submission(ctx, id)
	if errors.Is(err, ErrNotFound) {
		// Started between the two reads?
		_, ok, err := e.st.LastJournal(ctx, id)
		return ok, err
	}
	return err == nil, err
}

// List returns a page of the runs the filter keeps, newest first, and the
// cursor of the next page ("" after the last). It reads the runs index
// (see index.go): a page costs about its size. A filter few runs pass
// looks at ListScanLimit runs at most, and may answer a short (even empty)
// page with a cursor to go on from.
func (e *Engine) List(ctx context.Context, f run.Filter) ([]*run.Record, string, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 50
	}
	var out []*run.Record
	scanned, last := 0, ""
	for l, err := range e.scan(ctx, f) {
		if err != nil {
			return nil, "", err
		}
		if scanned == ListScanLimit {
			if len(out) == f.Limit {
				return out, out[len(out)-1].ID, nil
			}
			return out, last, nil
		}
		scanned, last = scanned+1, l.id
		if l.rec == nil {
			continue
		}
		if len(out) == f.Limit {
			// One more run passes: there is a next page.
			return out, out[len(out)-1].ID, nil
		}
		out = append(out, l.rec)
	}
	return out, "", nil
}

// Runs yields every run the filter keeps (its Limit aside), newest first,
// after its Cursor, each as its journal has it now: O(runs) with a
// filter few runs pass, for totals (GET /v1/usage).
func (e *Engine) Runs(ctx context.Context, f run.Filter) iter.Seq2[*run.Record, error] {
	return func(yield func(*run.Record, error) bool) {
		for l, err := range e.scan(ctx, f) {
			if err != nil {
				yield(nil, err)
				return
			}
			if l.rec != nil && !yield(l.rec, nil) {
				return
			}
		}
	}
}

// Events returns a run's journal.
func (e *Engine) Events(ctx context.Context, id string) ([]journal.Event, error) {
	return e.journalOf(ctx, id)
}

// LastEvent returns a run's last journal entry; ok is false when the
// journal is empty.
func (e *Engine) LastEvent(ctx context.Context, id string) (ev journal.Event, ok bool, err error) {
	return e.st.LastEntry(ctx, id)
}

// Wait blocks until a run is terminal, in doubt or waiting for a person, or
// ctx ends, and returns its record as its journal has it then. A run
// waiting for its child runs or a timer is not done waiting.
func (e *Engine) Wait(ctx context.Context, id string) (*run.Record, error) {
	if !runIDPattern.MatchString(id) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, run.Quote(id))
	}
	if rec, err := e.stored(ctx, id); err == nil && rec.Status.Terminal() {
		return e.fresh(ctx, rec) // an end is final (but the copy may be cut)
	}
	for {
		rec, err := e.waitOnce(ctx, id)
		var slow *SlowFollowerError
		if !errors.As(err, &slow) {
			return rec, err
		}
	}
}

func (e *Engine) waitOnce(ctx context.Context, id string) (*run.Record, error) {
	f, err := e.feed.follow(ctx, id, "", false)
	if err != nil {
		return nil, err
	}
	defer f.close()
	events, sub, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	rec := project(id, sub, events)
	for !rec.Settled() {
		it, err := f.next(ctx)
		if errors.Is(err, errCut) {
			return rec, &SlowFollowerError{}
		}
		if err != nil {
			return rec, err
		}
		ev := it.Entry
		if ev == nil || len(events) > 0 && ev.Seq <= events[len(events)-1].Seq {
			continue
		}
		events = append(events, *ev)
		if mayPark(ev.Type) {
			rec = project(id, sub, events)
		}
	}
	return rec, nil
}

// mayPark reports entry types after which a run may stop for a person or
// for good.
func mayPark(typ string) bool {
	switch typ {
	case journal.TypeRunCompleted, journal.TypeRunFailed, journal.TypeRunCanceled, journal.TypeRunInDoubt,
		journal.TypeRunWaiting, journal.TypeApprovalDecided:
		return true
	}
	return false
}

// Asking returns the runs of root's tree, root included, that wait for a
// person (see run.Record.Asking). It descends through runs at work, reading
// each one's journal (the truth; records lag) for its state and its open
// children, so its cost follows the part of the tree still at work.
func (e *Engine) Asking(ctx context.Context, root *run.Record) ([]*run.Record, error) {
	var out []*run.Record
	var walk func(id string, depth int) error
	walk = func(id string, depth int) error {
		events, err := e.st.LoadJournal(ctx, id)
		if err != nil {
			return err
		}
		rec := project(id, nil, events)
		if len(events) == 0 || rec.Status.Terminal() {
			return nil
		}
		if rec.Asking() {
			out = append(out, rec)
		}
		if depth >= e.opts.MaxDepth {
			return nil
		}
		for _, child := range journal.OpenChildren(events) {
			if err := walk(child, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(root.ID, 0)
}

// PendingApprovals lists the calls waiting for a decision, newest run first.
func (e *Engine) PendingApprovals(ctx context.Context, agentName string) ([]run.PendingApproval, error) {
	var out []run.PendingApproval
	cursor := ""
	for {
		runs, next, err := e.List(ctx, run.Filter{Status: run.StatusWaiting, Limit: 1000, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, rec := range runs {
			for _, a := range rec.PendingApprovals() {
				p := run.PendingApproval{RunID: rec.ID, Agent: rec.Agent, ApprovalRequested: a}
				if a.Agent != "" {
					p.Agent = a.Agent // the agent holding the conversation
				}
				if agentName == "" || p.Agent == agentName || rec.Agent == agentName {
					out = append(out, p)
				}
			}
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// Approval returns the approval of a run that waits for a decision at
// approvalID, from its journal; nil when there is none.
func (e *Engine) Approval(ctx context.Context, id, approvalID string) (*journal.ApprovalRequested, error) {
	events, err := e.journalOf(ctx, id)
	if err != nil || journal.Terminal(lastType(events)) {
		return nil, err
	}
	for _, a := range journal.PendingApprovals(events) {
		if a.ApprovalID == approvalID {
			return &a, nil
		}
	}
	return nil, nil
}

// Question returns the open question a run asks at key, from its journal;
// nil when it asks nothing there.
func (e *Engine) Question(ctx context.Context, id, key string) (*journal.InputRequested, error) {
	events, err := e.journalOf(ctx, id)
	if err != nil {
		return nil, err
	}
	return findQuestion(journal.OpenQuestions(events), key), nil
}

// readJournals is store.ReadJournals, shared by concurrent identical
// reads (followers catching up on one run). The entries are read-only.
func (e *Engine) readJournals(ctx context.Context, f store.JournalFilter, after, upTo uint64, limit int) ([]journal.Event, error) {
	key := fmt.Sprintf("journal\x00%s\x00%s\x00%d\x00%d\x00%d", f.ID, f.Tree, after, upTo, limit)
	v, err, _ := e.shared.Do(key, func() (any, error) {
		return e.st.ReadJournals(context.WithoutCancel(ctx), f, after, upTo, limit)
	})
	if err != nil {
		return nil, err
	}
	return v.([]journal.Event), nil
}
