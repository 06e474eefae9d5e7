package engine

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// ForkRequest is a fork of a run: a new run whose journal is the run's up
// to Step (its run.started is step 1), and that goes on from there.
type ForkRequest struct {
	Step int
	// ToolResult, when set, replaces what a tool call within those steps
	// returned: the fork goes on as if the tool had answered that.
	ToolResult *journal.ForkToolResult
	// Instructions and Model, when set, replace the agent's instructions
	// and model (a configured model's name) from the fork point on.
	Instructions string
	Model        string
}

// Fork starts a new root run from a step of another run: its journal is a
// copy of the run's entries up to that step, journaled by the new run's
// writer (so a crash while copying resumes the copy), and the new run
// goes on from there with the agent or flow as defined now. The model and
// tool calls copied are not made again. A fork point cannot be the run's
// end, nor fall between a child run's start and its report: the child
// reports to its own parent, not to the fork.
func (e *Engine) Fork(ctx context.Context, from string, f ForkRequest) (*run.Record, error) {
	if !runIDPattern.MatchString(from) {
		return nil, fmt.Errorf("%w: run %s", ErrNotFound, run.Quote(from))
	}
	if _, err := e.Get(ctx, from); err != nil {
		return nil, err
	}
	events, err := e.st.LoadJournal(ctx, from)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: run %s has not started: there is nothing to fork yet", ErrConflict, from)
	}
	if f.Step < 1 || f.Step > len(events) {
		return nil, fmt.Errorf("%w: step: %d is not a step of run %s (1 to %d)", ErrInvalid, f.Step, from, len(events))
	}
	prefix := events[:f.Step]
	if journal.Terminal(prefix[len(prefix)-1].Type) {
		return nil, fmt.Errorf("%w: step %d is the run's end (%s): fork at an earlier step", ErrInvalid, f.Step, prefix[len(prefix)-1].Type)
	}
	if open := journal.OpenChildren(prefix); len(open) > 0 {
		return nil, fmt.Errorf("%w: at step %d child run %s has started and not reported: fork before its start or after its report", ErrInvalid, f.Step, open[0])
	}
	if f.ToolResult != nil && !finishedIn(prefix, f.ToolResult.CallID) {
		return nil, fmt.Errorf("%w: tool_result.call_id: no tool call %s finished by step %d", ErrInvalid, run.Quote(f.ToolResult.CallID), f.Step)
	}
	var start journal.RunStarted
	if err := json.Unmarshal(prefix[0].Data, &start); err != nil {
		return nil, fmt.Errorf("run %s: unreadable run.started: %w", from, err)
	}
	if prev := start.Fork; prev != nil {
		// A fork of a fork goes on as the first one did, unless changed.
		f.Instructions = cmp.Or(f.Instructions, prev.Instructions)
		f.Model = cmp.Or(f.Model, prev.Model)
	}
	if (f.Instructions != "" || f.Model != "") && start.Flow != "" {
		return nil, fmt.Errorf("%w: run %s is a flow's: fork one of its agents' runs to change instructions or model", ErrInvalid, from)
	}
	if _, known := e.opts.Models[f.Model]; f.Model != "" && !known {
		return nil, fmt.Errorf("%w: model: unknown model %s (known: %s)", ErrInvalid, run.Quote(f.Model), strings.Join(slices.Sorted(maps.Keys(e.opts.Models)), ", "))
	}
	metadata := map[string]string{}
	for k, v := range start.Metadata {
		metadata[k] = v
	}
	metadata["forked_from"], metadata["forked_at"] = from, strconv.Itoa(f.Step)
	rec, _, err := e.Submit(ctx, SubmitRequest{Agent: start.Agent, Flow: start.Flow, Input: start.Input, State: start.State, Metadata: metadata,
		fork: &journal.Fork{From: from, Step: f.Step, ToolResult: f.ToolResult, Instructions: f.Instructions, Model: f.Model}})
	return rec, err
}

