package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
)

// MCP tasks (2026-07-28's tasks extension, io.modelcontextprotocol/tasks):
// a tool call from a client that declares the extension is answered at
// once with a task, the durable run the call started, whose id is the
// task's. tasks/get reads the run (from any node, after any restart),
// tasks/update gives it the answers to the questions it asks, and
// tasks/cancel cancels it. The Go SDK implements no tasks: the answer to
// tools/call is made in a middleware, and the tasks methods are custom
// methods, written against the extension's specification.

// TasksExtension names MCP's tasks extension.
const TasksExtension = "io.modelcontextprotocol/tasks"

// metaTask marks a run started as an MCP task: only those are tasks.
const metaTask = "mcp.task"

// pollInterval is how often clients are asked to poll a task.
const pollInterval = 1000 // ms

// Task statuses.
const (
	taskWorking       = "working"
	taskInputRequired = "input_required"
	taskCompleted     = "completed"
	taskCancelled     = "cancelled"
)

// JSON-RPC error codes of 2026-07-28.
const (
	codeHeaderMismatch      = -32020
	codeMissingCapabilities = -32021
)

// taskFields are a task as every answer about it gives it.
type taskFields struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage,omitempty"`
	CreatedAt     string `json:"createdAt"`
	LastUpdatedAt string `json:"lastUpdatedAt"`
	// TTLMs is null: a task lasts as long as its run is kept.
	TTLMs          *int64 `json:"ttlMs"`
	PollIntervalMs int64  `json:"pollIntervalMs,omitempty"`
}

// createTaskResult answers a tool call made a task.
type createTaskResult struct {
	mcp.ResultBase
	ResultType string `json:"resultType"`
	taskFields
}

// detailedTask answers tasks/get: the task, with its questions when it
// needs input and its result when it completed.
type detailedTask struct {
	mcp.ResultBase
	ResultType string `json:"resultType"`
	taskFields
	InputRequests mcp.InputRequestMap `json:"inputRequests,omitempty"`
	Result        *mcp.CallToolResult `json:"result,omitempty"`
}

type taskParams struct {
	mcp.ParamsBase
	TaskID string `json:"taskId"`
}

type updateParams struct {
	mcp.ParamsBase
	TaskID         string               `json:"taskId"`
	InputResponses mcp.InputResponseMap `json:"inputResponses"`
}

// ack answers tasks/update and tasks/cancel.
type ack struct {
	mcp.ResultBase
	ResultType string `json:"resultType"`
}

// addTasks makes the server's tool calls tasks for clients that ask, and
// serves the tasks methods.
func addTasks(s *mcp.Server, rt *engine.Engine, submitters map[string]submitter, log *slog.Logger) {
	s.AddReceivingMiddleware(withTasks2025, func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			call, ok := req.(*mcp.CallToolRequest)
			if method != "tools/call" || !ok || call.Params.RequestState != "" {
				return next(ctx, method, req)
			}
			submit, ok := submitters[call.Params.Name]
			if !ok {
				return next(ctx, method, req)
			}
			_, asked2025 := call.Params.Meta[metaTaskRequest]
			switch {
			case declaresTasks(call.ProtocolVersion(), call.ClientCapabilities()):
				return startTask(ctx, rt, call, submit)
			case asked2025 && call.ProtocolVersion() < StatelessRevision:
				res, err := startTask(ctx, rt, call, submit)
				if created, ok := res.(*createTaskResult); ok && err == nil {
					t := detailedTask{taskFields: created.taskFields}
					return &rawResult{body: map[string]any{"task": asTask2025(&t)}}, nil
				}
				return res, err
			}
			return next(ctx, method, req)
		}
	})
	must(mcp.AddReceivingCustomMethod(s, "tasks/get", func(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
		if p == nil {
			p = &taskParams{}
		}
		if !is2026(p.Meta) {
			rec, err := findTask(ctx, rt, p.TaskID)
			if err != nil {
				return nil, err
			}
			return &rawResult{body: asTask2025(taskOf(ctx, rt, rec))}, nil
		}
		rec, err := taskRun(ctx, rt, p.Meta, p.TaskID)
		if err != nil {
			return nil, err
		}
		return &rawResult{body: taskOf(ctx, rt, rec)}, nil
	}))
	must(mcp.AddReceivingCustomMethod(s, "tasks/update", func(ctx context.Context, _ *mcp.ServerSession, p *updateParams) (*ack, error) {
		if p == nil {
			p = &updateParams{}
		}
		rec, err := taskRun(ctx, rt, p.Meta, p.TaskID)
		if err != nil {
			return nil, err
		}
		// Unknown or stale keys are ignored, as the extension says; a
		// declined flow question stays open for someone else.
		_ = answer(ctx, rt, rec, p.InputResponses, log)
		return &ack{ResultType: "complete"}, nil
	}))
	must(mcp.AddReceivingCustomMethod(s, "tasks/cancel", func(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
		if p == nil {
			p = &taskParams{}
		}
		if !is2026(p.Meta) {
			return cancel2025(ctx, rt, p.TaskID)
		}
		rec, err := taskRun(ctx, rt, p.Meta, p.TaskID)
		if err != nil {
			return nil, err
		}
		if !rec.Status.Terminal() {
			if _, err := rt.Cancel(ctx, rec.ID); err != nil {
				return nil, fmt.Errorf("cancel task %s: %w", rec.ID, err)
			}
		}
		return &rawResult{body: &ack{ResultType: "complete"}}, nil
	}))
	addTasks2025(s, rt, log)
}

