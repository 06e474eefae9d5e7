package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/myriad-ai/myriad/tool/mcptool"
)

// redirectURL is where the authorization server sends the code. Nothing
// listens there: the fetcher reads the code from the redirect itself, as a
// headless client does.
const redirectURL = "http://127.0.0.1:3999/callback"

// oauthHandler builds the handler for the auth scenarios: Myriad's client
// credentials handler for the client-credentials ones, else the SDK's
// authorization-code handler (dynamic registration, or the pre-registered
// client the suite passes in MCP_CONFORMANCE_CONTEXT).
func oauthHandler(scenario string) (auth.OAuthHandler, error) {
	if strings.HasPrefix(scenario, "auth/client-credentials") {
		var c struct {
			ClientID      string `json:"client_id"`
			ClientSecret  string `json:"client_secret"`
			PrivateKeyPEM string `json:"private_key_pem"`
		}
		if err := json.Unmarshal([]byte(os.Getenv("MCP_CONFORMANCE_CONTEXT")), &c); err != nil {
			return nil, fmt.Errorf("MCP_CONFORMANCE_CONTEXT: %w", err)
		}
		return mcptool.ClientCredentials{ClientID: c.ClientID, ClientSecret: c.ClientSecret, PrivateKeyPEM: []byte(c.PrivateKeyPEM)}.OAuthHandler()
	}
	cfg := &auth.AuthorizationCodeHandlerConfig{
		RedirectURL:              redirectURL,
		AuthorizationCodeFetcher: fetchCode,
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{RedirectURIs: []string{redirectURL}, ClientName: "myriad-conformance",
				GrantTypes: []string{"authorization_code", "refresh_token"}},
		},
		// The suite's authorization servers that support Client ID Metadata
		// Documents expect this URL as the client id (the SDK prefers it
		// when a server advertises support, else registers).
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: "https://conformance-test.local/client-metadata.json"},
		AcceptUnadvertisedIss:          true,
		RequestRefreshToken:            true,
	}
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if raw := os.Getenv("MCP_CONFORMANCE_CONTEXT"); raw != "" && json.Unmarshal([]byte(raw), &c) == nil && c.ClientID != "" {
		creds := &oauthex.ClientCredentials{ClientID: c.ClientID}
		if c.ClientSecret != "" {
			creds.ClientSecretAuth = &oauthex.ClientSecretAuth{ClientSecret: c.ClientSecret}
		}
		cfg.PreregisteredClient = creds
	}
	return auth.NewAuthorizationCodeHandler(cfg)
}

// fetchCode follows the authorization URL without a browser: the test
// authorization server approves at once and redirects with the code.
func fetchCode(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return nil, fmt.Errorf("the authorization server answered %s without a code", resp.Status)
	}
	q := loc.Query()
	return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
}
