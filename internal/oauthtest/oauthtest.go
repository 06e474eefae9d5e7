// Package oauthtest is an OAuth authorization server for tests: dynamic
// client registration, the authorization code grant with PKCE (a person
// who always says yes), rotating refresh tokens, in front of an MCP
// endpoint that takes its tokens.
package oauthtest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Server is an MCP endpoint behind an authorization server that takes
// dynamic registrations and the authorization code grant with PKCE, and
// approves at once (the person says yes); refresh tokens rotate: "at-N"
// and "rt-N".
type Server struct {
	// URL is the MCP endpoint.
	URL string

	mu        sync.Mutex
	challenge string          // of the pending authorization
	valid     map[string]bool // access tokens the MCP endpoint takes
	refresh   string          // the refresh token that works
	n         int
}

// New serves mcpHandler behind the authorization server.
func New(t testing.TB, mcpHandler http.Handler) *Server {
	t.Helper()
	c := &Server{valid: map[string]bool{}}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	issuer := srv.URL
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/authorize",
			"token_endpoint": issuer + "/token", "registration_endpoint": issuer + "/register",
			"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
			"grant_types_supported": []string{"authorization_code", "refresh_token"}})
	})
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		var m oauthex.ClientRegistrationMetadata
		if json.NewDecoder(r.Body).Decode(&m) != nil || len(m.RedirectURIs) != 1 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"client_id": "dyn-1", "redirect_uris": m.RedirectURIs})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "dyn-1" || q.Get("code_challenge_method") != "S256" || q.Get("resource") != issuer+"/mcp" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.challenge = q.Get("code_challenge")
		c.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=the-code&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		c.mu.Lock()
		defer c.mu.Unlock()
		ok := false
		switch r.Form.Get("grant_type") {
		case "authorization_code":
			sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
			ok = r.Form.Get("code") == "the-code" && base64.RawURLEncoding.EncodeToString(sum[:]) == c.challenge
		case "refresh_token":
			ok = r.Form.Get("refresh_token") == c.refresh
		}
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		c.n++
		access, refresh := fmt.Sprintf("at-%d", c.n), fmt.Sprintf("rt-%d", c.n)
		c.valid[access], c.refresh = true, refresh
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": 3600})
	})
	mux.Handle("GET /.well-known/oauth-protected-resource/mcp", auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource: issuer + "/mcp", AuthorizationServers: []string{issuer}}))
	verify := func(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.valid[token] {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{Expiration: time.Now().Add(time.Hour)}, nil
	}
	mux.Handle("/mcp", auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: issuer + "/.well-known/oauth-protected-resource/mcp"})(mcpHandler))
	c.URL = issuer + "/mcp"
	return c
}

// Issued counts the tokens the server issued.
func (c *Server) Issued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Revoke makes the MCP endpoint refuse an access token.
func (c *Server) Revoke(access string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.valid, access)
}

// Browse is a person's browser: it opens an authorization address and
// follows the authorization server back to the client's listener.
func Browse(t testing.TB) func(string) {
	return func(u string) {
		go func() {
			resp, err := http.Get(u)
			if err != nil {
				t.Errorf("browse %s: %v", u, err)
				return
			}
			resp.Body.Close()
		}()
	}
}
