// Package api serves Myriad's HTTP API: submit runs, read their status, follow
// their journals as Server-Sent Events, cancel them and resolve runs in doubt.
// Every error is JSON, {"error":{"code","message"}}, with a stable code.
// docs/api.md documents the routes and the event types.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/felixge/httpsnoop"

	"github.com/myriad-ai/myriad/internal/redact"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
)

// Options configure the API.
type Options struct {
	// Token, when set, must be sent as "Authorization: Bearer <token>".
	Token string
	// MaxBodyBytes limits request bodies (default 1 MiB).
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Version is reported by /healthz.
	Version string
	// MCP, when set, is served on /mcp, behind the same authentication.
	MCP http.Handler
	// A2A, when set, serves agent cards (public, as the protocol expects)
	// and the A2A JSON-RPC endpoints (behind the same authentication).
	A2A A2A
	// OpenAI, when set, serves the OpenAI-compatible routes (behind the
	// same authentication).
	OpenAI OpenAI
	// Metrics, when set, is served on GET /metrics (Prometheus' text
	// format), behind the same authentication.
	Metrics http.Handler
	// Console, when set, is served at / (and its files under /console/),
	// without the token: its pages call the API with the token a person
	// types.
	Console http.Handler
	// Requests, when set, is told of each request when it is answered: the
	// route's pattern ("GET /v1/runs/{id}"), the status and the duration
	// (telemetry counts them).
	Requests func(route string, status int, d time.Duration)
	// AccessLog logs a line per request at INFO: method, path (without
	// its query), status, bytes, duration, remote address.
	AccessLog bool
	// KeepAlive is how often a quiet event stream sends a comment, so
	// proxies keep it open and a client that left is noticed (default
	// 15 s).
	KeepAlive time.Duration
}

// A2A serves the A2A routes; the path value "agent" names the agent.
type A2A interface {
	// ServeCard serves GET /.well-known/agent-card.json (the default
	// agent's card) and GET /a2a/{agent}/.well-known/agent-card.json.
	ServeCard(http.ResponseWriter, *http.Request)
	// ServeRPC serves POST /a2a/{agent}.
	ServeRPC(http.ResponseWriter, *http.Request)
	// ServeREST serves the HTTP+JSON binding under /a2a/{agent}/, the
	// path value "rest" naming the operation.
	ServeREST(http.ResponseWriter, *http.Request)
}

// OpenAI serves the OpenAI-compatible routes (package openaiserver).
type OpenAI interface {
	// ServeChat serves POST /v1/chat/completions.
	ServeChat(http.ResponseWriter, *http.Request)
	// ServeModels serves GET /v1/models.
	ServeModels(http.ResponseWriter, *http.Request)
	// ServeModel serves GET /v1/models/{model}.
	ServeModel(http.ResponseWriter, *http.Request)
}

// Server is the HTTP API over a runtime.
type Server struct {
	rt   *engine.Engine
	opts Options
	mux  *http.ServeMux
	description

	streamsMu sync.Mutex
	streams   map[*sseConn]struct{} // event streams on connections taken over
}

