package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/run"
)

// An operation is one route as the OpenAPI description tells it. The
// table below is the description's source; TestOpenAPIMatchesTheHandlers
// holds it to the routes the server registers and the bodies they answer.
type operation struct {
	pattern string // as registered: "GET /v1/runs/{id}"
	summary string
	query   []string // query parameters, documented in docs/api.md
	body    any      // the request body's type (nil: none)
	// answers maps a status to its body's type; a string is a media type
	// other than JSON (text/event-stream, text/plain).
	answers map[int]any
	// open marks a protocol's route (MCP, A2A, OpenAI): its bodies are
	// that protocol's, described by its own specification.
	open   bool
	public bool // served without the API token
}

type agentList struct {
	Agents []apitype.AgentInfo `json:"agents"`
}

type flowList struct {
	Flows []apitype.FlowInfo `json:"flows"`
}

type health struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}

// protocolBody stands for a protocol's own JSON.
type protocolBody map[string]any

func runAnswers(ok int) map[int]any {
	return map[int]any{ok: run.Record{}, 400: errorBody{}, 404: errorBody{}, 409: errorBody{}}
}

// commandAnswers are a command's: 202 with the run once taken (or not yet
// taken), or why it cannot apply (docs/api.md, How commands answer).
func commandAnswers() map[int]any { return runAnswers(http.StatusAccepted) }

var operations = []operation{
	{pattern: "GET /healthz", summary: "Liveness", answers: map[int]any{200: health{}}, public: true},
	{pattern: "GET /readyz", summary: "Readiness: the store takes writes", answers: map[int]any{200: health{}, 503: errorBody{}}, public: true},
	{pattern: "GET /openapi.json", summary: "This description", answers: map[int]any{200: protocolBody{}}, public: true},
	{pattern: "GET /{$}", summary: "The web console (docs/observability.md)", answers: map[int]any{200: "text/html"}, public: true},
	{pattern: "GET /console/", summary: "The web console's files", answers: map[int]any{200: "text/javascript"}, public: true},
	{pattern: "GET /metrics", summary: "Prometheus metrics (docs/observability.md)", answers: map[int]any{200: "text/plain"}},
	{pattern: "POST /v1/runs", summary: "Submit a run of an agent or a flow", body: apitype.CreateRunRequest{},
		answers: map[int]any{201: apitype.RunRef{}, 200: apitype.RunRef{}, 400: errorBody{}, 404: errorBody{}, 409: errorBody{}, 413: errorBody{}, 429: errorBody{}}},
	{pattern: "GET /v1/runs", summary: "List runs, newest first", query: listParams, answers: map[int]any{200: apitype.RunList{}, 400: errorBody{}}},
	{pattern: "GET /v1/runs/{id}", summary: "Read a run (wait: long-poll until it settles)", query: []string{"wait"}, answers: runAnswers(200)},
	{pattern: "GET /v1/runs/{id}/events", summary: "Follow a run's journal and its descendants' (SSE; each data line a journal entry with its path)",
		query: []string{"children"}, answers: map[int]any{200: "text/event-stream", 404: errorBody{}}},
	{pattern: "POST /v1/runs/{id}/cancel", summary: "Cancel a run and its children", answers: commandAnswers()},
	{pattern: "DELETE /v1/runs/{id}", summary: "Delete a root run that ended, with its children: records, journals, inputs", answers: map[int]any{204: nil, 404: errorBody{}, 409: errorBody{}}},
	{pattern: "GET /v1/storage", summary: "What the store holds: runs, messages and bytes by stream", answers: map[int]any{200: apitype.Storage{}}},
	{pattern: "GET /v1/instances", summary: "List agent instances by address, oldest first (the instance directory)", query: instanceParams,
		answers: map[int]any{200: apitype.InstanceList{}, 400: errorBody{}}},
	{pattern: "GET /v1/instances/{agent}/{key...}", summary: "Read an agent instance: its turns and queue", answers: map[int]any{200: apitype.Instance{}, 400: errorBody{}, 404: errorBody{}}},
	{pattern: "POST /v1/broadcasts", summary: "Send a message to every instance a pattern matches (agent/team/*, */team/*)", body: apitype.BroadcastRequest{},
		answers: map[int]any{200: apitype.BroadcastResult{}, 400: errorBody{}, 404: errorBody{}, 429: errorBody{}}},
	{pattern: "POST /v1/runs/{id}/resolve", summary: "Decide a run in doubt", body: run.Resolution{}, answers: commandAnswers()},
	{pattern: "POST /v1/runs/{id}/fork", summary: "Start a new run from a step of this one, optionally with a tool result, the instructions or the model changed", body: apitype.ForkRequest{},
		answers: map[int]any{201: apitype.RunRef{}, 400: errorBody{}, 404: errorBody{}, 409: errorBody{}}},
	{pattern: "POST /v1/runs/{id}/input", summary: "Answer a question a run asks", body: apitype.InputRequest{}, answers: commandAnswers()},
	{pattern: "GET /v1/approvals", summary: "Tool calls waiting for a person", query: []string{"agent"}, answers: map[int]any{200: apitype.ApprovalList{}}},
	{pattern: "POST /v1/runs/{id}/approvals/{approval_id}", summary: "Approve, edit or deny a tool call", body: run.Decision{}, answers: commandAnswers()},
	{pattern: "GET /v1/agents", summary: "The agents", answers: map[int]any{200: agentList{}}},
	{pattern: "GET /v1/flows", summary: "The flows", answers: map[int]any{200: flowList{}}},
	{pattern: "GET /v1/usage", summary: "What root runs used and cost, grouped", query: []string{"group_by", "from", "to"},
		answers: map[int]any{200: apitype.Usage{}, 400: errorBody{}}},
	{pattern: "GET /v1/budgets", summary: "The budgets runs share, with what they spent in their current windows", answers: map[int]any{200: apitype.BudgetList{}}},
	{pattern: "/mcp", summary: "MCP, streamable HTTP (2025-11-25 sessions, 2026-07-28 stateless): docs/protocols.md", open: true},
	{pattern: "GET /.well-known/agent-card.json", summary: "The default A2A agent's card", open: true, public: true},
	{pattern: "GET /a2a/{agent}/.well-known/agent-card.json", summary: "An A2A agent's card", open: true, public: true},
	{pattern: "POST /a2a/{agent}", summary: "A2A JSON-RPC, 1.0 (A2A-Version: 1.0) and 0.3", open: true},
	{pattern: "GET /a2a/{agent}/{rest...}", summary: "A2A 1.0 HTTP+JSON: GET tasks, tasks/{id}, tasks/{id}:subscribe", open: true},
	{pattern: "POST /a2a/{agent}/{rest...}", summary: "A2A 1.0 HTTP+JSON: message:send, message:stream, tasks/{id}:cancel, tasks/{id}:subscribe", open: true},
	{pattern: "/a2a/{agent}", summary: "Other methods on an A2A agent's URL: 405", open: true},
	{pattern: "POST /v1/chat/completions", summary: "OpenAI-compatible chat completions: agents and flows are the models", open: true},
	{pattern: "GET /v1/models", summary: "OpenAI-compatible: the models (agents and flows)", open: true},
	{pattern: "GET /v1/models/{model}", summary: "OpenAI-compatible: one model", open: true},
}

