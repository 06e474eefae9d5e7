package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
)

// MCP 2025-11-25's tasks, on sessions: a tools/call with params.task is
// answered with {"task": …} at once; tasks/get reads the task, tasks/result
// waits for its end (putting the run's questions to the client meanwhile,
// as elicitations of the task), tasks/cancel cancels it, tasks/list lists
// them. The Go SDK knows none of this and drops params.task: the HTTP
// handler moves it into _meta (metaTaskRequest) before the SDK reads the
// request, and the SDK's answers to initialize and tools/list are given the
// tasks capability and each tool's taskSupport.

// metaTaskRequest carries a 2025-11-25 call's params.task past the SDK.
const metaTaskRequest = "myriad.dev/task"

// metaRelatedTask ties a message to the task it is about.
const metaRelatedTask = "io.modelcontextprotocol/related-task"

// task2025 is a 2025-11-25 Task.
type task2025 struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage,omitempty"`
	CreatedAt     string `json:"createdAt"`
	LastUpdatedAt string `json:"lastUpdatedAt"`
	TTL           *int64 `json:"ttl"`
	PollInterval  int64  `json:"pollInterval,omitempty"`
}

// asTask2025 is a task as 2025-11-25 says it: a failed run is failed.
func asTask2025(t *detailedTask) task2025 {
	out := task2025{TaskID: t.TaskID, Status: t.Status, StatusMessage: t.StatusMessage, CreatedAt: t.CreatedAt,
		LastUpdatedAt: t.LastUpdatedAt, PollInterval: t.PollIntervalMs}
	if t.Result != nil && t.Result.IsError {
		out.Status, out.StatusMessage = "failed", resultText(t.Result)
	}
	return out
}

// rawResult is a result whose JSON is made here: the shapes of tasks the
// SDK has no types for.
type rawResult struct {
	mcp.ResultBase
	body any
}

// MarshalJSON writes the body, with the _meta the SDK sets on results.
func (r *rawResult) MarshalJSON() ([]byte, error) {
	data, err := json.Marshal(r.body)
	if err != nil || len(r.Meta) == 0 {
		return data, err
	}
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		return data, nil
	}
	meta, _ := body["_meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	for k, v := range r.Meta {
		meta[k] = v
	}
	body["_meta"] = meta
	return json.Marshal(body)
}

// is2026 reports a request made under 2026-07-28 (its _meta says so).
func is2026(meta mcp.Meta) bool {
	v, _ := meta[mcp.MetaKeyProtocolVersion].(string)
	return v >= StatelessRevision
}

// withTasks2025 gives the SDK's answers to a 2025-11-25 session's
// initialize and tools/list what the SDK cannot say: the server's tasks
// capability, and that each tool may be called as a task.
func withTasks2025(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if err != nil || (method != "initialize" && method != "tools/list") || is2026(metaOf(req)) {
			return res, err
		}
		var body map[string]any
		data, err := json.Marshal(res)
		if err != nil || json.Unmarshal(data, &body) != nil {
			return res, nil
		}
		switch method {
		case "initialize":
			caps, _ := body["capabilities"].(map[string]any)
			if caps == nil {
				caps = map[string]any{}
				body["capabilities"] = caps
			}
			caps["tasks"] = map[string]any{"list": map[string]any{}, "cancel": map[string]any{},
				"requests": map[string]any{"tools": map[string]any{"call": map[string]any{}}}}
		case "tools/list":
			tools, _ := body["tools"].([]any)
			for _, t := range tools {
				if m, ok := t.(map[string]any); ok {
					m["execution"] = map[string]any{"taskSupport": "optional"}
				}
			}
		}
		return &rawResult{body: body}, nil
	}
}

func metaOf(req mcp.Request) mcp.Meta {
	switch r := req.(type) {
	case *mcp.InitializeRequest:
		if r.Params != nil {
			return r.Params.Meta
		}
	case *mcp.ListToolsRequest:
		if r.Params != nil {
			return r.Params.Meta
		}
	}
	return nil
}

// addTasks2025 serves 2025-11-25's tasks methods that 2026-07-28's lack.
func addTasks2025(s *mcp.Server, rt *engine.Engine, log *slog.Logger) {
	must(mcp.AddReceivingCustomMethod(s, "tasks/result", func(ctx context.Context, ss *mcp.ServerSession, p *taskParams) (*rawResult, error) {
		if p == nil {
			p = &taskParams{}
		}
		rec, err := findTask(ctx, rt, p.TaskID)
		if err != nil {
			return nil, err
		}
		res, err := taskResult(ctx, rt, ss, rec, log)
		if err != nil {
			return nil, err
		}
		res.Meta = mcp.Meta{metaRelatedTask: map[string]any{"taskId": rec.ID}}
		return &rawResult{body: res}, nil
	}))
	must(mcp.AddReceivingCustomMethod(s, "tasks/list", func(ctx context.Context, _ *mcp.ServerSession, p *listParams) (*rawResult, error) {
		if p == nil {
			p = &listParams{}
		}
		if p.Cursor != "" && !engine.ValidRunID(p.Cursor) {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "cursor: not a cursor from this server"}
		}
		runs, next, err := rt.List(ctx, run.Filter{Roots: true, Cursor: p.Cursor, Limit: 100})
		if err != nil {
			return nil, err
		}
		tasks := []task2025{}
		for _, rec := range runs {
			if rec.Metadata[metaTask] == "true" {
				tasks = append(tasks, asTask2025(taskOf(ctx, rt, rec)))
			}
		}
		body := map[string]any{"tasks": tasks}
		if next != "" {
			body["nextCursor"] = next
		}
		return &rawResult{body: body}, nil
	}))
}

