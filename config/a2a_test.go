package config_test

import (
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/config"
)

func TestA2AConfig(t *testing.T) {
	base := `
models:
  m: {provider: scripted, rules: [{reply: {text: hi}}]}
agents:
  front: {model: m, tools: [billing]}
  back: {model: m}
`
	tests := []struct {
		name, extra, want string
	}{
		{"valid", "a2a_agents:\n  billing: {url: 'http://127.0.0.1:8421/a2a/billing', idempotent: true, approval: required}\nserver: {public_url: 'https://agents.example.com', a2a: {default: front, publish: [front, back], approvals: client}}\n", ""},
		{"bad url", "a2a_agents:\n  billing: {url: 'ftp://x'}\n", `a2a_agents.billing.url: invalid URL "ftp://x"`},
		{"empty", "a2a_agents:\n  billing:\n", "a2a_agents.billing: empty agent: set url"},
		{"clash with a tool", "a2a_agents:\n  billing: {url: 'http://h/a2a/b'}\ntools:\n  billing: {type: http, url: 'http://h/x', description: d}\n", "a2a_agents.billing: a tool is named billing too"},
		{"unknown field", "a2a_agents:\n  billing: {url: 'http://h/a2a/b', card: x}\n", "a2a_agents.billing.card: unknown field"},
		{"secret header", "a2a_agents:\n  billing: {url: 'http://h/a2a/b', header_env: {Authorization: 'Bearer sk-abcdefabcdef1234'}}\n", "a2a_agents.billing.header_env.Authorization: this looks like a key"},
		{"approval", "a2a_agents:\n  billing: {url: 'http://h/a2a/b', approval: sometimes}\n", `a2a_agents.billing.approval: unknown value "sometimes"`},
		{"unknown tool without it", "", `agents.front.tools[0]: unknown tool "billing" (known: ask_agent, broadcast_message, current_time, send_message)`},
		{"default unknown", "a2a_agents:\n  billing: {url: 'http://h/a2a/b'}\nserver: {a2a: {default: nobody}}\n", `server.a2a.default: unknown agent or flow "nobody" (known: back, front)`},
		{"default unpublished", "a2a_agents:\n  billing: {url: 'http://h/a2a/b'}\nserver: {a2a: {default: back, publish: [front]}}\n", `server.a2a.default: "back" is not in server.a2a.publish`},
		{"publish unknown", "a2a_agents:\n  billing: {url: 'http://h/a2a/b'}\nserver: {a2a: {publish: [front, x]}}\n", `server.a2a.publish: [1]: unknown agent or flow "x"`},
		{"approvals", "a2a_agents:\n  billing: {url: 'http://h/a2a/b'}\nserver: {a2a: {approvals: anyone}}\n", `server.a2a.approvals: unknown value "anyone" (known: operator, client)`},
		{"public url", "a2a_agents:\n  billing: {url: 'http://h/a2a/b'}\nserver: {public_url: 'agents.example.com'}\n", `server.public_url: invalid URL "agents.example.com"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(base + tc.extra))
			if err == nil {
				err = c.Validate()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "sk-abcdef") {
				t.Fatalf("the error repeats the secret: %v", err)
			}
			if tc.want == "" && c.A2AAgents["billing"].Timeout != config.DefaultA2ATimeout {
				t.Fatalf("timeout default = %v", c.A2AAgents["billing"].Timeout)
			}
		})
	}
}
