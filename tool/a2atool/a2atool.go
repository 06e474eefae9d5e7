// Package a2atool makes a remote A2A agent a tool: the model sends it a
// task in words and gets its answer, with the official A2A Go SDK's client
// — in A2A 1.0 (its JSON-RPC binding, through a transport written here
// against the specification) when the agent's card offers it, else 0.3.
//
// The agent card is read at the first call (so a project starts while its
// remotes are down) and kept until a call fails to reach the agent. Calls
// stream (message/stream) when the card says the agent can, reporting each
// status update as tool progress; else they block on message/send.
//
// The message id is derived from the call's idempotency key, so a call
// repeated after a crash sends the same message: a remote that, like
// Myriad, treats message ids as idempotency keys joins the first task. The
// context id is derived from the run, so the calls one run makes to one
// remote agent share a conversation there. A remote task that needs input
// answers the model with the question and the task id to reply to.
//
// The URL may carry user-info ("https://user:token@host/a2a/billing"), which
// Go's HTTP client sends as Basic authentication when it reads the card;
// errors, results and progress never hold it.
package a2atool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2aclient"

	"github.com/myriad-ai/myriad/internal/a2a1"
	"github.com/myriad-ai/myriad/internal/headertransport"
	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/tool"
)

// Config describes a remote agent.
type Config struct {
	// Name is the tool's name.
	Name string
	// URL is the agent's base URL (its card is at
	// /.well-known/agent-card.json below it) or the card's URL.
	URL         string
	Description string
	// Headers go with every request (authorization, say).
	Headers map[string]string
	// Timeout bounds a call (default 10 minutes).
	Timeout time.Duration
	// Idempotent says a call cut by a crash may be sent again.
	Idempotent bool
	// HTTPClient is used for every request (default: a new one).
	HTTPClient *http.Client
}

// Tool calls a remote A2A agent.
type Tool struct {
	cfg Config
	hc  *http.Client

	mu     sync.Mutex
	client *a2aclient.Client
	card   *remote
}

var _ tool.Tool = (*Tool)(nil)

// New returns the tool; it connects at its first call.
func New(cfg Config) *Tool {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	return &Tool{cfg: cfg, hc: headertransport.Client(cfg.HTTPClient, cfg.URL, cfg.Headers)}
}

var schema = json.RawMessage(`{"type":"object","properties":{` +
	`"input":{"type":"string","description":"The task or message for the agent, in words"},` +
	`"task_id":{"type":"string","description":"Only to answer a question the agent asked: the task_id it gave"}},` +
	`"required":["input"],"additionalProperties":false}`)

// Info describes the tool.
func (t *Tool) Info() tool.Info {
	desc := t.cfg.Description
	if desc == "" {
		desc = "Send a task to the remote agent " + t.cfg.Name + " and get its answer."
	}
	return tool.Info{Name: t.cfg.Name, Description: desc, Schema: schema, Idempotent: t.cfg.Idempotent}
}

// connect reads the agent card and makes a client, once: for A2A 1.0's
// JSON-RPC binding when the card offers it (supportedInterfaces), else for
// 0.3's. The lock is not held while reading the card: one slow remote must
// not hold up calls that could use a client already made.
func (t *Tool) connect(ctx context.Context) (*a2aclient.Client, *remote, error) {
	t.mu.Lock()
	client, card := t.client, t.card
	t.mu.Unlock()
	if client != nil {
		return client, card, nil
	}
	rctx, cancel := context.WithTimeout(ctx, cardTimeout)
	defer cancel()
	data, err := t.readCard(rctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read the agent card of %s at %s: %w", t.cfg.Name, redact.URL(t.cfg.URL), err)
	}
	card = &remote{}
	if err := json.Unmarshal(data, card); err != nil {
		return nil, nil, fmt.Errorf("read the agent card of %s at %s: %w", t.cfg.Name, redact.URL(t.cfg.URL), err)
	}
	if u := card.jsonrpc1(); u != "" {
		card.URL = u
		factory := a2aclient.TransportFactoryFn(func(_ context.Context, url string, _ *a2a.AgentCard) (a2aclient.Transport, error) {
			return &jsonrpc1{url: url, hc: t.hc}, nil
		})
		client, err = a2aclient.NewFromEndpoints(ctx, []a2a.AgentInterface{{URL: u, Transport: transportJSONRPC1}},
			a2aclient.WithTransport(transportJSONRPC1, factory))
	} else {
		var old a2a.AgentCard
		if err = json.Unmarshal(data, &old); err == nil {
			client, err = a2aclient.NewFromCard(ctx, &old, a2aclient.WithJSONRPCTransport(t.hc))
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect to agent %s (%s): %w", t.cfg.Name, redact.URL(card.URL), err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client == nil {
		t.client, t.card = client, card
	}
	return t.client, t.card, nil
}

// remote is what the tool reads of an agent card, in either revision.
type remote struct {
	URL          string `json:"url"`
	Capabilities struct {
		Streaming bool `json:"streaming"`
	} `json:"capabilities"`
	SupportedInterfaces []struct {
		URL             string `json:"url"`
		ProtocolBinding string `json:"protocolBinding"`
		ProtocolVersion string `json:"protocolVersion"`
	} `json:"supportedInterfaces"`
}

// jsonrpc1 is the URL of the card's A2A 1.0 JSON-RPC interface, if any.
func (r *remote) jsonrpc1() string {
	for _, in := range r.SupportedInterfaces {
		if in.ProtocolBinding == "JSONRPC" && (in.ProtocolVersion == a2a1.Version || strings.HasPrefix(in.ProtocolVersion, a2a1.Version+".")) {
			return in.URL
		}
	}
	return ""
}

// readCard fetches the agent card: below the configured URL at
// /.well-known/agent-card.json, or the URL itself when it names a .json.
func (t *Tool) readCard(ctx context.Context) ([]byte, error) {
	where := t.cfg.URL
	if u, err := url.Parse(t.cfg.URL); err != nil || !strings.HasSuffix(u.Path, ".json") {
		if where, err = url.JoinPath(t.cfg.URL, "/.well-known/agent-card.json"); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxCard))
}

