// Package mcpserver exposes Myriad's agents and flows as MCP tools, with
// the official MCP Go SDK: `myriad mcp` serves them on stdio, and `myriad
// serve` on /mcp (streamable HTTP, behind the API's authentication).
//
// Each agent is a tool named after it taking {"input", "instance"?}; each
// flow a tool taking {"input", "state"?}. A call submits a durable run and
// answers when it ends; meanwhile every journal entry of the run (and of
// its child runs) is a progress notification, and canceling the call
// cancels the run. The questions the run tree asks (a flow's ask node, a
// tool call's question such as an MCP server's elicitation) are put to a
// client that supports elicitation: on its session under 2025-11-25, or in
// the call's answer under 2026-07-28, the client calling again with the
// answers (multi round-trip requests). Approvals are an operator's; a run
// that waits for one, or for a question the client cannot or will not
// answer, ends the call with an error saying where to act.
package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/mcptool"
)

// Options configure the server.
type Options struct {
	Version string
	Logger  *slog.Logger
}

var agentSchema = json.RawMessage(`{"type":"object","properties":{"input":{"type":"string","description":"The message or task for the agent"},"instance":{"type":"string","description":"Continue this instance of the agent (a key such as customer-42)"}},"required":["input"],"additionalProperties":false}`)

var flowSchema = json.RawMessage(`{"type":"object","properties":{"input":{"type":"string","description":"The flow's input"},"state":{"type":"object","description":"The flow's initial state"}},"required":["input"],"additionalProperties":false}`)

// New returns an MCP server whose tools run the runtime's agents and flows.
func New(rt *engine.Engine, opts Options) *mcp.Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	caps := &mcp.ServerCapabilities{}
	caps.AddExtension(TasksExtension, nil)
	s := mcp.NewServer(&mcp.Implementation{Name: "myriad", Version: opts.Version}, &mcp.ServerOptions{Logger: opts.Logger, Capabilities: caps})
	submitters := map[string]submitter{}
	add := func(name, desc string, schema json.RawMessage, submit submitter) {
		submitters[name] = submit
		s.AddTool(&mcp.Tool{Name: name, Description: desc, InputSchema: schema},
			func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				if req.Params.RequestState != "" {
					// The same call again, with the answers to the
					// questions its run asked (multi round-trip requests).
					return resume(ctx, rt, req, name, opts.Logger)
				}
				sub, err := submit(req.Params.Arguments)
				if err != nil {
					return errorResult("arguments: " + err.Error()), nil
				}
				return submitAndFollow(ctx, rt, req, sub, opts.Logger)
			})
	}
	for _, a := range rt.Agents() {
		name := a.Name
		add(name, describe(a.Description, "agent", name), agentSchema, func(args json.RawMessage) (engine.SubmitRequest, error) {
			var in agentArgs
			if err := decodeArgs(args, &in, "input, instance"); err != nil {
				return engine.SubmitRequest{}, err
			}
			if err := in.check(); err != nil {
				return engine.SubmitRequest{}, err
			}
			return engine.SubmitRequest{Agent: name, Input: *in.Input, Instance: in.Instance}, nil
		})
	}
	for _, f := range rt.Flows() {
		name := f.Name
		add(name, describe(f.Description, "flow", name), flowSchema, func(args json.RawMessage) (engine.SubmitRequest, error) {
			var in flowArgs
			if err := decodeArgs(args, &in, "input, state"); err != nil {
				return engine.SubmitRequest{}, err
			}
			if err := in.check(); err != nil {
				return engine.SubmitRequest{}, err
			}
			return engine.SubmitRequest{Flow: name, Input: *in.Input, State: in.State}, nil
		})
	}
	addTasks(s, rt, submitters, opts.Logger)
	s.AddReceivingMiddleware(cutEchoes)
	return s
}

// cutEchoes cuts the long words of the errors the SDK answers with: it
// quotes a caller's unknown tool name whole, megabytes of it.
func cutEchoes(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if err == nil {
			return res, nil
		}
		msg := run.CutWords(err.Error())
		if msg == err.Error() {
			return res, err
		}
		wired := &jsonrpc.Error{Message: msg}
		var inner *jsonrpc.Error
		if errors.As(err, &inner) {
			wired.Code, wired.Data = inner.Code, inner.Data
		}
		return res, wired
	}
}

// submitter makes a tool call's arguments the run it asks for.
type submitter func(args json.RawMessage) (engine.SubmitRequest, error)