// queryParams describe the query parameters the routes take.
var queryParams = map[string]struct {
	doc    string
	schema map[string]any
	// style is an OpenAPI parameter style other than form.
	style string
}{
	"agent":    {doc: "only runs, approvals or instances of this agent", schema: nil},
	"flow":     {doc: "only runs of this flow"},
	"instance": {doc: "only the turns of the instances with this key"},
	"parent":   {doc: "only the child runs of this run"},
	"roots":    {doc: "only runs without a parent", schema: map[string]any{"type": "boolean"}},
	"status": {doc: "only runs in this status", schema: map[string]any{"type": "string",
		"enum": []string{"queued", "running", "waiting", "in_doubt", "completed", "failed", "canceled"}}},
	"limit":    {doc: "page size", schema: map[string]any{"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
	"cursor":   {doc: "the next_cursor of the previous page"},
	"under":    {doc: "only instances whose keys are under this path (eu/team-a)"},
	"wait":     {doc: "long-poll until the run settles, up to this long (a Go duration, at most 60s)", schema: map[string]any{"type": "string", "example": "30s"}},
	"children": {doc: "include the events of the run's descendants (default true)", schema: map[string]any{"type": "boolean"}},
	"group_by": {doc: "agent, model, tool or metadata.KEY", schema: map[string]any{"type": "string", "pattern": "^(agent|model|tool|metadata\\..+)$", "default": "agent"}},
	"metadata": {doc: "only runs whose metadata has these values: metadata[tenant]=acme", schema: map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
		style: "deepObject"},
	"from": {doc: "runs created at or after: a day (UTC) or an RFC 3339 time", schema: map[string]any{"type": "string", "example": "2026-12-01"}},
	"to":   {doc: "runs created before: a day (UTC) or an RFC 3339 time", schema: map[string]any{"type": "string", "example": "2026-12-31"}},
}

// schemaOptions make Go's types read as their JSON does.
var schemaOptions = &jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{
	reflect.TypeFor[json.RawMessage](): {},
	reflect.TypeFor[time.Time]():       {Type: "string", Format: "date-time"},
	reflect.TypeFor[protocolBody]():    {Type: "object"},
}}

// openAPIDoc builds the OpenAPI 3.1 description of the routes in use.
func openAPIDoc(version string, served map[string]bool) (map[string]any, error) {
	paths := map[string]map[string]any{}
	for _, op := range operations {
		if !served[op.pattern] {
			continue
		}
		method, path, found := strings.Cut(op.pattern, " ")
		if !found {
			method, path = "", op.pattern
		}
		o := map[string]any{"summary": op.summary, "operationId": operationID(op.pattern)}
		var params []map[string]any
		for _, name := range pathParams(path) {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, name := range op.query {
			q := queryParams[name]
			if q.schema == nil {
				q.schema = map[string]any{"type": "string"}
			}
			p := map[string]any{"name": name, "in": "query", "description": q.doc, "schema": q.schema}
			if q.style != "" {
				p["style"], p["explode"] = q.style, true
			}
			params = append(params, p)
		}
		if params != nil {
			o["parameters"] = params
		}
		if op.body != nil {
			s, err := jsonschema.ForType(reflect.TypeOf(op.body), schemaOptions)
			if err != nil {
				return nil, err
			}
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": s}}}
		}
		responses := map[string]any{}
		for status, answer := range op.answers {
			r := map[string]any{"description": http.StatusText(status)}
			if answer == nil {
				responses[strconv.Itoa(status)] = r // no body
				continue
			}
			if media, ok := answer.(string); ok {
				r["content"] = map[string]any{media: map[string]any{"schema": map[string]any{"type": "string"}}}
			} else {
				s, err := jsonschema.ForType(reflect.TypeOf(answer), schemaOptions)
				if err != nil {
					return nil, err
				}
				r["content"] = map[string]any{"application/json": map[string]any{"schema": s}}
			}
			responses[strconv.Itoa(status)] = r
		}
		if op.open {
			responses["default"] = map[string]any{"description": "The protocol's own answer (docs/protocols.md)"}
			o["externalDocs"] = map[string]any{"url": "https://github.com/myriad-ai/myriad/blob/main/docs/protocols.md"}
		}
		if !op.public {
			unauthorized, err := jsonschema.ForType(reflect.TypeOf(errorBody{}), schemaOptions)
			if err != nil {
				return nil, err
			}
			responses["401"] = map[string]any{"description": "Missing or wrong API token",
				"content": map[string]any{"application/json": map[string]any{"schema": unauthorized}}}
		} else {
			o["security"] = []any{}
		}
		o["responses"] = responses
		path = strings.ReplaceAll(strings.ReplaceAll(path, "{rest...}", "{rest}"), "{$}", "")
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		if method == "" {
			// A pattern for every method: those no other pattern takes.
			for _, m := range []string{"get", "post", "delete"} {
				if paths[path][m] == nil && !served[strings.ToUpper(m)+" "+op.pattern] {
					paths[path][m] = o
				}
			}
			continue
		}
		paths[path][strings.ToLower(method)] = o
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Myriad HTTP API", "version": version,
			"description": "Runs, their journals, approvals, questions and usage. Errors are {\"error\": {\"code\", \"message\"}} with a stable code (docs/api.md)."},
		"components": map[string]any{"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}}},
		"security":   []any{map[string]any{"bearer": []any{}}},
		"paths":      paths,
	}, nil
}

// pathParams names a path's {parameters}.
func pathParams(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.TrimSuffix(strings.Trim(seg, "{}"), "..."))
		}
	}
	return out
}

