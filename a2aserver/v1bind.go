package a2aserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/myriad-ai/myriad/internal/a2a1"
	"github.com/myriad-ai/myriad/run"
)

// The A2A 1.0 bindings, written against the specification (the wire and
// its translation onto the SDK's types are internal/a2a1's): JSON-RPC on the agent's URL (chosen by the A2A-Version
// header; a request without one is 0.3's, as the specification says) and
// HTTP+JSON under it (/a2a/{name}/message:send, /tasks/{id}, …).

// requestedVersion is the A2A revision a request asks for: its
// A2A-Version header (or query parameter), "0.3" when it has none.
func requestedVersion(r *http.Request) string {
	v := r.Header.Get("A2A-Version")
	if v == "" {
		v = r.URL.Query().Get("A2A-Version")
	}
	if v == "" {
		return "0.3"
	}
	return v
}

// isVersion reports whether v is major.minor of want, with or without a
// patch number.
func isVersion(v, want string) bool {
	return v == want || strings.HasPrefix(v, want+".")
}

func versionError(v string) error {
	return fmt.Errorf("%w: the requested A2A protocol version %s is not served (served: 1.0 and 0.3)", a2a1.ErrVersionNotSupported, a2a1.Quote(v))
}

// rpcRequest is a JSON-RPC 2.0 request.
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// methods03 are the 0.3 names of the 1.0 methods, to point a client that
// mixes the two at the header.
var methods03 = map[string]string{"message/send": "SendMessage", "message/stream": "SendStreamingMessage",
	"tasks/get": "GetTask", "tasks/cancel": "CancelTask", "tasks/resubscribe": "SubscribeToTask"}

// serveJSONRPC1 serves one request of the 1.0 JSON-RPC binding.
func (e *endpoint) serveJSONRPC1(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		writeRPCError(w, nil, fmt.Errorf("%w: read body: %v", a2a.ErrParseError, err))
		return
	}
	var req rpcRequest
	if err := json.Unmarshal(data, &req); err != nil {
		writeRPCError(w, nil, fmt.Errorf("%w: invalid JSON: %v", a2a.ErrParseError, err))
		return
	}
	id := req.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	if req.JSONRPC != "2.0" || req.Method == "" {
		writeRPCError(w, id, fmt.Errorf(`%w: a JSON-RPC 2.0 request has "jsonrpc": "2.0" and a method`, a2a.ErrInvalidRequest))
		return
	}
	ctx := r.Context()
	reply := func(result any, err error) {
		if err != nil {
			writeRPCError(w, id, err)
			return
		}
		writeJSON(w, map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
	}
	frame := func(resp a2a1.Response) any { return map[string]any{"jsonrpc": "2.0", "id": id, "result": resp} }
	errFrame := func(err error) any { return rpcErrorBody(id, err) }
	switch req.Method {
	case "SendMessage":
		reply(e.send1(ctx, req.Params))
	case "SendStreamingMessage":
		events, err := e.stream1(ctx, req.Params)
		if err != nil {
			writeRPCError(w, id, err)
			return
		}
		writeStream(w, events, frame, errFrame)
	case "GetTask":
		reply(e.get1(ctx, req.Params))
	case "CancelTask":
		reply(e.cancel1(ctx, req.Params))
	case "SubscribeToTask":
		var p a2a1.TaskRequest
		if err := decodeParams(req.Params, &p); err != nil {
			writeRPCError(w, id, err)
			return
		}
		if err := e.subscribable(ctx, p.ID); err != nil {
			writeRPCError(w, id, err)
			return
		}
		writeStream(w, e.OnResubscribeToTask(ctx, &a2a.TaskIDParams{ID: a2a.TaskID(p.ID)}), frame, errFrame)
	case "ListTasks":
		var p a2a1.ListTasksRequest
		if len(req.Params) > 0 && string(req.Params) != "null" {
			if err := decodeParams(req.Params, &p); err != nil {
				writeRPCError(w, id, err)
				return
			}
		}
		reply(e.list1(ctx, p))
	case "CreateTaskPushNotificationConfig", "GetTaskPushNotificationConfig", "ListTaskPushNotificationConfigs", "DeleteTaskPushNotificationConfig":
		reply(nil, a2a.ErrPushNotificationNotSupported)
	case "GetExtendedAgentCard":
		reply(nil, a2a.ErrAuthenticatedExtendedCardNotConfigured)
	default:
		hint := ""
		if v1, ok := methods03[req.Method]; ok {
			hint = fmt.Sprintf(": %s is A2A 0.3's name (1.0's is %s; or send 0.3 without the A2A-Version header)", req.Method, v1)
		}
		reply(nil, fmt.Errorf("%w: %s%s", a2a.ErrMethodNotFound, a2a1.Quote(req.Method), hint))
	}
}

