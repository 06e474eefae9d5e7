package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// Child runs. A parent's call to a sub-agent (or a flow's agent node)
// journals the child's id, then spawns it: a submission to the child, like
// any run's, created once (the id derives from the parent and the call, so
// a resumed parent finds the child it started). The parent parks instead
// of holding a worker. When a child ends, its settle sends the parent a
// report (an input); the parent's writer journals the reports it takes
// (children.reported) and goes on.

var _ agent.Children = (*Engine)(nil)

// ChildID implements agent.Children.
func (e *Engine) ChildID(parentID, callID string) string { return ChildRunID(parentID, callID) }

// Spawn implements agent.Children: it submits the child unless it exists
// already.
func (e *Engine) Spawn(ctx context.Context, c agent.ChildRun) error {
	if _, ok := e.agents[c.Agent]; !ok {
		return fmt.Errorf("%w: agent %q is not defined on this node", agent.ErrSpawnRefused, c.Agent)
	}
	if c.Depth > e.opts.MaxDepth {
		return fmt.Errorf("%w: %s would be %d levels deep, and the limit is %d (raise server.max_depth)",
			agent.ErrSpawnRefused, c.Path, c.Depth, e.opts.MaxDepth)
	}
	sub := &submission{Agent: c.Agent, Input: c.Input, Metadata: c.Metadata, Parent: c.Parent, ParentCall: c.ParentCall,
		Path: c.Path, Depth: c.Depth, History: c.History, Submitted: time.Now().UTC()}
	// Spawned before, and on its way, is fine too.
	if err := e.enqueue(ctx, c.ID, sub); err != nil {
		return fmt.Errorf("start child run %s: %w", c.ID, err)
	}
	return nil
}

// report sends a finished child's outcome to its parent. Repeating it is
// harmless: the input is deduplicated, and a parent takes one report per
// child.
func (e *Engine) report(ctx context.Context, rec *run.Record) error {
	rep := journal.ChildReport{RunID: rec.ID, CallID: rec.ParentCall, Status: string(rec.Status), Usage: rec.Usage, Cost: rec.Cost, Tools: rec.Tools}
	switch rec.Status {
	case run.StatusCompleted:
		rep.Output = rec.Output
		if len(rep.Output) > agent.MaxToolResultBytes {
			rep.Output = rep.Output[:agent.MaxToolResultBytes] + "\n[truncated]"
		}
	case run.StatusFailed:
		if rec.Error != nil {
			rep.Error = rec.Error.Code + ": " + rec.Error.Message
		}
	}
	_, err := e.st.Send(ctx, store.Input{To: rec.Parent, Kind: kindReport, Data: mustJSON(rep), MsgID: "report/" + rec.ID})
	if err != nil {
		return fmt.Errorf("report run %s to its parent %s: %w", rec.ID, rec.Parent, err)
	}
	return nil
}

// cancelChildren cancels the children a run leaves behind when it ends.
func (e *Engine) cancelChildren(ctx context.Context, events []journal.Event) error {
	for _, id := range journal.OpenChildren(events) {
		// A child journaled and never spawned (the parent stopped in
		// between) has nothing to cancel. (The parent's runner has
		// stopped: it spawns nothing now.)
		if exists, err := e.exists(ctx, id); err != nil || !exists {
			if err != nil {
				return fmt.Errorf("cancel child run %s: %w", id, err)
			}
			continue
		}
		_, err := e.st.Send(ctx, store.Input{To: id, Kind: kindCancel, Data: mustJSON(cancelRequest{Reason: "its parent ended"}), MsgID: "cancel/" + id})
		if err != nil {
			return fmt.Errorf("cancel child run %s: %w", id, err)
		}
	}
	return nil
}
