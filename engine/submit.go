package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"

	"github.com/myriad-ai/myriad/store"
)

// SubmitRequest starts a run.
type SubmitRequest struct {
	// Agent or Flow names what runs.
	Agent string
	Flow  string
	Input string
	// State is a flow run's initial state (a JSON object), over the
	// flow's declared initial values.
	State json.RawMessage
	// Instance is the key of the agent instance to continue ("customer-42"),
	// or "agent/key".
	Instance string
	Metadata map[string]string
	// IdempotencyKey makes the submission idempotent: the same key returns the
	// run it first created (for a day).
	IdempotencyKey string
	// ID, when set, is the new run's id (from NewRunID), so a caller can
	// listen to the run before it starts; empty makes one.
	ID string
	// fork makes the run a fork (Engine.Fork checks it first).
	fork *journal.Fork
	// scheduled is a schedule's firing: never refused for the backlog
	// (its timer fires once).
	scheduled bool
}

// Submit accepts a run. Its submission is one write: the run's first
// input (created only if the run does not exist), or, for an instance's
// turn, the turn sent to the instance (its place in the instance's order).
// With an idempotency key, claiming the key comes first and holds the
// submission: whoever finds the key claimed — a retry, or the router if
// the claimant died — completes the writes, each idempotent. created is
// false when the key matched a run submitted before.
func (e *Engine) Submit(ctx context.Context, req SubmitRequest) (rec *run.Record, created bool, err error) {
	if err := e.checkSubmission(&req); err != nil {
		if req.IdempotencyKey != "" {
			// A retry is answered with the run its key made, even if the
			// configuration has changed since.
			if prior, kerr := e.st.Key(ctx, submitKey(req.IdempotencyKey)); kerr == nil {
				rec, err := e.keyed(context.WithoutCancel(ctx), req.IdempotencyKey, prior)
				return rec, false, err
			}
		}
		return nil, false, err
	}
	if !req.scheduled {
		if err := e.admit(ctx); err != nil {
			return e.refuseOverloaded(ctx, req.IdempotencyKey, err)
		}
	}
	// Past validation, finish even if the client leaves.
	ctx = context.WithoutCancel(ctx)
	id := req.ID
	if id == "" {
		id = NewRunID()
	} else if !runIDPattern.MatchString(id) {
		return nil, false, fmt.Errorf("%w: id: %q is not a run id", ErrInvalid, id)
	}
	sub := &submission{Agent: req.Agent, Flow: req.Flow, Input: req.Input, State: req.State, Metadata: req.Metadata,
		Submitted: time.Now().UTC(), Fork: req.fork}
	if req.Instance != "" {
		sub.Instance, sub.InstanceID = req.Instance, instanceID(req.Agent, req.Instance)
	}
	prior, err := e.submit(ctx, id, sub, req.IdempotencyKey, req.ID != "" && req.IdempotencyKey == "")
	if prior != nil || err != nil {
		return prior, false, e.tooLarge(err, "the submission")
	}
	rec = sub.queued(id)
	if sub.InstanceID != "" {
		// A turn waits at its instance, not on the work queue: its record
		// lets listings find it meanwhile.
		e.st.CreateRecord(id, mustJSON(rec))
	}
	start := sub.started()
	// Listed from now on: a client that lists right after sees its run.
	// (Should this write fail, the worker that starts the run writes the
	// entry.)
	if err := e.st.EnsureIndexed(ctx, id, entryOfStart(start)); err != nil {
		e.log.Warn("index run", "run_id", id, "err", err)
	}
	info := run.InfoOf(id, &start)
	for _, o := range e.observers {
		o.Accepted(info)
	}
	return rec, true, nil
}

// refuseOverloaded refuses a new run past the backlog limit; a retry
// whose key made a run gets that run.
func (e *Engine) refuseOverloaded(ctx context.Context, key string, refusal error) (*run.Record, bool, error) {
	if key != "" {
		if prior, err := e.st.Key(ctx, submitKey(key)); err == nil {
			rec, err := e.keyed(context.WithoutCancel(ctx), key, prior)
			return rec, false, err
		}
	}
	return nil, false, refusal
}