type listParams struct {
	mcp.ParamsBase
	Cursor string `json:"cursor,omitempty"`
}

// findTask is the run a task id names: a run started as a task.
func findTask(ctx context.Context, rt *engine.Engine, id string) (*run.Record, error) {
	notFound := &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("Failed to retrieve task: Task not found: %s", run.Quote(id))}
	if !engine.ValidRunID(id) {
		return nil, notFound
	}
	rec, err := rt.Get(ctx, id)
	if err != nil || rec.Metadata[metaTask] != "true" {
		return nil, notFound
	}
	return rec, nil
}

// taskResult waits for a task's end and answers what its call would have:
// meanwhile the run's questions go to the client (when it takes
// elicitations), and a wait for an operator is waited out. A client that
// leaves leaves the task going.
func taskResult(ctx context.Context, rt *engine.Engine, ss *mcp.ServerSession, rec *run.Record, log *slog.Logger) (*mcp.CallToolResult, error) {
	req := &mcp.CallToolRequest{Session: ss, Params: &mcp.CallToolParamsRaw{Name: rec.PathOrAgent()}}
	for {
		pos, err := rt.Position(ctx, rec.ID, true)
		if err != nil {
			return nil, err
		}
		if _, err := follow(ctx, rt, req, rec, log, true); err != nil {
			return nil, err
		}
		cur, err := rt.Get(ctx, rec.ID)
		if err != nil {
			return nil, err
		}
		switch cur.Status {
		case run.StatusCompleted, run.StatusFailed:
			if full, err := rt.Wait(ctx, cur.ID); err == nil {
				cur = full
			}
			return ended(cur), nil
		case run.StatusCanceled:
			return errorResult(fmt.Sprintf("task %s was canceled", cur.ID)), nil
		}
		// A person must act: wait for the tree's next entry, and look again.
		for _, werr := range rt.Watch(ctx, engine.WatchOptions{Run: rec.ID, Tree: true, After: pos}) {
			if werr != nil {
				return nil, werr
			}
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// liftTaskParam moves a 2025-11-25 tools/call's params.task into its _meta,
// where the SDK keeps it (it drops params fields it does not know), so the
// tasks middleware sees that the call is to be a task. Other requests pass
// as they are.
func liftTaskParam(r *http.Request) {
	if r.Method != http.MethodPost || r.Body == nil {
		return
	}
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil || !bytes.Contains(body, []byte(`"task"`)) {
		return
	}
	var msg map[string]json.RawMessage
	if json.Unmarshal(body, &msg) != nil || string(msg["method"]) != `"tools/call"` {
		return
	}
	params, ok := liftTask(msg["params"])
	if !ok {
		return
	}
	msg["params"] = params
	if data, err := json.Marshal(msg); err == nil {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(data)), int64(len(data))
	}
}

// liftTask moves a tools/call's params.task into its _meta, reporting
// whether there was one.
func liftTask(raw json.RawMessage) (json.RawMessage, bool) {
	var params map[string]json.RawMessage
	if !bytes.Contains(raw, []byte(`"task"`)) || json.Unmarshal(raw, &params) != nil || params["task"] == nil {
		return raw, false
	}
	var meta map[string]json.RawMessage
	_ = json.Unmarshal(params["_meta"], &meta)
	if meta == nil {
		meta = map[string]json.RawMessage{}
	}
	meta[metaTaskRequest] = params["task"]
	delete(params, "task")
	params["_meta"], _ = json.Marshal(meta)
	out, err := json.Marshal(params)
	if err != nil {
		return raw, false
	}
	return out, true
}

// Transport serves the MCP server over t (stdio) with 2025-11-25 task
// requests kept: their params.task is moved into _meta before the SDK,
// which knows no tasks, drops it, as Handler does over HTTP.
func Transport(t mcp.Transport) mcp.Transport { return taskTransport{t} }

type taskTransport struct{ mcp.Transport }

func (t taskTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	conn, err := t.Transport.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return taskConn{conn}, nil
}

type taskConn struct{ mcp.Connection }

func (c taskConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	msg, err := c.Connection.Read(ctx)
	if req, ok := msg.(*jsonrpc.Request); ok && err == nil && req.Method == "tools/call" {
		req.Params, _ = liftTask(req.Params)
	}
	return msg, err
}

var _ mcp.Transport = taskTransport{}

// resultText is a result's text content.
func resultText(res *mcp.CallToolResult) string {
	var b bytes.Buffer
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}