// New returns the API for rt.
func New(rt *engine.Engine, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 15 * time.Second
	}
	s := &Server{rt: rt, opts: opts, mux: http.NewServeMux()}
	s.handle("GET /healthz", s.healthz)
	s.handle("GET /readyz", s.readyz)
	s.handle("GET /openapi.json", s.openAPI)
	if opts.Console != nil {
		s.handle("GET /{$}", opts.Console.ServeHTTP)
		s.handle("GET /console/", opts.Console.ServeHTTP)
	}
	if opts.Metrics != nil {
		s.handle("GET /metrics", s.auth(opts.Metrics.ServeHTTP))
	}
	s.handle("POST /v1/runs", s.auth(only(nil, s.createRun)))
	s.handle("GET /v1/runs", s.auth(only(listParams, s.listRuns)))
	s.handle("GET /v1/runs/{id}", s.auth(only([]string{"wait"}, s.getRun)))
	s.handle("GET /v1/runs/{id}/events", s.auth(only([]string{"children"}, s.runEvents)))
	s.handle("POST /v1/runs/{id}/cancel", s.auth(only(nil, s.cancelRun)))
	s.handle("DELETE /v1/runs/{id}", s.auth(only(nil, s.deleteRun)))
	s.handle("GET /v1/storage", s.auth(only(nil, s.storage)))
	s.handle("GET /v1/instances", s.auth(only(instanceParams, s.listInstances)))
	s.handle("GET /v1/instances/{agent}/{key...}", s.auth(only(nil, s.getInstance)))
	s.handle("POST /v1/broadcasts", s.auth(only(nil, s.broadcast)))
	s.handle("POST /v1/runs/{id}/resolve", s.auth(only(nil, s.resolveRun)))
	s.handle("POST /v1/runs/{id}/fork", s.auth(only(nil, s.forkRun)))
	s.handle("GET /v1/agents", s.auth(only(nil, s.listAgents)))
	s.handle("GET /v1/flows", s.auth(only(nil, s.listFlows)))
	s.handle("GET /v1/usage", s.auth(only([]string{"group_by", "from", "to"}, s.usage)))
	s.handle("GET /v1/budgets", s.auth(only(nil, s.budgets)))
	s.handle("POST /v1/runs/{id}/input", s.auth(only(nil, s.provideInput)))
	s.handle("GET /v1/approvals", s.auth(only([]string{"agent"}, s.listApprovals)))
	s.handle("POST /v1/runs/{id}/approvals/{approval_id}", s.auth(only(nil, s.decideApproval)))
	if opts.MCP != nil {
		s.handle("/mcp", s.auth(s.bounded(opts.MCP.ServeHTTP)))
	}
	if opts.A2A != nil {
		s.handle("GET /.well-known/agent-card.json", opts.A2A.ServeCard)
		s.handle("GET /a2a/{agent}/.well-known/agent-card.json", opts.A2A.ServeCard)
		s.handle("POST /a2a/{agent}", s.auth(s.bounded(opts.A2A.ServeRPC)))
		s.handle("GET /a2a/{agent}/{rest...}", s.auth(opts.A2A.ServeREST))
		// Without it the mux would redirect GET /a2a/{agent} to the
		// HTTP+JSON binding's root rather than say the method is wrong.
		s.handle("/a2a/{agent}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, fmt.Sprintf("%s %s: this route takes POST (see docs/api.md)", r.Method, run.CutText(r.URL.Path, 200)))
		})
		s.handle("POST /a2a/{agent}/{rest...}", s.auth(s.bounded(opts.A2A.ServeREST)))
	}
	if opts.OpenAI != nil {
		s.handle("POST /v1/chat/completions", s.auth(only(nil, func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
			opts.OpenAI.ServeChat(w, r)
		})))
		s.handle("GET /v1/models", s.auth(only(nil, opts.OpenAI.ServeModels)))
		s.handle("GET /v1/models/{model}", s.auth(only(nil, opts.OpenAI.ServeModel)))
	}
	return s
}

// ServeHTTP makes Server an http.Handler. A request no route takes is
// answered in the API's shape: 405 with Allow when the path has routes
// for other methods, else 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.opts.AccessLog && s.opts.Requests == nil {
		_ = s.route(w, r)
		return
	}
	var pattern string
	m := httpsnoop.CaptureMetrics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { pattern = s.route(w, r) }), w, r)
	if s.opts.Requests != nil {
		// The route's pattern, not the path: one series per route.
		if pattern == "" {
			pattern = "unrouted"
		}
		s.opts.Requests(pattern, m.Code, m.Duration)
	}
	if !s.opts.AccessLog {
		return
	}
	// The path without its query: a query may carry what a log must not.
	s.opts.Logger.Info("http request", "method", run.CutText(r.Method, 20), "path", run.CutText(r.URL.Path, 200), "status", m.Code,
		"bytes", m.Written, "duration", m.Duration.Round(time.Microsecond).String(), "remote", r.RemoteAddr)
}

