// Package client calls a Myriad server's HTTP API; the CLI's runs commands
// use it.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/myriad-ai/myriad/internal/redact"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/run"
)

// Client talks to one server.
type Client struct {
	BaseURL string
	Token   string
	// TokenFrom says where Token came from ("the environment variable
	// MYRIAD_API_TOKEN"), for the error of a server that refuses it.
	TokenFrom string
	HTTP      *http.Client
}

// New returns a client for a server such as http://127.0.0.1:8420.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: http.DefaultClient}
}

// Error is an error answer from the server.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code) }

func (c *Client) do(ctx context.Context, method, path string, body any, header http.Header, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the server at %s: %w (is myriad serve running? pass --server)", redact.URL(c.BaseURL), redact.Error(err))
	}
	defer resp.Body.Close()
	return c.decode(resp, out)
}

func (c *Client) decode(resp *http.Response, out any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			msg := eb.Error.Message
			switch {
			case resp.StatusCode == http.StatusUnauthorized && c.TokenFrom != "" && c.Token == "":
				msg = "the server wants an API token, and " + c.TokenFrom + " is empty or unset"
			case resp.StatusCode == http.StatusUnauthorized && c.TokenFrom != "":
				msg = "the server refused the API token in " + c.TokenFrom
			}
			return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: msg}
		}
		return &Error{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(data))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// Submit starts a run; idempotencyKey may be empty.
func (c *Client) Submit(ctx context.Context, req apitype.CreateRunRequest, idempotencyKey string) (*apitype.RunRef, error) {
	h := http.Header{}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	var ref apitype.RunRef
	return &ref, c.do(ctx, http.MethodPost, "/v1/runs", req, h, &ref)
}

// Get reads a run.
func (c *Client) Get(ctx context.Context, id string) (*run.Record, error) {
	var rec run.Record
	return &rec, c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id), nil, nil, &rec)
}

// Wait reads a run once it is terminal or in doubt, waiting up to d
// (at most a minute) on the server.
func (c *Client) Wait(ctx context.Context, id string, d time.Duration) (*run.Record, error) {
	var rec run.Record
	return &rec, c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id)+"?wait="+d.String(), nil, nil, &rec)
}

// List lists runs.
func (c *Client) List(ctx context.Context, f run.Filter) (*apitype.RunList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"agent": f.Agent, "flow": f.Flow, "status": string(f.Status), "parent": f.Parent, "instance": f.Instance, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Roots {
		q.Set("roots", "true")
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	for k, v := range f.Metadata {
		q.Set("metadata["+k+"]", v)
	}
	if !f.From.IsZero() {
		q.Set("from", f.From.Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.Format(time.RFC3339Nano))
	}
	var out apitype.RunList
	return &out, c.do(ctx, http.MethodGet, "/v1/runs?"+q.Encode(), nil, nil, &out)
}

// Cancel asks a run to stop.
func (c *Client) Cancel(ctx context.Context, id string) (*run.Record, error) {
	var rec run.Record
	return &rec, c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(id)+"/cancel", nil, nil, &rec)
}

// Delete deletes a root run that ended, with its children.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/runs/"+url.PathEscape(id), nil, nil, nil)
}

// Storage reports what the server's store holds.
func (c *Client) Storage(ctx context.Context) (*apitype.Storage, error) {
	var u apitype.Storage
	return &u, c.do(ctx, http.MethodGet, "/v1/storage", nil, nil, &u)
}

// Resolve decides a run in doubt.
func (c *Client) Resolve(ctx context.Context, id string, res run.Resolution) (*run.Record, error) {
	var rec run.Record
	return &rec, c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(id)+"/resolve", res, nil, &rec)
}

// Approvals lists the tool calls waiting for a person.
func (c *Client) Approvals(ctx context.Context, agent string) (*apitype.ApprovalList, error) {
	q := url.Values{}
	if agent != "" {
		q.Set("agent", agent)
	}
	var out apitype.ApprovalList
	return &out, c.do(ctx, http.MethodGet, "/v1/approvals?"+q.Encode(), nil, nil, &out)
}

// Decide answers one approval of a waiting run.
func (c *Client) Decide(ctx context.Context, runID, approvalID string, d run.Decision) (*run.Record, error) {
	var rec run.Record
	return &rec, c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(runID)+"/approvals/"+url.PathEscape(approvalID), d, nil, &rec)
}

// ProvideInput answers the question a waiting flow run asks at key
// ("node#visit").
func (c *Client) ProvideInput(ctx context.Context, runID, key string, value json.RawMessage) (*run.Record, error) {
	var rec run.Record
	return &rec, c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(runID)+"/input", apitype.InputRequest{Key: key, Value: value}, nil, &rec)
}

