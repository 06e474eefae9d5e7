package mockllm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/model/scripted"
)

const testRules = `
- name: forecast
  when: {last_tool: get_weather}
  reply:
    text: "Forecast: {{.LastToolResult}}"
- name: tool failed
  when: {last_user: "^fail"}
  reply: {error: "rate limited", error_status: 429}
- name: ask weather
  when: {last_user: "weather in (?P<city>\\w+)"}
  reply:
    text: Checking.
    tool_calls:
      - name: get_weather
        arguments: {city: "{{.Match.city}}"}
- name: greet
  when: {last_user: "(?i)hello"}
  reply:
    text: "Hello there, traveller! This sentence is long enough to be streamed in several pieces."
`

func newTestServer(t testing.TB, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.Rules == nil {
		rules, err := scripted.ParseRules([]byte(testRules))
		if err != nil {
			t.Fatal(err)
		}
		opts.Rules = rules
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func post(t testing.TB, url, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decode[T any](t testing.TB, r io.Reader) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(r).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// Client-side views of the wire format, decoded independently of the
// server's own types.
type clientCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

type clientError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func TestNonStreaming(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	resp := post(t, ts.URL+"/v1/chat/completions", `{"model":"gpt-test","messages":[
		{"role":"system","content":"be nice"},
		{"role":"user","content":[{"type":"text","text":"Hello"},{"type":"image_url","image_url":{"url":"x"}}]}]}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := decode[clientCompletion](t, resp.Body)
	if c.Object != "chat.completion" || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Created == 0 || c.Model != "gpt-test" || len(c.Choices) != 1 {
		t.Fatalf("completion %+v", c)
	}
	ch := c.Choices[0]
	if ch.Message.Role != "assistant" || ch.Message.Content == nil || !strings.HasPrefix(*ch.Message.Content, "Hello there") || ch.FinishReason != "stop" || len(ch.Message.ToolCalls) != 0 {
		t.Errorf("choice %+v", ch)
	}
	// "be nice" + "Hello" = 12 characters = 3 tokens.
	if c.Usage.PromptTokens != 3 || c.Usage.CompletionTokens == 0 || c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
		t.Errorf("usage %+v", c.Usage)
	}
	if st := s.Stats(); st != (Stats{Requests: 1, Completions: 1}) {
		t.Errorf("stats %+v", st)
	}
}

// sseEvent is one decoded "data:" line of a stream.
type sseChunk struct {
	Object  string `json:"object"`
	ID      string `json:"id"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    *int   `json:"index"`
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

type streamResult struct {
	chunks  []sseChunk
	content string
	deltas  int
	calls   map[int]*struct{ id, name, args string }
	finish  string
	done    bool
}

// readStream parses an SSE body with a plain line reader, as a minimal
// client would, and checks the framing along the way.
func readStream(t *testing.T, r io.Reader) *streamResult {
	t.Helper()
	res := &streamResult{calls: map[int]*struct{ id, name, args string }{}}
	sc := bufio.NewScanner(r)
	expectBlank := false
	for sc.Scan() {
		line := sc.Text()
		if expectBlank {
			if line != "" {
				t.Fatalf("event not followed by a blank line: %q", line)
			}
			expectBlank = false
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("unexpected line %q", line)
		}
		expectBlank = true
		if res.done {
			t.Fatalf("data after [DONE]: %q", line)
		}
		if data == "[DONE]" {
			res.done = true
			continue
		}
		var c sseChunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		if c.Object != "chat.completion.chunk" {
			t.Errorf("object %q", c.Object)
		}
		res.chunks = append(res.chunks, c)
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil && *ch.Delta.Content != "" {
				res.content += *ch.Delta.Content
				res.deltas++
			}
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil {
					t.Fatal("tool call delta without index")
				}
				acc := res.calls[*tc.Index]
				if acc == nil {
					acc = &struct{ id, name, args string }{}
					res.calls[*tc.Index] = acc
				}
				acc.id += tc.ID
				acc.name += tc.Function.Name
				acc.args += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				res.finish = *ch.FinishReason
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !res.done {
		t.Fatal("stream did not end with [DONE]")
	}
	return res
}

func TestStreaming(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	resp := post(t, ts.URL+"/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},
		"messages":[{"role":"user","content":"hello"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	res := readStream(t, resp.Body)
	if first := res.chunks[0].Choices[0].Delta; first.Role != "assistant" {
		t.Errorf("first chunk is not the role chunk: %+v", first)
	}
	if !strings.HasPrefix(res.content, "Hello there, traveller!") || !strings.HasSuffix(res.content, "pieces.") || res.deltas < 2 {
		t.Errorf("content %q in %d deltas", res.content, res.deltas)
	}
	if res.finish != "stop" {
		t.Errorf("finish %q", res.finish)
	}
	last := res.chunks[len(res.chunks)-1]
	if last.Usage == nil || len(last.Choices) != 0 || last.Usage.PromptTokens != 2 || last.Usage.TotalTokens != last.Usage.PromptTokens+last.Usage.CompletionTokens {
		t.Errorf("usage chunk %+v", last)
	}
	for _, c := range res.chunks[:len(res.chunks)-1] {
		if c.Usage != nil || c.ID != last.ID {
			t.Errorf("chunk %+v", c)
		}
	}
	if st := s.Stats(); st != (Stats{Requests: 1, Completions: 1, Streamed: 1}) {
		t.Errorf("stats %+v", st)
	}

	// Without include_usage there is no usage chunk.
	res = readStream(t, post(t, ts.URL+"/v1/chat/completions", `{"stream":true,"messages":[{"role":"user","content":"hello"}]}`).Body)
	for _, c := range res.chunks {
		if c.Usage != nil {
			t.Errorf("unexpected usage chunk %+v", c)
		}
	}
}

func TestToolCallRoundTrip(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "stream"}[stream], func(t *testing.T) {
			_, ts := newTestServer(t, Options{})
			first := map[string]any{
				"model":    "m",
				"stream":   stream,
				"messages": []any{map[string]any{"role": "user", "content": "weather in Paris"}},
				"tools": []any{map[string]any{"type": "function", "function": map[string]any{
					"name": "get_weather", "parameters": map[string]any{"type": "object"}}}},
			}
			body, _ := json.Marshal(first)
			resp := post(t, ts.URL+"/v1/chat/completions", string(body))
			var id, name, args, content, finish string
			if stream {
				res := readStream(t, resp.Body)
				if len(res.calls) != 1 {
					t.Fatalf("calls %+v", res.calls)
				}
				id, name, args, content, finish = res.calls[0].id, res.calls[0].name, res.calls[0].args, res.content, res.finish
			} else {
				c := decode[clientCompletion](t, resp.Body)
				m := c.Choices[0].Message
				if len(m.ToolCalls) != 1 || m.ToolCalls[0].Type != "function" {
					t.Fatalf("message %+v", m)
				}
				id, name, args, content, finish = m.ToolCalls[0].ID, m.ToolCalls[0].Function.Name, m.ToolCalls[0].Function.Arguments, *m.Content, c.Choices[0].FinishReason
			}
			if id != "call_1_0" || name != "get_weather" || args != `{"city":"Paris"}` || content != "Checking." || finish != "tool_calls" {
				t.Fatalf("got id=%q name=%q args=%q content=%q finish=%q", id, name, args, content, finish)
			}

			// The tool message names only the call id; the rule on last_tool
			// must still see get_weather.
			second := `{"model":"m","messages":[
				{"role":"user","content":"weather in Paris"},
				{"role":"assistant","content":null,"tool_calls":[{"id":"` + id + `","type":"function","function":{"name":"get_weather","arguments":` + jsonString(args) + `}}]},
				{"role":"tool","tool_call_id":"` + id + `","content":"sunny, 21C"}]}`
			c := decode[clientCompletion](t, post(t, ts.URL+"/v1/chat/completions", second).Body)
			if got := *c.Choices[0].Message.Content; got != "Forecast: sunny, 21C" || c.Choices[0].FinishReason != "stop" {
				t.Errorf("final answer %q", got)
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestFailFirst(t *testing.T) {
	s, ts := newTestServer(t, Options{FailFirst: 2, RetryAfter: 1500 * time.Millisecond})
	body := `{"messages":[{"role":"user","content":"hello"}]}`
	for i := 0; i < 2; i++ {
		resp := post(t, ts.URL+"/v1/chat/completions", body)
		if resp.StatusCode != 500 || resp.Header.Get("Retry-After") != "2" || resp.Header.Get("Retry-After-Ms") != "1500" {
			t.Fatalf("attempt %d: status %d, headers %v", i, resp.StatusCode, resp.Header)
		}
		e := decode[clientError](t, resp.Body)
		if e.Error.Type != "server_error" || e.Error.Message == "" || e.Error.Code == nil {
			t.Errorf("error body %+v", e)
		}
	}
	if resp := post(t, ts.URL+"/v1/chat/completions", body); resp.StatusCode != 200 {
		t.Fatalf("third attempt: %d", resp.StatusCode)
	}
	want := Stats{Requests: 3, Completions: 1, FailedInjected: 2}
	if st := s.Stats(); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	// The /stats endpoint reports the same.
	if st := decode[Stats](t, mustGet(t, ts.URL+"/stats").Body); st != want {
		t.Errorf("GET /stats %+v", st)
	}
}

func TestFailStatus(t *testing.T) {
	_, ts := newTestServer(t, Options{FailFirst: 1, FailStatus: 429})
	resp := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hello"}]}`)
	e := decode[clientError](t, resp.Body)
	if resp.StatusCode != 429 || e.Error.Type != "rate_limit_error" || resp.Header.Get("Retry-After") != "" {
		t.Errorf("status %d, body %+v, headers %v", resp.StatusCode, e, resp.Header)
	}
}

func failurePattern(t *testing.T, seed int64, n int) string {
	t.Helper()
	_, ts := newTestServer(t, Options{FailRate: 0.3, Seed: seed})
	var b strings.Builder
	for i := 0; i < n; i++ {
		resp := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hello"}]}`)
		_, _ = io.Copy(io.Discard, resp.Body)
		switch resp.StatusCode {
		case 200:
			b.WriteByte('.')
		case 500:
			b.WriteByte('x')
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	return b.String()
}

func TestFailRateIsDeterministic(t *testing.T) {
	a, b := failurePattern(t, 42, 200), failurePattern(t, 42, 200)
	if a != b {
		t.Fatalf("same seed, different failures:\n%s\n%s", a, b)
	}
	if c := failurePattern(t, 7, 200); c == a {
		t.Errorf("different seeds gave the same pattern")
	}
	if n := strings.Count(a, "x"); n < 30 || n > 90 {
		t.Errorf("%d of 200 failed at rate 0.3", n)
	}
}

func TestUnitFloatDistribution(t *testing.T) {
	const n = 100000
	below := 0
	for i := uint64(1); i <= n; i++ {
		f := unitFloat(1, i)
		if f < 0 || f >= 1 {
			t.Fatalf("out of range: %v", f)
		}
		if f < 0.1 {
			below++
		}
	}
	if below < n/10-n/100 || below > n/10+n/100 {
		t.Errorf("%d of %d below 0.1", below, n)
	}
}

func TestRuleErrors(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	resp := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"fail now"}]}`)
	e := decode[clientError](t, resp.Body)
	if resp.StatusCode != 429 || e.Error.Type != "rate_limit_error" || e.Error.Message != "rate limited" {
		t.Errorf("status %d body %+v", resp.StatusCode, e)
	}

	resp = post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"what is the meaning of life"}]}`)
	e = decode[clientError](t, resp.Body)
	if resp.StatusCode != 400 || e.Error.Type != "invalid_request_error" || e.Error.Code == nil || *e.Error.Code != "no_rule" ||
		!strings.Contains(e.Error.Message, "what is the meaning of life") {
		t.Errorf("status %d body %+v", resp.StatusCode, e)
	}
	if st := s.Stats(); st != (Stats{Requests: 2, FailedInjected: 1, NoRule: 1}) {
		t.Errorf("stats %+v", st)
	}
}

func TestBadRequests(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	big := `{"messages":[{"role":"user","content":"` + strings.Repeat("a", MaxBodyBytes) + `"}]}`
	tests := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"too large", big, 413, "exceeds"},
		{"malformed", `{"messages":[`, 400, "invalid JSON"},
		{"not an object", `[1,2]`, 400, "invalid JSON"},
		{"no messages", `{"model":"m"}`, 400, "messages"},
		{"bad role", `{"messages":[{"role":"robot","content":"x"}]}`, 400, `messages[0].role: unknown role "robot"`},
		{"bad content", `{"messages":[{"role":"user","content":42}]}`, 400, "messages[0].content"},
		{"tool without name", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{}}]}`, 400, "tools[0].function.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, ts.URL+"/v1/chat/completions", tt.body)
			e := decode[clientError](t, resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(e.Error.Message, tt.msg) || e.Error.Type != "invalid_request_error" {
				t.Errorf("status %d, body %+v", resp.StatusCode, e)
			}
		})
	}
	if st := s.Stats(); st.Requests != int64(len(tests)) || st.Completions != 0 {
		t.Errorf("stats %+v", st)
	}
	if resp := mustGet(t, ts.URL+"/v1/chat/completions"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET completions: %d", resp.StatusCode)
	}
}

func mustGet(t testing.TB, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestModelsAndHealth(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	type modelList struct {
		Object string `json:"object"`
		Data   []struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		} `json:"data"`
	}
	list := decode[modelList](t, mustGet(t, ts.URL+"/v1/models").Body)
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != "scripted" || list.Data[0].Object != "model" {
		t.Errorf("models %+v", list)
	}
	if resp := mustGet(t, ts.URL+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
}

func TestEchoTool(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	resp := post(t, ts.URL+"/v1/tools/echo", `{"city": "Paris", "n": [1, 2]}`, "Idempotency-Key", "run-1/call_1_0")
	type echoReply struct {
		OK             bool            `json:"ok"`
		Echo           json.RawMessage `json:"echo"`
		IdempotencyKey string          `json:"idempotency_key"`
	}
	got := decode[echoReply](t, resp.Body)
	var echo map[string]any
	if err := json.Unmarshal(got.Echo, &echo); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !got.OK || echo["city"] != "Paris" || got.IdempotencyKey != "run-1/call_1_0" {
		t.Errorf("echo %+v", got)
	}

	resp = post(t, ts.URL+"/v1/tools/echo", ``)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"echo":null,"idempotency_key":""`)) {
		t.Errorf("empty body: %d %s", resp.StatusCode, b)
	}
	if resp := post(t, ts.URL+"/v1/tools/echo", `{nope`); resp.StatusCode != 400 {
		t.Errorf("invalid JSON: %d", resp.StatusCode)
	}
	if st := s.Stats(); st != (Stats{ToolCalls: 3}) {
		t.Errorf("stats %+v", st)
	}
}

func TestStatsReset(t *testing.T) {
	s, ts := newTestServer(t, Options{FailFirst: 1})
	post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hello"}]}`)
	post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hello"}]}`)
	post(t, ts.URL+"/v1/tools/echo", `{}`)
	old := decode[Stats](t, post(t, ts.URL+"/stats/reset", ``).Body)
	if old != (Stats{Requests: 2, Completions: 1, FailedInjected: 1, ToolCalls: 1}) {
		t.Errorf("reset returned %+v", old)
	}
	if st := s.Stats(); st != (Stats{}) {
		t.Errorf("after reset %+v", st)
	}
	// A reset does not re-arm FailFirst.
	if resp := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hello"}]}`); resp.StatusCode != 200 {
		t.Errorf("after reset: %d", resp.StatusCode)
	}
}

// The latency wait must end as soon as the client goes away; a handler
// blocked for the full hour would hang this test.
func TestLatencyRespectsCancellation(t *testing.T) {
	s, _ := newTestServer(t, Options{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"messages":[{"role":"user","content":"hello"}]}`))
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Body.Len() != 0 {
		t.Errorf("answered a cancelled request: %s", rec.Body)
	}
	if st := s.Stats(); st.Requests != 1 || st.Completions != 0 {
		t.Errorf("stats %+v", st)
	}

	// Over a real connection: the client gives up once the request has
	// reached the server, and closing the server (which waits for its
	// handlers) returns instead of waiting out the hour.
	arrived := make(chan struct{}, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		s.Handler().ServeHTTP(w, r)
	}))
	ctx, cancel = context.WithCancel(context.Background())
	hreq, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/chat/completions",
		strings.NewReader(`{"messages":[{"role":"user","content":"hello"}]}`))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(hreq)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client error %v", err)
	}
	ts.Close()
}

func TestLatency(t *testing.T) {
	_, ts := newTestServer(t, Options{Latency: 30 * time.Millisecond})
	start := time.Now()
	if resp := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hello"}]}`); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("answered after %v", d)
	}
}

func TestOptionsValidation(t *testing.T) {
	rules, _ := scripted.ParseRules([]byte(testRules))
	tests := []struct {
		opts Options
		want string
	}{
		{Options{}, "no rules"},
		{Options{Rules: rules, FailRate: 1.5}, "fail-rate"},
		{Options{Rules: rules, FailFirst: -1}, "fail-first"},
		{Options{Rules: rules, FailStatus: 200}, "fail-status"},
		{Options{Rules: rules, Latency: -1}, "latency"},
		{Options{Rules: []scripted.Rule{{When: scripted.Match{LastUser: "("}, Reply: scripted.Reply{Text: "x"}}}}, `rules[0].when.last_user: invalid regexp`},
	}
	for _, tt := range tests {
		if _, err := New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q", tt.opts, err, tt.want)
		}
	}
	s, err := New(Options{Rules: rules, FailRate: 0.5})
	if err != nil || s.opts.FailStatus != 500 {
		t.Errorf("default fail status: %v %d", err, s.opts.FailStatus)
	}
}

func TestConcurrentRequests(t *testing.T) {
	s, ts := newTestServer(t, Options{FailRate: 0.2, Seed: 1})
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				stream := (w+i)%2 == 0
				body := `{"stream":` + map[bool]string{true: "true", false: "false"}[stream] + `,"messages":[{"role":"user","content":"hello"}]}`
				req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(body))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}(w)
	}
	wg.Wait()
	st := s.Stats()
	if st.Requests != workers*each || st.Completions+st.FailedInjected != st.Requests || st.Streamed == 0 || st.FailedInjected == 0 {
		t.Errorf("stats %+v", st)
	}
}

func BenchmarkChatCompletion(b *testing.B) {
	_, ts := newTestServer(b, Options{})
	body := []byte(`{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"weather in Paris"}],
		"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`)
	client := ts.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(ts.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
