package mockllm

import (
	"encoding/json"
	"testing"

	"github.com/myriad-ai/myriad/model"
)

// FuzzChatCompletionBody checks that no request body panics the parser, and
// that whatever it accepts converts to a request the scripted model can take
// (tool call arguments stay valid JSON).
func FuzzChatCompletionBody(f *testing.F) {
	seeds := []string{
		``,
		`{}`,
		`null`,
		`[]`,
		`{"messages":null}`,
		`{"messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}]}`,
		`{"messages":[{"role":"user","content":42}]}`,
		`{"messages":[{"role":"developer","content":null},{"role":"user","content":"x"}]}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"weather in Paris"},
		  {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
		  {"role":"tool","tool_call_id":"c1","content":"sunny"}],
		  "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`,
		`{"messages":[{"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"f","arguments":"not json"}}]},{"role":"tool","tool_call_id":"zz","content":"x"}]}`,
		`{"messages":[{"role":"user","content":"x"}],"max_tokens":5,"max_completion_tokens":7,"temperature":0.2,
		  "response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"}}}}`,
		`{"messages":[{"role":"robot"}]}`,
		`{"messages":[{"role":"user","content":"\ud800"}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cr, req, err := parseChatRequest(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if cr == nil || req == nil || len(req.Messages) != len(cr.Messages) {
			t.Fatalf("inconsistent result %v %v", cr, req)
		}
		for _, m := range req.Messages {
			switch m.Role {
			case model.RoleSystem, model.RoleUser, model.RoleAssistant, model.RoleTool:
			default:
				t.Fatalf("role %q leaked through", m.Role)
			}
			for _, tc := range m.ToolCalls {
				if !json.Valid(tc.Arguments) {
					t.Fatalf("invalid arguments %q", tc.Arguments)
				}
			}
		}
	})
}