func finishedIn(events []journal.Event, callID string) bool {
	for _, ev := range events {
		if ev.Type != journal.TypeToolFinished {
			continue
		}
		var f struct {
			CallID string `json:"call_id"`
		}
		if json.Unmarshal(ev.Data, &f) == nil && f.CallID == callID {
			return true
		}
	}
	return false
}

// forkStart is a fork's run.started: the source's, with the fork's own
// submission time and metadata, as a root run of no instance; and the
// source's journal, for copyFork.
func (x *execution) forkStart(ctx context.Context) (journal.RunStarted, []journal.Event, error) {
	f := x.sub.Fork
	source, err := x.e.st.LoadJournal(ctx, f.From)
	if err != nil {
		return journal.RunStarted{}, nil, err
	}
	if len(source) < f.Step || source[0].Type != journal.TypeRunStarted {
		return journal.RunStarted{}, nil, fmt.Errorf("fork of run %s: its journal has %d entries, fewer than step %d", f.From, len(source), f.Step)
	}
	var start journal.RunStarted
	if err := json.Unmarshal(source[0].Data, &start); err != nil {
		return journal.RunStarted{}, nil, err
	}
	start.Metadata, start.Submitted, start.Fork = x.sub.Metadata, x.sub.Submitted, f
	start.Instance, start.Turn, start.InstanceAgent = "", 0, ""
	start.Parent, start.ParentCall, start.Path, start.Depth = "", "", "", 0
	return start, source, nil
}

// copyFork journals what a fork copies and has not yet: the source's
// entries after its run.started, up to the fork's step. source is the
// source's journal if the caller has it (nil: read it). x.mu must be held.
// It runs on every pass of every run, so a run that is no fork costs a
// byte search of its run.started, not a decoding.
func (x *execution) copyFork(ctx context.Context, source []journal.Event) error {
	events := x.j.Events()
	if len(events) == 0 || events[0].Type != journal.TypeRunStarted || !bytes.Contains(events[0].Data, []byte(`"fork":`)) {
		return nil
	}
	var start journal.RunStarted
	if err := json.Unmarshal(events[0].Data, &start); err != nil || start.Fork == nil || len(events) >= start.Fork.Step {
		return nil
	}
	f := start.Fork
	if source == nil {
		var err error
		if source, err = x.e.st.LoadJournal(ctx, f.From); err != nil {
			return err
		}
	}
	if len(source) < f.Step {
		return fmt.Errorf("fork of run %s: its journal has %d entries, fewer than step %d", f.From, len(source), f.Step)
	}
	for _, ev := range source[len(events):f.Step] {
		data := unpaid(ev.Data)
		if f.ToolResult != nil && ev.Type == journal.TypeToolFinished {
			data = replacedResult(data, f.ToolResult)
		}
		// Not observed: the calls copied are the source's, already
		// counted in its metrics and traces.
		if _, err := x.j.AppendFor(ctx, 0, ev.Type, data); err != nil {
			return err
		}
	}
	return nil
}

// unpaid is a copied entry without its cost: the fork did not pay for the
// calls it copies, its source did (totals would count them twice).
func unpaid(data json.RawMessage) json.RawMessage {
	if !bytes.Contains(data, []byte(`"cost_usd"`)) {
		return data
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return data
	}
	delete(fields, "cost_usd")
	out, err := json.Marshal(fields)
	if err != nil {
		return data
	}
	return out
}

// replacedResult is a tool.finished entry with the fork's result, if it
// is the call's.
func replacedResult(data json.RawMessage, r *journal.ForkToolResult) json.RawMessage {
	var f journal.ToolFinished
	if json.Unmarshal(data, &f) != nil || f.CallID != r.CallID {
		return data
	}
	f.Content, f.IsError, f.SpanID, f.CostUSD = r.Content, r.IsError, "", 0
	out, err := json.Marshal(f)
	if err != nil {
		return data
	}
	return out
}