// cancel2025 cancels a 2025-11-25 task and answers with it canceled: a
// task that has ended is refused, and the answer waits a moment for the
// run to end.
func cancel2025(ctx context.Context, rt *engine.Engine, id string) (*rawResult, error) {
	rec, err := findTask(ctx, rt, id)
	if err != nil {
		return nil, err
	}
	if rec.Status.Terminal() {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("task %s has ended (%s): it cannot be canceled", rec.ID, rec.Status)}
	}
	if rec, err = rt.Cancel(ctx, rec.ID); err != nil {
		return nil, fmt.Errorf("cancel task %s: %w", id, err)
	}
	wctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if done, err := rt.Wait(wctx, rec.ID); err == nil {
		rec = done
	}
	return &rawResult{body: asTask2025(taskOf(ctx, rt, rec))}, nil
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// declaresTasks reports a request of 2026-07-28 or later whose client
// declares the tasks extension.
func declaresTasks(version string, caps *mcp.ClientCapabilities) bool {
	if version < StatelessRevision || caps == nil {
		return false
	}
	_, ok := caps.Extensions[TasksExtension]
	return ok
}

// startTask submits the run a tool call asks for and answers with its
// task: the run is stored before the answer goes, so a tasks/get right
// after finds it.
func startTask(ctx context.Context, rt *engine.Engine, call *mcp.CallToolRequest, submit submitter) (mcp.Result, error) {
	sub, err := submit(call.Params.Arguments)
	if err != nil {
		return errorResult("arguments: " + err.Error()), nil
	}
	sub = fromMeta(call, sub)
	if sub.Metadata == nil {
		sub.Metadata = map[string]string{}
	}
	sub.Metadata[metaTask] = "true"
	rec, _, err := rt.Submit(ctx, sub)
	if err != nil {
		return errorResult(err.Error()), nil
	}
	t := taskOf(ctx, rt, rec)
	return &createTaskResult{ResultType: "task", taskFields: t.taskFields}, nil
}

// taskRun is the run a task id names, for a client that declared the
// extension (its _meta says so under 2026-07-28).
func taskRun(ctx context.Context, rt *engine.Engine, meta mcp.Meta, id string) (*run.Record, error) {
	var caps struct {
		Extensions map[string]any `json:"extensions"`
	}
	if raw, err := json.Marshal(meta[mcp.MetaKeyClientCapabilities]); err == nil {
		_ = json.Unmarshal(raw, &caps)
	}
	if _, ok := caps.Extensions[TasksExtension]; !ok {
		data, _ := json.Marshal(map[string]any{"requiredCapabilities": map[string]any{"extensions": map[string]any{TasksExtension: map[string]any{}}}})
		return nil, &jsonrpc.Error{Code: codeMissingCapabilities, Message: "the tasks methods need the client to declare the " + TasksExtension + " extension", Data: data}
	}
	return findTask(ctx, rt, id)
}

