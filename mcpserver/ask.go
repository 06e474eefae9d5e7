package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// Why following a run stopped early: the client declined a question, or
// must be asked one in the call's answer (multi round-trip requests).
var (
	errDeclined  = errors.New("the client declined a question")
	errAskClient = errors.New("the client is asked in the call's answer")
)

// asker puts the questions a run tree asks (flow ask nodes, and tool
// calls' questions such as an MCP server's elicitation) to the MCP client
// that started the run, by elicitation, and gives the runtime the answers.
// Under the 2025-11-25 revision the client is asked on its session, while
// the call goes on; under 2026-07-28 the call answers with the questions
// (input requests) and the client calls again with the answers (resume).
// A client without elicitation is not asked: the call then ends saying
// where a person must answer.
type asker struct {
	ctx     context.Context
	rt      *engine.Engine
	session *mcp.ServerSession
	mrtr    bool // ask in the call's answer, not on the session
	root    *run.Record
	task    string // the MCP task the questions are asked for, if any
	log     *slog.Logger
	stop    context.CancelCauseFunc
	wg      sync.WaitGroup

	mu         sync.Mutex
	asked      map[string]bool // run id + key
	declinedAt string
	message    string              // the call's answer when it ends declined
	pending    mcp.InputRequestMap // for the call's answer, by "run id/key"
}

func newAsker(ctx context.Context, rt *engine.Engine, req *mcp.CallToolRequest, root *run.Record, log *slog.Logger, stop context.CancelCauseFunc) *asker {
	a := &asker{ctx: ctx, rt: rt, root: root, log: log, stop: stop, asked: map[string]bool{}, pending: mcp.InputRequestMap{}}
	// Under 2026-07-28 the client says what it can in each request's _meta
	// (there may be no session to remember it); before, at initialize.
	if caps := req.ClientCapabilities(); req.Session != nil && caps != nil && caps.Elicitation != nil {
		a.session = req.Session
		a.mrtr = req.ProtocolVersion() >= StatelessRevision
	}
	return a
}

// decline ends following the run: path's question cannot be put to the
// client; message, when set, is the call's answer.
func (a *asker) decline(path, message string) {
	a.mu.Lock()
	a.declinedAt, a.message = path, message
	a.mu.Unlock()
	a.stop(errDeclined)
}

// declinedMessage is the call's answer after a decline, if it has one.
func (a *asker) declinedMessage() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.message
}

// can reports whether the client can be asked.
func (a *asker) can() bool { return a.session != nil }

// requests are the questions for the call's answer.
func (a *asker) requests() mcp.InputRequestMap {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending
}

// declined is the path of the run whose question the client declined.
func (a *asker) declined() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.declinedAt
}

func (a *asker) close() { a.wg.Wait() }

// fromJournal puts a question of the run tree's journal to the client,
// unless it is not open any more (a retried call replays the journal). A
// client that cannot be asked a tool call's question is told where to
// answer it, rather than left waiting.
func (a *asker) fromJournal(ev journal.Event, path string) {
	var q journal.InputRequested
	if json.Unmarshal(ev.Data, &q) != nil {
		return
	}
	open, err := a.rt.Question(a.ctx, ev.RunID, q.Key)
	if err != nil || open == nil {
		return
	}
	if !a.can() {
		a.decline(path, fmt.Sprintf("run %s waits for a person: %s asks %q; answer with POST /v1/runs/%s/input {\"key\": %q, \"value\": ...} (or myriad runs answer), then read the result with GET /v1/runs/%s",
			a.root.ID, path, q.Prompt, ev.RunID, q.Key, a.root.ID))
		return
	}
	a.ask(ev.RunID, path, q, q.Call != "")
}

// ask elicits the answer to one question, once, in the background. A
// tool's question takes "decline" and "cancel" as answers; a flow's does
// not, so declining it ends the call.
func (a *asker) ask(runID, path string, q journal.InputRequested, fromTool bool) {
	a.mu.Lock()
	if a.asked[runID+"\x00"+q.Key] {
		a.mu.Unlock()
		return
	}
	a.asked[runID+"\x00"+q.Key] = true
	schema, unwrap := elicitSchema(q.Schema)
	params := &mcp.ElicitParams{Message: path + ": " + q.Prompt, RequestedSchema: schema}
	if a.task != "" {
		params.Meta = mcp.Meta{metaRelatedTask: map[string]any{"taskId": a.task}}
	}
	if a.mrtr {
		a.pending[runID+"/"+q.Key] = params
		a.mu.Unlock()
		a.stop(errAskClient)
		return
	}
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		res, err := a.session.Elicit(a.ctx, params)
		var value json.RawMessage
		if err != nil {
			if a.ctx.Err() == nil {
				a.log.Warn("mcp: could not ask the client", "run_id", runID, "key", q.Key, "err", err)
			}
			if fromTool {
				return // the question stays open for someone else
			}
		} else {
			value = answerValue(res, unwrap, fromTool)
		}
		if value == nil {
			a.decline(path, "")
			return
		}
		if _, err := a.rt.ProvideInput(a.ctx, runID, q.Key, value); err != nil {
			a.log.Warn("mcp: the client's answer was refused", "run_id", runID, "key", q.Key, "err", err)
		}
	}()
}

// elicitSchema makes a question's schema one elicitation takes: a flat
// object. Another schema (a string, a number, none) becomes the one
// property of an object, unwrapped from the answer.
func elicitSchema(raw json.RawMessage) (schema any, unwrap string) {
	var s map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &s) == nil && s["type"] == "object" {
		return s, ""
	}
	if s == nil {
		s = map[string]any{"type": "string"}
	}
	return map[string]any{"type": "object", "properties": map[string]any{"answer": s}, "required": []string{"answer"}}, "answer"
}

// answerValue is the runtime's answer for a client's elicitation result:
// the content (unwrapped when the question's schema was wrapped); for a
// tool's question "decline" or "cancel"; nil when a flow's question was
// declined.
func answerValue(res *mcp.ElicitResult, unwrap string, fromTool bool) json.RawMessage {
	var value json.RawMessage
	switch {
	case res.Action == "accept":
		value, _ = json.Marshal(res.Content)
		if unwrap != "" {
			value, _ = json.Marshal(res.Content[unwrap])
		}
	case fromTool:
		value, _ = json.Marshal(res.Action)
	}
	return value
}

// resume applies the answers a client sends with the same call again
// after the call answered with questions, and follows the run on. The
// request state is the run's id: /mcp is behind the API's token, so a
// client that can name a run can already answer it through the API.
func resume(ctx context.Context, rt *engine.Engine, req *mcp.CallToolRequest, name string, log *slog.Logger) (*mcp.CallToolResult, error) {
	root, err := rt.Get(ctx, req.Params.RequestState)
	if err != nil || root.Parent != "" || (root.Agent != name && root.Flow != name) {
		return errorResult(fmt.Sprintf("requestState %q names no run of %s", req.Params.RequestState, name)), nil
	}
	if msg := answer(ctx, rt, root, req.Params.InputResponses, log); msg != "" {
		return errorResult(msg), nil
	}
	return follow(ctx, rt, req, root, log, false)
}
