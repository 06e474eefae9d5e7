package config_test

import (
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/config"
)

// TestURLErrorsHoldNoCredentials checks that a validation error quoting a
// URL leaves out its user-info: the errors are printed, logged and
// returned by the API.
func TestURLErrorsHoldNoCredentials(t *testing.T) {
	tests := []struct {
		name, edit, replacement, want string
	}{
		{"model base_url", "api_key_env: OPENAI_API_KEY", "api_key_env: OPENAI_API_KEY\n    base_url: ftp://alice:s3cret@llm.example/v1",
			`models.fast.base_url: invalid URL "ftp://llm.example/v1"`},
		{"unparsable base_url", "api_key_env: OPENAI_API_KEY", "api_key_env: OPENAI_API_KEY\n    base_url: http://alice:s3cret@llm.example/%zz",
			`models.fast.base_url: invalid URL "http://llm.example/%zz"`},
		{"tool url", "url: http://127.0.0.1:9000/lookup", "url: ftp://alice:s3cret@127.0.0.1:9000/lookup",
			`tools.lookup.url: invalid URL "ftp://127.0.0.1:9000/lookup"`},
		{"mcp url", "agents:", "mcp_servers:\n  docs:\n    url: ftp://alice:s3cret@mcp.example/mcp\nagents:",
			`mcp_servers.docs.url: invalid URL "ftp://mcp.example/mcp"`},
		{"mcp oauth over http", "agents:", "mcp_servers:\n  docs:\n    url: http://alice:s3cret@mcp.example/mcp\n    oauth: {client_id: myriad, client_secret_env: DOCS_SECRET}\nagents:",
			`mcp_servers.docs.url: OAuth needs https (plain http only to a loopback address): "http://mcp.example/mcp"`},
		{"mcp oauth issuer", "agents:", "mcp_servers:\n  docs:\n    url: https://mcp.example/mcp\n    oauth: {client_id: myriad, client_secret_env: DOCS_SECRET, issuer: 'ftp://alice:s3cret@auth.example'}\nagents:",
			`mcp_servers.docs.oauth.issuer: invalid URL "ftp://auth.example"`},
		{"a2a url", "agents:", "a2a_agents:\n  billing:\n    url: ftp://alice:s3cret@agents.example/a2a/billing\nagents:",
			`a2a_agents.billing.url: invalid URL "ftp://agents.example/a2a/billing"`},
		{"public_url", "agents:", "server:\n  public_url: ftp://alice:s3cret@agents.example\nagents:",
			`server.public_url: invalid URL "ftp://agents.example"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(valid, tc.edit, tc.replacement, 1)
			if src == valid {
				t.Fatalf("edit %q did not apply", tc.edit)
			}
			c, err := config.Parse([]byte(src))
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
			for _, secret := range []string{"s3cret", "alice"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error holds %q: %v", secret, err)
				}
			}
		})
	}
}