// operationID makes a pattern an identifier: "GET /v1/runs/{id}" is
// get_v1_runs_id.
func operationID(pattern string) string {
	f := func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') }
	return strings.ToLower(strings.Join(strings.FieldsFunc(pattern, f), "_"))
}

// openAPI serves GET /openapi.json: the description of this server's
// routes (those it was given: MCP, A2A and OpenAI routes only when
// served).
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	s.docOnce.Do(func() {
		s.doc, s.docErr = openAPIDoc(s.opts.Version, s.patterns)
	})
	if s.docErr != nil {
		s.fail(w, r, s.docErr)
		return
	}
	writeJSON(w, http.StatusOK, s.doc)
}

// handle registers a route and remembers its pattern for the description.
func (s *Server) handle(pattern string, h http.HandlerFunc) {
	if s.patterns == nil {
		s.patterns = map[string]bool{}
	}
	s.patterns[pattern] = true
	s.mux.HandleFunc(pattern, h)
}

// Routes are the patterns the server serves, as registered.
func (s *Server) Routes() []string {
	out := make([]string, 0, len(s.patterns))
	for p := range s.patterns {
		out = append(out, p)
	}
	return out
}

// description holds the built document.
type description struct {
	docOnce  sync.Once
	doc      map[string]any
	docErr   error
	patterns map[string]bool
}
