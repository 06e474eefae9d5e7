package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/tool"
)

// LiveQuestion is the live event type of a question a running tool call
// asks (bus.LiveSubject): the question is on the run's record until it is
// answered or the call ends, and is not journaled.
const LiveQuestion = "tool.question"

// Question is the body of a LiveQuestion event.
type Question struct {
	Type  string `json:"type"`
	RunID string `json:"run_id"`
	Path  string `json:"path"`
	journal.InputRequested
}

// askDuringCall returns the hook through which a run's tool calls ask a
// person (an MCP server's elicitation). The question goes on the run's
// record, like a flow's (GET /v1/runs/{id} shows it, POST
// /v1/runs/{id}/input answers it), while the call waits holding its
// worker; it leaves the record when answered or when the call ends. A
// question lives no longer than its call: if the worker dies, the call and
// its question go with it.
func (r *Runtime) askDuringCall(rec *Record) func(ctx context.Context, callID, toolName string, q tool.Question) (json.RawMessage, error) {
	id, path := rec.ID, rec.PathOrAgent()
	// Keys differ from one worker's attempt to the next, so a call made
	// again never finds the answer to its previous attempt's question.
	var nonce [3]byte
	_, _ = rand.Read(nonce[:])
	attempt := hex.EncodeToString(nonce[:])
	var n atomic.Int64
	return func(ctx context.Context, callID, toolName string, q tool.Question) (json.RawMessage, error) {
		ask := journal.InputRequested{Node: toolName, Key: fmt.Sprintf("%s.ask%d-%s", callID, n.Add(1), attempt), Prompt: q.Prompt, Schema: q.Schema, Call: callID}
		// Watch before asking, so the answer cannot slip past.
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		w, err := r.bus.Runs.Watch(wctx, id, jetstream.UpdatesOnly())
		if err != nil {
			return nil, err
		}
		defer func() { _ = w.Stop() }()
		bg := context.WithoutCancel(ctx)
		if _, err := r.update(bg, id, func(rec *Record) error {
			rec.InputRequests = append(rec.InputRequests, ask)
			return nil
		}); err != nil {
			return nil, err
		}
		// However the wait ends, the question leaves the record.
		defer func() {
			_, _ = r.update(bg, id, func(rec *Record) error {
				rec.InputRequests = slices.DeleteFunc(rec.InputRequests, func(q journal.InputRequested) bool { return q.Key == ask.Key })
				rec.Inputs = slices.DeleteFunc(rec.Inputs, func(in journal.InputReceived) bool { return in.Key == ask.Key })
				return nil
			})
		}()
		data, _ := json.Marshal(Question{Type: LiveQuestion, RunID: id, Path: path, InputRequested: ask})
		_ = r.bus.NC.Publish(bus.LiveSubject(id), data)
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					return nil, fmt.Errorf("ask %s: the connection to NATS closed", ask.Key)
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue
				}
				var cur Record
				if json.Unmarshal(e.Value(), &cur) != nil {
					continue
				}
				for _, in := range cur.Inputs {
					if in.Key == ask.Key {
						return in.Value, nil
					}
				}
				if cur.Status.Terminal() || cur.CancelRequested {
					return nil, fmt.Errorf("ask %s: run %s is %s", ask.Key, id, cur.Status)
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}

// checkToolAnswer checks the answer to a tool call's question: "decline"
// or "cancel", or a value its schema accepts, so a bad answer is refused
// to the person (who can answer again) rather than passed to the server.
func checkToolAnswer(q *journal.InputRequested, value json.RawMessage) error {
	var word string
	if json.Unmarshal(value, &word) == nil && (word == "decline" || word == "cancel") {
		return nil
	}
	if len(q.Schema) == 0 {
		return nil
	}
	s, err := tool.CompileSchema(q.Schema)
	if err != nil {
		return nil // the server's schema is its own business; it checks
	}
	if err := s.Validate(value); err != nil {
		return fmt.Errorf("%v (or answer \"decline\" or \"cancel\")", err)
	}
	return nil
}
