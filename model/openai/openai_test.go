package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/model"
)

// reply is one scripted HTTP answer of a fakeServer.
type reply struct {
	status int
	header map[string]string
	body   string
	// hangup closes the connection without answering, as a crashed or
	// restarted server would.
	hangup bool
	// stall never answers, until the client gives up.
	stall bool
	// stallAfter, when positive, sends the status, the headers and that
	// many bytes of the body, then stalls: an answer that stops coming.
	stallAfter int
}

// recorded is one request a fakeServer received.
type recorded struct {
	method, path string
	header       http.Header
	body         []byte
}

// fakeServer is a loopback HTTP server that answers requests from a script,
// repeating the last reply once the script runs out, and records every
// request.
type fakeServer struct {
	*httptest.Server
	t       *testing.T
	mu      sync.Mutex
	replies []reply
	reqs    []recorded
	// answered receives a value after each reply is written, so tests can
	// wait for an attempt without sleeping.
	answered chan struct{}
	// arrived receives a value when a request arrives, before it is
	// answered.
	arrived chan struct{}
}

func newFakeServer(t *testing.T, replies ...reply) *fakeServer {
	t.Helper()
	s := &fakeServer{t: t, replies: replies, answered: make(chan struct{}, 100), arrived: make(chan struct{}, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	defer func() { s.answered <- struct{}{} }()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("reading request body: %v", err)
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, recorded{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
	rep := s.replies[min(len(s.reqs), len(s.replies))-1]
	s.mu.Unlock()
	s.arrived <- struct{}{}

	if rep.stall {
		<-r.Context().Done()
		return
	}
	if rep.hangup {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			s.t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	if rep.stallAfter > 0 {
		io.WriteString(w, rep.body[:rep.stallAfter])
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		return
	}
	io.WriteString(w, rep.body)
}

func (s *fakeServer) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonReply(body string) reply {
	return reply{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: body}
}

func sseReply(body string) reply {
	return reply{status: 200, header: map[string]string{"Content-Type": "text/event-stream"}, body: body}
}

func errorReply(status int, body string, header map[string]string) reply {
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range header {
		h[k] = v
	}
	return reply{status: status, header: h, body: body}
}

// assertJSON fails unless got and want hold the same JSON value.
func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", "  ")
		wi, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("request body differs\ngot:  %s\nwant: %s", gi, wi)
	}
}

// withFields returns the JSON object doc with extra top-level fields.
func withFields(t *testing.T, doc string, fields map[string]any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newProvider(t *testing.T, s *fakeServer, cfg Config) *Provider {
	t.Helper()
	cfg.BaseURL = s.URL + "/v1"
	if cfg.Model == "" {
		cfg.Model = "gpt-4o-mini"
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// weatherRequest is a conversation that exercises every message kind: a
// system prompt, assistant text with parallel tool calls, a successful and a
// failed tool result, and tools with and without parameters.
func weatherRequest() *model.Request {
	return &model.Request{
		Messages: []model.Message{
			{Role: model.RoleSystem, Content: "You answer weather questions."},
			{Role: model.RoleUser, Content: "How warm is it in Rome and Atlantis?"},
			{Role: model.RoleAssistant, Content: "Looking both up.", ToolCalls: []model.ToolCall{
				{ID: "call_1", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Rome"}`)},
				{ID: "call_2", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Atlantis"}`)},
			}},
			{Role: model.RoleTool, ToolCallID: "call_1", Name: "get_weather", Content: `{"temp_c":21}`},
			{Role: model.RoleTool, ToolCallID: "call_2", Name: "get_weather", Content: "unknown city", IsError: true},
			{Role: model.RoleAssistant, Content: "Rome is 21°C; Atlantis is not a city I know."},
			{Role: model.RoleUser, Content: "Now Paris and Oslo, in celsius."},
		},
		Tools: []model.ToolSpec{
			{
				Name:        "get_weather",
				Description: "Current weather for a city.",
				Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city"]}`),
			},
			{Name: "now"},
		},
		MaxTokens:   256,
		Temperature: ptr(0.2),
	}
}

func TestGenerate(t *testing.T) {
	schemaRequest := &model.Request{
		Messages:     []model.Message{{Role: model.RoleUser, Content: "Weather in Paris as JSON."}},
		OutputSchema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"temp_c":{"type":"number"}},"required":["city","temp_c"],"additionalProperties":false}`),
	}
	tests := []struct {
		name       string
		req        *model.Request
		stream     bool
		reply      reply
		wantBody   string
		wantDeltas []string
		want       *model.Response
	}{
		{
			name:     "tool calls",
			req:      weatherRequest(),
			reply:    jsonReply(fixture(t, "completion_tool_calls.json")),
			wantBody: fixture(t, "request_tools.json"),
			want: &model.Response{
				Message: model.Message{Role: model.RoleAssistant, ToolCalls: []model.ToolCall{
					{ID: "call_Qm3sV0tEa1bXk9yN2pLw4R8d", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris","unit":"celsius"}`)},
					{ID: "call_7HfKx2bW9nLqP0sT4vYc1MZe", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Oslo","unit":"celsius"}`)},
				}},
				Usage:      model.Usage{InputTokens: 112, OutputTokens: 52},
				Model:      "gpt-4o-mini-2024-07-18",
				StopReason: "tool_calls",
			},
		},
		{
			name:   "streamed text and tool calls",
			req:    weatherRequest(),
			stream: true,
			reply:  sseReply(fixture(t, "stream_text_tool_calls.sse")),
			wantBody: withFields(t, fixture(t, "request_tools.json"), map[string]any{
				"stream":         true,
				"stream_options": map[string]any{"include_usage": true},
			}),
			wantDeltas: []string{"Checking ", "both cities."},
			want: &model.Response{
				Message: model.Message{Role: model.RoleAssistant, Content: "Checking both cities.", ToolCalls: []model.ToolCall{
					{ID: "call_Qm3sV0tEa1bXk9yN2pLw4R8d", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)},
					{ID: "call_7HfKx2bW9nLqP0sT4vYc1MZe", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Oslo"}`)},
				}},
				Usage:      model.Usage{InputTokens: 112, OutputTokens: 47},
				Model:      "gpt-4o-mini-2024-07-18",
				StopReason: "tool_calls",
			},
		},
		{
			// vLLM with continuous_usage_stats reports running totals on
			// every chunk; summing them would overcount.
			name:       "streamed running usage totals",
			req:        &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "Say hi."}}},
			stream:     true,
			reply:      sseReply(fixture(t, "stream_running_usage.sse")),
			wantBody:   `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi."}],"stream":true,"stream_options":{"include_usage":true}}`,
			wantDeltas: []string{"Hi", " there", "!"},
			want: &model.Response{
				Message:    model.Message{Role: model.RoleAssistant, Content: "Hi there!"},
				Usage:      model.Usage{InputTokens: 9, OutputTokens: 3},
				Model:      "Qwen/Qwen2.5-7B-Instruct",
				StopReason: "stop",
			},
		},
		{
			name:     "output schema",
			req:      schemaRequest,
			reply:    jsonReply(fixture(t, "completion_json.json")),
			wantBody: fixture(t, "request_schema.json"),
			want: &model.Response{
				Message:    model.Message{Role: model.RoleAssistant, Content: `{"city":"Paris","temp_c":18}`},
				Usage:      model.Usage{InputTokens: 61, OutputTokens: 11},
				Model:      "gpt-4o-mini-2024-07-18",
				StopReason: "stop",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, tt.reply)
			p := newProvider(t, s, Config{APIKey: "sk-test", Headers: map[string]string{"X-Gateway": "myriad"}})

			var deltas []string
			var sink func(model.Delta)
			if tt.stream {
				sink = func(d model.Delta) { deltas = append(deltas, d.Text) }
			}
			got, err := p.Generate(context.Background(), tt.req, sink)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}

			reqs := s.requests()
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost || r.path != "/v1/chat/completions" {
				t.Errorf("request is %s %s, want POST /v1/chat/completions", r.method, r.path)
			}
			if got := r.header.Get("Authorization"); got != "Bearer sk-test" {
				t.Errorf("Authorization = %q, want the API key as a bearer token", got)
			}
			if got := r.header.Get("X-Gateway"); got != "myriad" {
				t.Errorf("X-Gateway = %q, want the configured header", got)
			}
			assertJSON(t, r.body, tt.wantBody)

			if !reflect.DeepEqual(deltas, tt.wantDeltas) {
				t.Errorf("deltas = %q, want %q", deltas, tt.wantDeltas)
			}
			if !reflect.DeepEqual(got, tt.want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tt.want)
				t.Errorf("response differs\ngot:  %s\nwant: %s", gj, wj)
			}
		})
	}
}