func decodeParams(data json.RawMessage, v any) error {
	if len(data) == 0 || string(data) == "null" {
		return fmt.Errorf("%w: params: missing", a2a.ErrInvalidParams)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: params: %v", a2a.ErrInvalidParams, err)
	}
	return nil
}

// sendParams reads SendMessage's and SendStreamingMessage's params into
// the SDK's, refusing a message to a task that has ended.
func (e *endpoint) sendParams(ctx context.Context, params json.RawMessage) (*a2a1.SendRequest, *a2a.MessageSendParams, error) {
	var p a2a1.SendRequest
	if err := decodeParams(params, &p); err != nil {
		return nil, nil, err
	}
	sp, err := p.SendParams()
	if err != nil {
		return nil, nil, err
	}
	if err := e.answerable(ctx, sp.Message); err != nil {
		return nil, nil, err
	}
	return &p, sp, nil
}

// send1 answers SendMessage: {"task"} or {"message"}.
func (e *endpoint) send1(ctx context.Context, params json.RawMessage) (any, error) {
	p, sp, err := e.sendParams(ctx, params)
	if err != nil {
		return nil, err
	}
	res, err := e.OnSendMessage(ctx, sp)
	if err != nil {
		return nil, err
	}
	if task, ok := res.(*a2a.Task); ok {
		if p.Configuration != nil && p.Configuration.HistoryLength != nil {
			trimHistory(task, *p.Configuration.HistoryLength)
		}
		return a2a1.Response{Task: a2a1.FromTask(task)}, nil
	}
	if msg, ok := res.(*a2a.Message); ok {
		return a2a1.Response{Message: a2a1.FromMessage(msg)}, nil
	}
	return nil, fmt.Errorf("%w: unexpected result %T", a2a.ErrInternalError, res)
}

// stream1 starts SendStreamingMessage.
func (e *endpoint) stream1(ctx context.Context, params json.RawMessage) (iter.Seq2[a2a.Event, error], error) {
	_, sp, err := e.sendParams(ctx, params)
	if err != nil {
		return nil, err
	}
	return e.OnSendMessageStream(ctx, sp), nil
}

func (e *endpoint) get1(ctx context.Context, params json.RawMessage) (any, error) {
	var p a2a1.TaskRequest
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	task, err := e.OnGetTask(ctx, &a2a.TaskQueryParams{ID: a2a.TaskID(p.ID), HistoryLength: p.HistoryLength})
	if err != nil {
		return nil, err
	}
	return a2a1.FromTask(task), nil
}

func (e *endpoint) cancel1(ctx context.Context, params json.RawMessage) (any, error) {
	var p a2a1.TaskRequest
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	task, err := e.OnCancelTask(ctx, &a2a.TaskIDParams{ID: a2a.TaskID(p.ID), Metadata: p.Metadata})
	if err != nil {
		return nil, err
	}
	return a2a1.FromTask(task), nil
}

func trimHistory(t *a2a.Task, n int) {
	if n >= 0 && n < len(t.History) {
		t.History = t.History[len(t.History)-n:]
	}
}

// rpcErrorBody is a JSON-RPC error response in 1.0's terms: its code, and
// an ErrorInfo naming the reason.
func rpcErrorBody(id json.RawMessage, err error) map[string]any {
	if id == nil {
		id = json.RawMessage("null")
	}
	c := a2a1.Classify(err)
	return map[string]any{"jsonrpc": "2.0", "id": id,
		"error": map[string]any{"code": c.Code, "message": run.CutText(err.Error(), 2000), "data": a2a1.ErrorInfo(c.Reason)}}
}

