package mcptool_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/myriad-ai/myriad/tool/mcptool"
)

// protected serves newServer's tools behind OAuth: an authorization
// server whose token endpoint takes the client credentials grant with a
// secret (client_secret_basic) or a signed assertion (private_key_jwt),
// and an MCP endpoint that wants its tokens.
type protected struct {
	url    string // the MCP endpoint
	tokens atomic.Int32
}

func newProtected(t *testing.T, method string, key *ecdsa.PublicKey) *protected {
	t.Helper()
	p := &protected{}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	issuer := srv.URL
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "token_endpoint": issuer + "/token",
			"grant_types_supported": []string{"client_credentials"}, "token_endpoint_auth_methods_supported": []string{method},
			"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		ok := r.Form.Get("grant_type") == "client_credentials"
		switch method {
		case "client_secret_basic":
			id, secret, basic := r.BasicAuth()
			ok = ok && basic && id == "myriad" && secret == "s3cret"
		case "private_key_jwt":
			claims := &jwt.RegisteredClaims{}
			_, err := jwt.ParseWithClaims(r.Form.Get("client_assertion"), claims, func(*jwt.Token) (any, error) { return key, nil },
				jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(issuer), jwt.WithIssuer("myriad"), jwt.WithSubject("myriad"))
			ok = ok && err == nil && r.Form.Get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		}
		if r.Form.Get("resource") != issuer+"/mcp" {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_target"})
			return
		}
		p.tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + r.Form.Get("scope"), "token_type": "Bearer", "expires_in": 3600})
	})
	mux.Handle("GET /.well-known/oauth-protected-resource/mcp", auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource: issuer + "/mcp", AuthorizationServers: []string{issuer}, ScopesSupported: []string{"tools"}}))
	verify := func(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		if token != "tok-tools" {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{Scopes: []string{"tools"}, Expiration: time.Now().Add(time.Hour)}, nil
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newServer() }, nil)
	mux.Handle("/mcp", auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: issuer + "/.well-known/oauth-protected-resource/mcp"})(h))
	p.url = issuer + "/mcp"
	return p
}

func TestClientCredentials(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherDER, _ := x509.MarshalECPrivateKey(other)
	otherPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: otherDER})
	tests := []struct {
		name   string
		method string
		creds  *mcptool.ClientCredentials
		want   string // an error, or "" for a listed tool set
	}{
		{"secret", "client_secret_basic", &mcptool.ClientCredentials{ClientID: "myriad", ClientSecret: "s3cret"}, ""},
		{"wrong secret", "client_secret_basic", &mcptool.ClientCredentials{ClientID: "myriad", ClientSecret: "nope"}, "token"},
		{"private key", "private_key_jwt", &mcptool.ClientCredentials{ClientID: "myriad", PrivateKeyPEM: pemKey}, ""},
		{"another key", "private_key_jwt", &mcptool.ClientCredentials{ClientID: "myriad", PrivateKeyPEM: otherPEM}, "token"},
		{"no credentials", "client_secret_basic", nil, "Unauthorized"},
		{"another issuer", "client_secret_basic", &mcptool.ClientCredentials{ClientID: "myriad", ClientSecret: "s3cret", Issuer: "https://auth.example.com"}, "not the configured issuer"},
		{"key after a certificate, on one line", "private_key_jwt", &mcptool.ClientCredentials{ClientID: "myriad",
			PrivateKeyPEM: []byte(strings.ReplaceAll("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"+string(pemKey), "\n", `\n`))}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProtected(t, tc.method, &key.PublicKey)
			cfg := mcptool.Config{Name: "s", URL: p.url, Timeout: 10 * time.Second}
			if tc.creds != nil {
				if cfg.OAuth, err = tc.creds.OAuthHandler(); err != nil {
					t.Fatal(err)
				}
			}
			s := mcptool.New(cfg)
			defer s.Close()
			tools, err := s.Tools(context.Background())
			switch {
			case tc.want == "" && (err != nil || len(tools) == 0):
				t.Fatalf("tools %d, %v", len(tools), err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			case tc.want == "" && p.tokens.Load() != 1:
				t.Fatalf("%d tokens issued, want 1", p.tokens.Load())
			}
		})
	}
}

func TestClientCredentialsConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		creds mcptool.ClientCredentials
		want  string
	}{
		{"no client id", mcptool.ClientCredentials{ClientSecret: "s"}, "client_id is required"},
		{"neither", mcptool.ClientCredentials{ClientID: "c"}, "one of them"},
		{"both", mcptool.ClientCredentials{ClientID: "c", ClientSecret: "s", PrivateKeyPEM: []byte("x")}, "one of them"},
		{"not PEM", mcptool.ClientCredentials{ClientID: "c", PrivateKeyPEM: []byte("x")}, "no PEM private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.creds.OAuthHandler()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