// route serves a request on its route, or answers 404 or 405, and says
// which pattern took it ("" for none).
func (s *Server) route(w http.ResponseWriter, r *http.Request) (pattern string) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return pattern
	}
	// The mux's own answer says which: capture its status and Allow.
	probe := &statusProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	path := run.CutText(r.URL.Path, 200)
	if probe.status == http.StatusMethodNotAllowed {
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, fmt.Sprintf("%s %s: this route takes %s (see docs/api.md)", run.CutText(r.Method, 20), path, allow))
		return ""
	}
	writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no route for %s %s (see docs/api.md)", run.CutText(r.Method, 20), path))
	return ""
}

// statusProbe is a ResponseWriter that keeps the status and headers only.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }

// bounded answers 413 in the API's shape for a body past the limit before
// h reads it: the protocol handlers behind it (A2A, MCP) would answer in
// their own terms, a JSON-RPC parse error with 200. A body of unknown
// length is read here, within the limit.
func (s *Server) bounded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.ContentLength > s.opts.MaxBodyBytes:
			s.tooLarge(w)
			return
		case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
			data, ok := s.readBody(w, r)
			if !ok {
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(data)), int64(len(data))
		default:
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		}
		h(w, r)
	}
}

func (s *Server) tooLarge(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body exceeds %d bytes (the server's server.max_body_bytes)", s.opts.MaxBodyBytes))
}

var _ http.Handler = (*Server)(nil)

// Error codes.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnknownAgent     = "unknown_agent"
	CodeConflict         = "conflict"
	CodeTooLarge         = "request_too_large"
	CodeInternal         = "internal"
	CodeUnavailable      = "unavailable"
	CodeOverloaded       = "overloaded"
)

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail maps runtime errors onto statuses and codes.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, engine.ErrUnknownAgent):
		writeError(w, http.StatusNotFound, CodeUnknownAgent, err.Error())
	case errors.Is(err, engine.ErrInvalid):
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	case errors.Is(err, engine.ErrConflict):
		writeError(w, http.StatusConflict, CodeConflict, err.Error())
	case errors.Is(err, engine.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, err.Error())
	case errors.Is(err, engine.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
	case errors.Is(err, engine.ErrOverloaded):
		w.Header().Set("Retry-After", retryAfter(err))
		writeError(w, http.StatusTooManyRequests, CodeOverloaded, err.Error())
	case engine.Temporary(err) && r.Context().Err() == nil:
		// The store did not answer in time, or had no leader for a
		// stream, as when a node of a cluster died and its streams elect
		// new leaders: worth a retry.
		s.opts.Logger.Warn("api: the store did not answer in time", "method", r.Method, "path", r.URL.Path, "err", redact.Error(err))
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the store did not answer in time, or a stream had no leader (a node of the cluster may be down): retry")
	default:
		err = redact.Error(err)
		s.opts.Logger.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "internal error: "+err.Error())
	}
}

// retryAfter is the Retry-After of a refusal past the backlog, in
// seconds.
func retryAfter(err error) string {
	var over *engine.OverloadedError
	if errors.As(err, &over) {
		return strconv.Itoa(max(int(over.RetryAfter.Seconds()), 1))
	}
	return "5"
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.opts.Token == "" {
		return h
	}
	want := []byte(s.opts.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		// Auth schemes are case-insensitive (RFC 9110 11.1): "bearer" too.
		scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="myriad"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong API token: send Authorization: Bearer <token> (the myriad CLI sends the token in MYRIAD_API_TOKEN; --token-env names another variable)")
			return
		}
		h(w, r)
	}
}

// readBody reads a size-limited body, answering the error itself.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.tooLarge(w)
			return nil, false
		}
		writeError(w, http.StatusBadRequest, CodeBadRequest, "read body: "+err.Error())
		return nil, false
	}
	return data, true
}

// decodeBody reads a size-limited JSON body into v, rejecting unknown fields.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, ok := s.readBody(w, r)
	if !ok {
		return false
	}
	if err := DecodeStrict(data, v); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return false
	}
	return true
}

