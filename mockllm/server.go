// Package mockllm is an OpenAI-compatible HTTP server that answers from
// scripted rules (package model/scripted). It lets an agent configured for
// a real OpenAI endpoint run offline, unchanged, and lets tests and
// benchmarks exercise the real HTTP provider path, including streaming,
// latency and injected failures, at thousands of requests per second.
//
// Routes:
//
//	POST /v1/chat/completions  Chat Completions, streaming or not
//	GET  /v1/models            lists the one model, "scripted"
//	POST /v1/tools/echo        a tiny HTTP tool for benchmarks and demos
//	GET  /stats                counters, as JSON
//	POST /stats/reset          zeroes the counters, answering their old values
//	GET  /healthz              readiness check
package mockllm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/model/scripted"
)

// MaxBodyBytes bounds request bodies, so a runaway client cannot make the
// mock allocate without limit; real conversations stay far below it.
const MaxBodyBytes = 8 << 20

// Options configure a Server. The zero value (plus rules) is a fast,
// faultless mock.
type Options struct {
	// Rules answer the completions; at least one is required.
	Rules []scripted.Rule
	// Latency delays every completion answer, failed or not, to imitate a
	// remote model. The wait ends early when the client goes away.
	Latency time.Duration
	// FailFirst fails the first N completion requests (after they are
	// parsed), to test retries deterministically.
	FailFirst int
	// FailStatus is the HTTP status of injected failures; it defaults to
	// 500 when FailFirst or FailRate is set.
	FailStatus int
	// FailRate fails this fraction (0 to 1) of the completion requests after
	// the first FailFirst. Which ones fail is decided by a pseudo-random
	// sequence derived from Seed and the request's arrival number, so a run
	// is repeatable.
	FailRate float64
	// Seed selects the FailRate sequence.
	Seed int64
	// RetryAfter, when set, is advertised on injected failures (as
	// Retry-After in whole seconds, rounded up, and retry-after-ms), to test
	// that clients honour it.
	RetryAfter time.Duration
}

// Stats are the server's counters since start or the last reset. They let a
// test or benchmark check what reached the server, not just what the client
// saw.
type Stats struct {
	// Requests counts POST /v1/chat/completions requests, whatever their
	// outcome.
	Requests int64 `json:"requests"`
	// Completions counts successful completions, streamed or not.
	Completions int64 `json:"completions"`
	// Streamed counts the successful completions that were streamed.
	Streamed int64 `json:"streamed"`
	// FailedInjected counts failures injected by FailFirst/FailRate and by
	// rules whose reply is an error.
	FailedInjected int64 `json:"failed_injected"`
	// NoRule counts completions no rule matched (answered 400).
	NoRule int64 `json:"no_rule"`
	// ToolCalls counts calls of the echo tool, POST /v1/tools/echo.
	ToolCalls int64 `json:"tool_calls"`
}

// Server is the mock. It is safe for concurrent use; create it with New.
type Server struct {
	opts    Options
	model   *scripted.Model
	handler http.Handler
	// seq numbers the completion requests that reach failure injection; it
	// is deliberately not reset with the stats, so a reset between warm-up
	// and measurement does not re-arm FailFirst.
	seq atomic.Int64
	ids atomic.Int64

	requests, completions, streamed, failedInjected, noRule, toolCalls atomic.Int64
}

// New checks the options and compiles the rules, so a bad rule file fails
// at start-up rather than on the first request.
func New(opts Options) (*Server, error) {
	if opts.Latency < 0 {
		return nil, fmt.Errorf("mockllm: latency must not be negative, got %v", opts.Latency)
	}
	if opts.FailFirst < 0 {
		return nil, fmt.Errorf("mockllm: fail-first must not be negative, got %d", opts.FailFirst)
	}
	if math.IsNaN(opts.FailRate) || opts.FailRate < 0 || opts.FailRate > 1 {
		return nil, fmt.Errorf("mockllm: fail-rate must be between 0 and 1, got %v", opts.FailRate)
	}
	if opts.RetryAfter < 0 {
		return nil, fmt.Errorf("mockllm: retry-after must not be negative, got %v", opts.RetryAfter)
	}
	if opts.FailStatus == 0 && (opts.FailFirst > 0 || opts.FailRate > 0) {
		opts.FailStatus = http.StatusInternalServerError
	}
	if opts.FailStatus != 0 && (opts.FailStatus < 400 || opts.FailStatus > 599) {
		return nil, fmt.Errorf("mockllm: fail-status must be an HTTP error status (400 to 599), got %d", opts.FailStatus)
	}
	m, err := scripted.New(opts.Rules)
	if err != nil {
		return nil, fmt.Errorf("mockllm: %w", err)
	}
	s := &Server{opts: opts, model: m}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("POST /v1/tools/echo", s.echo)
	mux.HandleFunc("GET /stats", s.stats)
	mux.HandleFunc("POST /stats/reset", s.resetStats)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	s.handler = mux
	return s, nil
}