// maxCard bounds an agent card.
const maxCard = 1 << 20

// cardTimeout bounds reading an agent card.
const cardTimeout = 30 * time.Second

// errTimeout is the cause of a call that ran out of time.
var errTimeout = errors.New("the remote agent did not finish in time")

// forget drops the client, so the next call reads the card again (the
// agent may have moved or changed).
func (t *Tool) forget(c *a2aclient.Client) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client == c {
		t.client, t.card = nil, nil
	}
}

// Call sends the task and waits for the remote task to end or ask. Its
// result, progress and error go to the model, the journal and logs, so they
// are stripped of URL user-info: the configured URL's, which the SDK's
// errors quote, and any the remote agent writes.
func (t *Tool) Call(ctx context.Context, call *tool.Call) (tool.Result, error) {
	if report := call.Progress; report != nil {
		c := *call
		c.Progress = func(p tool.Progress) {
			p.Message = redact.Text(p.Message)
			report(p)
		}
		call = &c
	}
	res, err := t.call(ctx, call)
	res.Content = redact.Text(res.Content)
	return res, redact.Error(err)
}

func (t *Tool) call(ctx context.Context, call *tool.Call) (tool.Result, error) {
	var args struct {
		Input  string `json:"input"`
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal(call.Arguments, &args); err != nil || strings.TrimSpace(args.Input) == "" {
		return tool.Result{Content: `arguments: want {"input": "..."}`, IsError: true}, nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, t.cfg.Timeout, errTimeout)
	defer cancel()
	client, card, err := t.connect(ctx)
	if err != nil {
		return tool.Result{}, err
	}
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: args.Input})
	msg.ID = derive("msg", call.IdempotencyKey, call.RunID+"/"+call.ID)
	msg.ContextID = derive("ctx", call.RunID, t.cfg.Name)
	msg.TaskID = a2a.TaskID(args.TaskID)
	if call.TraceParent != "" {
		msg.Metadata = map[string]any{"traceparent": call.TraceParent}
	}
	params := &a2a.MessageSendParams{Message: msg}
	var v view
	n := 0
	progress := func(ev a2a.Event) {
		if text := v.apply(ev); text != "" && call.Progress != nil {
			n++
			call.Progress(tool.Progress{Progress: float64(n), Message: text})
		}
	}
	if card.Capabilities.Streaming {
		for ev, err := range client.SendStreamingMessage(ctx, params) {
			if err != nil {
				if v.taskID != "" && ctx.Err() == nil {
					break // the stream broke: follow the task below
				}
				return t.failed(ctx, client, &v, err)
			}
			progress(ev)
		}
	} else {
		res, err := client.SendMessage(ctx, params)
		if err != nil {
			return t.failed(ctx, client, &v, err)
		}
		progress(res)
	}
	// A stream can end early (a proxy cuts it, a long wait without news):
	// follow the task again, or ask where it stands, until it settles.
	for wait := time.Second; !v.settled() && v.taskID != ""; wait = min(2*wait, 30*time.Second) {
		if card.Capabilities.Streaming {
			for ev, err := range client.ResubscribeToTask(ctx, &a2a.TaskIDParams{ID: v.taskID}) {
				if err != nil {
					break
				}
				progress(ev)
			}
		}
		if v.settled() {
			break
		}
		task, err := client.GetTask(ctx, &a2a.TaskQueryParams{ID: v.taskID})
		if err != nil {
			return t.failed(ctx, client, &v, err)
		}
		progress(task)
		if v.settled() {
			break
		}
		select {
		case <-ctx.Done():
			return t.failed(ctx, client, &v, context.Cause(ctx))
		case <-time.After(wait):
		}
	}
	return v.result(t.cfg.Name), nil
}

