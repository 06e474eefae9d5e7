package mcptool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// Grant is what a person's authorization of Myriad at a remote MCP server
// leaves: the client Myriad is at the authorization server, and its
// tokens. Login makes one; GrantHandler uses it, refreshing the token.
// It is a secret: it is kept in a file only its owner reads.
type Grant struct {
	Issuer        string        `json:"issuer"`
	TokenEndpoint string        `json:"token_endpoint"`
	ClientID      string        `json:"client_id"`
	ClientSecret  string        `json:"client_secret,omitempty"`
	Resource      string        `json:"resource"`
	Scopes        []string      `json:"scopes,omitempty"`
	Token         *oauth2.Token `json:"token"`
}

// LoginOptions configure Login.
type LoginOptions struct {
	// URL is the MCP server's.
	URL string
	// ClientID and ClientSecret name a client registered beforehand; empty,
	// Myriad registers itself (dynamic client registration).
	ClientID, ClientSecret string
	// Scopes are asked for when the server names none.
	Scopes []string
	// Issuer, when set, is the only authorization server trusted.
	Issuer string
	// Listen is where the authorization server sends the person's browser
	// back (default 127.0.0.1 on a port the system picks).
	Listen string
	// Open is given the address the person must open to authorize.
	Open       func(url string)
	HTTPClient *http.Client
}

// Login runs the OAuth authorization code grant (with PKCE) for a remote
// MCP server: it finds the server's authorization server, registers Myriad
// there unless a client is given, has a person authorize in a browser, and
// takes the code on a loopback listener.
func Login(ctx context.Context, o LoginOptions) (*Grant, error) {
	hc := o.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	challenges, err := challenge(ctx, hc, o.URL)
	if err != nil {
		return nil, err
	}
	prm, asm, err := discover(ctx, hc, challenges, o.URL, o.Issuer)
	if err != nil {
		return nil, err
	}
	if asm.AuthorizationEndpoint == "" || asm.TokenEndpoint == "" {
		return nil, fmt.Errorf("oauth: authorization server %s has no authorization or token endpoint", asm.Issuer)
	}
	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("oauth: listen for the browser's return: %w", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	g := &Grant{Issuer: asm.Issuer, TokenEndpoint: asm.TokenEndpoint, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Resource: prm.Resource, Scopes: scopesFor(challenges, prm, o.Scopes)}
	if g.ClientID == "" {
		if asm.RegistrationEndpoint == "" {
			return nil, fmt.Errorf("oauth: authorization server %s takes no registrations: register Myriad there and set oauth.client_id", asm.Issuer)
		}
		reg, err := oauthex.RegisterClient(ctx, asm.RegistrationEndpoint, &oauthex.ClientRegistrationMetadata{
			RedirectURIs: []string{redirect}, ClientName: "Myriad", GrantTypes: []string{"authorization_code", "refresh_token"},
			ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: "none"}, hc)
		if err != nil {
			return nil, fmt.Errorf("oauth: register Myriad at %s: %w", asm.Issuer, err)
		}
		g.ClientID, g.ClientSecret = reg.ClientID, reg.ClientSecret
	}
	cfg := g.config()
	cfg.Endpoint.AuthURL, cfg.RedirectURL = asm.AuthorizationEndpoint, redirect
	verifier := oauth2.GenerateVerifier()
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	state := hex.EncodeToString(nonce[:])
	codes := make(chan string, 1)
	fails := make(chan error, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/callback" || q.Get("state") != state {
			http.Error(w, "not an answer to Myriad's request", http.StatusBadRequest)
			return
		}
		// RFC 9207: the answer names the authorization server it came
		// from, so another one (a mix-up) is refused.
		if iss := q.Get("iss"); iss != "" && iss != asm.Issuer || iss == "" && asm.AuthorizationResponseIssParameterSupported {
			http.Error(w, "the answer does not come from the expected authorization server", http.StatusBadRequest)
			select {
			case fails <- fmt.Errorf("oauth: the authorization answer names issuer %q, not %s", iss, asm.Issuer):
			default:
			}
			return
		}
		if e := q.Get("error"); e != "" {
			fmt.Fprintf(w, "Myriad was not authorized: %s", html.EscapeString(e))
			select {
			case fails <- fmt.Errorf("oauth: authorization refused: %s %s", e, q.Get("error_description")):
			default:
			}
			return
		}
		fmt.Fprint(w, "Myriad is authorized. You can close this tab.")
		select {
		case codes <- q.Get("code"):
		default:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	o.Open(cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", g.Resource)))
	var code string
	select {
	case code = <-codes:
	case err := <-fails:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	g.Token, err = cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, hc), code, oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("resource", g.Resource))
	if err != nil {
		return nil, fmt.Errorf("oauth: exchange the code for a token: %w", err)
	}
	return g, nil
}

// challenge asks the server for its authorization challenge: an
// initialize request without credentials, which it must refuse.
func challenge(ctx context.Context, hc *http.Client, url string) ([]oauthex.Challenge, error) {
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"myriad","version":"1"}}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauth: reach %s: %w", redactURL(url), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return nil, fmt.Errorf("oauth: %s answered %s without asking for authorization: no login needed", redactURL(url), resp.Status)
	}
	return oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
}