// TestStreamMatchesNonStreaming checks the promise of model.Provider that
// streaming changes only how text arrives, not the response.
func TestStreamMatchesNonStreaming(t *testing.T) {
	s := newFakeServer(t, sseReply(fixture(t, "stream_text_tool_calls.sse")))
	p := newProvider(t, s, Config{})
	streamed, err := p.Generate(context.Background(), weatherRequest(), func(model.Delta) {})
	if err != nil {
		t.Fatal(err)
	}
	s2 := newFakeServer(t, jsonReply(`{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18",
		"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":"Checking both cities.","tool_calls":[
		{"id":"call_Qm3sV0tEa1bXk9yN2pLw4R8d","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
		{"id":"call_7HfKx2bW9nLqP0sT4vYc1MZe","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]}}],
		"usage":{"prompt_tokens":112,"completion_tokens":47,"total_tokens":159}}`))
	plain, err := newProvider(t, s2, Config{}).Generate(context.Background(), weatherRequest(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(streamed, plain) {
		t.Errorf("streamed response %+v differs from non-streamed %+v", streamed, plain)
	}
}

func TestMaxTokensField(t *testing.T) {
	tests := []struct {
		baseURL string
		want    string
	}{
		{"https://api.openai.com/v1", `"max_completion_tokens":100`},
		{"http://localhost:11434/v1", `"max_tokens":100`},
	}
	for _, tt := range tests {
		t.Run(tt.baseURL, func(t *testing.T) {
			p, err := New(Config{BaseURL: tt.baseURL, Model: "m"})
			if err != nil {
				t.Fatal(err)
			}
			params, err := p.params(&model.Request{MaxTokens: 100, Messages: []model.Message{{Role: model.RoleUser, Content: "hi"}}})
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(params)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tt.want) || strings.Count(string(b), "max_") != 1 {
				t.Errorf("params %s: want exactly one max field, %s", b, tt.want)
			}
		})
	}
}

func TestInvalidToolArguments(t *testing.T) {
	// Small models sometimes emit arguments that are not JSON; the response
	// must still be journalable, and the text must go back unchanged.
	s := newFakeServer(t, jsonReply(`{"id":"c","object":"chat.completion","created":1,"model":"llama3.2",
		"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":"","tool_calls":[
		{"id":"call_x","type":"function","function":{"name":"get_weather","arguments":"{city: Paris"}}]}}],
		"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`))
	p := newProvider(t, s, Config{})
	resp, err := p.Generate(context.Background(), &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "hi"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	args := resp.Message.ToolCalls[0].Arguments
	if _, err := json.Marshal(resp); err != nil {
		t.Fatalf("response cannot be journaled: %v", err)
	}
	if string(args) != `"{city: Paris"` {
		t.Errorf("arguments = %s, want the text as a JSON string", args)
	}
	if got := argumentsText(args); got != "{city: Paris" {
		t.Errorf("arguments sent back as %q, want the original text", got)
	}
}

func TestMissingToolCallIDs(t *testing.T) {
	s := newFakeServer(t, jsonReply(`{"id":"c","object":"chat.completion","created":1,"model":"llama3.2",
		"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":"","tool_calls":[
		{"type":"function","function":{"name":"a","arguments":"{}"}},
		{"type":"function","function":{"name":"b","arguments":"{}"}}]}}],
		"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`))
	p := newProvider(t, s, Config{})
	resp, err := p.Generate(context.Background(), &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "hi"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tc := range resp.Message.ToolCalls {
		ids = append(ids, tc.ID)
	}
	if want := []string{"call_0", "call_1"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("tool call ids = %q, want %q", ids, want)
	}
}

func TestRetries(t *testing.T) {
	okBody := fixture(t, "completion_json.json")
	okStream := fixture(t, "stream_text_tool_calls.sse")
	tests := []struct {
		name       string
		maxRetries int
		stream     bool
		replies    []reply
		wantCalls  int
		wantStatus int // 0: success
		wantMsg    string
		wantAfter  time.Duration
	}{
		{
			name: "429 twice then success",
			replies: []reply{
				errorReply(429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, map[string]string{"Retry-After": "0"}),
				errorReply(429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, map[string]string{"Retry-After": "0"}),
				jsonReply(okBody),
			},
			wantCalls: 3,
		},
		{
			name:   "429 then success while streaming",
			stream: true,
			replies: []reply{
				errorReply(429, `{"error":{"message":"Rate limit reached"}}`, map[string]string{"Retry-After-Ms": "1"}),
				sseReply(okStream),
			},
			wantCalls: 2,
		},
		{
			name:      "connection dropped then success",
			replies:   []reply{{hangup: true}, jsonReply(okBody)},
			wantCalls: 2,
		},
		{
			name:       "500 beyond MaxRetries",
			maxRetries: 2,
			replies: []reply{
				errorReply(500, `{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`, map[string]string{"Retry-After-Ms": "1"}),
			},
			wantCalls:  3,
			wantStatus: 500,
			wantMsg:    "The server had an error while processing your request.",
			wantAfter:  time.Millisecond,
		},
		{
			name: "400 is not retried",
			replies: []reply{
				errorReply(400, `{"error":{"message":"Invalid schema for function 'get_weather'.","type":"invalid_request_error","param":"tools[0].function.parameters","code":"invalid_function_parameters"}}`, nil),
				jsonReply(okBody),
			},
			wantCalls:  1,
			wantStatus: 400,
			wantMsg:    "Invalid schema for function 'get_weather'.",
		},
		{
			name:       "negative MaxRetries never retries",
			maxRetries: -1,
			replies: []reply{
				errorReply(429, `{"error":{"message":"slow down"}}`, map[string]string{"Retry-After": "7"}),
				jsonReply(okBody),
			},
			wantCalls:  1,
			wantStatus: 429,
			wantMsg:    "slow down",
			wantAfter:  7 * time.Second,
		},
		{
			// vLLM and others answer without OpenAI's error envelope.
			name: "error body without envelope",
			replies: []reply{
				errorReply(400, `{"object":"error","message":"This model's maximum context length is 8192 tokens.","type":"BadRequestError","param":null,"code":400}`, nil),
			},
			wantCalls:  1,
			wantStatus: 400,
			wantMsg:    "This model's maximum context length is 8192 tokens.",
		},
		{
			name: "error envelope holding a string",
			replies: []reply{
				errorReply(404, `{"error":"model \"llama9\" not found, try pulling it first"}`, nil),
			},
			wantCalls:  1,
			wantStatus: 404,
			wantMsg:    `model "llama9" not found, try pulling it first`,
		},
		{
			name:       "plain text error body",
			maxRetries: -1,
			replies:    []reply{{status: 502, header: map[string]string{"Content-Type": "text/plain"}, body: "upstream connect error\n"}},
			wantCalls:  1,
			wantStatus: 502,
			wantMsg:    "upstream connect error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, tt.replies...)
			p := newProvider(t, s, Config{Model: "qwen2.5-7b", MaxRetries: tt.maxRetries})
			var sink func(model.Delta)
			if tt.stream {
				sink = func(model.Delta) {}
			}
			resp, err := p.Generate(context.Background(), &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "hi"}}}, sink)

			if got := len(s.requests()); got != tt.wantCalls {
				t.Errorf("server got %d requests, want %d", got, tt.wantCalls)
			}
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if resp == nil || (resp.Message.Content == "" && len(resp.Message.ToolCalls) == 0) {
					t.Errorf("empty response %+v", resp)
				}
				return
			}
			var se *model.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *model.StatusError", err, err)
			}
			want := &model.StatusError{Provider: "openai", StatusCode: tt.wantStatus, Message: tt.wantMsg, RetryAfter: tt.wantAfter}
			if !reflect.DeepEqual(se, want) {
				t.Errorf("StatusError = %+v, want %+v", se, want)
			}
			for _, part := range []string{`"qwen2.5-7b"`, s.URL + "/v1/chat/completions"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not name %s", err, part)
				}
			}
		})
	}
}

