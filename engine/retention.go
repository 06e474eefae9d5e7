package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// Retention. Deleting a run deletes its tree: its children (whose ids
// begin with its tree), their records, journals, inputs and index
// entries. Only a root run that ended is deleted: a child goes with its
// root, and a run at work is canceled first. Runs expire on their own
// after their agent's retention, or the server's: a schedule the NATS
// server keeps (so a cluster sweeps once a minute, on one node) deletes
// the ended root runs whose time has come, oldest first, from the index.

// Retention says how long ended runs are kept: Default for every agent
// and flow, or the agent's own (zero: forever).
type Retention struct {
	Default time.Duration
	Agents  map[string]time.Duration
}

// of returns how long a run of this agent or flow is kept.
func (r Retention) of(rec *run.Record) time.Duration {
	if d, ok := r.Agents[rec.Agent]; ok && rec.Agent != "" {
		return d
	}
	return r.Default
}

// shortest is the least any run is kept, or 0 when some are kept forever
// and none sooner.
func (r Retention) shortest() time.Duration {
	least := r.Default
	for _, d := range r.Agents {
		if d > 0 && (least == 0 || d < least) {
			least = d
		}
	}
	return least
}

// deleted reports a run marked deleted.
func (e *Engine) deleted(ctx context.Context, id string) (bool, error) {
	ins, err := e.st.ReadInputs(ctx, id, 0)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(ins, func(m store.InputMsg) bool { return m.Kind == kindDeleted }), nil
}

// Delete deletes a root run that ended, with its whole tree.
func (e *Engine) Delete(ctx context.Context, id string) error {
	rec, err := e.Get(ctx, id)
	if err != nil {
		return err
	}
	if rec.Parent != "" {
		return fmt.Errorf("%w: run %s is a child of %s: delete its root run, which deletes its whole tree", ErrConflict, id, rec.Parent)
	}
	if !rec.Status.Terminal() {
		return fmt.Errorf("%w: run %s is %s: cancel it first (myriad runs cancel %s, or POST /v1/runs/%s/cancel), then delete it", ErrConflict, id, rec.Status, id, id)
	}
	if err := e.deleteTree(ctx, id); err != nil {
		return err
	}
	e.log.Info("run deleted", "run_id", id)
	return nil
}

func (e *Engine) deleteTree(ctx context.Context, id string) error {
	tree := store.Tree(id)
	ids, err := e.st.TreeIndex(ctx, tree)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		ids = []string{id}
	}
	if err := e.st.DeleteTree(ctx, tree, ids); err != nil {
		return err
	}
	// Marked deleted for as long as its submission's key lives.
	if _, err := e.st.Send(ctx, store.Input{To: id, Kind: kindDeleted, Data: []byte(`{}`), MsgID: "deleted/" + id, TTL: store.IdempotencyTTL + time.Hour}); err != nil {
		return err
	}
	return nil
}

// sweepSchedule is the name of the retention sweep's schedule; config
// names start with a letter, so none is taken for it.
const sweepSchedule = "_retention"

// sweepEvery is how often the sweep runs, and sweepFor how long one
// sweep works at most (the rest waits for the next).
const (
	sweepEvery = "@every 1m"
	sweepFor   = 5 * time.Second
)

// sweep deletes the ended root runs past their retention, oldest first,
// until it meets runs too young for the shortest retention.
func (e *Engine) sweep(ctx context.Context, now time.Time) error {
	r := e.opts.Retention
	least := r.shortest()
	if least == 0 {
		return nil
	}
	began := time.Now()
	deleted := 0
	defer func() {
		if deleted > 0 {
			e.log.Info("retention: runs deleted", "runs", deleted, "took", time.Since(began).Round(time.Millisecond).String())
		}
	}()
	// The index, oldest first: positions from the first on.
	var after uint64
	for {
		entries, err := e.st.IndexAfterPosition(ctx, after, indexWindow)
		if err != nil || len(entries) == 0 {
			return err
		}
		for _, en := range entries {
			if time.Since(began) > sweepFor {
				return nil // within the fire's acknowledgement wait; the rest next time
			}
			after = en.Seq
			var x indexEntry
			if json.Unmarshal(en.Data, &x) != nil || x.Parent != "" {
				continue
			}
			if now.Sub(x.Created) < least {
				return nil // younger from here on
			}
			rec, err := e.stored(ctx, en.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			keep := r.of(rec)
			if keep == 0 || !rec.Status.Terminal() || rec.EndedAt == nil || now.Sub(*rec.EndedAt) < keep {
				continue
			}
			if err := e.deleteTree(ctx, en.ID); err != nil {
				return err
			}
			deleted++
		}
	}
}

// StorageUsage is what the store holds: runs, and messages and bytes by
// stream (one copy: a cluster keeps Replicas of each).
type StorageUsage = store.Usage

// Storage reads what the store holds.
func (e *Engine) Storage(ctx context.Context) (StorageUsage, error) { return e.st.Usage(ctx) }
