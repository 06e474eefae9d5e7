package anthropic

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
	cfg.BaseURL = s.URL
	if cfg.Model == "" {
		cfg.Model = "claude-sonnet-4-5"
	}
	if cfg.APIKey == "" {
		cfg.APIKey = "sk-ant-test"
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func userRequest(text string) *model.Request {
	return &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: text}}}
}

// weatherRequest is a conversation that exercises every mapping: system
// prompts in two places, assistant text with parallel tool calls, a
// successful and a failed tool result followed by user text (all one user
// turn), and tools with and without parameters.
func weatherRequest() *model.Request {
	return &model.Request{
		Messages: []model.Message{
			{Role: model.RoleSystem, Content: "You answer weather questions."},
			{Role: model.RoleUser, Content: "How warm is it in Rome and Atlantis?"},
			{Role: model.RoleAssistant, Content: "Looking both up.", ToolCalls: []model.ToolCall{
				{ID: "toolu_1", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Rome"}`)},
				{ID: "toolu_2", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Atlantis"}`)},
			}},
			{Role: model.RoleTool, ToolCallID: "toolu_1", Name: "get_weather", Content: `{"temp_c":21}`},
			{Role: model.RoleTool, ToolCallID: "toolu_2", Name: "get_weather", Content: "unknown city", IsError: true},
			{Role: model.RoleUser, Content: "Skip Atlantis."},
			{Role: model.RoleAssistant, Content: "Rome is 21°C."},
			{Role: model.RoleSystem, Content: "Prefer celsius."},
			{Role: model.RoleUser, Content: "Now Paris and Oslo."},
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
			name:     "tool use",
			req:      weatherRequest(),
			reply:    jsonReply(fixture(t, "message_tool_use.json")),
			wantBody: fixture(t, "request_tools.json"),
			want: &model.Response{
				Message: model.Message{Role: model.RoleAssistant, Content: "I'll check both cities.", ToolCalls: []model.ToolCall{
					{ID: "toolu_01A09q90qw90lq917835lq9", Name: "get_weather", Arguments: json.RawMessage(`{"city": "Paris", "unit": "celsius"}`)},
					{ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Name: "get_weather", Arguments: json.RawMessage(`{"city": "Oslo", "unit": "celsius"}`)},
				}},
				// 472 uncached + 1024 read from the cache.
				Usage:      model.Usage{InputTokens: 1496, OutputTokens: 89, CachedInputTokens: 1024},
				Model:      "claude-sonnet-4-5-20250929",
				StopReason: "tool_use",
			},
		},
		{
			name:       "streamed text and tool use",
			req:        weatherRequest(),
			stream:     true,
			reply:      sseReply(fixture(t, "stream_text_tool_use.sse")),
			wantBody:   withFields(t, fixture(t, "request_tools.json"), map[string]any{"stream": true}),
			wantDeltas: []string{"I'll check ", "both cities."},
			want: &model.Response{
				Message: model.Message{Role: model.RoleAssistant, Content: "I'll check both cities.", ToolCalls: []model.ToolCall{
					{ID: "toolu_01A09q90qw90lq917835lq9", Name: "get_weather", Arguments: json.RawMessage(`{"city": "Paris"}`)},
					{ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Name: "get_weather", Arguments: json.RawMessage(`{"city": "Oslo"}`)},
				}},
				Usage:      model.Usage{InputTokens: 472, OutputTokens: 89},
				Model:      "claude-sonnet-4-5-20250929",
				StopReason: "tool_use",
			},
		},
		{
			name: "output schema",
			req: &model.Request{
				Messages:     []model.Message{{Role: model.RoleUser, Content: "Weather in Paris as JSON."}},
				OutputSchema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"temp_c":{"type":"number"}},"required":["city","temp_c"],"additionalProperties":false}`),
			},
			reply:    jsonReply(fixture(t, "message_json.json")),
			wantBody: fixture(t, "request_schema.json"),
			want: &model.Response{
				Message:    model.Message{Role: model.RoleAssistant, Content: `{"city":"Paris","temp_c":18}`},
				Usage:      model.Usage{InputTokens: 188, OutputTokens: 14},
				Model:      "claude-sonnet-4-5-20250929",
				StopReason: "end_turn",
			},
		},
		{
			// The SDK refuses a non-streaming call this large, so the
			// provider streams without telling anyone.
			name:     "large max tokens without sink streams",
			req:      &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "Write a novel."}}, MaxTokens: 64000},
			reply:    sseReply(fixture(t, "stream_text_tool_use.sse")),
			wantBody: `{"model":"claude-sonnet-4-5","max_tokens":64000,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"Write a novel."}]}]}`,
			want: &model.Response{
				Message: model.Message{Role: model.RoleAssistant, Content: "I'll check both cities.", ToolCalls: []model.ToolCall{
					{ID: "toolu_01A09q90qw90lq917835lq9", Name: "get_weather", Arguments: json.RawMessage(`{"city": "Paris"}`)},
					{ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Name: "get_weather", Arguments: json.RawMessage(`{"city": "Oslo"}`)},
				}},
				Usage:      model.Usage{InputTokens: 472, OutputTokens: 89},
				Model:      "claude-sonnet-4-5-20250929",
				StopReason: "tool_use",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, tt.reply)
			p := newProvider(t, s, Config{Headers: map[string]string{"Anthropic-Beta": "test-beta"}})

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
			if r.method != http.MethodPost || r.path != "/v1/messages" {
				t.Errorf("request is %s %s, want POST /v1/messages", r.method, r.path)
			}
			if got := r.header.Get("X-Api-Key"); got != "sk-ant-test" {
				t.Errorf("X-Api-Key = %q, want the configured key", got)
			}
			if got := r.header.Get("Anthropic-Version"); got == "" {
				t.Error("no Anthropic-Version header")
			}
			if got := r.header.Get("Anthropic-Beta"); got != "test-beta" {
				t.Errorf("Anthropic-Beta = %q, want the configured header", got)
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

func TestDefaultMaxTokens(t *testing.T) {
	tests := []struct {
		name      string
		cfg       int
		req       int
		wantField float64
	}{
		{"default", 0, 0, DefaultMaxTokens},
		{"config", 1000, 0, 1000},
		{"request wins", 1000, 50, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, jsonReply(fixture(t, "message_json.json")))
			p := newProvider(t, s, Config{MaxTokens: tt.cfg})
			req := userRequest("hi")
			req.MaxTokens = tt.req
			if _, err := p.Generate(context.Background(), req, nil); err != nil {
				t.Fatal(err)
			}
			var body struct {
				MaxTokens float64 `json:"max_tokens"`
			}
			if err := json.Unmarshal(s.requests()[0].body, &body); err != nil {
				t.Fatal(err)
			}
			if body.MaxTokens != tt.wantField {
				t.Errorf("max_tokens = %v, want %v", body.MaxTokens, tt.wantField)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	okBody := fixture(t, "message_json.json")
	okStream := fixture(t, "stream_text_tool_use.sse")
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
				errorReply(429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`, map[string]string{"Retry-After": "0"}),
				errorReply(429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`, map[string]string{"Retry-After": "0"}),
				jsonReply(okBody),
			},
			wantCalls: 3,
		},
		{
			name:   "529 then success while streaming",
			stream: true,
			replies: []reply{
				errorReply(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, map[string]string{"Retry-After-Ms": "1"}),
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
				errorReply(500, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, map[string]string{"Retry-After-Ms": "1"}),
			},
			wantCalls:  3,
			wantStatus: 500,
			wantMsg:    "Internal server error",
			wantAfter:  time.Millisecond,
		},
		{
			name: "400 is not retried",
			replies: []reply{
				errorReply(400, `{"type":"error","error":{"type":"invalid_request_error","message":"messages.1.content.0.tool_use.input: Input should be a valid dictionary"}}`, nil),
				jsonReply(okBody),
			},
			wantCalls:  1,
			wantStatus: 400,
			wantMsg:    "messages.1.content.0.tool_use.input: Input should be a valid dictionary",
		},
		{
			name:       "negative MaxRetries never retries",
			maxRetries: -1,
			replies: []reply{
				errorReply(429, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`, map[string]string{"Retry-After": "7"}),
				jsonReply(okBody),
			},
			wantCalls:  1,
			wantStatus: 429,
			wantMsg:    "slow down",
			wantAfter:  7 * time.Second,
		},
		{
			name:       "JSON error body that is not an object",
			maxRetries: -1,
			replies:    []reply{errorReply(503, `"upstream unavailable"`, nil)},
			wantCalls:  1,
			wantStatus: 503,
			wantMsg:    `"upstream unavailable"`,
		},
		{
			name:       "plain text error body",
			maxRetries: -1,
			replies:    []reply{{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html>Bad Gateway</html>\n"}},
			wantCalls:  1,
			wantStatus: 502,
			wantMsg:    "<html>Bad Gateway</html>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, tt.replies...)
			p := newProvider(t, s, Config{Model: "claude-haiku-4-5", MaxRetries: tt.maxRetries})
			var sink func(model.Delta)
			if tt.stream {
				sink = func(model.Delta) {}
			}
			resp, err := p.Generate(context.Background(), userRequest("hi"), sink)

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
			want := &model.StatusError{Provider: "anthropic", StatusCode: tt.wantStatus, Message: tt.wantMsg, RetryAfter: tt.wantAfter}
			if !reflect.DeepEqual(se, want) {
				t.Errorf("StatusError = %+v, want %+v", se, want)
			}
			for _, part := range []string{`"claude-haiku-4-5"`, s.URL + "/v1/messages"} {
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
		wantStatus int
	}{
		{
			name:       "cut off before message_stop",
			body:       fixture(t, "stream_truncated.sse"),
			wantDeltas: []string{"I'll check ", "both cities."},
			wantErr:    "stream ended before the model finished",
		},
		{
			// Overloaded mid-stream arrives on a 200; it must still read as
			// the transient 529 it is.
			name:       "error event",
			body:       fixture(t, "stream_error_event.sse"),
			wantDeltas: []string{"Hel"},
			wantErr:    "Overloaded",
			wantStatus: 529,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, sseReply(tt.body))
			p := newProvider(t, s, Config{})
			var deltas []string
			_, err := p.Generate(context.Background(), userRequest("hi"), func(d model.Delta) { deltas = append(deltas, d.Text) })
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), s.URL) {
				t.Errorf("error %q does not name the endpoint", err)
			}
			var se *model.StatusError
			if tt.wantStatus != 0 {
				if !errors.As(err, &se) || se.StatusCode != tt.wantStatus || !se.Temporary() {
					t.Errorf("error %v: want a temporary *model.StatusError with code %d", err, tt.wantStatus)
				}
			} else if errors.As(err, &se) {
				t.Errorf("error %v is a StatusError, but no status was received", err)
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
	// The Anthropic SDK honours Retry-After without a cap, so cancellation
	// is the only bound on the wait.
	s := newFakeServer(t, errorReply(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, map[string]string{"Retry-After": "3600"}))
	p := newProvider(t, s, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Generate(ctx, userRequest("hi"), nil)
		done <- err
	}()
	<-s.answered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
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

func TestToolInput(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, `{}`},
		{`{"city":"Rome"}`, `{"city":"Rome"}`},
		{` {"a":1} `, `{"a":1}`},
		// Text another provider's model sent instead of JSON.
		{`"{city: Rome"`, `{}`},
		{`[1,2]`, `{}`},
	}
	for _, tt := range tests {
		if got := string(toolInput(json.RawMessage(tt.in))); got != tt.want {
			t.Errorf("toolInput(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no model", Config{BaseURL: "http://localhost:8000"}},
		{"relative base URL", Config{BaseURL: "localhost:8000", Model: "m"}},
		{"negative timeout", Config{BaseURL: "http://localhost:8000", Model: "m", Timeout: -time.Second}},
		{"negative max tokens", Config{BaseURL: "http://localhost:8000", Model: "m", MaxTokens: -1}},
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
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "3"}, 250 * time.Millisecond},
		{map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{map[string]string{"Retry-After": "-4"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
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