// failed reports a call that broke off. The remote task, if any, is
// canceled when the run gave up on it (a timeout or a canceled run).
func (t *Tool) failed(ctx context.Context, client *a2aclient.Client, v *view, err error) (tool.Result, error) {
	// Not when the worker is only shutting down: the run resumes elsewhere
	// and its repeated call joins the same task.
	if cause := context.Cause(ctx); v.taskID != "" && (errors.Is(cause, errTimeout) || errors.Is(cause, tool.ErrRunCanceled)) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _ = client.CancelTask(cctx, &a2a.TaskIDParams{ID: v.taskID})
		cancel()
	}
	if errors.Is(err, a2a.ErrInvalidParams) || errors.Is(err, a2a.ErrUnsupportedOperation) || errors.Is(err, a2a.ErrTaskNotFound) {
		// The agent refused the request: the model may rephrase it.
		return tool.Result{Content: fmt.Sprintf("agent %s refused the message: %v", t.cfg.Name, err), IsError: true}, nil
	}
	t.forget(client)
	return tool.Result{}, fmt.Errorf("agent %s: %w", t.cfg.Name, err)
}

// derive makes a stable id from a key: the same call (or run) always
// sends the same one.
func derive(kind, key, fallback string) string {
	if key == "" {
		key = fallback
	}
	sum := sha256.Sum256([]byte(kind + "\x00" + key))
	return "myriad-" + kind + "-" + hex.EncodeToString(sum[:16])
}

// view is what a call has learned of its remote task.
type view struct {
	taskID    a2a.TaskID
	state     a2a.TaskState
	status    string            // the latest status message's text
	artifacts map[string]string // artifact id → text
	order     []string
	reply     string // a direct message answer
}

func (v *view) settled() bool {
	return v.reply != "" || v.state.Terminal() || v.state == a2a.TaskStateInputRequired || v.state == a2a.TaskStateAuthRequired
}

// apply takes in one event and returns the text to show as progress.
func (v *view) apply(ev a2a.Event) string {
	switch ev := ev.(type) {
	case *a2a.Message:
		v.reply = text(ev.Parts)
		return ""
	case *a2a.Task:
		v.taskID, v.state = ev.ID, ev.Status.State
		if ev.Status.Message != nil {
			v.status = text(ev.Status.Message.Parts)
		}
		for _, a := range ev.Artifacts {
			v.artifact(a, false)
		}
		return string(ev.Status.State)
	case *a2a.TaskStatusUpdateEvent:
		changed := v.state != ev.Status.State
		v.taskID, v.state = ev.TaskID, ev.Status.State
		if ev.Status.Message != nil {
			v.status = text(ev.Status.Message.Parts)
			return v.status
		}
		if changed {
			return string(ev.Status.State)
		}
		return "" // a keep-alive
	case *a2a.TaskArtifactUpdateEvent:
		v.taskID = ev.TaskID
		v.artifact(ev.Artifact, ev.Append)
		return ""
	}
	return ""
}

func (v *view) artifact(a *a2a.Artifact, appendTo bool) {
	if v.artifacts == nil {
		v.artifacts = map[string]string{}
	}
	id := string(a.ID)
	if _, seen := v.artifacts[id]; !seen {
		v.order = append(v.order, id)
	}
	if appendTo {
		v.artifacts[id] += text(a.Parts)
	} else {
		v.artifacts[id] = text(a.Parts)
	}
}

// result is what the model is told.
func (v *view) result(name string) tool.Result {
	if v.reply != "" {
		return tool.Result{Content: v.reply}
	}
	var out []string
	for _, id := range v.order {
		out = append(out, v.artifacts[id])
	}
	answer := strings.Join(out, "\n")
	switch v.state {
	case a2a.TaskStateCompleted:
		if answer == "" {
			answer = v.status
		}
		return tool.Result{Content: answer}
	case a2a.TaskStateInputRequired:
		return tool.Result{Content: fmt.Sprintf("Agent %s needs more input before it can finish (task_id %s): %s\nTo answer, call %s again with the answer as input and task_id %q.",
			name, v.taskID, v.status, name, v.taskID)}
	case a2a.TaskStateAuthRequired:
		return tool.Result{Content: fmt.Sprintf("agent %s needs authentication it was not given (task %s): %s", name, v.taskID, v.status), IsError: true}
	case a2a.TaskStateFailed, a2a.TaskStateRejected, a2a.TaskStateCanceled:
		return tool.Result{Content: fmt.Sprintf("agent %s: task %s %s: %s", name, v.taskID, v.state, v.status), IsError: true}
	}
	return tool.Result{Content: fmt.Sprintf("agent %s: task %s is still %s; its answer did not arrive", name, v.taskID, v.state), IsError: true}
}

// text joins a message's text parts, and its data parts as JSON.
func text(parts a2a.ContentParts) string {
	var out []string
	for _, p := range parts {
		switch p := p.(type) {
		case a2a.TextPart:
			out = append(out, p.Text)
		case a2a.DataPart:
			data, _ := json.Marshal(p.Data)
			out = append(out, string(data))
		case a2a.FilePart:
			if uri, ok := p.File.(a2a.FileURI); ok {
				out = append(out, uri.URI)
			}
		}
	}
	return strings.Join(out, "\n")
}
