package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
)

// askDuringCall returns the hook through which a run's tool calls ask a
// person (an MCP server's elicitation). The question is journaled
// (input.requested with its call), so everyone following the run sees it
// and answers it like a flow's question (POST /v1/runs/{id}/input); the
// call waits, holding its worker. The answer is an input the writer takes
// at once while the call waits. A question lives no longer than its call:
// when the call ends unanswered — or its worker dies — it is withdrawn.
func (x *execution) askDuringCall(rec *run.Record) func(ctx context.Context, callID, toolName string, q tool.Question) (json.RawMessage, error) {
	// Keys differ from one execution to the next, so a call made again
	// never finds the answer to its previous attempt's question.
	var nonce [3]byte
	_, _ = rand.Read(nonce[:])
	attempt := hex.EncodeToString(nonce[:])
	var n atomic.Int64
	return func(ctx context.Context, callID, toolName string, q tool.Question) (json.RawMessage, error) {
		key := fmt.Sprintf("%s.ask%d-%s", callID, n.Add(1), attempt)
		ch := make(chan json.RawMessage, 1)
		x.asks.Store(key, ch)
		defer x.asks.Delete(key)
		bg := context.WithoutCancel(ctx)
		ask := journal.InputRequested{Node: toolName, Key: key, Prompt: q.Prompt, Schema: q.Schema, Call: callID}
		if _, err := x.append(bg, journal.TypeInputRequested, ask); err != nil {
			return nil, err
		}
		x.writeCurrentRecord(bg)
		select {
		case v := <-ch:
			x.writeCurrentRecord(bg)
			return v, nil
		case <-ctx.Done():
			_, _ = x.append(bg, journal.TypeInputWithdrawn, journal.InputWithdrawn{Key: key, Reason: "the call ended before anyone answered"})
			x.writeCurrentRecord(bg)
			return nil, ctx.Err()
		}
	}
}

// writeCurrentRecord writes the run's record as its journal is now, so a
// reader of the record sees a question as it is asked and answered.
func (x *execution) writeCurrentRecord(ctx context.Context) {
	x.mu.Lock()
	rec := project(x.id, x.sub, x.j.Events())
	x.mu.Unlock()
	if err := x.writeRecord(ctx, rec, false); err != nil {
		x.log.Warn("write record", "err", err)
	}
}

// WaitsForPerson reports whether an entry of a run tree asks a person
// something still open: an approval, a question, a call in doubt. (A
// retried call replays the journal, whose old questions are answered.)
// Doors that answer a caller when a run cannot go on without a person
// use it on each entry they follow.
func (e *Engine) WaitsForPerson(ctx context.Context, ev *run.TreeEvent) bool {
	switch ev.Type {
	case journal.TypeApprovalRequested:
		var a journal.ApprovalRequested
		if json.Unmarshal(ev.Data, &a) != nil {
			return false
		}
		open, err := e.Approval(ctx, ev.RunID, a.ApprovalID)
		return err != nil || open != nil
	case journal.TypeInputRequested:
		var q journal.InputRequested
		if json.Unmarshal(ev.Data, &q) != nil {
			return false
		}
		open, err := e.Question(ctx, ev.RunID, q.Key)
		return err != nil || open != nil
	case journal.TypeRunInDoubt:
		rec, err := e.Get(ctx, ev.RunID)
		return err != nil || rec.Status == run.StatusInDoubt
	}
	return false
}