// Handler serves all routes; mount it on any http.Server or httptest server.
func (s *Server) Handler() http.Handler { return s.handler }

// Stats reads the counters, for tests in the same process.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:       s.requests.Load(),
		Completions:    s.completions.Load(),
		Streamed:       s.streamed.Load(),
		FailedInjected: s.failedInjected.Load(),
		NoRule:         s.noRule.Load(),
		ToolCalls:      s.toolCalls.Load(),
	}
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads a limited body into a pooled buffer; the caller returns it
// with putBody once nothing refers to its bytes.
func readBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, bool) {
	b := bodyPool.Get().(*bytes.Buffer)
	b.Reset()
	_, err := b.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		putBody(b)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large",
				fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes))
		} else {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_body", "reading the request body: "+err.Error())
		}
		return nil, false
	}
	return b, true
}

func putBody(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 { // do not pin huge buffers in the pool
		bodyPool.Put(b)
	}
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	cr, req, err := parseChatRequest(body.Bytes())
	putBody(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", err.Error())
		return
	}
	fail := s.injectFailure(s.seq.Add(1))
	if err := wait(r.Context(), s.opts.Latency); err != nil {
		return // the client is gone; nobody reads an answer
	}
	if fail {
		s.failedInjected.Add(1)
		if s.opts.RetryAfter > 0 {
			ms := s.opts.RetryAfter.Milliseconds()
			secs := int64(math.Ceil(s.opts.RetryAfter.Seconds()))
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			w.Header().Set("retry-after-ms", strconv.FormatInt(max(ms, 1), 10))
		}
		typ, code := errorKind(s.opts.FailStatus)
		writeError(w, s.opts.FailStatus, typ, code, fmt.Sprintf("injected failure (HTTP %d) by the mock server", s.opts.FailStatus))
		return
	}

	var deltas []string
	var sink func(model.Delta)
	if cr.Stream {
		sink = func(d model.Delta) { deltas = append(deltas, d.Text) }
	}
	resp, err := s.model.Generate(r.Context(), req, sink)
	if err != nil {
		s.generateError(w, r, err)
		return
	}
	name := cr.Model
	if name == "" {
		name = scripted.ModelName
	}
	id := "chatcmpl-" + strconv.FormatInt(s.ids.Add(1), 10)
	created := time.Now().Unix()
	if cr.Stream {
		includeUsage := cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage
		s.writeStream(w, id, created, name, resp, deltas, includeUsage)
		s.streamed.Add(1)
	} else {
		s.writeCompletion(w, id, created, name, resp)
	}
	s.completions.Add(1)
}

func (s *Server) generateError(w http.ResponseWriter, r *http.Request, err error) {
	var re *scripted.ReplyError
	switch {
	case errors.Is(err, model.ErrNoRule):
		s.noRule.Add(1)
		writeError(w, http.StatusBadRequest, "invalid_request_error", "no_rule", err.Error())
	case errors.As(err, &re):
		s.failedInjected.Add(1)
		status := re.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		typ, code := errorKind(status)
		writeError(w, status, typ, code, re.Message)
	case r.Context().Err() != nil:
		// The client is gone.
	default:
		// A rule that cannot render (for example arguments that are not
		// JSON) is a broken script: report it loudly as a server error.
		writeError(w, http.StatusInternalServerError, "server_error", "rule_error", err.Error())
	}
}

// errorKind picks the OpenAI error type and code for a status, so client
// libraries classify injected failures like real ones.
func errorKind(status int) (typ, code string) {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_error", "rate_limit_exceeded"
	case status == http.StatusUnauthorized:
		return "authentication_error", "invalid_api_key"
	case status >= 500:
		return "server_error", "server_error"
	default:
		return "invalid_request_error", "injected_failure"
	}
}