func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

func (g *Grant) config() *oauth2.Config {
	return &oauth2.Config{ClientID: g.ClientID, ClientSecret: g.ClientSecret, Scopes: g.Scopes,
		Endpoint: oauth2.Endpoint{TokenURL: g.TokenEndpoint}}
}

// SaveGrant writes a grant where only its owner reads it, replacing the
// file whole so a reader never sees half of it.
func SaveGrant(path string, g *Grant) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(g, "", "  ")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".grant-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// LoadGrant reads a grant saved by SaveGrant.
func LoadGrant(path string) (*Grant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var g Grant
	if err := json.Unmarshal(data, &g); err != nil || g.Token == nil {
		return nil, fmt.Errorf("%s: not a saved authorization (log in again)", path)
	}
	return &g, nil
}

// GrantHandler is the OAuth handler of a server a person authorized with
// Login: it sends the saved token, refreshes it when it expires or the
// server refuses it, and saves the new one. Without a saved grant, or when
// refreshing fails, calls fail saying to log in (how names the command).
func GrantHandler(path, how string, hc *http.Client) auth.OAuthHandler {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &grantHandler{path: path, how: how, hc: hc}
}

type grantHandler struct {
	path, how string
	hc        *http.Client

	mu    sync.Mutex
	grant *Grant
	ts    oauth2.TokenSource
}

func (h *grantHandler) TokenSource(context.Context) (oauth2.TokenSource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ts == nil {
		g, err := LoadGrant(h.path)
		if err != nil {
			return nil, nil // no credentials: the server says 401, Authorize says why
		}
		h.use(g, g.Token)
	}
	return h.ts, nil
}

// use serves tok, refreshing it with g's client as needed. Must hold mu.
func (h *grantHandler) use(g *Grant, tok *oauth2.Token) {
	h.grant = g
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, h.hc)
	h.ts = &savingSource{h: h, base: oauth2.ReuseTokenSource(tok, g.config().TokenSource(ctx, tok)), last: tok.AccessToken}
}

// Authorize is called when the server refuses the token: refresh it once.
func (h *grantHandler) Authorize(ctx context.Context, _ *http.Request, resp *http.Response) error {
	defer resp.Body.Close()
	defer func() { _, _ = io.Copy(io.Discard, resp.Body) }()
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.grant
	if g == nil {
		var err error
		if g, err = LoadGrant(h.path); err != nil {
			return fmt.Errorf("the server needs a person to authorize Myriad (%s): %w", h.how, errNoGrant(err))
		}
	}
	if g.Token.RefreshToken == "" {
		return fmt.Errorf("the server refused the saved authorization and it cannot be refreshed: %s", h.how)
	}
	stale := *g.Token
	stale.AccessToken, stale.Expiry = "", time.Unix(1, 0) // force a refresh
	tok, err := g.config().TokenSource(context.WithValue(ctx, oauth2.HTTPClient, h.hc), &stale).Token()
	if err != nil {
		return fmt.Errorf("the saved authorization could not be refreshed (%v): %s", err, h.how)
	}
	h.use(g, tok)
	h.save(tok)
	return nil
}

func errNoGrant(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("no saved authorization")
	}
	return err
}

// save keeps a new token in the grant's file. Must hold mu.
func (h *grantHandler) save(tok *oauth2.Token) {
	g := *h.grant
	g.Token = tok
	if tok.RefreshToken == "" {
		g.Token.RefreshToken = h.grant.Token.RefreshToken // not rotated
	}
	h.grant = &g
	_ = SaveGrant(h.path, &g)
}

// savingSource saves each new token its base source gets.
type savingSource struct {
	h    *grantHandler
	base oauth2.TokenSource
	last string
}

func (s *savingSource) Token() (*oauth2.Token, error) {
	tok, err := s.base.Token()
	if err != nil {
		return nil, err
	}
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if tok.AccessToken != s.last {
		s.last = tok.AccessToken
		s.h.save(tok)
	}
	return tok, nil
}