// Events follows a run's event stream — its own events and its
// descendants', each with its path — from after lastEventID (0 for the
// start), calling fn for each event until the stream ends or fn returns false.
// A connection that fails (refused, reset, closed by the server while
// idle) is made again, from after the last event seen, a few times.
func (c *Client) Events(ctx context.Context, id string, lastEventID uint64, fn func(run.TreeEvent) bool) error {
	var err error
	for attempt := range eventAttempts {
		var broken bool
		broken, err = c.events(ctx, id, &lastEventID, fn)
		if !broken || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
	return err
}

// eventAttempts bounds how often Events connects to one stream in a row
// without it working.
const eventAttempts = 4

// events reads the stream once; broken reports a connection that failed
// (worth making again), as opposed to an answer or an end.
func (c *Client) events(ctx context.Context, id string, lastEventID *uint64, fn func(run.TreeEvent) bool) (broken bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/v1/runs/"+url.PathEscape(id)+"/events", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastEventID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(*lastEventID, 10))
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return true, fmt.Errorf("cannot reach the server at %s: %w", redact.URL(c.BaseURL), redact.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return false, nil // nothing after lastEventID: the run had already ended
	}
	if resp.StatusCode != http.StatusOK {
		return false, c.decode(resp, nil)
	}
	var parsed bool // an error of ours, not of the connection
	err = ReadSSE(resp.Body, func(typ string, data []byte) (bool, error) {
		if typ == "error" {
			parsed = true
			return false, fmt.Errorf("event stream: %s", data)
		}
		if typ == run.LiveDelta || typ == run.LiveProgress {
			return true, nil // live only; the journal carries what lasts
		}
		var ev run.TreeEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			parsed = true
			return false, fmt.Errorf("event stream: %w", err)
		}
		*lastEventID = ev.Event.Seq
		return fn(ev), nil
	})
	return err != nil && !parsed, err
}

// ReadSSE parses a Server-Sent Events stream, calling fn with each event's
// type and data.
func ReadSSE(r io.Reader, fn func(typ string, data []byte) (bool, error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var typ string
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 {
				more, err := fn(typ, bytes.TrimSuffix(data.Bytes(), []byte("\n")))
				if err != nil || !more {
					return err
				}
			}
			typ = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(line[len("data:"):], " "))
			data.WriteByte('\n')
		}
	}
	return sc.Err()
}

// Fork starts a new run from a step of run id.
func (c *Client) Fork(ctx context.Context, id string, req apitype.ForkRequest) (*apitype.RunRef, error) {
	var ref apitype.RunRef
	return &ref, c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(id)+"/fork", req, nil, &ref)
}

// Agents lists the server's agents.
func (c *Client) Agents(ctx context.Context) ([]apitype.AgentInfo, error) {
	var out struct {
		Agents []apitype.AgentInfo `json:"agents"`
	}
	return out.Agents, c.do(ctx, http.MethodGet, "/v1/agents", nil, nil, &out)
}

// Flows lists the server's flows.
func (c *Client) Flows(ctx context.Context) ([]apitype.FlowInfo, error) {
	var out struct {
		Flows []apitype.FlowInfo `json:"flows"`
	}
	return out.Flows, c.do(ctx, http.MethodGet, "/v1/flows", nil, nil, &out)
}

// Instances lists agent instances from the directory: of agentName ("" for
// every agent's), under a key path ("" for all), a page at a time.
func (c *Client) Instances(ctx context.Context, agentName, under string, limit int, cursor string) (*apitype.InstanceList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"agent": agentName, "under": under, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out apitype.InstanceList
	return &out, c.do(ctx, http.MethodGet, "/v1/instances?"+q.Encode(), nil, nil, &out)
}

// Instance reads an agent instance's state.
func (c *Client) Instance(ctx context.Context, agentName, key string) (*apitype.Instance, error) {
	var out apitype.Instance
	path := "/v1/instances/" + url.PathEscape(agentName)
	for seg := range strings.SplitSeq(key, "/") {
		path += "/" + url.PathEscape(seg)
	}
	return &out, c.do(ctx, http.MethodGet, path, nil, nil, &out)
}

// Broadcast sends a message to every instance a pattern matches;
// idempotencyKey may be empty.
func (c *Client) Broadcast(ctx context.Context, req apitype.BroadcastRequest, idempotencyKey string) (*apitype.BroadcastResult, error) {
	h := http.Header{}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	var out apitype.BroadcastResult
	return &out, c.do(ctx, http.MethodPost, "/v1/broadcasts", req, h, &out)
}