func (s *Server) injectFailure(n int64) bool {
	if n <= int64(s.opts.FailFirst) {
		return true
	}
	if s.opts.FailRate <= 0 {
		return false
	}
	return unitFloat(uint64(s.opts.Seed), uint64(n)) < s.opts.FailRate
}

// unitFloat is a stateless pseudo-random number in [0,1) for the n-th
// request (SplitMix64), so the failure pattern depends only on the seed and
// the arrival order, not on goroutine scheduling inside the server.
func unitFloat(seed, n uint64) float64 {
	z := seed + n*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// wait sleeps for d unless ctx ends first.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) writeCompletion(w http.ResponseWriter, id string, created int64, name string, resp *model.Response) {
	msg := respMessage{Role: "assistant", ToolCalls: wireToolCalls(resp.Message.ToolCalls)}
	if resp.Message.Content != "" || len(msg.ToolCalls) == 0 {
		msg.Content = &resp.Message.Content
	}
	finish := "stop"
	if len(msg.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	writeJSON(w, http.StatusOK, &completion{
		ID:      id,
		Object:  "chat.completion",
		Created: created,
		Model:   name,
		Choices: []choice{{Message: msg, FinishReason: finish}},
		Usage:   toUsage(resp.Usage),
	})
}

// writeStream sends the answer as OpenAI does: a role chunk, content
// deltas, tool call deltas (name first, then arguments, as clients must
// accumulate them), a finish chunk, an optional usage chunk, and [DONE].
func (s *Server) writeStream(w http.ResponseWriter, id string, created int64, name string, resp *model.Response, deltas []string, includeUsage bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)

	buf := bodyPool.Get().(*bytes.Buffer)
	defer putBody(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	c := chunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: name, Choices: make([]chunkChoice, 1)}
	send := func() bool {
		buf.Reset()
		buf.WriteString("data: ")
		if err := enc.Encode(&c); err != nil {
			return false
		}
		buf.WriteByte('\n') // Encode ended the line; a blank line ends the event
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}

	empty := ""
	c.Choices[0].Delta = chunkDelta{Role: "assistant", Content: &empty}
	if !send() {
		return
	}
	for i := range deltas {
		c.Choices[0].Delta = chunkDelta{Content: &deltas[i]}
		if !send() {
			return
		}
	}
	for i, tc := range resp.Message.ToolCalls {
		idx := i
		head := chatToolCall{Index: &idx, ID: tc.ID, Type: "function"}
		head.Function.Name = tc.Name
		c.Choices[0].Delta = chunkDelta{ToolCalls: []chatToolCall{head}}
		if !send() {
			return
		}
		args := chatToolCall{Index: &idx}
		args.Function.Arguments = string(tc.Arguments)
		c.Choices[0].Delta = chunkDelta{ToolCalls: []chatToolCall{args}}
		if !send() {
			return
		}
	}
	finish := "stop"
	if len(resp.Message.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	c.Choices[0].Delta = chunkDelta{}
	c.Choices[0].FinishReason = &finish
	if !send() {
		return
	}
	if includeUsage {
		u := toUsage(resp.Usage)
		c.Choices = []chunkChoice{}
		c.Usage = &u
		if !send() {
			return
		}
	}
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err == nil && flusher != nil {
		flusher.Flush()
	}
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	type entry struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   []entry{{ID: scripted.ModelName, Object: "model", OwnedBy: "myriad"}},
	})
}

func (s *Server) echo(w http.ResponseWriter, r *http.Request) {
	s.toolCalls.Add(1)
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	defer putBody(body)
	payload := bytes.TrimSpace(body.Bytes())
	if len(payload) == 0 {
		payload = []byte("null")
	} else if !json.Valid(payload) {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", "the echo tool takes a JSON body")
		return
	}
	key, _ := json.Marshal(r.Header.Get("Idempotency-Key"))
	out := make([]byte, 0, len(payload)+len(key)+48)
	out = append(out, `{"ok":true,"echo":`...)
	out = append(out, payload...)
	out = append(out, `,"idempotency_key":`...)
	out = append(out, key...)
	out = append(out, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) resetStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Stats{
		Requests:       s.requests.Swap(0),
		Completions:    s.completions.Swap(0),
		Streamed:       s.streamed.Swap(0),
		FailedInjected: s.failedInjected.Swap(0),
		NoRule:         s.noRule.Swap(0),
		ToolCalls:      s.toolCalls.Swap(0),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, &apiError{Error: apiErrorBody{Message: msg, Type: typ, Code: &code}})
}
