package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// Commands: cancel, decide, answer, resolve. Each is one input to the run
// (store.Send); the door checks it against the run's journal first, sends
// it, and waits for the run's writer to take it: the answer says whether it
// was applied or refused. A run that nobody works on (no worker running)
// takes the command when a worker comes; the door then answers with the
// run as it stands, the command accepted.

// Cancel asks a run to stop: a run no worker holds ends at once; a running
// one ends as canceled at its next step (what it already paid for — a
// model's answer — is journaled first).
func (e *Engine) Cancel(ctx context.Context, id string) (*run.Record, error) {
	events, err := e.journalOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec := project(id, nil, events); len(events) > 0 && rec.Status.Terminal() {
		return rec, nil
	}
	return e.command(ctx, id, store.Input{To: id, Kind: kindCancel, Data: mustJSON(cancelRequest{Reason: "canceled by request"}),
		MsgID: "cancel/" + id})
}

// Resolve decides the fate of a run in doubt: retry the call (with the same
// idempotency key), skip it with a given result, or fail the run.
func (e *Engine) Resolve(ctx context.Context, id string, res run.Resolution) (*run.Record, error) {
	switch res.Action {
	case journal.ResolveRetry, journal.ResolveSkip, journal.ResolveFail:
	case "":
		return nil, fmt.Errorf("%w: action: missing (retry, skip or fail)", ErrInvalid)
	default:
		return nil, fmt.Errorf("%w: action: %q is not one of retry, skip, fail", ErrInvalid, res.Action)
	}
	events, err := e.journalOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, no := checkResolution(id, events); no != nil {
		return nil, no.asError()
	}
	return e.command(ctx, id, store.Input{To: id, Kind: kindResolve, Data: mustJSON(res)})
}

// Decide answers one approval of a waiting run. Once every approval of the
// run's turn is decided, the run goes on.
func (e *Engine) Decide(ctx context.Context, id, approvalID string, d run.Decision) (*run.Record, error) {
	switch d.Decision {
	case journal.Approve, journal.Deny:
	case "":
		return nil, fmt.Errorf("%w: decision: missing (approve or deny)", ErrInvalid)
	default:
		return nil, fmt.Errorf("%w: decision: %q is not approve or deny", ErrInvalid, d.Decision)
	}
	if len(d.Arguments) > 0 {
		var obj map[string]any
		if d.Decision != journal.Approve || json.Unmarshal(d.Arguments, &obj) != nil || obj == nil {
			return nil, fmt.Errorf("%w: arguments: a JSON object, and only with approve", ErrInvalid)
		}
	}
	events, err := e.journalOf(ctx, id)
	if err != nil {
		return nil, err
	}
	dec := decision{ApprovalID: approvalID, Decision: d}
	if _, no := e.checkDecision(id, events, dec); no != nil {
		return nil, no.asError()
	}
	return e.command(ctx, id, store.Input{To: id, Kind: kindDecide, Data: mustJSON(dec)})
}

// ProvideInput answers a question a run asks: a flow's ask node (key
// "review#1") or a running tool call's (see journal.InputRequested.Call).
func (e *Engine) ProvideInput(ctx context.Context, id, key string, value json.RawMessage) (*run.Record, error) {
	if len(value) == 0 {
		return nil, fmt.Errorf("%w: value: missing (any JSON value)", ErrInvalid)
	}
	if !json.Valid(value) {
		return nil, fmt.Errorf("%w: value: not valid JSON", ErrInvalid)
	}
	events, err := e.journalOf(ctx, id)
	if err != nil {
		return nil, err
	}
	a := answer{Key: key, Value: value}
	if _, no := e.checkAnswer(id, events, a); no != nil {
		return nil, no.asError()
	}
	return e.command(ctx, id, store.Input{To: id, Kind: kindAnswer, Data: mustJSON(a)})
}

// testHookCommand, when set by a test, runs as a command passed its
// checks, before it is sent.
var testHookCommand func(kind string)

// command sends an input to a run and waits for its writer to take it.
func (e *Engine) command(ctx context.Context, id string, in store.Input) (*run.Record, error) {
	// Past the checks the command goes through even if the caller leaves.
	ctx = context.WithoutCancel(ctx)
	if testHookCommand != nil {
		testHookCommand(in.Kind)
	}
	// Listen first: the verdict cannot come before the input is stored.
	f, err := e.feed.follow(ctx, id, "", false)
	if err != nil {
		return nil, err
	}
	defer f.close()
	if in.Kind != kindCancel {
		// The run may have ended since the caller's check, before the
		// follower began: it would take nothing more, and say nothing.
		if head, ok, err := e.st.LastJournal(ctx, id); err != nil || (ok && journal.Terminal(head.Type)) {
			if err != nil {
				return nil, err
			}
			return nil, e.refuseEnded(ctx, id, in).asError()
		}
	}
	seq, err := e.st.Send(ctx, in)
	if err != nil {
		return nil, e.tooLarge(err, kindNoun(in.Kind))
	}
	verdict, err := f.verdict(seq, e.opts.CommandWait)
	if err != nil {
		return nil, err
	}
	switch {
	case verdict == nil:
		// Accepted; no worker took it yet.
	case journal.Terminal(verdict.Type) && in.Kind != kindCancel:
		// Ended: with the command taken on the way (its entry is in the
		// journal), or before it (a cancel sent later may end a run
		// without taking what waits ahead of it).
		taken, err := e.took(ctx, id, seq)
		if err != nil {
			return nil, err
		}
		if !taken {
			return nil, e.refuseEnded(ctx, id, in).asError()
		}
	case verdict.Type == journal.TypeInputRefused:
		var r journal.InputRefused
		if json.Unmarshal(verdict.Data, &r) == nil && r.Seq == seq {
			no := &refusal{invalid: r.Code == "invalid", reason: r.Reason}
			return nil, no.asError()
		}
	}
	return e.project(ctx, id)
}

// took reports whether a run's journal holds an entry for the input at
// sequence seq.
func (e *Engine) took(ctx context.Context, id string, seq uint64) (bool, error) {
	events, err := e.st.LoadJournal(ctx, id)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(events, func(ev journal.Event) bool { return ev.InputSeq == seq }), nil
}

// refuseEnded says why a run that ended takes a command no more: what the
// command's check says on its journal now (a decision repeated while the
// first let the run finish is told so), or that it ended first.
func (e *Engine) refuseEnded(ctx context.Context, id string, in store.Input) *refusal {
	if in.Kind == kindDecide {
		if events, err := e.st.LoadJournal(ctx, id); err == nil {
			var d decision
			_ = json.Unmarshal(in.Data, &d)
			if _, no := e.checkDecision(id, events, d); no != nil {
				return no
			}
		}
	}
	return conflictf("run %s ended before it took %s", id, kindNoun(in.Kind))
}

// journalOf reads the journal of a run that exists.
func (e *Engine) journalOf(ctx context.Context, id string) ([]journal.Event, error) {
	if !runIDPattern.MatchString(id) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, run.Quote(id))
	}
	events, err := e.st.LoadJournal(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		if exists, err := e.exists(ctx, id); err != nil || !exists {
			if err == nil {
				err = fmt.Errorf("%w: %s", ErrNotFound, run.Quote(id))
			}
			return nil, err
		}
	}
	return events, nil
}