// DecodeStrict parses one JSON object into v, rejecting unknown fields and
// trailing data.
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case err == io.EOF:
			return errors.New("empty body: send a JSON object")
		case errors.As(err, &typeErr):
			field := typeErr.Field
			if field == "" {
				return fmt.Errorf("the body must be a JSON object, not %s", typeErr.Value)
			}
			return fmt.Errorf("%s: must be %s, not %s", field, jsonKind(typeErr.Type.Kind()), typeErr.Value)
		case errors.As(err, &syntaxErr):
			return fmt.Errorf("invalid JSON body at byte %d: %v", syntaxErr.Offset, err)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return fmt.Errorf("unknown field %s (see docs/api.md for the fields)", run.Quote(name))
		}
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	if dec.More() {
		return errors.New("invalid JSON body: data after the object")
	}
	return nil
}

// jsonKind names what a Go kind is in JSON.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Float64:
		return "a number"
	}
	return "a " + k.String()
}

// ParseCreateRun decodes and checks a POST /v1/runs body.
func ParseCreateRun(data []byte) (*apitype.CreateRunRequest, error) {
	var req apitype.CreateRunRequest
	if err := DecodeStrict(data, &req); err != nil {
		return nil, err
	}
	if req.Agent == "" && req.Flow == "" {
		return nil, errors.New("agent: missing: name the agent to run (GET /v1/agents lists them), or a flow (GET /v1/flows)")
	}
	if req.Agent != "" && req.Flow != "" {
		return nil, errors.New("flow: name an agent or a flow, not both")
	}
	if strings.TrimSpace(req.Input) == "" {
		return nil, errors.New("input: missing: give the agent something to do")
	}
	if len(req.Metadata) > 64 {
		return nil, errors.New("metadata: at most 64 keys")
	}
	return &req, nil
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) {
	data, ok := s.readBody(w, r)
	if !ok {
		return
	}
	req, err := ParseCreateRun(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 256 {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "Idempotency-Key: at most 256 characters")
		return
	}
	// A caller's W3C trace context continues in the run (its spans, its
	// tool calls), unless the body's metadata names one.
	if tp := r.Header.Get("traceparent"); tool.ValidTraceParent(tp) && req.Metadata["traceparent"] == "" {
		md := maps.Clone(req.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		md["traceparent"] = tp
		req.Metadata = md
	}
	rec, created, err := s.rt.Submit(r.Context(), engine.SubmitRequest{Agent: req.Agent, Flow: req.Flow, Input: req.Input,
		Instance: req.Instance, Metadata: req.Metadata, State: req.State, IdempotencyKey: key})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/v1/runs/"+rec.ID)
	writeJSON(w, status, apitype.RunRef{ID: rec.ID, Status: rec.Status})
}

// MaxWait bounds the wait parameter of GET /v1/runs/{id}.
const MaxWait = 60 * time.Second

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxWait {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("wait: %q must be a duration up to %s, like 30s", v, MaxWait))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		rec, err := s.rt.Wait(ctx, id)
		switch {
		case rec != nil:
			writeJSON(w, http.StatusOK, rec)
			return
		case ctx.Err() == nil || r.Context().Err() != nil:
			s.fail(w, r, err)
			return
		}
		// The wait ran out before it read the run (wait=0s): read it now.
	}
	rec, err := s.rt.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// only refuses a request with a query parameter its route does not take
// (known): a misspelt filter or option would otherwise be ignored.
func only(known []string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for name := range r.URL.Query() {
			if !slices.Contains(known, name) && !(slices.Contains(known, "metadata") && metadataParam(name) != "") {
				msg := fmt.Sprintf("unknown query parameter %q: this route takes none", run.CutText(name, 200))
				if len(known) > 0 {
					msg = fmt.Sprintf("unknown query parameter %q (known: %s)", run.CutText(name, 200), strings.ReplaceAll(strings.Join(known, ", "), "metadata", "metadata[KEY]"))
				}
				writeError(w, http.StatusBadRequest, CodeBadRequest, msg)
				return
			}
		}
		h(w, r)
	}
}

