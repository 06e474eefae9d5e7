package mcptool

import (
	"bytes"
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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/myriad-ai/myriad/internal/redact"
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
	Scopes []string
	// Issuer, when set, is the only authorization server trusted: a server
	// naming another one gets no credentials.
	Issuer string
	// Audience is the aud of private_key_jwt assertions (default: the
	// authorization server's issuer; some want the token endpoint).
	Audience   string
	HTTPClient *http.Client
}

// OAuthHandler returns the handler for Config.OAuth.
func (c ClientCredentials) OAuthHandler() (auth.OAuthHandler, error) {
	if c.ClientID == "" {
		return nil, errors.New("oauth: client_id is required")
	}
	if (c.ClientSecret == "") == (len(c.PrivateKeyPEM) == 0) {
		return nil, errors.New("oauth: set a client secret or a private key, one of them")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: tokenTimeout}
	}
	h := &ccHandler{cfg: c, hc: hc, granted: map[string][]string{}}
	if len(c.PrivateKeyPEM) > 0 {
		var err error
		if h.key, h.method, err = parseKey(c.PrivateKeyPEM); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// parseKey reads the first PEM private key in data (a file may also hold
// certificates), and the JWT method it signs with.
func parseKey(data []byte) (crypto.Signer, jwt.SigningMethod, error) {
	if !bytes.Contains(data, []byte("\n")) {
		// A key in an environment variable, written on one line.
		data = bytes.ReplaceAll(data, []byte(`\n`), []byte("\n"))
	}
	var key any
	var err error
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			if key == nil && err == nil {
				err = errors.New("no PEM private key")
			}
			break
		}
		switch block.Type {
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			continue
		}
		break
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
		if k.N.BitLen() < 2048 {
			return nil, nil, fmt.Errorf("oauth: private key: an RSA key must have at least 2048 bits, not %d", k.N.BitLen())
		}
		return k, jwt.SigningMethodRS256, nil
	}
	return nil, nil, fmt.Errorf("oauth: private key: %T is not supported (use EC P-256 or RSA)", key)
}

// ccHandler is the client credentials grant (RFC 6749 4.4), the client
// authenticated by its secret (client_secret_post or _basic, as the server
// prefers) or by a signed assertion (private_key_jwt, RFC 7523, which the
// SDK's handler lacks). It asks for the server as the token's resource
// (RFC 8707), keeps the scopes granted before when a call needs more
// (step-up), and trusts only the configured issuer when there is one.
type ccHandler struct {
	cfg    ClientCredentials
	key    crypto.Signer // nil: the secret authenticates
	method jwt.SigningMethod
	hc     *http.Client

	mu      sync.Mutex
	ts      oauth2.TokenSource
	granted map[string][]string // scopes granted, by issuer
}

func (h *ccHandler) TokenSource(context.Context) (oauth2.TokenSource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ts, nil
}

// Authorize discovers the token endpoint from the failed request and gets
// a token.
func (h *ccHandler) Authorize(ctx context.Context, req *http.Request, resp *http.Response) error {
	defer resp.Body.Close()
	defer func() { _, _ = io.Copy(io.Discard, resp.Body) }()
	challenges, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		return fmt.Errorf("oauth: WWW-Authenticate: %w", err)
	}
	prm, asm, err := discover(ctx, h.hc, challenges, req.URL.String(), h.cfg.Issuer)
	if err != nil {
		return err
	}
	scopes := scopesFor(challenges, prm, h.cfg.Scopes)
	h.mu.Lock()
	for _, sc := range h.granted[asm.Issuer] {
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	h.mu.Unlock()
	src := &tokenSource{h: h, ctx: context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, h.hc),
		asm: asm, scopes: scopes, resource: prm.Resource}
	ts := oauth2.ReuseTokenSource(nil, src)
	if _, err := ts.Token(); err != nil {
		return fmt.Errorf("oauth: client credentials token request: %w", err)
	}
	h.mu.Lock()
	h.ts, h.granted[asm.Issuer] = ts, scopes
	h.mu.Unlock()
	return nil
}

