// Package mcptool makes the tools of an MCP server Myriad tools, with the
// official MCP Go SDK as the client.
//
// A Server is one configured MCP server, reached over stdio (a command
// Myriad starts) or streamable HTTP (a URL). Its tools are named
// "<server>__<tool>" for models, whose APIs allow no dots in tool names.
// Annotations drive the runtime: readOnlyHint or idempotentHint make a call
// safe to repeat when a run resumes; a tool that is not read-only and not
// marked destructiveHint: false waits for approval (the specification's
// defaults), unless the configuration says otherwise. Each call carries the
// run's idempotency key in _meta ("myriad/idempotency_key"), has a timeout,
// and is canceled with its run. A stdio server that exits is started again
// on the next call, with a growing delay between attempts.
//
// A server's URL may carry user-info ("https://user:token@host/mcp"), which
// Go's HTTP client sends as Basic authentication. What leaves this package
// (errors, results, log lines) never holds it.
package mcptool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/internal/headertransport"
	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/tool"
)

// Separator joins a server's name and a tool's name.
const Separator = "__"

// MetaIdempotencyKey is the _meta key of a call's idempotency key.
const MetaIdempotencyKey = "myriad/idempotency_key"

// MetaTraceParent is the _meta key of a call's W3C trace context, as the
// MCP OpenTelemetry conventions name it.
const MetaTraceParent = "traceparent"

// Config describes one MCP server.
type Config struct {
	// Name prefixes the server's tools.
	Name string
	// Command and Args start a stdio server, with Env added to the
	// environment and Dir as working directory.
	Command string
	Args    []string
	Env     map[string]string
	Dir     string
	// URL reaches a streamable HTTP server, sending Headers.
	URL     string
	Headers map[string]string
	// Timeout bounds each call (default 60s) and the connection.
	Timeout time.Duration
	// Approval overrides the annotations: "required" asks for every tool
	// of the server, "never" for none.
	Approval string
	Logger   *slog.Logger
	// HTTPClient is used for URL servers (default: a plain client).
	HTTPClient *http.Client
	// OAuth, when set, authorizes requests to a URL server that asks for
	// it (OAuth 2.1, e.g. the SDK's auth.AuthorizationCodeHandler).
	OAuth auth.OAuthHandler
	// OnToolsChanged, when set, is called after the server announced a new
	// tool list and it was read.
	OnToolsChanged func()
}

// DefaultTimeout bounds a call when the configuration gives none.
const DefaultTimeout = 60 * time.Second

// Server is a connection to one MCP server, made when first needed and
// made again after the server goes away.
type Server struct {
	cfg    Config
	client *mcp.Client

	// mu guards the fields below; it is never held across I/O, so a slow
	// connection holds up nobody but those who need it.
	mu         sync.Mutex
	session    *mcp.ClientSession
	connecting chan struct{} // closed when the connection attempt under way ends
	closed     bool
	failures   int       // consecutive failed connections
	nextTry    time.Time // no connection attempt before this
	tools      []*mcp.Tool
	listGen    uint64 // numbers tool-list reads, so an older one never wins

	listDirty atomic.Bool   // the server said its tool list changed
	version   atomic.Uint64 // bumped whenever tools changes

	progressMu sync.Mutex
	progress   map[string]func(tool.Progress) // by progress token
	calls      atomic.Uint64                  // numbers progress tokens and calls

	asksMu sync.Mutex
	// inFlight holds every call in flight, by number, with the way to ask
	// its person (nil when it cannot ask): the SDK does not tell which
	// call an elicitation belongs to, so one is answered only when a
	// single call is in flight.
	inFlight map[uint64]askFunc
}

// askFunc is tool.Call.Ask.
type askFunc = func(context.Context, tool.Question) (json.RawMessage, error)

// errCallTimeout ends a call that ran out of time.
var errCallTimeout = errors.New("the call ran out of time")

