// Package openaiserver serves Myriad's agents and flows through the OpenAI
// chat-completions API, so that chat UIs, SDKs and gateways that speak it
// call them unchanged. Each agent and flow is a model named after it:
// GET /v1/models lists them, and POST /v1/chat/completions runs one.
//
// A call is one durable run. Its input is the request's messages: one
// message's text, or the conversation as a transcript. A caller that names
// an instance (the Myriad-Instance header, or the request's user field)
// continues it: the call is the instance's next turn, its input the last
// user message, since the instance remembers the rest. The agent's own tool
// calls happen inside the run; the caller sees the answer, streamed
// (stream: true) or whole, with the run's token usage. A run that stops to
// wait for a person answers with a message saying what it waits for and how
// to go on, instead of holding the request; a caller that goes away cancels
// the run. Errors have OpenAI's shape, and the run's id is in the
// Myriad-Run-Id header and the answer's "myriad" field.
package openaiserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/run"
)

// Options configure the server.
type Options struct {
	Logger *slog.Logger
	// KeepAlive is how often a quiet stream sends a comment (default 15 s).
	KeepAlive time.Duration
}

// Server answers the OpenAI routes over an engine.
type Server struct {
	rt      *engine.Engine
	opts    Options
	created int64 // the models' creation time: when the server started
}

// New returns the OpenAI routes for rt.
func New(rt *engine.Engine, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 15 * time.Second
	}
	return &Server{rt: rt, opts: opts, created: time.Now().Unix()}
}

// HeaderInstance names the instance a call continues.
const HeaderInstance = "Myriad-Instance"

// HeaderRunID carries the id of the run a call started.
const HeaderRunID = "Myriad-Run-Id"

// Model is an entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ServeModels answers GET /v1/models.
func (s *Server) ServeModels(w http.ResponseWriter, r *http.Request) {
	var data []Model
	for _, name := range s.names() {
		data = append(data, s.model(name))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// ServeModel answers GET /v1/models/{model}.
func (s *Server) ServeModel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("model")
	if _, ok := s.kind(name); !ok {
		WriteError(w, s.unknownModel(name))
		return
	}
	writeJSON(w, http.StatusOK, s.model(name))
}

func (s *Server) model(name string) Model {
	return Model{ID: name, Object: "model", Created: s.created, OwnedBy: "myriad"}
}

// names are the agents' and flows' names, sorted.
func (s *Server) names() []string {
	var out []string
	for _, a := range s.rt.Agents() {
		out = append(out, a.Name)
	}
	for _, f := range s.rt.Flows() {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

// kind says whether name is an agent or a flow.
func (s *Server) kind(name string) (flow, ok bool) {
	for _, a := range s.rt.Agents() {
		if a.Name == name {
			return false, true
		}
	}
	for _, f := range s.rt.Flows() {
		if f.Name == name {
			return true, true
		}
	}
	return false, false
}

func (s *Server) unknownModel(name string) *Error {
	return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found", Param: "model",
		Message: fmt.Sprintf("The model %q does not exist: Myriad's models are its agents and flows (known: %s)",
			run.CutText(name, 200), strings.Join(s.names(), ", "))}
}

// ServeChat answers POST /v1/chat/completions.
func (s *Server) ServeChat(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			WriteError(w, &Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
				Message: fmt.Sprintf("request body exceeds %d bytes (the server's server.max_body_bytes)", tooLarge.Limit)})
			return
		}
		WriteError(w, invalid("", "read body: %v", err))
		return
	}
	req, err := ParseChatRequest(data)
	if err != nil {
		WriteError(w, err.(*Error))
		return
	}
	sub, oerr := s.submission(r, req)
	if oerr != nil {
		WriteError(w, oerr)
		return
	}
	c := &call{s: s, w: w, r: r, req: req}
	if req.Stream {
		c.stream(sub)
		return
	}
	c.answer(sub)
}

