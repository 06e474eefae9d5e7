// Package a2aserver publishes Myriad's agents and flows as A2A agents, in
// both revisions of the protocol: 0.3 with the official A2A Go SDK's
// JSON-RPC binding, and 1.0 (JSON-RPC and HTTP+JSON bindings, written
// here against the specification, see v1bind.go) on the same runs.
//
// Each published agent or flow has an agent card at
// /a2a/{name}/.well-known/agent-card.json, which lists its interfaces
// (supportedInterfaces) beside 0.3's fields, and takes JSON-RPC requests
// at /a2a/{name} — 1.0's when the request's A2A-Version header says 1.0,
// 0.3's without one — and 1.0's HTTP+JSON requests under it
// (/a2a/{name}/message:send, …); the default one's card is also at
// /.well-known/agent-card.json. A task is a run: its id is the run id, so
// a task lives in JetStream like any run, survives restarts, and any node
// can answer for it. The SDK's in-memory task store and event queues are
// not used; the journal is the task's history.
//
//   - message/send submits a run and, unless the client asks not to block,
//     answers when it ends or waits for a person; message/stream and
//     tasks/resubscribe follow the run tree's journal as status updates.
//   - A message's messageId is its idempotency key: a client that retries
//     gets the task it started, not a second one.
//   - A contextId is an agent instance, so the messages of one context
//     share a conversation.
//   - A run (or any of its child runs) asking a question (a flow's ask
//     node, a tool call's elicitation) is input-required; the client
//     answers by sending a message with the task's id. Approvals are an
//     operator's (the task stays working) unless Options.ClientApprovals.
package a2aserver

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/myriad-ai/myriad/internal/redact"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2asrv"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/internal/a2a1"
	"github.com/myriad-ai/myriad/run"
)

// ProtocolVersion is the A2A protocol version served, the one the SDK
// implements.
const ProtocolVersion = "0.3.0"

// Options configure the server.
type Options struct {
	// Version is the agents' version in their cards.
	Version string
	// PublicURL is the base URL clients reach the API at
	// (https://agents.example.com); empty takes it from each request.
	PublicURL string
	// Default names the agent or flow whose card is served at
	// /.well-known/agent-card.json; empty means the only one, if there is
	// one.
	Default string
	// Publish lists the agents and flows served; empty means all of them.
	Publish []string
	// BearerAuth declares in the cards that requests need a bearer token
	// (the API's token).
	BearerAuth bool
	// ClientApprovals lets A2A clients decide approvals (the task is
	// input-required); by default an operator decides them through the API
	// or the console, and the task stays working: a calling agent must not
	// approve its own guarded calls.
	ClientApprovals bool
	Logger          *slog.Logger
}

// Server serves agent cards and the A2A JSON-RPC endpoints.
type Server struct {
	rt        *engine.Engine
	opts      Options
	endpoints map[string]*endpoint
}

// New returns the A2A server of a runtime's agents and flows.
func New(rt *engine.Engine, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{rt: rt, opts: opts, endpoints: map[string]*endpoint{}}
	for _, a := range rt.Agents() {
		s.endpoints[a.Name] = &endpoint{s: s, name: a.Name, description: a.Description}
	}
	for _, f := range rt.Flows() {
		s.endpoints[f.Name] = &endpoint{s: s, name: f.Name, description: f.Description, flow: true}
	}
	if len(opts.Publish) > 0 {
		published := map[string]*endpoint{}
		for _, name := range opts.Publish {
			e, ok := s.endpoints[name]
			if !ok {
				return nil, fmt.Errorf("server.a2a.publish: unknown agent or flow %q (known: %s)", name, strings.Join(s.names(), ", "))
			}
			published[name] = e
		}
		s.endpoints = published
	}
	if opts.Default != "" {
		if _, ok := s.endpoints[opts.Default]; !ok {
			return nil, fmt.Errorf("server.a2a.default: %q is not a published agent or flow (published: %s)", opts.Default, strings.Join(s.names(), ", "))
		}
	} else if len(s.endpoints) == 1 {
		s.opts.Default = s.names()[0]
	}
	for _, e := range s.endpoints {
		e.rpc = a2asrv.NewJSONRPCHandler(e)
	}
	return s, nil
}

