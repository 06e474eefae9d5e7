package scripted

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/myriad-ai/myriad/model"
)

// FuzzParseRules checks that no rule file, however broken, panics the parser,
// New, or a call with the resulting model: rule files come from users.
func FuzzParseRules(f *testing.F) {
	seeds := []string{
		"",
		"[]",
		"rules: []",
		"- reply: {text: hi}",
		"- {when: {last_user: '('}, reply: {text: a}}",
		"- {when: {turn: x}, reply: {text: a}}",
		"- reply: {text: '{{.Nope}}'}",
		"- reply: {text: '{{'}",
		"- reply: {tool_calls: [{name: t, arguments: '{\"a\": {{json .LastUser}}}'}]}",
		"- reply: {tool_calls: [{name: t, arguments: {a: [1, {b: '{{.Turn}}'}]}}]}",
		"- {when: {times: 1, last_role: tool, last_tool_error: true}, reply: {error: x, error_status: 429}}",
		"a: &a [*a]",
		"- &r {reply: {text: a}}\n- *r",
		"rules:\n  - reply:\n      usage: {input_tokens: 1}\n      text: '{{range .Match}}{{.}}{{end}}'",
		`{"rules":[{"when":{"last_user":"(?P<x>\\d+)"},"reply":{"text":"{{.Match.x}}"}}]}`,
		"- reply: {tool_calls: [{name: '{{.LastTool}}', arguments: {1: 2}}]}",
		"- reply: {text: '{{template \"x\"}}'}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	req := &model.Request{
		Messages: []model.Message{
			system("sys"), user("weather in Paris 12"),
			assistant("", call("a", "get_weather", `{"city":"Paris"}`)), toolMsg("a", "get_weather", "sunny"),
		},
		Tools: []model.ToolSpec{{Name: "get_weather"}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		m, err := New(rules)
		if err != nil {
			t.Fatalf("ParseRules accepted rules that New rejects: %v", err)
		}
		_, err = m.Generate(context.Background(), req, func(model.Delta) {})
		var re *ReplyError
		if err != nil && !errors.Is(err, model.ErrNoRule) && !errors.As(err, &re) && err.Error() == "" {
			t.Fatal("empty error message")
		}
	})
}
