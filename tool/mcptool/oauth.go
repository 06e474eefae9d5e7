package mcptool

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/auth/extauth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ClientCredentials configures machine-to-machine access to a remote MCP
// server: the OAuth client credentials grant, the client authenticated by
// a secret or by a private key. The token endpoint and scopes are
// discovered from the server (protected resource metadata, then the
// authorization server's metadata), as the MCP authorization extension
// SEP-1046 describes.
type ClientCredentials struct {
	ClientID string
	// ClientSecret authenticates the client with client_secret_post or
	// client_secret_basic, as the authorization server prefers.
	ClientSecret string
	// PrivateKeyPEM authenticates it with private_key_jwt instead: a PKCS#8,
	// SEC 1 (EC) or PKCS#1 (RSA) key, signing ES256 (P-256) or RS256.
	PrivateKeyPEM []byte
	// Scopes are asked for when the server names none.
	Scopes     []string
	HTTPClient *http.Client
}

// OAuthHandler returns the handler for Config.OAuth.
func (c ClientCredentials) OAuthHandler() (auth.OAuthHandler, error) {
	if c.ClientID == "" {
		return nil, errors.New("oauth: client_id is required")
	}
	switch {
	case (c.ClientSecret == "") == (len(c.PrivateKeyPEM) == 0):
		return nil, errors.New("oauth: set a client secret or a private key, one of them")
	case c.ClientSecret != "":
		return extauth.NewClientCredentialsHandler(&extauth.ClientCredentialsHandlerConfig{
			Credentials: &oauthex.ClientCredentials{ClientID: c.ClientID, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: c.ClientSecret}},
			HTTPClient:  c.HTTPClient})
	}
	key, method, err := parseKey(c.PrivateKeyPEM)
	if err != nil {
		return nil, err
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &keyHandler{cfg: c, key: key, method: method, hc: hc}, nil
}

// parseKey reads a PEM private key and the JWT method it signs with.
func parseKey(data []byte) (crypto.Signer, jwt.SigningMethod, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, nil, errors.New("oauth: private key: no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: private key: %w", err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve.Params().BitSize != 256 {
			return nil, nil, fmt.Errorf("oauth: private key: an EC key must be P-256 (ES256), not %s", k.Curve.Params().Name)
		}
		return k, jwt.SigningMethodES256, nil
	case *rsa.PrivateKey:
		return k, jwt.SigningMethodRS256, nil
	}
	return nil, nil, fmt.Errorf("oauth: private key: %T is not supported (use EC P-256 or RSA)", key)
}

// keyHandler is the client credentials grant with private_key_jwt client
// authentication (RFC 7523), which the SDK's handler does not offer.
type keyHandler struct {
	cfg    ClientCredentials
	key    crypto.Signer
	method jwt.SigningMethod
	hc     *http.Client

	mu sync.Mutex
	ts oauth2.TokenSource
}

func (h *keyHandler) TokenSource(context.Context) (oauth2.TokenSource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ts, nil
}

// Authorize discovers the token endpoint from the failed request and gets
// a token.
func (h *keyHandler) Authorize(ctx context.Context, req *http.Request, resp *http.Response) error {
	defer resp.Body.Close()
	defer func() { _, _ = io.Copy(io.Discard, resp.Body) }()
	challenges, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		return fmt.Errorf("oauth: WWW-Authenticate: %w", err)
	}
	prm, err := h.resourceMetadata(ctx, challenges, req.URL.String())
	if err != nil {
		return err
	}
	asm, err := auth.GetAuthServerMetadata(ctx, prm.AuthorizationServers[0], h.hc)
	if err != nil {
		return fmt.Errorf("oauth: authorization server metadata: %w", err)
	}
	if asm == nil {
		asm = &oauthex.AuthServerMeta{Issuer: prm.AuthorizationServers[0], TokenEndpoint: strings.TrimSuffix(prm.AuthorizationServers[0], "/") + "/token"}
	}
	scopes := h.cfg.Scopes
	for _, c := range challenges {
		if c.Scheme == "bearer" && c.Params["scope"] != "" {
			scopes = strings.Fields(c.Params["scope"])
		}
	}
	if len(scopes) == 0 {
		scopes = prm.ScopesSupported
	}
	src := &assertionSource{h: h, ctx: context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, h.hc),
		issuer: asm.Issuer, tokenURL: asm.TokenEndpoint, scopes: scopes}
	ts := oauth2.ReuseTokenSource(nil, src)
	if _, err := ts.Token(); err != nil {
		return fmt.Errorf("oauth: client credentials token request: %w", err)
	}
	h.mu.Lock()
	h.ts = ts
	h.mu.Unlock()
	return nil
}

// resourceMetadata finds the server's protected resource metadata where
// the challenge says, else at the well-known paths; a server without any
// is its own authorization server (the 2025-03-26 revision).
func (h *keyHandler) resourceMetadata(ctx context.Context, challenges []oauthex.Challenge, resource string) (*oauthex.ProtectedResourceMetadata, error) {
	type try struct{ url, resource string }
	var tries []try
	for _, c := range challenges {
		if u := c.Params["resource_metadata"]; u != "" {
			tries = append(tries, try{u, resource})
		}
	}
	ru, err := url.Parse(resource)
	if err != nil {
		return nil, fmt.Errorf("oauth: server URL: %w", err)
	}
	mu := *ru
	mu.RawQuery = ""
	mu.Path = "/.well-known/oauth-protected-resource/" + strings.TrimLeft(ru.Path, "/")
	tries = append(tries, try{mu.String(), resource})
	mu.Path = "/.well-known/oauth-protected-resource"
	root := *ru
	root.Path, root.RawQuery = "", ""
	tries = append(tries, try{mu.String(), root.String()})
	for _, t := range tries {
		prm, err := oauthex.GetProtectedResourceMetadata(ctx, t.url, t.resource, h.hc)
		if err != nil || prm == nil {
			continue
		}
		if len(prm.AuthorizationServers) == 0 {
			return nil, errors.New("oauth: the server's protected resource metadata names no authorization server")
		}
		return prm, nil
	}
	return &oauthex.ProtectedResourceMetadata{AuthorizationServers: []string{root.String()}, Resource: resource}, nil
}

// assertionSource asks for a token with a fresh signed assertion each
// time: an assertion is short-lived and single-use.
type assertionSource struct {
	h                *keyHandler
	ctx              context.Context
	issuer, tokenURL string
	scopes           []string
}

func (s *assertionSource) Token() (*oauth2.Token, error) {
	now := time.Now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	assertion, err := jwt.NewWithClaims(s.h.method, jwt.RegisteredClaims{
		Issuer: s.h.cfg.ClientID, Subject: s.h.cfg.ClientID, Audience: jwt.ClaimStrings{s.issuer},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(2 * time.Minute)), ID: hex.EncodeToString(jti[:]),
	}).SignedString(s.h.key)
	if err != nil {
		return nil, fmt.Errorf("sign the client assertion: %w", err)
	}
	cfg := &clientcredentials.Config{ClientID: s.h.cfg.ClientID, TokenURL: s.tokenURL, Scopes: s.scopes, AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}}
	return cfg.Token(s.ctx)
}
