package scripted

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/myriad-ai/myriad/model"
)

func user(s string) model.Message   { return model.Message{Role: model.RoleUser, Content: s} }
func system(s string) model.Message { return model.Message{Role: model.RoleSystem, Content: s} }
func assistant(s string, calls ...model.ToolCall) model.Message {
	return model.Message{Role: model.RoleAssistant, Content: s, ToolCalls: calls}
}
func call(id, name, args string) model.ToolCall {
	return model.ToolCall{ID: id, Name: name, Arguments: json.RawMessage(args)}
}
func toolMsg(id, name, content string) model.Message {
	return model.Message{Role: model.RoleTool, ToolCallID: id, Name: name, Content: content}
}

func mustModel(t testing.TB, yaml string) *Model {
	t.Helper()
	rules, err := ParseRules([]byte(yaml))
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	m, err := New(rules)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func generate(t testing.TB, m *Model, req *model.Request) *model.Response {
	t.Helper()
	resp, err := m.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return resp
}

// matchRules answer with their own name, so a test can see which one won.
const matchRules = `
- {name: turn2-exact, when: {turn: 2, tool_results: 1}, reply: {text: turn2-exact}}
- {name: tool-error, when: {last_tool_error: true}, reply: {text: tool-error}}
- {name: search-done, when: {last_tool: search, last_tool_result: "found (\\d+)"}, reply: {text: search-done}}
- {name: many-tools, when: {min_tool_results: 3}, reply: {text: many-tools}}
- {name: pirate, when: {system: "(?i)pirate"}, reply: {text: pirate}}
- {name: weather-tool, when: {last_user: weather, has_tool: "^get_weather$"}, reply: {text: weather-tool}}
- {name: weather-plain, when: {last_user: weather}, reply: {text: weather-plain}}
- {name: after-tool, when: {last_role: tool}, reply: {text: after-tool}}
- {name: fallback, reply: {text: fallback}}
`

func TestMatch(t *testing.T) {
	m := mustModel(t, matchRules)
	weatherTool := []model.ToolSpec{{Name: "get_weather"}, {Name: "other"}}
	tests := []struct {
		name  string
		msgs  []model.Message
		tools []model.ToolSpec
		want  string
	}{
		{"empty conversation", nil, nil, "fallback"},
		{"plain weather", []model.Message{user("what's the weather?")}, nil, "weather-plain"},
		{"weather with tool", []model.Message{user("weather please")}, weatherTool, "weather-tool"},
		{"has_tool needs a matching name", []model.Message{user("weather")}, []model.ToolSpec{{Name: "get_weather_v2"}}, "weather-plain"},
		{"system regexp", []model.Message{system("You are a PIRATE."), user("weather")}, nil, "pirate"},
		{"system requires a system prompt", []model.Message{user("pirate weather")}, nil, "weather-plain"},
		{"last tool and result", []model.Message{
			user("find it"), assistant("", call("a", "search", `{}`)), toolMsg("a", "search", "found 12 items"),
		}, nil, "turn2-exact"},
		{"last tool name recovered from the call id", []model.Message{
			user("find it"), assistant("", call("a", "x", `{}`)), toolMsg("a", "x", "x"),
			assistant("", call("b", "search", `{}`)), toolMsg("b", "", "found 3"),
		}, nil, "search-done"},
		{"last tool result must match", []model.Message{
			user("find it"), assistant("", call("a", "x", `{}`)), toolMsg("a", "x", "x"),
			assistant("", call("b", "search", `{}`)), toolMsg("b", "search", "nothing"),
		}, nil, "after-tool"},
		{"tool error", []model.Message{
			user("weather"), assistant("", call("a", "get_weather", `{}`)),
			{Role: model.RoleTool, ToolCallID: "a", Name: "get_weather", Content: "boom", IsError: true},
		}, nil, "turn2-exact"},
		{"tool error later turn", []model.Message{
			user("weather"), assistant("", call("a", "x", `{}`)), toolMsg("a", "x", ""),
			assistant("", call("b", "get_weather", `{}`)),
			{Role: model.RoleTool, ToolCallID: "b", Name: "get_weather", Content: "boom", IsError: true},
		}, nil, "tool-error"},
		{"min tool results", []model.Message{
			user("go"), assistant("", call("a", "x", `{}`), call("b", "x", `{}`), call("c", "x", `{}`)),
			toolMsg("a", "x", ""), toolMsg("b", "x", ""), toolMsg("c", "x", ""),
		}, nil, "many-tools"},
		{"last role user after tools", []model.Message{
			user("go"), assistant("", call("a", "x", `{}`)), toolMsg("a", "x", "r"), assistant("done"), user("again"),
		}, nil, "fallback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := generate(t, m, &model.Request{Messages: tt.msgs, Tools: tt.tools})
			if resp.Message.Content != tt.want {
				t.Errorf("matched %q, want %q", resp.Message.Content, tt.want)
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	conv := []model.Message{
		system("sys: region=EU"),
		user("first task"),
		assistant("", call("a", "lookup", `{}`)),
		toolMsg("a", "lookup", "status=ok code=42"),
		user("Please add 3 and 4 for Ann"),
	}
	tests := []struct {
		name, when, text, want string
	}{
		{"literal", `{}`, "plain", "plain"},
		{"fields", `{}`, "{{.Turn}}|{{.ToolResults}}|{{.LastTool}}|{{.LastToolResult}}|{{.Input}}|{{.LastUser}}",
			"2|1|lookup|status=ok code=42|first task|Please add 3 and 4 for Ann"},
		{"numbered groups", `{last_user: "add (\\d+) and (\\d+)"}`, `{{index .Match "0"}}/{{index .Match "1"}}+{{index .Match "2"}}`, "add 3 and 4/3+4"},
		{"named groups", `{last_user: "for (?P<who>\\w+)"}`, "Hi {{.Match.who}}", "Hi Ann"},
		{"missing group is empty", `{last_user: "add"}`, "[{{.Match.nope}}]", "[]"},
		{"named groups from tool result and system", `{last_user: "add (\\d+)", last_tool_result: "code=(?P<code>\\d+)", system: "region=(?P<region>\\w+)"}`,
			`{{index .Match "1"}} {{.Match.code}} {{.Match.region}}`, "3 42 EU"},
		{"numbered groups fall back to the tool result", `{last_tool_result: "status=(\\w+)"}`, `{{index .Match "1"}}`, "ok"},
		{"unmatched optional group", `{last_user: "add (\\d+)( or (\\d+))?"}`, `[{{index .Match "3"}}]`, "[]"},
		{"funcs", `{}`, `{{json .LastUser}} {{upper "x"}} {{lower "Y"}} {{trim "  z "}}`, `"Please add 3 and 4 for Ann" X y z`},
		{"dot changes in with", `{}`, `{{with .LastTool}}{{.}}{{end}}`, "lookup"},
		{"dollar inside range", `{last_user: "(\\d+) and (\\d+)"}`, `{{range $k, $v := .Match}}{{$.Turn}}{{end}}`, "222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := []Rule{{When: mustMatch(t, tt.when), Reply: Reply{Text: tt.text}}}
			m, err := New(rules)
			if err != nil {
				t.Fatal(err)
			}
			resp := generate(t, m, &model.Request{Messages: conv})
			if resp.Message.Content != tt.want {
				t.Errorf("got %q, want %q", resp.Message.Content, tt.want)
			}
		})
	}
}

func mustMatch(t *testing.T, src string) Match {
	t.Helper()
	rules, err := ParseRules([]byte("- {when: " + src + ", reply: {text: x}}"))
	if err != nil {
		t.Fatal(err)
	}
	return rules[0].When
}

func TestToolCallThenAnswer(t *testing.T) {
	m := mustModel(t, `
rules:
  - name: answer
    when: {last_tool: get_weather}
    reply:
      text: "Forecast for {{.Input}}: {{.LastToolResult}}"
  - name: ask
    when:
      last_user: "weather in (?P<city>\\w+)"
    reply:
      text: Checking.
      tool_calls:
        - name: get_weather
          arguments:
            city: "{{.Match.city}}"
            days: 3
            metric: true
            tags: [a, "{{.Turn}}"]
            nested: {quote: 'say "hi" <b>'}
        - name: log
        - name: raw
          arguments: '{"q": {{json .LastUser}}, "n": {{.Turn}}}'
`)
	req := &model.Request{Messages: []model.Message{user("weather in Paris")}}
	resp := generate(t, m, req)
	if resp.StopReason != StopReasonToolCalls || resp.Message.Content != "Checking." || len(resp.Message.ToolCalls) != 3 {
		t.Fatalf("unexpected response %+v", resp)
	}
	want := []model.ToolCall{
		call("call_1_0", "get_weather", `{"city":"Paris","days":3,"metric":true,"nested":{"quote":"say \"hi\" <b>"},"tags":["a","1"]}`),
		call("call_1_1", "log", `{}`),
		call("call_1_2", "raw", `{"q":"weather in Paris","n":1}`),
	}
	for i, w := range want {
		got := resp.Message.ToolCalls[i]
		if got.ID != w.ID || got.Name != w.Name || string(got.Arguments) != string(w.Arguments) {
			t.Errorf("call %d = %s %s %s, want %s %s %s", i, got.ID, got.Name, got.Arguments, w.ID, w.Name, w.Arguments)
		}
	}
	// The same request gives the same answer: replays depend on it.
	again := generate(t, m, req)
	if string(again.Message.ToolCalls[0].Arguments) != string(resp.Message.ToolCalls[0].Arguments) || again.Message.ToolCalls[0].ID != "call_1_0" {
		t.Errorf("second call differs: %+v", again.Message.ToolCalls[0])
	}
	// Mutating a returned constant must not leak into later answers.
	resp.Message.ToolCalls[1].Arguments[0] = 'X'
	if a := generate(t, m, req).Message.ToolCalls[1].Arguments; string(a) != "{}" {
		t.Errorf("constant arguments were shared: %s", a)
	}

	req.Messages = append(req.Messages, resp.Message, toolMsg("call_1_0", "get_weather", "sunny"))
	final := generate(t, m, req)
	if final.Message.Content != "Forecast for weather in Paris: sunny" || final.StopReason != StopReasonStop || final.Model != ModelName {
		t.Errorf("final answer %+v", final)
	}
}

func TestStringArgumentsMustRenderJSON(t *testing.T) {
	m := mustModel(t, `- reply: {tool_calls: [{name: t, arguments: '{"q": {{.LastUser}}}'}]}`)
	_, err := m.Generate(context.Background(), &model.Request{Messages: []model.Message{user("not json")}}, nil)
	if err == nil || !strings.Contains(err.Error(), "rules[0].reply.tool_calls[0].arguments: rendered") || !strings.Contains(err.Error(), "{{json") {
		t.Fatalf("err = %v", err)
	}
}

func TestNoRule(t *testing.T) {
	m := mustModel(t, `- {when: {last_user: "^hello$"}, reply: {text: hi}}`)
	long := strings.Repeat("blah ", 100)
	_, err := m.Generate(context.Background(), &model.Request{Messages: []model.Message{user(long)}}, nil)
	if !errors.Is(err, model.ErrNoRule) {
		t.Fatalf("err = %v, want ErrNoRule", err)
	}
	msg := err.Error()
	for _, want := range []string{"turn 1", `last user message "blah blah`, "…", "add a rule", "catch-all"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if len(msg) > 600 {
		t.Errorf("error not truncated: %d bytes", len(msg))
	}
}

func TestReplyError(t *testing.T) {
	m := mustModel(t, `
- {when: {last_user: overload, times: 2}, reply: {error: "overloaded: {{.LastUser}}", error_status: 503}}
- {when: {last_user: bad}, reply: {error: "bad request"}}
- {reply: {text: ok}}
`)
	req := &model.Request{Messages: []model.Message{user("overload")}}
	for i := 0; i < 2; i++ {
		_, err := m.Generate(context.Background(), req, nil)
		var re *ReplyError
		var se *model.StatusError
		if !errors.As(err, &re) || !errors.As(err, &se) {
			t.Fatalf("call %d: err = %v", i, err)
		}
		if se.StatusCode != 503 || !se.Temporary() || re.Message != "overloaded: overload" || !strings.Contains(re.Rule, "rules[0]") {
			t.Errorf("call %d: %+v %+v", i, re, se)
		}
	}
	if resp := generate(t, m, req); resp.Message.Content != "ok" {
		t.Errorf("third call = %q, want the fallthrough", resp.Message.Content)
	}
	_, err := m.Generate(context.Background(), &model.Request{Messages: []model.Message{user("bad")}}, nil)
	var re *ReplyError
	var se *model.StatusError
	if !errors.As(err, &re) || errors.As(err, &se) || re.Status != 0 {
		t.Errorf("err = %v", err)
	}
}

func TestUsage(t *testing.T) {
	m := mustModel(t, `
- {when: {last_user: fixed}, reply: {text: abc, usage: {input_tokens: 100, output_tokens: 7}}}
- {when: {last_user: half}, reply: {text: abc, usage: {output_tokens: 0}}}
- {reply: {text: "12345", tool_calls: [{name: ab, arguments: {}}]}}
`)
	tests := []struct {
		msgs    []model.Message
		in, out int
	}{
		{[]model.Message{user("fixed")}, 100, 7},
		{[]model.Message{user("half....")}, 2, 0},
		// 9 chars of input; output "12345" + "ab" + "{}" = 9 chars.
		{[]model.Message{system("12"), user("abcdefg")}, 3, 3},
		// Tool calls in the request count too: "é" is one character.
		{[]model.Message{user("é"), assistant("", call("x", "ab", `{"a":1}`))}, 3, 3},
	}
	for i, tt := range tests {
		u := generate(t, m, &model.Request{Messages: tt.msgs}).Usage
		if u.InputTokens != tt.in || u.OutputTokens != tt.out {
			t.Errorf("case %d: usage %+v, want in=%d out=%d", i, u, tt.in, tt.out)
		}
	}
}

func TestStreaming(t *testing.T) {
	for _, text := range []string{"short", "The quick brown fox jumps over the lazy dog, twice and again.", strings.Repeat("é", 50), strings.Repeat("word ", 40)} {
		m, err := New([]Rule{{Reply: Reply{Text: text}}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		resp, err := m.Generate(context.Background(), &model.Request{}, func(d model.Delta) { got = append(got, d.Text) })
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "") != text || resp.Message.Content != text {
			t.Errorf("deltas %q do not rebuild %q", got, text)
		}
		if len(got) < 1 || len(got) > 6 || (len(text) > 40 && len(got) < 2) {
			t.Errorf("%d deltas for %d bytes", len(got), len(text))
		}
		for _, d := range got {
			if !strings.HasPrefix(text, d) && !strings.Contains(text, d) {
				t.Errorf("delta %q is not part of the text", d)
			}
		}
	}
	// Tool-call-only replies stream nothing.
	m := mustModel(t, `- reply: {tool_calls: [{name: x}]}`)
	n := 0
	if _, err := m.Generate(context.Background(), &model.Request{}, func(model.Delta) { n++ }); err != nil || n != 0 {
		t.Errorf("n=%d err=%v", n, err)
	}
}

func TestCanceledContext(t *testing.T) {
	m := mustModel(t, `- reply: {text: x}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Generate(ctx, &model.Request{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestConcurrentGenerate(t *testing.T) {
	m := mustModel(t, `
- {when: {times: 50}, reply: {text: "limited {{.LastUser}}"}}
- {when: {last_user: "(?P<n>\\d+)"}, reply: {text: "n={{.Match.n}}", tool_calls: [{name: t, arguments: {n: "{{.Match.n}}"}}]}}
`)
	var wg sync.WaitGroup
	var mu sync.Mutex
	limited := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				resp, err := m.Generate(context.Background(), &model.Request{Messages: []model.Message{user("7")}}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if strings.HasPrefix(resp.Message.Content, "limited") {
					mu.Lock()
					limited++
					mu.Unlock()
				} else if resp.Message.Content != "n=7" || string(resp.Message.ToolCalls[0].Arguments) != `{"n":"7"}` {
					t.Errorf("got %+v", resp.Message)
				}
			}
		}()
	}
	wg.Wait()
	if limited != 50 {
		t.Errorf("times: 50 answered %d calls", limited)
	}
}

func BenchmarkGenerateLiteral(b *testing.B) {
	m := mustModel(b, `
- {when: {last_tool: search}, reply: {text: done}}
- {when: {last_user: "^hello"}, reply: {text: hi, tool_calls: [{name: search, arguments: {q: x}}]}}
`)
	req := &model.Request{Messages: []model.Message{system("be brief"), user("hello there")}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Generate(context.Background(), req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerateTemplated(b *testing.B) {
	m := mustModel(b, `
- {when: {last_tool: search}, reply: {text: "Found: {{.LastToolResult}}"}}
- {when: {last_user: "find (?P<q>\\w+)"}, reply: {tool_calls: [{name: search, arguments: {q: "{{.Match.q}}"}}]}}
`)
	req := &model.Request{Messages: []model.Message{system("be brief"), user("find cats")}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Generate(context.Background(), req, func(model.Delta) {}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestConditionalJSONArguments(t *testing.T) {
	m := mustModel(t, `
- when:
    last_user: "search for (.+?)(?: limit (\\d+))?$"
  reply:
    tool_calls:
      - name: search
        arguments: '{"query": {{json (index .Match "1")}}, "limit": {{or (index .Match "2") 10}}}'
`)
	for msg, want := range map[string]string{
		`search for "go" tips limit 3`: `{"query":"\"go\" tips","limit":3}`,
		`search for cats`:              `{"query":"cats","limit":10}`,
	} {
		resp := generate(t, m, &model.Request{Messages: []model.Message{user(msg)}})
		if got := string(resp.Message.ToolCalls[0].Arguments); got != want {
			t.Errorf("%s: got %s, want %s", msg, got, want)
		}
	}
}