// New returns a server; it connects on first use.
func New(cfg Config) *Server {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg}
	s.client = mcp.NewClient(&mcp.Implementation{Name: "myriad", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			// No lock here: the SDK waits for handlers when a session closes.
			s.listDirty.Store(true)
			go s.refresh("mcp server changed its tools")
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			token, _ := req.Params.ProgressToken.(string)
			s.progressMu.Lock()
			report := s.progress[token]
			s.progressMu.Unlock()
			if report != nil {
				report(tool.Progress{Progress: req.Params.Progress, Total: req.Params.Total, Message: req.Params.Message})
			}
		},
		ElicitationHandler: s.elicit,
		Capabilities:       &mcp.ClientCapabilities{},
	})
	s.progress = map[string]func(tool.Progress){}
	s.inFlight = map[uint64]askFunc{}
	return s
}

// refresh reads the tool list again, so agents offer it from their next
// model call on.
func (s *Server) refresh(why string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	if _, err := s.Tools(ctx); err != nil {
		s.cfg.Logger.Warn(why+", and reading its tools failed", "server", s.cfg.Name, "err", redact.Error(err))
		return
	}
	s.cfg.Logger.Info(why, "server", s.cfg.Name)
	if s.cfg.OnToolsChanged != nil {
		s.cfg.OnToolsChanged()
	}
}

// Name returns the server's configured name.
func (s *Server) Name() string { return s.cfg.Name }

// Close ends the session (stopping a stdio server); nothing connects again.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	session := s.session
	s.session = nil
	s.mu.Unlock()
	if session == nil {
		return nil
	}
	return session.Close()
}

// connect returns the live session, connecting if there is none. One
// attempt runs at a time; others wait for it (or for their context).
// Failed attempts back off: 0.5 s, 1 s, 2 s, … up to 30 s.
func (s *Server) connect(ctx context.Context) (*mcp.ClientSession, error) {
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return nil, fmt.Errorf("mcp server %s is closed", s.cfg.Name)
		case s.session != nil:
			session := s.session
			s.mu.Unlock()
			return session, nil
		case s.connecting != nil:
			wait := s.connecting
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if wait := time.Until(s.nextTry); wait > 0 {
			s.mu.Unlock()
			return nil, fmt.Errorf("mcp server %s is unavailable (retrying in %s)", s.cfg.Name, wait.Round(100*time.Millisecond))
		}
		done := make(chan struct{})
		s.connecting = done
		reconnect := s.tools != nil
		s.mu.Unlock()

		session, err := s.dial(ctx)

		s.mu.Lock()
		s.connecting = nil
		close(done)
		if err == nil && s.closed {
			s.mu.Unlock()
			_ = session.Close()
			return nil, fmt.Errorf("mcp server %s is closed", s.cfg.Name)
		}
		if err != nil {
			s.failures++
			s.nextTry = time.Now().Add(min(500*time.Millisecond<<min(s.failures-1, 6), 30*time.Second))
			s.mu.Unlock()
			return nil, fmt.Errorf("mcp server %s: connect: %s", s.cfg.Name, s.redact(err))
		}
		if s.failures > 0 {
			s.cfg.Logger.Info("mcp server reconnected", "server", s.cfg.Name, "after_failures", s.failures)
		}
		s.failures, s.session = 0, session
		s.mu.Unlock()
		s.listDirty.Store(true)
		if reconnect {
			// A restarted server may offer other tools than before.
			go s.refresh("mcp server restarted")
		}
		go func() {
			// A stdio server that exits ends its session: drop it, so the
			// next call starts the server again.
			_ = session.Wait()
			s.mu.Lock()
			if s.session == session {
				s.session = nil
				s.cfg.Logger.Warn("mcp server connection closed; it is started again on the next call", "server", s.cfg.Name)
			}
			s.mu.Unlock()
		}()
		return session, nil
	}
}

