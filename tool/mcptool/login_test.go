package mcptool_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/internal/oauthtest"
	"github.com/myriad-ai/myriad/tool/mcptool"
)

// TestLoginThenUseTheGrant: a person authorizes Myriad once (Login); the
// saved grant then serves calls, and is refreshed and saved again when the
// server stops taking its token.
func TestLoginThenUseTheGrant(t *testing.T) {
	c := oauthtest.New(t, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newServer() }, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g, err := mcptool.Login(ctx, mcptool.LoginOptions{URL: c.URL, Open: oauthtest.Browse(t)})
	if err != nil {
		t.Fatal(err)
	}
	if g.ClientID != "dyn-1" || g.Token.AccessToken != "at-1" || g.Token.RefreshToken != "rt-1" || g.Resource != c.URL {
		t.Fatalf("grant %+v token %+v", g, g.Token)
	}
	path := filepath.Join(t.TempDir(), "oauth", "s.json")
	if err := mcptool.SaveGrant(path, g); err != nil {
		t.Fatal(err)
	}
	h := mcptool.GrantHandler(path, c.URL, "run myriad mcp login s", nil)
	tools := func() error {
		s := mcptool.New(mcptool.Config{Name: "s", URL: c.URL, Timeout: 10 * time.Second, OAuth: h})
		defer s.Close()
		_, err := s.Tools(ctx)
		return err
	}
	if err := tools(); err != nil {
		t.Fatal(err)
	}
	// The server stops taking the token: the grant is refreshed, and the
	// new tokens saved.
	c.Revoke("at-1")
	if err := tools(); err != nil {
		t.Fatal(err)
	}
	saved, err := mcptool.LoadGrant(path)
	if err != nil || saved.Token.AccessToken != "at-2" || saved.Token.RefreshToken != "rt-2" {
		t.Fatalf("saved after the refresh: %+v %v", saved, err)
	}
	// Several connections refused at once refresh once: the rotating
	// refresh token is spent once.
	c.Revoke("at-2")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- tools()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if saved, _ := mcptool.LoadGrant(path); saved.Token.AccessToken != "at-3" {
		t.Fatalf("after concurrent refusals: %+v", saved.Token)
	}
	// A grant is sent only to the server it was given for.
	other := oauthtest.New(t, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newServer() }, nil))
	s2 := mcptool.New(mcptool.Config{Name: "s", URL: other.URL, Timeout: 10 * time.Second,
		OAuth: mcptool.GrantHandler(path, other.URL, "run myriad mcp login s", nil)})
	defer s2.Close()
	if _, err := s2.Tools(ctx); err == nil || !strings.Contains(err.Error(), "the saved authorization is for "+c.URL) {
		t.Fatalf("the grant at another server: %v", err)
	}
	if other.Issued() != 0 {
		t.Fatalf("the other server issued %d tokens", other.Issued())
	}
	// Without a saved grant the error says what to do.
	s := mcptool.New(mcptool.Config{Name: "s", URL: c.URL, Timeout: 10 * time.Second,
		OAuth: mcptool.GrantHandler(filepath.Join(t.TempDir(), "none.json"), c.URL, "run myriad mcp login s", nil)})
	defer s.Close()
	if _, err := s.Tools(ctx); err == nil || !strings.Contains(err.Error(), "run myriad mcp login s") {
		t.Fatalf("without a grant: %v", err)
	}
}