// Handler serves the MCP server over streamable HTTP, in both protocol
// revisions. A 2026-07-28 request (its MCP-Protocol-Version header says
// so, and it has no session) is served statelessly: any request may land
// on any node, and a call canceled by its client — which under 2026-07-28
// closes the request — cancels its run. Anything else (a 2025-11-25
// client's initialize, then its requests on the session) is served with a
// session, whose streams can be resumed from an in-memory event store on
// the node that holds it. The SDK serves 2026-07-28 only statelessly and
// elicits on sessions only, hence two handlers. Request bodies are bounded
// by maxBodyBytes (0: the SDK's 4 MiB).
func Handler(s *mcp.Server, maxBodyBytes int64) http.Handler {
	server := func(*http.Request) *mcp.Server { return s }
	sessions := mcp.NewStreamableHTTPHandler(server, &mcp.StreamableHTTPOptions{EventStore: mcp.NewMemoryEventStore(nil),
		SessionTimeout: 30 * time.Minute, MaxRequestBodyBytes: maxBodyBytes})
	stateless := mcp.NewStreamableHTTPHandler(server,
		&mcp.StreamableHTTPOptions{Stateless: true, PropagateRequestCancellation: true, MaxRequestBodyBytes: maxBodyBytes})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Revisions are dates: they compare as strings. A later one than
		// the SDK knows is refused by the stateless handler with the list
		// of those it serves, as the revision asks.
		if r.Header.Get("Mcp-Protocol-Version") >= StatelessRevision && r.Header.Get("Mcp-Session-Id") == "" {
			if strings.HasPrefix(r.Header.Get("Mcp-Method"), "tasks/") && !taskNamed(w, r) {
				return
			}
			stateless.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodDelete {
			sessionCalls.closed(r.Header.Get("Mcp-Session-Id"))
		}
		liftTaskParam(r)
		sessions.ServeHTTP(w, r)
	})
}

