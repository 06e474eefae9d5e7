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
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/myriad-ai/myriad/internal/redact"
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
// takes the code on a loopback listener. Its errors hold no URL user-info.
func Login(ctx context.Context, o LoginOptions) (_ *Grant, err error) {
	defer func() { err = redact.Error(err) }()
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
	if host, _, err := net.SplitHostPort(listen); err != nil || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
		return nil, fmt.Errorf("oauth: listen %q: the browser comes back to a loopback address only (127.0.0.1:PORT, localhost:PORT or [::1]:PORT)", listen)
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
		if q.Get("code") == "" {
			http.Error(w, "the answer has no code", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "Myriad received the authorization: see the terminal. You can close this tab.")
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
	case <-time.After(loginTimeout):
		return nil, fmt.Errorf("oauth: no authorization came back within %s: the browser must return to %s (register that redirect URI for a pre-registered client, with a fixed --listen)", loginTimeout, redirect)
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

// loginTimeout bounds the wait for a person's authorization.
const loginTimeout = 10 * time.Minute

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

// redactURL drops a URL's user-info and query (which may hold a key) for
// an error message.
func redactURL(u string) string {
	u = redact.URL(u)
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

func (g *Grant) config() *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if g.ClientSecret == "" {
		style = oauth2.AuthStyleInParams // a public client: its id in the form
	}
	return &oauth2.Config{ClientID: g.ClientID, ClientSecret: g.ClientSecret, Scopes: g.Scopes,
		Endpoint: oauth2.Endpoint{TokenURL: g.TokenEndpoint, AuthStyle: style}}
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
	if err := tmp.Sync(); err != nil {
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

// tokenTimeout bounds a request to a token endpoint.
const tokenTimeout = 30 * time.Second

// GrantHandler is the OAuth handler of the server at url, which a person
// authorized with Login: it sends the saved token, refreshes it when it
// expires or the server refuses it, and saves the new one. A grant for
// another server is not used. Without a usable grant, calls fail saying to
// log in (how says how).
func GrantHandler(path, url, how string, hc *http.Client) auth.OAuthHandler {
	if hc == nil {
		hc = &http.Client{Timeout: tokenTimeout}
	}
	return &grantHandler{path: path, url: url, how: how, hc: hc}
}

type grantHandler struct {
	path, url, how string
	hc             *http.Client

	// mu serializes reading the file and refreshing: a rotating refresh
	// token must be spent once.
	mu    sync.Mutex
	grant *Grant
}

// load reads the grant file when it holds another grant than the one in
// use (a new login), and checks it is for this server. Must hold mu.
func (h *grantHandler) load() error {
	g, err := LoadGrant(h.path)
	if err != nil {
		if h.grant != nil {
			return nil // keep the one in use
		}
		return fmt.Errorf("the server needs a person to authorize Myriad (%s): %w", h.how, errNoGrant(err))
	}
	if !sameResource(g.Resource, h.url) {
		return fmt.Errorf("the saved authorization is for %s, not %s: %s", redact.URL(g.Resource), redact.URL(h.url), h.how)
	}
	if h.grant == nil || g.Token.AccessToken != h.grant.Token.AccessToken {
		h.grant = g
	}
	return nil
}

// sameResource reports whether a grant for resource may be sent to url:
// the same origin, and url at or below its path.
func sameResource(resource, u string) bool {
	r, err1 := url.Parse(resource)
	t, err2 := url.Parse(u)
	if err1 != nil || err2 != nil || r.Scheme != t.Scheme || r.Host != t.Host {
		return false
	}
	rp := strings.TrimSuffix(r.Path, "/")
	return t.Path == rp || strings.HasPrefix(t.Path, rp+"/") || strings.TrimSuffix(t.Path, "/") == rp
}

func (h *grantHandler) TokenSource(context.Context) (oauth2.TokenSource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.load() != nil {
		return nil, nil // no credentials: the server says 401, Authorize says why
	}
	return grantSource{h}, nil
}

// grantSource hands out the grant's token, refreshed when it expires.
type grantSource struct{ h *grantHandler }

func (s grantSource) Token() (*oauth2.Token, error) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.load(); err != nil {
		return nil, err
	}
	if h.grant.Token.Valid() {
		return h.grant.Token, nil
	}
	if err := h.refresh(context.Background()); err != nil {
		return nil, err
	}
	return h.grant.Token, nil
}

// Authorize is called when the server refuses the token: a token someone
// else refreshed meanwhile is tried as it is; else it is refreshed once. A
// refusal for want of scope needs a new login.
func (h *grantHandler) Authorize(ctx context.Context, req *http.Request, resp *http.Response) error {
	defer resp.Body.Close()
	defer func() { _, _ = io.Copy(io.Discard, resp.Body) }()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.load(); err != nil {
		return err
	}
	if sent := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "); sent != h.grant.Token.AccessToken {
		return nil // refreshed (or logged in again) since that request
	}
	if resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("the server wants more than the saved authorization allows (%s): %s with the scopes it needs",
			strings.Join(resp.Header.Values("WWW-Authenticate"), "; "), h.how)
	}
	return h.refresh(ctx)
}

// refresh spends the refresh token for a new access token (with the
// server as resource, RFC 8707) and saves the result. Must hold mu.
func (h *grantHandler) refresh(ctx context.Context) error {
	g := h.grant
	if g.Token.RefreshToken == "" {
		return fmt.Errorf("the saved authorization expired and cannot be refreshed: %s", h.how)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.Token.RefreshToken}, "resource": {g.Resource}}
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	tok, err := tokenRequest(ctx, h.hc, g, form)
	if err != nil {
		return fmt.Errorf("the saved authorization could not be refreshed (%v): %s", err, h.how)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = g.Token.RefreshToken // not rotated
	}
	next := *g
	next.Token = tok
	h.grant = &next
	if err := SaveGrant(h.path, &next); err != nil {
		// The new token works now, but a rotated refresh token that is not
		// saved is lost with this process.
		slog.Warn("mcp: could not save the refreshed authorization", "file", h.path, "err", err)
	}
	return nil
}

// tokenRequest posts a form to the grant's token endpoint, the client
// authenticated as registered: by its secret (HTTP Basic), or by its id
// alone for a public client.
func tokenRequest(ctx context.Context, hc *http.Client, g *Grant, form url.Values) (*oauth2.Token, error) {
	if g.ClientSecret == "" {
		form.Set("client_id", g.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if g.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(g.ClientID), url.QueryEscape(g.ClientSecret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
		Error        string `json:"error"`
		Description  string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("token endpoint answered %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return nil, fmt.Errorf("token endpoint answered %s: %s %s", resp.Status, body.Error, body.Description)
	}
	tok := &oauth2.Token{AccessToken: body.AccessToken, TokenType: body.TokenType, RefreshToken: body.RefreshToken}
	if body.ExpiresIn > 0 {
		tok.Expiry = time.Now().Add(time.Duration(body.ExpiresIn) * time.Second)
	}
	return tok, nil
}

func errNoGrant(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("no saved authorization")
	}
	return err
}