// dial makes one connection.
func (s *Server) dial(ctx context.Context) (*mcp.ClientSession, error) {
	var transport mcp.Transport
	switch {
	case s.cfg.Command != "":
		cmd := exec.Command(s.cfg.Command, s.cfg.Args...)
		cmd.Dir = s.cfg.Dir
		cmd.Env = os.Environ()
		for _, k := range slices.Sorted(maps.Keys(s.cfg.Env)) {
			cmd.Env = append(cmd.Env, k+"="+s.cfg.Env[k])
		}
		transport = &mcp.CommandTransport{Command: cmd}
	case s.cfg.URL != "":
		hc := headertransport.Client(s.cfg.HTTPClient, s.cfg.URL, s.cfg.Headers)
		transport = &mcp.StreamableClientTransport{Endpoint: s.cfg.URL, HTTPClient: hc, OAuthHandler: s.cfg.OAuth}
	default:
		return nil, fmt.Errorf("set command or url")
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return s.client.Connect(cctx, transport, nil)
}

// redact keeps URL user-info, and the query of the server's URL (which may
// hold a key), out of an error that models, journals and logs will see.
// The SDK's errors quote the server's URL as they please.
func (s *Server) redact(err error) string {
	msg := redact.Text(err.Error())
	if u, perr := url.Parse(s.cfg.URL); perr == nil && u.RawQuery != "" {
		msg = strings.ReplaceAll(msg, u.RawQuery, "REDACTED")
	}
	return msg
}

// drop forgets a session that has failed.
func (s *Server) drop(session *mcp.ClientSession) {
	s.mu.Lock()
	mine := s.session == session
	if mine {
		s.session = nil
	}
	s.mu.Unlock()
	if mine {
		_ = session.Close()
	}
}

// Tools lists the server's tools as Myriad tools, connecting if needed. The
// list is read again when the server has announced a change.
func (s *Server) Tools(ctx context.Context) ([]tool.Tool, error) {
	session, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	cached := s.tools
	s.mu.Unlock()
	if s.listDirty.Swap(false) || cached == nil {
		s.mu.Lock()
		s.listGen++
		gen := s.listGen
		s.mu.Unlock()
		lctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		var list []*mcp.Tool
		for t, err := range session.Tools(lctx, nil) {
			if err != nil {
				s.listDirty.Store(true)
				return nil, fmt.Errorf("mcp server %s: list tools: %s", s.cfg.Name, s.redact(err))
			}
			list = append(list, t)
		}
		s.mu.Lock()
		if gen == s.listGen || s.tools == nil {
			// No read started after this one (or none stored yet).
			s.tools = list
			s.version.Add(1)
		}
		cached = s.tools
		s.mu.Unlock()
	}
	out := make([]tool.Tool, 0, len(cached))
	for _, t := range cached {
		out = append(out, &Tool{server: s, def: t})
	}
	return out, nil
}

// Selection is the tools of a server an agent selects with patterns, as a
// tool.Source: it follows the server's announced changes.
func (s *Server) Selection(patterns []string) tool.Source {
	return &selection{server: s, patterns: patterns}
}

type selection struct {
	server   *Server
	patterns []string
}

var _ tool.Source = (*selection)(nil)

func (sel *selection) Version() uint64 { return sel.server.version.Load() }

func (sel *selection) Tools() []tool.Tool {
	sel.server.mu.Lock()
	list := sel.server.tools
	sel.server.mu.Unlock()
	all := make([]tool.Tool, 0, len(list))
	for _, t := range list {
		all = append(all, &Tool{server: sel.server, def: t})
	}
	out, _ := Select(all, sel.patterns) // patterns were checked when configured
	return out
}

// Select keeps the tools whose names (without the server prefix) match
// one of patterns: names or path.Match globs ("read_*", "*").
func Select(tools []tool.Tool, patterns []string) ([]tool.Tool, error) {
	var out []tool.Tool
	for _, t := range tools {
		name := t.(*Tool).def.Name
		for _, p := range patterns {
			ok, err := path.Match(p, name)
			if err != nil {
				return nil, fmt.Errorf("bad pattern %q: %w", p, err)
			}
			if ok {
				out = append(out, t)
				break
			}
		}
	}
	return out, nil
}

// Tool is one tool of an MCP server.
type Tool struct {
	server *Server
	def    *mcp.Tool
}

var _ tool.Tool = (*Tool)(nil)

// Info implements tool.Tool.
func (t *Tool) Info() tool.Info {
	schema, _ := json.Marshal(t.def.InputSchema)
	info := tool.Info{Name: t.server.cfg.Name + Separator + t.def.Name, Description: t.def.Description, Schema: schema}
	// The specification's defaults: a tool is not read-only, and a tool
	// that is not read-only is destructive unless it says otherwise. So an
	// unannotated tool asks for approval (fail closed).
	info.NeedsApproval = true
	if a := t.def.Annotations; a != nil {
		info.Idempotent = a.ReadOnlyHint || a.IdempotentHint
		info.NeedsApproval = !a.ReadOnlyHint && (a.DestructiveHint == nil || *a.DestructiveHint)
	}
	switch t.server.cfg.Approval {
	case "required":
		info.NeedsApproval = true
	case "never":
		info.NeedsApproval = false
	}
	return info
}

// Call implements tool.Tool: one tools/call with the run's idempotency key
// in _meta, bounded by the server's timeout and the run's context. Its
// result, progress and error go to the model, the journal and logs, so they
// are stripped of URL user-info, whoever wrote it.
func (t *Tool) Call(ctx context.Context, c *tool.Call) (tool.Result, error) {
	if report := c.Progress; report != nil {
		cc := *c
		cc.Progress = func(p tool.Progress) {
			p.Message = redact.Text(p.Message)
			report(p)
		}
		c = &cc
	}
	res, err := t.call(ctx, c)
	res.Content = redact.Text(res.Content)
	return res, redact.Error(err)
}

func (t *Tool) call(ctx context.Context, c *tool.Call) (tool.Result, error) {
	session, err := t.server.connect(ctx)
	if err != nil {
		return tool.Result{}, err
	}
	var args map[string]any
	if len(c.Arguments) > 0 {
		if err := json.Unmarshal(c.Arguments, &args); err != nil {
			return tool.Result{}, fmt.Errorf("arguments are not a JSON object: %w", err)
		}
	}
	// The call's time runs out after the server's timeout, not counting
	// the time a person takes to answer a question it asks.
	timeout := t.server.cfg.Timeout
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(timeout, func() { cancel(errCallTimeout) })
	defer timer.Stop()
	params := &mcp.CallToolParams{Name: t.def.Name, Arguments: args, Meta: mcp.Meta{MetaIdempotencyKey: c.IdempotencyKey}}
	if c.TraceParent != "" {
		params.Meta[MetaTraceParent] = c.TraceParent
	}
	var ask askFunc
	if c.Ask != nil {
		var mu sync.Mutex
		open := 0 // questions being answered: the clock stops while any is
		ask = func(ctx context.Context, q tool.Question) (json.RawMessage, error) {
			if cctx.Err() != nil {
				return nil, context.Cause(cctx)
			}
			mu.Lock()
			if open++; open == 1 {
				timer.Stop()
			}
			mu.Unlock()
			defer func() {
				mu.Lock()
				if open--; open == 0 {
					timer.Reset(timeout)
				}
				mu.Unlock()
			}()
			// The wait ends with the call, whatever context the SDK gives.
			actx, stop := context.WithCancel(ctx)
			defer stop()
			defer context.AfterFunc(cctx, stop)()
			return c.Ask(actx, q)
		}
	}
	n := t.server.calls.Add(1)
	t.server.asksMu.Lock()
	t.server.inFlight[n] = ask
	t.server.asksMu.Unlock()
	defer func() {
		t.server.asksMu.Lock()
		delete(t.server.inFlight, n)
		t.server.asksMu.Unlock()
	}()
	if c.Progress != nil {
		token := fmt.Sprintf("myriad-%d", t.server.calls.Add(1))
		params.SetProgressToken(token)
		t.server.progressMu.Lock()
		t.server.progress[token] = c.Progress
		t.server.progressMu.Unlock()
		defer time.AfterFunc(time.Second, func() {
			// Notifications are handled apart from the answer and may
			// trail it: keep listening a moment.
			t.server.progressMu.Lock()
			delete(t.server.progress, token)
			t.server.progressMu.Unlock()
		})
	}
	res, err := session.CallTool(cctx, params)
	if errors.Is(err, mcp.ErrConnectionClosed) {
		// The server went away. Drop the session so the next call starts
		// it again; repeat this call now only if repeating it is safe.
		t.server.drop(session)
		if t.Info().Idempotent {
			if session, err = t.server.connect(ctx); err == nil {
				res, err = session.CallTool(cctx, params)
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return tool.Result{}, ctx.Err()
		}
		if errors.Is(context.Cause(cctx), errCallTimeout) {
			return tool.Result{}, fmt.Errorf("mcp tool %s: no answer within %s", t.def.Name, t.server.cfg.Timeout)
		}
		return tool.Result{}, fmt.Errorf("mcp tool %s: %s", t.def.Name, t.server.redact(err))
	}
	return tool.Result{Content: resultText(res), IsError: res.IsError}, nil
}

// elicit answers a server's elicitation/create by putting the question to
// the person behind the call that caused it (tool.Call.Ask). The SDK does
// not say which call that is, so a question is put only when a single call
// is in flight on the server and it can ask; otherwise the server gets an
// error (not a decline: nobody declined), so a question never reaches the
// person of another run.
func (s *Server) elicit(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	s.asksMu.Lock()
	var ask askFunc
	for _, a := range s.inFlight {
		ask = a
	}
	n := len(s.inFlight)
	s.asksMu.Unlock()
	if n != 1 || ask == nil {
		s.cfg.Logger.Warn("mcp server asked a question that cannot be put to a person", "server", s.cfg.Name, "calls_in_flight", n)
		return nil, fmt.Errorf("myriad cannot tell which of its %d calls in flight asks this (or that call cannot ask a person)", n)
	}
	p := req.Params
	q := tool.Question{Prompt: p.Message}
	if p.Mode == "url" {
		q.Prompt = fmt.Sprintf("%s\n\nOpen %s, then answer \"done\" (or \"decline\").", p.Message, p.URL)
	} else if p.RequestedSchema != nil {
		q.Schema, _ = json.Marshal(p.RequestedSchema)
	}
	answer, err := ask(ctx, q)
	if err != nil {
		return &mcp.ElicitResult{Action: "cancel"}, nil
	}
	var word string
	if json.Unmarshal(answer, &word) == nil {
		switch word {
		case "decline", "cancel":
			return &mcp.ElicitResult{Action: word}, nil
		}
	}
	if p.Mode == "url" {
		return &mcp.ElicitResult{Action: "accept"}, nil
	}
	var content map[string]any
	if err := json.Unmarshal(answer, &content); err != nil || content == nil {
		return nil, fmt.Errorf("the answer to %q is not a JSON object (or \"decline\", \"cancel\")", p.Message)
	}
	return &mcp.ElicitResult{Action: "accept", Content: content}, nil
}

// resultText renders a tool result for a model: text as it is, structured
// content as JSON, other content (images, resources) as its JSON.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
			continue
		}
		if b, err := json.Marshal(c); err == nil {
			parts = append(parts, string(b))
		}
	}
	if len(parts) == 0 && res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			parts = append(parts, string(b))
		}
	}
	return strings.Join(parts, "\n")
}