// submission turns a request into the run it asks for.
func (s *Server) submission(r *http.Request, req *ChatRequest) (engine.SubmitRequest, *Error) {
	flow, ok := s.kind(req.Model)
	if !ok {
		return engine.SubmitRequest{}, s.unknownModel(req.Model)
	}
	instance, param := r.Header.Get(HeaderInstance), "header "+HeaderInstance
	if instance == "" {
		instance, param = req.User, "user"
	}
	if instance != "" {
		if flow {
			return engine.SubmitRequest{}, invalid(param, "%s: %q is a flow, and flows have no instances (leave %s out)", param, req.Model, param)
		}
		// A user id with '/' keeps the key it always had, not a path.
		if !engine.ValidInstanceKey(instance) || (param == "user" && strings.Contains(instance, "/")) {
			if param == "user" {
				// An end user's id as a client fills it in (an email):
				// its conversation gets a key made from it.
				instance = UserInstance(instance)
			} else {
				return engine.SubmitRequest{}, invalid(param, "%s: %v; it names the instance of %s to continue",
					param, engine.CheckInstanceKey(instance), req.Model)
			}
		}
	}
	if len(req.State) > 0 && !flow {
		return engine.SubmitRequest{}, invalid("state", "state: only flows take a state; %s is an agent", req.Model)
	}
	// A new instance's first turn is given the whole conversation: a
	// client may bring one it held elsewhere.
	continuing := instance != "" && s.started(r.Context(), req.Model, instance)
	input, err := req.Input(continuing)
	if err != nil {
		return engine.SubmitRequest{}, err.(*Error)
	}
	sub := engine.SubmitRequest{Input: input, Metadata: req.Metadata, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	if len(sub.IdempotencyKey) > 256 {
		return engine.SubmitRequest{}, invalid("Idempotency-Key", "Idempotency-Key: at most 256 characters")
	}
	if sub.IdempotencyKey != "" {
		sub.IdempotencyKey = "openai/" + sub.IdempotencyKey
	}
	if flow {
		sub.Flow, sub.State = req.Model, req.State
	} else {
		sub.Agent, sub.Instance = req.Model, instance
	}
	if tp := r.Header.Get("traceparent"); tp != "" {
		if sub.Metadata == nil {
			sub.Metadata = map[string]string{}
		}
		sub.Metadata["traceparent"] = tp
	}
	return sub, nil
}

// UserInstance is the instance key a request's user field names when it
// is not a key itself: "user-" and a hash of it.
func UserInstance(user string) string {
	sum := sha256.Sum256([]byte(user))
	return "user-" + hex.EncodeToString(sum[:12])
}

// started reports whether an instance has had a turn.
func (s *Server) started(ctx context.Context, agentName, key string) bool {
	in, err := s.rt.GetInstance(ctx, agentName, key)
	return err != nil || in != nil && (in.Turns > 0 || in.Current != "" || len(in.Queue) > 0)
}

// submitError maps an engine error onto OpenAI's terms.
func (s *Server) submitError(r *http.Request, err error) *Error {
	e := &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", Message: err.Error()}
	switch {
	case errors.Is(err, engine.ErrInvalid):
	case errors.Is(err, engine.ErrUnknownAgent):
		e.Status, e.Code, e.Param = http.StatusNotFound, "model_not_found", "model"
	case errors.Is(err, engine.ErrConflict):
		e.Status, e.Code = http.StatusConflict, "conflict"
	case errors.Is(err, engine.ErrTooLarge):
		e.Status, e.Code = http.StatusRequestEntityTooLarge, "request_too_large"
	case errors.Is(err, engine.ErrUnavailable):
		e.Status, e.Type, e.Code = http.StatusServiceUnavailable, "server_error", "unavailable"
	case errors.Is(err, engine.ErrOverloaded):
		// OpenAI's SDKs retry a 429 after its Retry-After.
		e.Status, e.Type, e.Code = http.StatusTooManyRequests, "requests", "rate_limit_exceeded"
		var over *engine.OverloadedError
		if errors.As(err, &over) {
			e.RetryAfter = max(int(over.RetryAfter.Seconds()), 1)
		}
	default:
		err = redact.Error(err)
		s.opts.Logger.Error("openai", "path", r.URL.Path, "err", err)
		e.Status, e.Type, e.Code, e.Message = http.StatusInternalServerError, "server_error", "internal", "internal error: "+err.Error()
	}
	return e
}

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

func errorJSON(e *Error) errorBody {
	var b errorBody
	b.Error.Message, b.Error.Type, b.Error.Code = e.Message, e.Type, e.Code
	if e.Param != "" {
		b.Error.Param = &e.Param
	}
	return b
}

// WriteError answers with an error in OpenAI's shape. An error retrying
// cannot mend says so (x-should-retry: false), so that OpenAI's SDKs,
// which retry 409s and 5xxs, do not start the run again.
func WriteError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusConflict || e.Status == http.StatusInternalServerError {
		w.Header().Set("x-should-retry", "false")
	}
	if e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests {
		retry := e.RetryAfter
		if retry <= 0 {
			retry = 5
		}
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	}
	writeJSON(w, e.Status, errorJSON(e))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// instanceBusy refuses a turn that would queue behind one whose tree
// waits for a person: the call would hold until someone acts.
func (s *Server) instanceBusy(ctx context.Context, sub engine.SubmitRequest) *Error {
	if sub.Instance == "" {
		return nil
	}
	in, err := s.rt.GetInstance(ctx, sub.Agent, sub.Instance)
	if err != nil || in == nil || in.Current == "" {
		return nil
	}
	cur, err := s.rt.Get(ctx, in.Current)
	if err != nil {
		return nil
	}
	asking := s.asking(ctx, cur, maxDepth)
	if asking == nil {
		return nil
	}
	where := ""
	if asking.ID != cur.ID {
		where = " in " + asking.PathOrAgent()
	}
	return &Error{Status: http.StatusConflict, Type: "invalid_request_error", Code: "instance_waiting",
		Message: fmt.Sprintf("instance %s of %s waits for a person on run %s%s (%s): %s; then send this message again",
			sub.Instance, sub.Agent, cur.ID, where, waitingFor(asking), asking.HowToGoOn())}
}

// maxDepth bounds how deep asking looks into a tree of child runs.
const maxDepth = 8

// asking is the run of rec's tree that waits for a person, if one does: a
// run waiting for its children may be waiting for one of theirs.
func (s *Server) asking(ctx context.Context, rec *run.Record, depth int) *run.Record {
	if rec.Asking() {
		return rec
	}
	if depth == 0 || rec.Status != run.StatusWaiting || rec.WaitingFor != run.WaitChildren {
		return nil
	}
	kids, _, err := s.rt.List(ctx, run.Filter{Parent: rec.ID, Limit: 100})
	if err != nil {
		return nil
	}
	for _, k := range kids {
		if !k.Status.Terminal() {
			if a := s.asking(ctx, k, depth-1); a != nil {
				return a
			}
		}
	}
	return nil
}

func waitingFor(rec *run.Record) string {
	if rec.Status == run.StatusInDoubt {
		return "in doubt about a tool call"
	}
	if rec.WaitingFor != "" {
		return rec.WaitingFor
	}
	return "an answer"
}