func TestStreamFailures(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantDeltas []string
		wantErr    string
	}{
		{
			name:       "cut off before finishing",
			body:       fixture(t, "stream_truncated.sse"),
			wantDeltas: []string{"Checking "},
			wantErr:    "stream ended before the model finished",
		},
		{
			name:       "error event",
			body:       fixture(t, "stream_error_event.sse"),
			wantDeltas: []string{"Hel"},
			wantErr:    "The server had an error while processing your request.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, sseReply(tt.body))
			p := newProvider(t, s, Config{})
			var deltas []string
			_, err := p.Generate(context.Background(), &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "hi"}}},
				func(d model.Delta) { deltas = append(deltas, d.Text) })
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), s.URL) {
				t.Errorf("error %q does not name the endpoint", err)
			}
			if !reflect.DeepEqual(deltas, tt.wantDeltas) {
				t.Errorf("deltas = %q, want %q", deltas, tt.wantDeltas)
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("server got %d requests, want 1: a stream that already produced text is not replayed", n)
			}
		})
	}
}

func TestContextCancelStopsRetries(t *testing.T) {
	// A long Retry-After must not outlive the caller: cancellation ends the
	// wait instead of the test blocking for an hour.
	s := newFakeServer(t, errorReply(503, `{"error":{"message":"overloaded"}}`, map[string]string{"Retry-After": "60"}))
	p := newProvider(t, s, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Generate(ctx, &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "hi"}}}, nil)
		done <- err
	}()
	<-s.answered
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		req  *model.Request
		want string
	}{
		{"nil request", nil, "nil request"},
		{"unknown role", &model.Request{Messages: []model.Message{{Role: "narrator", Content: "x"}}}, `unknown role "narrator"`},
		{"tool result without id", &model.Request{Messages: []model.Message{{Role: model.RoleTool, Content: "x"}}}, "no tool call id"},
		{"bad parameters", &model.Request{Tools: []model.ToolSpec{{Name: "t", Parameters: json.RawMessage(`{`)}}}, "not valid JSON"},
		{"bad schema", &model.Request{OutputSchema: json.RawMessage(`{`)}, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, jsonReply(`{}`))
			p := newProvider(t, s, Config{})
			_, err := p.Generate(context.Background(), tt.req, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
			if n := len(s.requests()); n != 0 {
				t.Errorf("bad input reached the server (%d requests)", n)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no model", Config{BaseURL: "http://localhost:8000/v1"}},
		{"relative base URL", Config{BaseURL: "localhost:8000/v1", Model: "m"}},
		{"negative timeout", Config{BaseURL: "http://localhost:8000/v1", Model: "m", Timeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Error("New accepted a bad config")
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 5, 16, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		header map[string]string
		want   time.Duration
	}{
		{nil, 0},
		{map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond},
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "3"}, 250 * time.Millisecond},
		{map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{map[string]string{"Retry-After": "-4"}, 0},
		{map[string]string{"Retry-After": "NaN"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": "1e300"}, time.Duration(1<<63 - 1)},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("retryAfter(%v) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestNoAPIKey(t *testing.T) {
	// Local servers such as Ollama need no key; sending an empty bearer
	// token would make some of them reject the request.
	t.Setenv("OPENAI_API_KEY", "")
	s := newFakeServer(t, jsonReply(fixture(t, "completion_json.json")))
	p := newProvider(t, s, Config{})
	if _, err := p.Generate(context.Background(), &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "hi"}}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.requests()[0].header.Values("Authorization"); len(got) != 0 {
		t.Errorf("Authorization = %q, want none", got)
	}
}