// Resource returns a context source that reads a resource of the server.
func (s *Server) Resource(uri string) tool.ContextSource {
	return contextSource{name: s.cfg.Name + " resource " + uri, load: func(ctx context.Context) (string, error) {
		session, err := s.connect(ctx)
		if err != nil {
			return "", err
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		res, err := session.ReadResource(cctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil {
			return "", fmt.Errorf("mcp server %s: read %s: %s", s.cfg.Name, uri, s.redact(err))
		}
		var parts []string
		for _, c := range res.Contents {
			if c.Text != "" {
				parts = append(parts, c.Text)
			} else if len(c.Blob) > 0 {
				parts = append(parts, fmt.Sprintf("[%s: %d bytes of %s]", c.URI, len(c.Blob), c.MIMEType))
			}
		}
		return redact.Text(strings.Join(parts, "\n")), nil
	}}
}

// Prompt returns a context source that gets a prompt of the server.
func (s *Server) Prompt(name string, args map[string]string) tool.ContextSource {
	return contextSource{name: s.cfg.Name + " prompt " + name, load: func(ctx context.Context) (string, error) {
		session, err := s.connect(ctx)
		if err != nil {
			return "", err
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		res, err := session.GetPrompt(cctx, &mcp.GetPromptParams{Name: name, Arguments: args})
		if err != nil {
			return "", fmt.Errorf("mcp server %s: get prompt %s: %s", s.cfg.Name, name, s.redact(err))
		}
		var parts []string
		for _, m := range res.Messages {
			if tc, ok := m.Content.(*mcp.TextContent); ok {
				parts = append(parts, tc.Text)
			}
		}
		return redact.Text(strings.Join(parts, "\n")), nil
	}}
}

type contextSource struct {
	name string
	load func(context.Context) (string, error)
}

func (c contextSource) Name() string                             { return c.name }
func (c contextSource) Load(ctx context.Context) (string, error) { return c.load(ctx) }
