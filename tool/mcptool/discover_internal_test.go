package mcptool

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDiscoverDropsUserInfo checks that user-info in a server's URL (Basic
// authentication to that server) does not become part of the OAuth
// resource, which goes to the authorization server, into the address a
// person opens, and into the saved grant.
func TestDiscoverDropsUserInfo(t *testing.T) {
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-authorization-server" {
			http.NotFound(w, r) // no protected resource metadata: the server is its own
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "token_endpoint": issuer + "/token",
			"authorization_endpoint": issuer + "/authorize", "response_types_supported": []string{"code"},
			"code_challenge_methods_supported": []string{"S256"}})
	}))
	t.Cleanup(srv.Close)
	issuer = srv.URL
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct{ name, url string }{
		{"user and password", "http://alice:s3cret@" + host + "/mcp"},
		{"token as user", "http://s3cret@" + host + "/mcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prm, asm, err := discover(context.Background(), srv.Client(), nil, tc.url, "")
			if err != nil {
				t.Fatal(err)
			}
			if prm.Resource != srv.URL+"/mcp" {
				t.Errorf("resource %q, want %q", prm.Resource, srv.URL+"/mcp")
			}
			for _, as := range prm.AuthorizationServers {
				if strings.Contains(as, "s3cret") {
					t.Errorf("authorization server %q holds the credentials", as)
				}
			}
			if asm.Issuer != issuer {
				t.Errorf("issuer %q, want %q", asm.Issuer, issuer)
			}
		})
	}
}
