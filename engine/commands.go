package engine

import (
	"context"
	"encoding/json"
	"fmt"

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

// command sends an input to a run and waits for its writer to take it.
func (e *Engine) command(ctx context.Context, id string, in store.Input) (*run.Record, error) {
	// Past the checks the command goes through even if the caller leaves.
	ctx = context.WithoutCancel(ctx)
	// Listen first: the verdict cannot come before the input is stored.
	f, err := e.feed.follow(ctx, id, "", false)
	if err != nil {
		return nil, err
	}
	defer f.close()
	seq, err := e.st.Send(ctx, in)
	if err != nil {
		return nil, err
	}
	verdict, err := f.verdict(seq, e.opts.CommandWait)
	if err != nil {
		return nil, err
	}
	switch {
	case verdict == nil:
		// Accepted; no worker took it yet.
	case verdict.InputSeq < seq && in.Kind != kindCancel:
		if in.Kind == kindDecide {
			// A decision repeated while the first let the run finish.
			if events, err := e.st.LoadJournal(ctx, id); err == nil {
				var d decision
				_ = json.Unmarshal(in.Data, &d)
				if _, no := e.checkDecision(id, events, d); no != nil {
					return nil, no.asError()
				}
			}
		}
		return nil, conflictf("run %s ended before it took the %s", id, in.Kind).asError()
	case verdict.Type == journal.TypeInputRefused:
		var r journal.InputRefused
		if json.Unmarshal(verdict.Data, &r) == nil && r.Seq == seq {
			no := &refusal{invalid: r.Code == "invalid", reason: r.Reason}
			return nil, no.asError()
		}
	}
	return e.project(ctx, id)
}

// journalOf reads the journal of a run that exists.
func (e *Engine) journalOf(ctx context.Context, id string) ([]journal.Event, error) {
	if !runIDPattern.MatchString(id) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	events, err := e.st.LoadJournal(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		if exists, err := e.exists(ctx, id); err != nil || !exists {
			if err == nil {
				err = fmt.Errorf("%w: %q", ErrNotFound, id)
			}
			return nil, err
		}
	}
	return events, nil
}
