package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// The runs index (store/index.go) lists runs newest first at the cost of
// a page: its entries keep what never changes about a run, so filters on
// those need no record, and the record is read only for the runs a filter
// keeps. A filter on status, which changes, reads the record of each
// candidate: List bounds how many entries one request looks at
// (ListScanLimit) and answers a short page with a cursor past them.

// indexEntry is a run's entry in the runs index.
type indexEntry struct {
	Agent    string            `json:"agent,omitempty"`
	Flow     string            `json:"flow,omitempty"`
	Parent   string            `json:"parent,omitempty"`
	Instance string            `json:"instance,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Created  time.Time         `json:"created"`
}

func entryOfStart(start journal.RunStarted) []byte {
	return mustJSON(indexEntry{Agent: start.Agent, Flow: start.Flow, Parent: start.Parent, Instance: start.Instance,
		Metadata: start.Metadata, Created: start.Submitted})
}

func entryOfRecord(rec *run.Record) []byte {
	return mustJSON(indexEntry{Agent: rec.Agent, Flow: rec.Flow, Parent: rec.Parent, Instance: rec.Instance,
		Metadata: rec.Metadata, Created: rec.CreatedAt})
}

// keeps reports whether a run with this entry may pass the filter: all
// but its status, which the record says.
func (x *indexEntry) keeps(f *run.Filter) bool {
	rec := run.Record{Agent: x.Agent, Flow: x.Flow, Parent: x.Parent, Instance: x.Instance, Metadata: x.Metadata, CreatedAt: x.Created}
	g := *f
	g.Status = ""
	return g.Keeps(&rec)
}

// ListScanLimit bounds how many index entries one List looks at: a filter
// that few runs pass (a status) answers a short page, with a cursor to go
// on from, rather than read every run.
var ListScanLimit = 10_000

// indexWindow is how many index positions one read covers at most.
const indexWindow = 256

// listed is one index entry a listing looked at, with the run's record
// when the filter kept it.
type listed struct {
	id  string
	rec *run.Record
}

// scan yields the runs of the index newest first, after the filter's
// cursor, each with its record if the filter keeps the run (nil if not).
// The records of a window's candidates are read in one request.
func (e *Engine) scan(ctx context.Context, f run.Filter) iter.Seq2[listed, error] {
	return func(yield func(listed, error) bool) {
		before, err := e.scanStart(ctx, f)
		if err != nil {
			yield(listed{}, err)
			return
		}
		// The first window fits the page (every entry read is a message
		// delivered); later ones grow, for filters few runs pass.
		size := min(max(f.Limit+1, 16), indexWindow)
		for {
			entries, next, more, err := e.st.IndexBefore(ctx, before, size)
			size = min(2*size, indexWindow)
			if err != nil {
				yield(listed{}, err)
				return
			}
			window, done, err := e.window(ctx, entries, &f)
			if err != nil {
				yield(listed{}, err)
				return
			}
			for _, l := range window {
				if !yield(l, nil) {
					return
				}
			}
			if done || !more {
				return
			}
			before = next
		}
	}
}

// window reads the records of one window of the index, newest first, for
// the runs the filter may keep; done says the filter's From was passed.
func (e *Engine) window(ctx context.Context, entries []store.IndexEntry, f *run.Filter) (out []listed, done bool, err error) {
	var candidates []string
	kept := map[string]*indexEntry{}
	for _, en := range entries {
		x := new(indexEntry)
		if json.Unmarshal(en.Data, x) != nil {
			continue
		}
		if !f.From.IsZero() && x.Created.Before(f.From) {
			done = true // older still from here
			break
		}
		if x.keeps(f) {
			candidates = append(candidates, en.ID)
			kept[en.ID] = x
		}
		out = append(out, listed{id: en.ID})
	}
	records, err := e.st.RecordsOf(ctx, candidates)
	if err != nil {
		return nil, false, err
	}
	for i := range out {
		if kept[out[i].id] == nil {
			continue
		}
		rec, err := e.listedRecord(ctx, out[i].id, kept[out[i].id], records[out[i].id])
		if err != nil {
			return nil, false, err
		}
		if rec != nil && !f.Keeps(rec) {
			rec = nil
		}
		out[i].rec = rec
	}
	return out, done, nil
}

// scanStart is the index position a listing starts before: the cursor's,
// or the first run created at the filter's To, or the newest.
func (e *Engine) scanStart(ctx context.Context, f run.Filter) (uint64, error) {
	if f.Cursor != "" {
		seq, err := e.st.IndexPosition(ctx, f.Cursor)
		if errors.Is(err, store.ErrNotFound) {
			// Deleted since (the retention sweep deletes the oldest runs,
			// where paging ends): go on from its creation time, which its
			// id holds.
			created, ok := runIDTime(f.Cursor)
			if !ok {
				return 0, fmt.Errorf("%w: cursor: %s is not a run id", ErrInvalid, run.Quote(f.Cursor))
			}
			if seq, err = e.st.IndexAfter(ctx, created); err == nil && seq == 0 {
				seq = math.MaxUint64 // none later: from the newest
			}
		}
		return seq, err
	}
	if !f.To.IsZero() {
		return e.st.IndexAfter(ctx, f.To)
	}
	return 0, nil
}

// listedRecord reads a listed run as its journal has it now, from its
// stored record (nil: it has none yet, as for a run on the queue, or one
// whose writer died before its first record), or nil if it is gone.
func (e *Engine) listedRecord(ctx context.Context, id string, x *indexEntry, data []byte) (*run.Record, error) {
	var rec *run.Record
	switch {
	case data != nil:
		rec = new(run.Record)
		if err := json.Unmarshal(data, rec); err != nil {
			return nil, fmt.Errorf("run %s: corrupt record: %w", id, err)
		}
	default:
		if kind, queued, err := e.st.Queued(ctx, id); err == nil && kind == kindSubmit && queued != nil {
			var sub submission
			if json.Unmarshal(queued, &sub) == nil {
				rec = sub.queued(id)
			}
		}
		if rec == nil {
			rec = &run.Record{ID: id, Agent: x.Agent, Flow: x.Flow, Parent: x.Parent, Instance: x.Instance, Metadata: x.Metadata,
				Status: run.StatusQueued, CreatedAt: x.Created}
		}
	}
	// Records lag their journals by a step while runs are at work.
	fresh, err := e.fresh(ctx, rec)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return fresh, err
}

// backfillIndex indexes the runs a store holds from before it had an
// index, oldest first, once: a node whose index is empty and whose runs
// bucket is not.
func (e *Engine) backfillIndex(ctx context.Context) error {
	n, err := e.st.IndexSize(ctx)
	if err != nil || n > 0 {
		return err
	}
	ids, err := e.st.RecordIDs(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	slices.Sort(ids)
	e.log.Info("indexing the runs stored before this version", "runs", len(ids))
	began := time.Now()
	for i, id := range ids {
		rec, err := e.stored(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := e.st.EnsureIndexed(ctx, id, entryOfRecord(rec)); err != nil {
			return err
		}
		if (i+1)%10_000 == 0 {
			e.log.Info("indexing runs", "done", i+1, "of", len(ids))
		}
	}
	e.log.Info("runs indexed", "runs", len(ids), "took", time.Since(began).Round(time.Millisecond).String())
	return nil
}