// listParams are the query parameters GET /v1/runs takes.
var listParams = []string{"agent", "flow", "instance", "parent", "roots", "status", "metadata", "from", "to", "limit", "cursor"}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := run.Filter{Agent: q.Get("agent"), Flow: q.Get("flow"), Status: run.Status(q.Get("status")),
		Parent: q.Get("parent"), Instance: q.Get("instance"), Cursor: q.Get("cursor")}
	if q.Has("instance") {
		// The agent/key form a submission takes: without agent=, the
		// first segment names the agent.
		if f.Agent != "" {
			f.Instance = strings.TrimPrefix(f.Instance, f.Agent+"/")
		} else if agentName, key, ok := strings.Cut(f.Instance, "/"); ok {
			f.Agent, f.Instance = agentName, key
		}
		if err := engine.CheckInstanceKey(f.Instance); err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "instance: "+err.Error()+" (or agent/key)")
			return
		}
	}
	if v := q.Get("roots"); v != "" {
		var err error
		if f.Roots, err = strconv.ParseBool(v); err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "roots: must be true or false")
			return
		}
	}
	if f.Parent != "" && !engine.ValidRunID(f.Parent) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("parent: %q is not a run id", f.Parent))
		return
	}
	if f.Cursor != "" && !engine.ValidRunID(f.Cursor) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "cursor: not a cursor from this API (pass the next_cursor of the previous page)")
		return
	}
	if f.Status != "" && !validStatus(f.Status) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("status: unknown status %q (known: %s)", f.Status, statusList()))
		return
	}
	if msg := readTimeRange(q, &f.From, &f.To); msg != "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, msg)
		return
	}
	if q.Has("metadata") {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "metadata: name the key, as in metadata[tenant]=acme")
		return
	}
	var msg string
	if f.Metadata, msg = metadataParams(q); msg != "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, msg)
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "limit: must be a number from 1 to 1000")
			return
		}
		f.Limit = n
	}
	runs, next, err := s.rt.List(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if runs == nil {
		runs = []*run.Record{}
	}
	for i, rec := range runs {
		// A page of long inputs and outputs would be megabytes: the run
		// itself has them whole.
		runs[i] = rec.Shrunk(ListTextBytes)
	}
	writeJSON(w, http.StatusOK, apitype.RunList{Runs: runs, NextCursor: next})
}

// ListTextBytes is how much of each run's input and output a page of
// GET /v1/runs carries.
const ListTextBytes = 16 << 10

func validStatus(st run.Status) bool {
	for _, s := range run.Statuses {
		if s == st {
			return true
		}
	}
	return false
}

func statusList() string {
	names := make([]string, len(run.Statuses))
	for i, s := range run.Statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) {
	rec, err := s.rt.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, rec)
}