// taskOf is a run as a task.
func taskOf(ctx context.Context, rt *engine.Engine, rec *run.Record) *detailedTask {
	t := &detailedTask{ResultType: "complete", taskFields: taskFields{TaskID: rec.ID, CreatedAt: stamp(rec.CreatedAt),
		LastUpdatedAt: stamp(lastUpdate(rec)), PollIntervalMs: pollInterval}}
	switch rec.Status {
	case run.StatusCompleted, run.StatusFailed:
		// A failed run is the tool's error, as the call would have said.
		full, err := rt.Wait(ctx, rec.ID) // whole, if the stored copy is cut
		if err == nil {
			rec = full
		}
		t.Status, t.Result, t.PollIntervalMs = taskCompleted, ended(rec), 0
		return t
	case run.StatusCanceled:
		t.Status, t.StatusMessage, t.PollIntervalMs = taskCancelled, "the run was canceled", 0
		return t
	}
	if asks := openQuestions(ctx, rt, rec, 8); len(asks) > 0 {
		t.Status, t.InputRequests = taskInputRequired, mcp.InputRequestMap{}
		for _, a := range asks {
			schema, _ := elicitSchema(a.q.Schema)
			t.InputRequests[a.runID+"/"+a.q.Key] = &mcp.ElicitParams{Message: a.path + ": " + a.q.Prompt, RequestedSchema: schema}
		}
		return t
	}
	t.Status = taskWorking
	switch {
	case rec.Status == run.StatusQueued:
		t.StatusMessage = "queued"
	case rec.Asking():
		t.StatusMessage = fmt.Sprintf("run %s waits for a person (%s): %s", rec.ID, cmpOr(rec.WaitingFor, "in doubt"), rec.HowToGoOn())
	case rec.Status == run.StatusWaiting:
		t.StatusMessage = "waiting for " + rec.WaitingFor
	default:
		t.StatusMessage = string(rec.Status)
	}
	return t
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func lastUpdate(rec *run.Record) time.Time {
	switch {
	case rec.EndedAt != nil:
		return *rec.EndedAt
	case rec.StartedAt != nil:
		return *rec.StartedAt
	}
	return rec.CreatedAt
}

// question is a question a run of a task's tree asks.
type question struct {
	runID, path string
	q           struct {
		Key, Prompt string
		Schema      json.RawMessage
	}
}

// openQuestions are the questions a run's tree asks and nobody answered:
// its own, and those of child runs it waits for (depth levels down).
func openQuestions(ctx context.Context, rt *engine.Engine, rec *run.Record, depth int) []question {
	var out []question
	for _, q := range rec.PendingInputs() {
		var a question
		a.runID, a.path = rec.ID, rec.PathOrAgent()
		a.q.Key, a.q.Prompt, a.q.Schema = q.Key, q.Prompt, q.Schema
		out = append(out, a)
	}
	if depth == 0 || rec.Status != run.StatusWaiting || rec.WaitingFor != run.WaitChildren {
		return out
	}
	kids, _, err := rt.List(ctx, run.Filter{Parent: rec.ID, Limit: 100})
	if err != nil {
		return out
	}
	for _, k := range kids {
		if !k.Status.Terminal() {
			out = append(out, openQuestions(ctx, rt, k, depth-1)...)
		}
	}
	return out
}

// answer gives the runs of root's tree the client's answers ("run id/key"
// → an elicitation result). It returns a message saying where a person
// must answer when the client declined a flow's question, which only a
// person can then answer.
func answer(ctx context.Context, rt *engine.Engine, root *run.Record, responses mcp.InputResponseMap, log *slog.Logger) string {
	for id, resp := range responses {
		runID, key, _ := strings.Cut(id, "/")
		res, ok := resp.(*mcp.ElicitResult)
		if !ok || !engine.SameTree(runID, root.ID) {
			continue
		}
		q, err := rt.Question(ctx, runID, key)
		if err != nil || q == nil {
			continue // answered meanwhile, or the call that asked it ended
		}
		_, unwrap := elicitSchema(q.Schema)
		value := answerValue(res, unwrap, q.Call != "")
		if value == nil {
			return fmt.Sprintf("run %s waits for a person: answer run %s's question with POST /v1/runs/%s/input (key %q), then read the result with GET /v1/runs/%s",
				root.ID, runID, runID, key, root.ID)
		}
		if _, err := rt.ProvideInput(ctx, runID, key, value); err != nil {
			log.Warn("mcp: the client's answer was refused", "run_id", runID, "key", key, "err", err)
		}
	}
	return ""
}