func (s *Server) names() []string {
	names := make([]string, 0, len(s.endpoints))
	for n := range s.endpoints {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ServeCard serves an agent card: the one named by the path value
// "agent", or the default one when there is none. Cards are public, as the
// protocol expects: they say how to authenticate.
func (s *Server) ServeCard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	name := cmp.Or(r.PathValue("agent"), s.opts.Default)
	if name == "" {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no default A2A agent: set server.a2a.default, or read a card at /a2a/{name}/.well-known/agent-card.json (published: %s)", strings.Join(s.names(), ", ")))
		return
	}
	e, ok := s.endpoints[name]
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_agent", fmt.Sprintf("no published A2A agent %s (published: %s)", run.Quote(name), strings.Join(s.names(), ", ")))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(withInterfaces(e.card(s.baseURL(r))))
}

// withInterfaces is a card that both revisions read: 0.3's fields, which
// the SDK writes, and 1.0's supportedInterfaces, which list the 1.0
// bindings first (JSON-RPC and HTTP+JSON share the agent's URL) and 0.3's.
func withInterfaces(card *a2a.AgentCard) map[string]any {
	data, _ := json.Marshal(card)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	out["supportedInterfaces"] = []map[string]string{
		{"url": card.URL, "protocolBinding": "JSONRPC", "protocolVersion": a2a1.Version},
		{"url": card.URL, "protocolBinding": "HTTP+JSON", "protocolVersion": a2a1.Version},
		{"url": card.URL, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
	}
	return out
}

// ServeRPC serves the JSON-RPC binding of the agent named by the path
// value "agent".
func (s *Server) ServeRPC(w http.ResponseWriter, r *http.Request) {
	e, ok := s.endpoints[r.PathValue("agent")]
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_agent", fmt.Sprintf("no published A2A agent %s (published: %s)", run.Quote(r.PathValue("agent")), strings.Join(s.names(), ", ")))
		return
	}
	// The revision is the request's A2A-Version header; none is 0.3.
	switch v := requestedVersion(r); {
	case isVersion(v, "0.3"):
		cutErrors(e.rpc, w, r)
	case isVersion(v, a2a1.Version):
		e.serveJSONRPC1(w, r)
	default:
		var req rpcRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		writeRPCError(w, req.ID, versionError(v))
	}
}

func (s *Server) baseURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimSuffix(redact.URL(s.opts.PublicURL), "/")
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// Modes are the content types agents take and give: text, and JSON as
// data parts.
var modes = []string{"text/plain", "application/json"}

func (e *endpoint) card(base string) *a2a.AgentCard {
	kind := "agent"
	if e.flow {
		kind = "flow"
	}
	desc := cmp.Or(e.description, "The "+e.name+" "+kind+".")
	card := &a2a.AgentCard{
		Name:               e.name,
		Description:        desc,
		URL:                base + "/a2a/" + e.name,
		PreferredTransport: a2a.TransportProtocolJSONRPC,
		ProtocolVersion:    ProtocolVersion,
		Version:            cmp.Or(e.s.opts.Version, "dev"),
		Provider:           &a2a.AgentProvider{Org: "Myriad", URL: base},
		Capabilities:       a2a.AgentCapabilities{Streaming: true},
		DefaultInputModes:  modes,
		DefaultOutputModes: modes,
		Skills:             []a2a.AgentSkill{{ID: e.name, Name: e.name, Description: desc, Tags: []string{kind}}},
	}
	if e.s.opts.BearerAuth {
		card.SecuritySchemes = a2a.NamedSecuritySchemes{"bearer": a2a.HTTPAuthSecurityScheme{Scheme: "Bearer",
			Description: "The Myriad API token (server.api_token_env)"}}
		card.Security = []a2a.SecurityRequirements{{"bearer": a2a.SecuritySchemeScopes{}}}
	}
	return card
}