// taskNamed checks that a tasks request's Mcp-Name header names the task
// its body does, as the tasks extension asks (the SDK checks the header
// for its own methods only), answering the mismatch itself.
func taskNamed(w http.ResponseWriter, r *http.Request) bool {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		ID     json.RawMessage `json:"id"`
		Params struct {
			TaskID string `json:"taskId"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &req) != nil || req.Params.TaskID == r.Header.Get("Mcp-Name") {
		return true // a body the SDK will refuse in its own terms, or a match
	}
	if len(req.ID) == 0 {
		req.ID = json.RawMessage("null")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "error": map[string]any{"code": codeHeaderMismatch,
		"message": fmt.Sprintf("the Mcp-Name header %s does not name the task of the body, %s", run.Quote(r.Header.Get("Mcp-Name")), run.Quote(req.Params.TaskID))}})
	return false
}

// StatelessRevision is the first MCP revision served without sessions.
const StatelessRevision = "2026-07-28"

func describe(desc, kind, name string) string {
	if desc != "" {
		return desc
	}
	return "Run the " + name + " " + kind + "."
}

func errorResult(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}

// submitAndFollow submits a run, reports its progress, and answers with its end.
func submitAndFollow(ctx context.Context, rt *engine.Engine, req *mcp.CallToolRequest, sub engine.SubmitRequest, log *slog.Logger) (*mcp.CallToolResult, error) {
	ctx, release := sessionCalls.track(ctx, req.Session.ID())
	defer release()
	rec, _, err := rt.Submit(ctx, fromMeta(req, sub))
	if err != nil {
		return errorResult(err.Error()), nil
	}
	return follow(ctx, rt, req, rec, log, false)
}

// fromMeta completes a submission with what the call's _meta says: a
// caller that retries with the same key (as Myriad's own client sends it)
// gets the run it started, not a second one; the caller's trace context
// goes with the run, so its logs and events can be tied to the caller's
// trace.
func fromMeta(req *mcp.CallToolRequest, sub engine.SubmitRequest) engine.SubmitRequest {
	if key, ok := req.Params.Meta[mcptool.MetaIdempotencyKey].(string); ok {
		sub.IdempotencyKey = key
	}
	if tp, ok := req.Params.Meta[mcptool.MetaTraceParent].(string); ok && tool.ValidTraceParent(tp) {
		if sub.Metadata == nil {
			sub.Metadata = map[string]string{}
		}
		sub.Metadata["traceparent"] = tp
	}
	return sub
}

// follow reports a run's progress and answers with its end. The questions
// its tree asks go to a client that can answer them (see asker).
//
// A task's follow (asTask, for tasks/result) leaves the run going when the
// client goes, and marks the questions it asks as the task's.
func follow(ctx context.Context, rt *engine.Engine, req *mcp.CallToolRequest, rec *run.Record, log *slog.Logger, asTask bool) (*mcp.CallToolResult, error) {
	var err error
	token := req.Params.GetProgressToken()
	steps := 0
	var needsPerson string // the path of a run in the tree waiting for a person
	// A client that can be asked (elicitation, on a session) is asked the
	// questions of the run's tree; one it declines ends the call.
	fctx, stopFollow := context.WithCancelCause(ctx)
	defer stopFollow(nil)
	asker := newAsker(fctx, rt, req, rec, log, stopFollow)
	if asTask {
		asker.task = rec.ID
	}
	defer asker.close()
	for u, werr := range rt.Watch(fctx, engine.WatchOptions{Run: rec.ID, Tree: true}) {
		if werr != nil {
			err = werr
			break
		}
		ev := u.Event
		if token != nil {
			steps++
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token,
				Progress: float64(steps), Message: ev.Path + ": " + ev.Type})
		}
		if ev.Type == journal.TypeInputRequested {
			var q journal.InputRequested
			if asker.can() || json.Unmarshal(ev.Data, &q) == nil && q.Call != "" {
				asker.fromJournal(ev.Event, ev.Path)
				continue
			}
		}
		if rt.WaitsForPerson(fctx, ev) {
			// Here or in a child: a person must act before the run goes on.
			needsPerson = ev.Path
		}
		if needsPerson != "" || ev.RunID == rec.ID && journal.Terminal(ev.Type) {
			break
		}
	}
	if ctx.Err() == nil {
		switch cause := context.Cause(fctx); {
		case errors.Is(cause, errDeclined):
			if msg := asker.declinedMessage(); msg != "" {
				return errorResult(msg), nil
			}
			needsPerson, err = asker.declined(), nil // someone else must answer
		case errors.Is(cause, errAskClient):
			// The client answers, then calls again with the answers and
			// this state (the run's id).
			return &mcp.CallToolResult{InputRequests: asker.requests(), RequestState: rec.ID}, nil
		}
	}
	if ctx.Err() != nil {
		// The caller canceled (or went away): the run stops too, unless it
		// is a task, which outlives its callers.
		if !asTask {
			_, _ = rt.Cancel(context.WithoutCancel(ctx), rec.ID)
		}
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("follow run %s: %w", rec.ID, err)
	}
	if needsPerson != "" && needsPerson != rec.PathOrAgent() {
		return errorResult(fmt.Sprintf("run %s waits for a person in %s: decide through the Myriad API (GET /v1/approvals, GET /v1/runs?parent=%s) and read its result with GET /v1/runs/%s",
			rec.ID, needsPerson, rec.ID, rec.ID)), nil
	}
	id := rec.ID
	if rec, err = rt.Wait(ctx, id); err != nil {
		if ctx.Err() != nil && !asTask {
			_, _ = rt.Cancel(context.WithoutCancel(ctx), id)
		}
		return nil, err
	}
	switch rec.Status {
	case run.StatusCompleted, run.StatusFailed:
		return ended(rec), nil
	case run.StatusWaiting:
		return errorResult(fmt.Sprintf("run %s waits for a person (%s): %s, and read its result with GET /v1/runs/%s",
			rec.ID, rec.WaitingFor, rec.HowToGoOn(), rec.ID)), nil
	case run.StatusInDoubt:
		return errorResult(fmt.Sprintf("run %s is in doubt: resolve it with POST /v1/runs/%s/resolve", rec.ID, rec.ID)), nil
	}
	return nil, errors.New("run " + rec.ID + " ended " + string(rec.Status))
}

// ended is the call's answer for a run that completed or failed: its
// output (an object output also as structured content), or the error.
func ended(rec *run.Record) *mcp.CallToolResult {
	if rec.Status == run.StatusFailed {
		code, msg := "failed", ""
		if rec.Error != nil {
			code, msg = rec.Error.Code, rec.Error.Message
		}
		return errorResult(fmt.Sprintf("run %s failed: %s: %s", rec.ID, code, msg))
	}
	res := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: rec.Output}}}
	if len(rec.OutputJSON) > 0 {
		var v any
		if json.Unmarshal(rec.OutputJSON, &v) == nil {
			if _, isObject := v.(map[string]any); isObject {
				res.StructuredContent = v
			}
		}
	}
	return res
}