// submit claims the key, if any, and writes the submission. For an agent
// that rejects concurrent input, a turn is sent only if its instance is
// idle, and only if nothing reached the instance since that check (the
// claim holds the condition, so whoever completes it sends the same); a
// busy instance refuses it before the key is claimed. prior is the run
// the key made before, if it did.
func (e *Engine) submit(ctx context.Context, id string, sub *submission, key string, given bool) (prior *run.Record, err error) {
	rejects := sub.InstanceID != "" && e.agents[sub.Agent] != nil && e.agents[sub.Agent].RejectBusy
	for attempt := 0; ; attempt++ {
		var after *uint64
		var claim []byte
		if rejects {
			last, busy, err := e.instanceBusy(ctx, sub.InstanceID)
			if err != nil {
				return nil, err
			}
			if busy != "" {
				return nil, fmt.Errorf("%w: instance %s/%s is busy with %s (this agent rejects concurrent input; retry when it is done)", ErrConflict, sub.Agent, sub.Instance, busy)
			}
			after = &last
		}
		if key != "" {
			claim = mustJSON(keyedSubmission{Key: key, RunID: id, Submission: sub, After: after})
			prior, err := e.st.ClaimKey(ctx, submitKey(key), store.KeyKind, claim)
			if errors.Is(err, store.ErrExists) {
				return e.keyed(ctx, key, prior)
			}
			if err != nil {
				return nil, err
			}
		}
		err := e.deliver(ctx, id, sub, after, given)
		if !errors.Is(err, errInstanceMoved) {
			return nil, err
		}
		// Something reached the instance between its check and the turn:
		// this claim's turn can never go; claim afresh.
		if key != "" {
			if err := e.st.ReleaseKey(ctx, submitKey(key), claim); err != nil {
				return nil, err
			}
		}
		if attempt == 10 {
			return nil, fmt.Errorf("%w: instance %s/%s keeps changing; retry", ErrConflict, sub.Agent, sub.Instance)
		}
	}
}

// errInstanceMoved says a turn sent on the condition that its instance
// stayed as it was checked was not sent: something reached it since.
var errInstanceMoved = errors.New("the instance took an input since it was checked")

// keyed returns the run a claimed idempotency key made.
func (e *Engine) keyed(ctx context.Context, key string, prior []byte) (*run.Record, error) {
	var k keyedSubmission
	if err := json.Unmarshal(prior, &k); err != nil || k.Submission == nil {
		return nil, fmt.Errorf("idempotency key %q: unreadable claim", key)
	}
	// The first submission may have died before its writes.
	if err := e.complete(ctx, k); err != nil {
		if errors.Is(err, errInstanceMoved) {
			// Its turn never went, and never will: forget the key.
			if err := e.st.ReleaseKey(ctx, submitKey(key), prior); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: instance %s/%s was busy when this key was first sent; retry", ErrConflict, k.Submission.Agent, k.Submission.Instance)
		}
		return nil, err
	}
	rec, err := e.Get(ctx, k.RunID)
	return rec, err
}

// complete writes what a claimed key's submission still lacks.
func (e *Engine) complete(ctx context.Context, k keyedSubmission) error {
	if exists, err := e.exists(ctx, k.RunID); err != nil || exists {
		return err
	}
	if deleted, err := e.deleted(ctx, k.RunID); err != nil || deleted {
		if deleted {
			return fmt.Errorf("%w: run %s, which this idempotency key made, was deleted; send a new key to run it again", ErrConflict, k.RunID)
		}
		return err
	}
	return e.deliver(ctx, k.RunID, k.Submission, k.After, false)
}

// keyedSubmission is what an idempotency key's claim holds.
type keyedSubmission struct {
	// Key is the idempotency key (its claim's subject has only its hash).
	Key        string      `json:"key,omitempty"`
	RunID      string      `json:"run_id"`
	Submission *submission `json:"submission"`
	// After is the position of its instance's inputs that an agent
	// rejecting concurrent input found idle: the turn goes only there.
	After *uint64 `json:"after,omitempty"`
}

func submitKey(key string) string { return "submit/" + key }

// deliver writes a submission: a run goes on the work queue with it (one
// write); an instance's turn goes to the instance first (its place in the
// instance's order), then to the run's own inputs (which lets readers see
// the run before its turn comes; the turn's start carries the submission
// too). after, when set, is where the turn must go in its instance's
// inputs (see submit); given says the caller chose the id, which must then
// be new.
func (e *Engine) deliver(ctx context.Context, id string, sub *submission, after *uint64, given bool) error {
	if sub.InstanceID == "" {
		if given {
			if exists, err := e.exists(ctx, id); err != nil || exists {
				if err == nil {
					err = fmt.Errorf("%w: run %s exists already", ErrConflict, id)
				}
				return err
			}
		}
		return e.enqueue(ctx, id, sub)
	}
	if err := e.sendTurn(ctx, id, sub, after); err != nil {
		return err
	}
	return e.sendTurnSubmission(ctx, id, sub)
}

