// Package httptool calls webhooks as tools: the JSON arguments are POSTed to
// a URL and the response body goes back to the model. Each request carries
// an Idempotency-Key header ("<run-id>/<step>") that stays the same when a
// resumed run repeats the call, so the receiving service can drop repeats.
//
// The URL may carry user-info ("https://user:token@host/hook"), which Go's
// HTTP client sends as Basic authentication; errors and results never
// hold it.
package httptool

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/myriad-ai/myriad/internal/outbound"
	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/tool"
)

// MaxResponseBytes caps how much of a response is read and passed to the model.
const MaxResponseBytes = 1 << 20

// Config describes one HTTP tool.
type Config struct {
	Name        string
	Description string
	Schema      json.RawMessage
	URL         string
	Headers     map[string]string
	Timeout     time.Duration
	Idempotent  bool
	// NeedsApproval makes every call wait for a person's decision.
	NeedsApproval bool
	// Client sends the requests; nil uses a shared client with keep-alives.
	Client *http.Client
}

// Tool is an HTTP webhook tool.
type Tool struct {
	cfg Config
}

var _ tool.Tool = (*Tool)(nil)

// New returns a tool for cfg.
func New(cfg Config) *Tool {
	if cfg.Client == nil {
		cfg.Client = outbound.Client()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &Tool{cfg: cfg}
}

// Info describes the tool.
func (t *Tool) Info() tool.Info {
	return tool.Info{Name: t.cfg.Name, Description: t.cfg.Description, Schema: t.cfg.Schema, Idempotent: t.cfg.Idempotent, NeedsApproval: t.cfg.NeedsApproval}
}

// Call POSTs the arguments. A non-2xx status is a tool error the model sees.
// What it returns, an error or a result, goes to the model, the journal and
// logs, so it is stripped of URL user-info: the configured URL's, which the
// transport's errors quote, and any a response quotes back.
func (t *Tool) Call(ctx context.Context, call *tool.Call) (tool.Result, error) {
	res, err := t.call(ctx, call)
	res.Content = redact.Text(res.Content)
	return res, redact.Error(err)
}

func (t *Tool) call(ctx context.Context, call *tool.Call) (tool.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	body := call.Arguments
	if len(body) == 0 {
		body = json.RawMessage(`{}`)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(body))
	if err != nil {
		// The parse error quotes the URL whole; redact.Error cannot be
		// sure to find user-info in a URL that does not parse.
		return tool.Result{}, fmt.Errorf("tool %s: url %s does not parse (fix tools.%s.url)", t.cfg.Name, redact.URL(t.cfg.URL), t.cfg.Name)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/plain")
	for k, v := range t.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Idempotency-Key", call.IdempotencyKey)
	resp, err := t.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil && context.Cause(ctx) == context.DeadlineExceeded {
			return tool.Result{}, fmt.Errorf("tool %s: no answer from %s within %s", t.cfg.Name, redact.URL(t.cfg.URL), t.cfg.Timeout)
		}
		return tool.Result{}, fmt.Errorf("tool %s: %w", t.cfg.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return tool.Result{}, fmt.Errorf("tool %s: read response: %w", t.cfg.Name, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return tool.Result{Content: fmt.Sprintf("HTTP %d from %s: %s", resp.StatusCode, t.cfg.Name, bytes.TrimSpace(data)), IsError: true}, nil
	}
	return tool.Result{Content: string(data)}, nil
}