func writeRPCError(w http.ResponseWriter, id json.RawMessage, err error) {
	writeJSON(w, rpcErrorBody(id, err))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeStream sends a task's events as server-sent events, each framed
// for its binding; an error before the first is a plain error answer.
func writeStream(w http.ResponseWriter, events iter.Seq2[a2a.Event, error], frame func(a2a1.Response) any, errFrame func(error) any) {
	next, stop := iter.Pull2(events)
	defer stop()
	ev, err, ok := next()
	if ok && err != nil {
		if body, isStatus := errFrame(err).(restError); isStatus {
			writeREST(w, body.Error.Code, body)
			return
		}
		writeJSON(w, errFrame(err))
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	for ok {
		var data []byte
		if err != nil {
			data, _ = json.Marshal(errFrame(err))
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", data)
			_ = rc.Flush()
			return
		}
		data, _ = json.Marshal(frame(a2a1.FromEvent(ev)))
		fmt.Fprintf(w, "data: %s\n\n", data)
		if rc.Flush() != nil {
			return
		}
		ev, err, ok = next()
	}
}

// restError is the google.rpc.Status form the HTTP+JSON binding answers
// errors in.
type restError struct {
	Error struct {
		Code    int              `json:"code"`
		Status  string           `json:"status"`
		Message string           `json:"message"`
		Details []map[string]any `json:"details"`
	} `json:"error"`
}

func restErrorBody(err error, status ...int) restError {
	c := a2a1.Classify(err)
	if len(status) > 0 {
		c.HTTP = status[0]
	}
	var b restError
	b.Error.Code, b.Error.Status, b.Error.Message, b.Error.Details = c.HTTP, c.Status, run.CutText(err.Error(), 2000), a2a1.ErrorInfo(c.Reason)
	return b
}

func writeREST(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/a2a+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ServeREST serves the HTTP+JSON binding (A2A 1.0) of the agent named by
// the path value "agent", at the operation the path value "rest" names:
// message:send, message:stream, tasks/{id}, tasks/{id}:cancel,
// tasks/{id}:subscribe.
func (s *Server) ServeREST(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) { writeREST(w, a2a1.Classify(err).HTTP, restErrorBody(err)) }
	e, ok := s.endpoints[r.PathValue("agent")]
	if !ok {
		fail(fmt.Errorf("%w: no published A2A agent %s (published: %s)", a2a.ErrTaskNotFound, run.Quote(r.PathValue("agent")), strings.Join(s.names(), ", ")))
		return
	}
	if v := requestedVersion(r); !isVersion(v, a2a1.Version) {
		fail(fmt.Errorf("%w; the HTTP+JSON binding is 1.0's: send A2A-Version: 1.0", versionError(v)))
		return
	}
	ctx := r.Context()
	op := r.PathValue("rest")
	frame := func(resp a2a1.Response) any { return resp }
	errFrame := func(err error) any { return restErrorBody(err) }
	taskID, action, _ := strings.Cut(strings.TrimPrefix(op, "tasks/"), ":")
	isTask := strings.HasPrefix(op, "tasks/") && taskID != "" && !strings.Contains(taskID, "/")
	switch {
	case op == "message:send" && r.Method == http.MethodPost:
		body, err := readParams(r)
		if err != nil {
			fail(err)
			return
		}
		res, err := e.send1(ctx, body)
		if err != nil {
			fail(err)
			return
		}
		writeREST(w, http.StatusOK, res)
	case op == "message:stream" && r.Method == http.MethodPost:
		body, err := readParams(r)
		if err != nil {
			fail(err)
			return
		}
		events, err := e.stream1(ctx, body)
		if err != nil {
			fail(err)
			return
		}
		writeStream(w, events, frame, errFrame)
	case isTask && action == "" && r.Method == http.MethodGet:
		q := &a2a.TaskQueryParams{ID: a2a.TaskID(taskID)}
		if v := r.URL.Query().Get("historyLength"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				fail(fmt.Errorf("%w: historyLength: %s is not a number", a2a.ErrInvalidParams, a2a1.Quote(v)))
				return
			}
			q.HistoryLength = &n
		}
		task, err := e.OnGetTask(ctx, q)
		if err != nil {
			fail(err)
			return
		}
		writeREST(w, http.StatusOK, a2a1.FromTask(task))
	case isTask && action == "cancel" && r.Method == http.MethodPost:
		task, err := e.OnCancelTask(ctx, &a2a.TaskIDParams{ID: a2a.TaskID(taskID)})
		if err != nil {
			fail(err)
			return
		}
		writeREST(w, http.StatusOK, a2a1.FromTask(task))
	case isTask && action == "subscribe" && (r.Method == http.MethodPost || r.Method == http.MethodGet):
		if err := e.subscribable(ctx, taskID); err != nil {
			fail(err)
			return
		}
		writeStream(w, e.OnResubscribeToTask(ctx, &a2a.TaskIDParams{ID: a2a.TaskID(taskID)}), frame, errFrame)
	case op == "tasks" && r.Method == http.MethodGet:
		p, err := listQuery(r.URL.Query())
		if err == nil {
			var res *a2a1.ListTasksResponse
			if res, err = e.list1(ctx, p); err == nil {
				writeREST(w, http.StatusOK, res)
				return
			}
		}
		fail(err)
	case strings.Contains(op, "pushNotificationConfigs"):
		fail(a2a.ErrPushNotificationNotSupported)
	case op == "extendedAgentCard":
		fail(a2a.ErrAuthenticatedExtendedCardNotConfigured)
	default:
		if allow := allowed(op, isTask, action); allow != "" {
			w.Header().Set("Allow", allow)
			writeREST(w, http.StatusMethodNotAllowed, restErrorBody(fmt.Errorf("%w: %s %s: this operation takes %s", a2a.ErrUnsupportedOperation, r.Method, a2a1.Quote(op), allow), http.StatusMethodNotAllowed))
			return
		}
		fail(fmt.Errorf("%w: no A2A operation %s %s (see the HTTP+JSON binding: POST message:send, POST message:stream, GET tasks, GET tasks/{id}, POST tasks/{id}:cancel, POST tasks/{id}:subscribe)",
			a2a.ErrMethodNotFound, r.Method, a2a1.Quote(op)))
	}
}

// allowed names the methods an operation of the HTTP+JSON binding takes,
// or "" when op is none.
func allowed(op string, isTask bool, action string) string {
	switch {
	case op == "message:send" || op == "message:stream" || isTask && action == "cancel":
		return "POST"
	case isTask && action == "subscribe":
		return "GET, HEAD, POST"
	case isTask && action == "", op == "tasks", op == ".well-known/agent-card.json":
		return "GET, HEAD"
	}
	return ""
}

// answerable refuses, as 1.0 says, a message to a task that has ended.
func (e *endpoint) answerable(ctx context.Context, msg *a2a.Message) error {
	if msg.TaskID == "" {
		return nil
	}
	rec, err := e.run(ctx, msg.TaskID)
	if err != nil {
		return err
	}
	if rec.Status.Terminal() {
		return fmt.Errorf("%w: task %s has ended (%s): send a new message, without taskId (with the contextId to go on with the conversation)", a2a.ErrUnsupportedOperation, rec.ID, rec.Status)
	}
	return nil
}

// subscribable refuses, as 1.0 says, to subscribe to a task that has
// ended.
func (e *endpoint) subscribable(ctx context.Context, id string) error {
	rec, err := e.run(ctx, a2a.TaskID(id))
	if err != nil {
		return err
	}
	if rec.Status.Terminal() {
		return fmt.Errorf("%w: task %s has ended (%s): read it with GetTask", a2a.ErrUnsupportedOperation, rec.ID, rec.Status)
	}
	return nil
}

// readParams reads an HTTP+JSON request's body: the method's params.
func readParams(r *http.Request) (json.RawMessage, error) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %v", a2a.ErrInvalidRequest, err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: the body is not JSON", a2a.ErrParseError)
	}
	return data, nil
}