// enqueue puts a new run on the work queue with its submission. If the
// run's entry is there already — queued before, or rung by an input that
// came first (a cancel to a child its parent had not spawned yet) — the
// submission goes to the run's inputs as well, unless the run has
// started: its worker finds it there.
func (e *Engine) enqueue(ctx context.Context, id string, sub *submission) error {
	data := mustJSON(sub)
	rang, err := e.st.Enqueue(ctx, id, kindSubmit, data)
	if err != nil || rang {
		return err
	}
	if _, started, err := e.st.LastJournal(ctx, id); err != nil || started {
		return err
	}
	_, err = e.st.Send(ctx, store.Input{To: id, Kind: kindSubmit, Data: data, MsgID: "submit/" + id})
	return err
}

// sendTurnSubmission writes a turn's submission to its run's inputs (by
// its submitter, a retry, or the router: once).
func (e *Engine) sendTurnSubmission(ctx context.Context, id string, sub *submission) error {
	_, err := e.st.Send(ctx, store.Input{To: id, Kind: kindSubmitTurn, Data: mustJSON(sub), MsgID: "submit/" + id})
	return err
}

// sendTurn sends an instance the turn of run id, at position after of its
// inputs when set: errInstanceMoved if something else came there first.
func (e *Engine) sendTurn(ctx context.Context, id string, sub *submission, after *uint64) error {
	_, err := e.st.Send(ctx, store.Input{To: sub.InstanceID, Kind: kindTurn, Data: mustJSON(turnRequest{RunID: id, Submission: sub}),
		MsgID: "turn/" + id, After: after})
	if after == nil || !errors.Is(err, store.ErrExists) {
		return err
	}
	// The position check comes before deduplication: the turn itself may
	// be what came (sent before by a submitter that died, or a retry).
	ins, err := e.st.ReadInputs(ctx, sub.InstanceID, *after)
	if err != nil {
		return err
	}
	for _, m := range ins {
		var t turnRequest
		if m.Kind == kindTurn && json.Unmarshal(m.Data, &t) == nil && t.RunID == id {
			return nil
		}
	}
	return errInstanceMoved
}

// checkSubmission validates a request and normalizes its instance key.
func (e *Engine) checkSubmission(req *SubmitRequest) error {
	switch {
	case req.Flow != "" && req.Agent != "":
		return fmt.Errorf("%w: name an agent or a flow, not both", ErrInvalid)
	case req.Flow != "":
		if _, ok := e.flows[req.Flow]; !ok {
			if _, isAgent := e.agents[req.Flow]; isAgent {
				return fmt.Errorf("%w: %s is an agent, not a flow: send it as agent", ErrUnknownAgent, run.Quote(req.Flow))
			}
			return fmt.Errorf("%w: flow %s (known: %s)", ErrUnknownAgent, run.Quote(req.Flow), orNone(e.flowNames()))
		}
		if req.Instance != "" {
			return fmt.Errorf("%w: instance: flows have no instances; keep state in the flow's state", ErrInvalid)
		}
		if len(req.State) > 0 {
			var obj map[string]any
			if json.Unmarshal(req.State, &obj) != nil || obj == nil {
				return fmt.Errorf("%w: state: must be a JSON object", ErrInvalid)
			}
		}
	default:
		if _, ok := e.agents[req.Agent]; !ok {
			if _, isFlow := e.flows[req.Agent]; isFlow {
				return fmt.Errorf("%w %s: it is a flow: send it as flow", ErrUnknownAgent, run.Quote(req.Agent))
			}
			known := strings.Join(e.agentNames(), ", ")
			if len(e.flows) > 0 {
				known += "; flows: " + strings.Join(e.flowNames(), ", ")
			}
			return fmt.Errorf("%w %s (known: %s)", ErrUnknownAgent, run.Quote(req.Agent), known)
		}
		if len(req.State) > 0 {
			return fmt.Errorf("%w: state: only flow runs take a state", ErrInvalid)
		}
	}
	if strings.TrimSpace(req.Input) == "" {
		return fmt.Errorf("%w: input: must not be empty", ErrInvalid)
	}
	if req.Instance != "" {
		// "agent/key" names the same instance as "key".
		req.Instance = strings.TrimPrefix(req.Instance, req.Agent+"/")
		if err := CheckInstanceKey(req.Instance); err != nil {
			return fmt.Errorf("%w: instance: %w", ErrInvalid, err)
		}
	}
	return nil
}

// Once does something the first time key is claimed, and reports whether
// it ran. A claim lasts a day; if do fails, the claim is released, so the
// caller may try again. (A door's idempotent replies use it.)
func (e *Engine) Once(ctx context.Context, key string, do func() error) (ran bool, err error) {
	ctx = context.WithoutCancel(ctx)
	_, err = e.st.ClaimKey(ctx, "once/"+key, kindClaim, nil)
	if errors.Is(err, store.ErrExists) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := do(); err != nil {
		if rerr := e.st.ReleaseKey(ctx, "once/"+key, nil); rerr != nil {
			e.log.Warn("release a claim", "err", rerr)
		}
		return true, err
	}
	return true, nil
}