// deleteRun deletes a root run that ended, with its tree.
func (s *Server) deleteRun(w http.ResponseWriter, r *http.Request) {
	if err := s.rt.Delete(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// storage reports what the store holds.
func (s *Server) storage(w http.ResponseWriter, r *http.Request) {
	u, err := s.rt.Storage(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := apitype.Storage{Runs: u.Runs, Bytes: u.Bytes, Replicas: u.Replicas, Streams: []apitype.StreamStorage{}}
	for _, st := range u.Streams {
		out.Streams = append(out.Streams, apitype.StreamStorage(st))
	}
	writeJSON(w, http.StatusOK, out)
}

// forkRun starts a new run from a step of this one (engine.Fork).
func (s *Server) forkRun(w http.ResponseWriter, r *http.Request) {
	var in apitype.ForkRequest
	if !s.decodeBody(w, r, &in) {
		return
	}
	rec, err := s.rt.Fork(r.Context(), r.PathValue("id"), engine.ForkRequest{Step: in.Step, ToolResult: in.ToolResult,
		Instructions: in.Instructions, Model: in.Model})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/runs/"+rec.ID)
	writeJSON(w, http.StatusCreated, apitype.RunRef{ID: rec.ID, Status: rec.Status})
}

func (s *Server) resolveRun(w http.ResponseWriter, r *http.Request) {
	var res run.Resolution
	if !s.decodeBody(w, r, &res) {
		return
	}
	rec, err := s.rt.Resolve(r.Context(), r.PathValue("id"), res)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, rec)
}

func (s *Server) listApprovals(w http.ResponseWriter, r *http.Request) {
	list, err := s.rt.PendingApprovals(r.Context(), r.URL.Query().Get("agent"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []run.PendingApproval{}
	}
	writeJSON(w, http.StatusOK, apitype.ApprovalList{Approvals: list})
}

func (s *Server) decideApproval(w http.ResponseWriter, r *http.Request) {
	var d run.Decision
	if !s.decodeBody(w, r, &d) {
		return
	}
	rec, err := s.rt.Decide(r.Context(), r.PathValue("id"), r.PathValue("approval_id"), d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, rec)
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	out := []apitype.AgentInfo{}
	for _, a := range s.rt.Agents() {
		info := apitype.AgentInfo{Name: a.Name, Description: a.Description, Model: a.ModelName, Tools: []string{}}
		for _, t := range a.CurrentTools() {
			info.Tools = append(info.Tools, t.Name)
		}
		for _, sa := range a.SubAgents {
			info.SubAgents = append(info.SubAgents, sa.Agent)
		}
		for _, h := range a.Handoffs {
			info.Handoffs = append(info.Handoffs, h.Agent)
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
}

func (s *Server) listFlows(w http.ResponseWriter, r *http.Request) {
	out := []apitype.FlowInfo{}
	for _, f := range s.rt.Flows() {
		info := apitype.FlowInfo{Name: f.Name, Description: f.Description, Start: f.Start, Nodes: []string{}, Edges: []apitype.FlowEdge{},
			Kinds: map[string]string{}}
		for n := range f.Nodes {
			info.Nodes = append(info.Nodes, n)
		}
		sort.Strings(info.Nodes)
		for _, name := range info.Nodes {
			n := f.Nodes[name]
			for _, to := range n.Next {
				info.Edges = append(info.Edges, apitype.FlowEdge{From: name, To: to})
			}
			for _, e := range n.Route {
				info.Edges = append(info.Edges, apitype.FlowEdge{From: name, To: e.To, When: e.When, Route: true})
			}
			switch {
			case n.Agent != "":
				info.Kinds[name] = "agent " + n.Agent
			case n.Tool != "":
				info.Kinds[name] = "tool " + n.Tool
			case n.Ask != nil:
				info.Kinds[name] = "ask"
			case n.Sleep > 0 || n.Until != "":
				info.Kinds[name] = "sleep"
			default:
				info.Kinds[name] = "route"
			}
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"flows": out})
}

func (s *Server) provideInput(w http.ResponseWriter, r *http.Request) {
	var in apitype.InputRequest
	if !s.decodeBody(w, r, &in) {
		return
	}
	if in.Key == "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "key: missing: the node#visit key of the question (see input_requests on the run)")
		return
	}
	rec, err := s.rt.ProvideInput(r.Context(), r.PathValue("id"), in.Key, in.Value)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, rec)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.opts.Version})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.rt.Ready(); err != nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "not ready: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) runEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.rt.Get(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	// By default the stream carries the events of the run's descendants
	// too, each with its path; ?children=false leaves them out.
	withChildren := true
	if v := r.URL.Query().Get("children"); v != "" {
		var err error
		if withChildren, err = strconv.ParseBool(v); err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "children: must be true or false")
			return
		}
	}
	var after uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "Last-Event-ID: must be an event id (a number) from this stream")
			return
		}
		after = n
	}
	rc := http.NewResponseController(w)
	if after > 0 {
		// A client resuming after the end (EventSource reconnects by itself)
		// gets an empty, finished stream rather than one that never ends.
		if last, ok, err := s.rt.LastEvent(r.Context(), id); err == nil && ok && after >= last.Seq && journal.Terminal(last.Type) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// Follow before the headers go out: a client that has them misses
	// nothing, streamed text included.
	f, err := s.rt.Follow(ctx, id, withChildren, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if conn, ok := s.hijackStream(w); ok {
		if conn == nil {
			f.Close() // the client left
			return
		}
		s.stream(conn, f, id, after, r)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	// Streamed text (agents with stream: true) comes live, without an id,
	// in order with the journal's entries. A quiet stream sends a
	// keep-alive from a timer: one goroutine per stream, so that
	// thousands of followers cost little.
	var mu sync.Mutex // one writer at a time: the watch or the keep-alive
	done := false
	var keepAlive *time.Timer
	keepAlive = time.AfterFunc(s.opts.KeepAlive, func() {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		fmt.Fprint(w, ": keep-alive\n\n")
		_ = rc.Flush()
		keepAlive.Reset(s.opts.KeepAlive)
	})
	defer func() {
		mu.Lock()
		done = true
		mu.Unlock()
		keepAlive.Stop()
	}()
	send := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(w, format, args...)
		_ = rc.Flush()
		mu.Unlock()
	}
	for u, err := range f.Watch(ctx, after, false) {
		if err != nil {
			if r.Context().Err() == nil {
				send("event: error\ndata: %s\n\n", mustJSON(streamError(err)))
			}
			return
		}
		if u.Live != nil {
			send("event: %s\ndata: %s\n\n", u.Live.Type, u.Live.Data)
			continue
		}
		data, _ := json.Marshal(u.Event)
		send("id: %d\nevent: %s\ndata: %s\n\n", u.Event.Seq, u.Event.Type, data)
		// The stream ends with the run's own end; children canceled with
		// it end after.
		if u.Event.RunID == id && journal.Terminal(u.Event.Type) {
			return
		}
	}
}

// streamError is the data of an SSE error event: a slow client is told
// where to resume (Last-Event-ID).
func streamError(err error) map[string]any {
	var slow *engine.SlowFollowerError
	if errors.As(err, &slow) {
		return map[string]any{"code": "slow_client", "message": err.Error(), "resume_after": slow.After}
	}
	return map[string]any{"message": err.Error()}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// instanceParams are the query parameters GET /v1/instances takes.
var instanceParams = []string{"agent", "under", "limit", "cursor"}

func (s *Server) listInstances(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := engine.InstanceFilter{Agent: q.Get("agent"), Under: q.Get("under"), Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit: %q must be a number from 1 to 1000", run.CutText(v, 50)))
			return
		}
		f.Limit = n
	}
	page, err := s.rt.ListInstances(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := apitype.InstanceList{Instances: make([]apitype.InstanceEntry, 0, len(page.Instances)), NextCursor: page.NextCursor}
	for _, ie := range page.Instances {
		out.Instances = append(out.Instances, apitype.InstanceEntry{Agent: ie.Agent, Key: ie.Key, Address: ie.Address().String(), Created: ie.Created})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) {
	agentName, key := r.PathValue("agent"), r.PathValue("key")
	if err := engine.CheckInstanceKey(key); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "key: "+err.Error())
		return
	}
	if !s.rt.HasAgent(agentName) {
		s.fail(w, r, fmt.Errorf("%w %s", engine.ErrUnknownAgent, run.Quote(agentName)))
		return
	}
	in, err := s.rt.GetInstance(r.Context(), agentName, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if in.Turns == 0 && len(in.Queue) == 0 && in.Current == "" {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("instance %s/%s has had no message", agentName, key))
		return
	}
	out := apitype.Instance{Agent: agentName, Key: key, Address: agentName + "/" + key, Turns: in.Turns, Done: in.Done,
		Current: in.Current, Messages: len(in.Messages), Active: in.Active, UpdatedAt: in.UpdatedAt}
	for _, q := range in.Queue {
		out.Queued = append(out.Queued, q.RunID)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) broadcast(w http.ResponseWriter, r *http.Request) {
	var in apitype.BroadcastRequest
	if !s.decodeBody(w, r, &in) {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 256 {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "Idempotency-Key: at most 256 characters")
		return
	}
	if len(in.Metadata) > 64 {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "metadata: at most 64 keys")
		return
	}
	runs, err := s.rt.Broadcast(r.Context(), in.To, engine.Message{Text: in.Input, From: in.From, Key: key, Metadata: in.Metadata}, nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if runs == nil {
		runs = []string{}
	}
	writeJSON(w, http.StatusOK, apitype.BroadcastResult{Sent: len(runs), Runs: runs})
}