// discover finds the authorization server of an MCP server from its 401
// challenges: its protected resource metadata where the challenge says,
// else at the well-known paths (a server without any is its own
// authorization server, as in the 2025-03-26 revision), then the
// authorization server's metadata. With issuer set, any other
// authorization server is refused.
func discover(ctx context.Context, hc *http.Client, challenges []oauthex.Challenge, resource, issuer string) (*oauthex.ProtectedResourceMetadata, *oauthex.AuthServerMeta, error) {
	// The server's URL may carry user-info (Basic authentication to the
	// server). The resource is sent to the authorization server, put in
	// the address a person opens and saved with the grant, and the
	// server's root may stand for its authorization server: none of them
	// may carry it.
	resource = redact.URL(resource)
	prm, fallback, err := resourceMetadata(ctx, hc, challenges, resource)
	if err != nil {
		return nil, nil, err
	}
	as := prm.AuthorizationServers[0]
	if issuer != "" {
		i := slices.IndexFunc(prm.AuthorizationServers, func(a string) bool { return strings.TrimSuffix(a, "/") == strings.TrimSuffix(issuer, "/") })
		switch {
		case i >= 0:
			as = prm.AuthorizationServers[i]
		case fallback:
			as = issuer // the server names none: the configured one it is
		default:
			return nil, nil, fmt.Errorf("oauth: the server names authorization servers %s, not the configured issuer %s: no credentials sent",
				strings.Join(prm.AuthorizationServers, ", "), issuer)
		}
	}
	asm, err := auth.GetAuthServerMetadata(ctx, as, hc)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: authorization server metadata: %w", err)
	}
	if asm == nil {
		base := strings.TrimSuffix(as, "/")
		asm = &oauthex.AuthServerMeta{Issuer: as, TokenEndpoint: base + "/token", AuthorizationEndpoint: base + "/authorize",
			RegistrationEndpoint: base + "/register"}
	}
	if prm.Resource == "" {
		prm.Resource = resource
	}
	return prm, asm, nil
}

// scopesFor picks the scopes to ask for: the challenge's, else the
// server's, else the configured ones.
func scopesFor(challenges []oauthex.Challenge, prm *oauthex.ProtectedResourceMetadata, configured []string) []string {
	for _, c := range challenges {
		if c.Scheme == "bearer" && c.Params["scope"] != "" {
			return strings.Fields(c.Params["scope"])
		}
	}
	if len(prm.ScopesSupported) > 0 {
		return prm.ScopesSupported
	}
	return configured
}

// resourceMetadata finds the protected resource metadata; fallback says
// there is none and the server is taken as its own authorization server.
func resourceMetadata(ctx context.Context, hc *http.Client, challenges []oauthex.Challenge, resource string) (prm *oauthex.ProtectedResourceMetadata, fallback bool, err error) {
	type try struct{ url, resource string }
	var tries []try
	for _, c := range challenges {
		if u := c.Params["resource_metadata"]; u != "" {
			tries = append(tries, try{u, resource})
		}
	}
	ru, err := url.Parse(resource)
	if err != nil {
		return nil, false, fmt.Errorf("oauth: server URL: %w", err)
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
		got, err := oauthex.GetProtectedResourceMetadata(ctx, t.url, t.resource, hc)
		if err != nil || got == nil {
			continue
		}
		if len(got.AuthorizationServers) == 0 {
			return nil, false, errors.New("oauth: the server's protected resource metadata names no authorization server")
		}
		return got, false, nil
	}
	return &oauthex.ProtectedResourceMetadata{AuthorizationServers: []string{root.String()}, Resource: resource}, true, nil
}

// tokenSource asks for a token; with a key, each request carries a fresh
// signed assertion (an assertion is short-lived and single-use).
type tokenSource struct {
	h        *ccHandler
	ctx      context.Context
	asm      *oauthex.AuthServerMeta
	scopes   []string
	resource string
}

func (s *tokenSource) Token() (*oauth2.Token, error) {
	cfg := &clientcredentials.Config{ClientID: s.h.cfg.ClientID, TokenURL: s.asm.TokenEndpoint, Scopes: s.scopes,
		EndpointParams: url.Values{"resource": {s.resource}}}
	if s.h.key == nil {
		cfg.ClientSecret = s.h.cfg.ClientSecret
		cfg.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic, the default of RFC 6749
		if slices.Contains(s.asm.TokenEndpointAuthMethodsSupported, "client_secret_post") &&
			!slices.Contains(s.asm.TokenEndpointAuthMethodsSupported, "client_secret_basic") {
			cfg.AuthStyle = oauth2.AuthStyleInParams
		}
		return cfg.Token(s.ctx)
	}
	now := time.Now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	aud := s.h.cfg.Audience
	if aud == "" {
		aud = s.asm.Issuer
	}
	assertion, err := jwt.NewWithClaims(s.h.method, jwt.RegisteredClaims{
		Issuer: s.h.cfg.ClientID, Subject: s.h.cfg.ClientID, Audience: jwt.ClaimStrings{aud},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(2 * time.Minute)), ID: hex.EncodeToString(jti[:]),
	}).SignedString(s.h.key)
	if err != nil {
		return nil, fmt.Errorf("sign the client assertion: %w", err)
	}
	cfg.AuthStyle = oauth2.AuthStyleInParams
	cfg.EndpointParams.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	cfg.EndpointParams.Set("client_assertion", assertion)
	return cfg.Token(s.ctx)
}
