package mcptool_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/myriad-ai/myriad/tool/mcptool"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// noCredentials fails the test if text holds the user-info of the URLs the
// tests configure.
func noCredentials(t *testing.T, what, text string) {
	t.Helper()
	for _, secret := range []string{"s3cret", "alice"} {
		if strings.Contains(text, secret) {
			t.Errorf("%s %q holds %q", what, text, secret)
		}
	}
}

// TestNoCredentialsShown checks that user-info in a server's URL (sent as
// Basic authentication) reaches no error and no result.
func TestNoCredentialsShown(t *testing.T) {
	var broken atomic.Bool
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newServer() }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		// A proxy that quotes the URL it was asked for.
		quoted := "http://" + user + ":" + pass + "@" + r.Host + r.URL.Path
		switch {
		case strings.HasPrefix(r.URL.Path, "/500"):
			http.Error(w, "upstream failed for "+quoted, http.StatusInternalServerError)
		case strings.HasPrefix(r.URL.Path, "/401"):
			http.Error(w, "wrong password for "+quoted, http.StatusUnauthorized)
		case broken.Load() && r.Method == http.MethodPost:
			http.Error(w, "upstream failed for "+quoted, http.StatusBadGateway)
		case user != "alice" || pass != "s3cret":
			http.Error(w, "who are you?", http.StatusForbidden)
		default:
			mcpHandler.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	live := strings.TrimPrefix(srv.URL, "http://")

	for _, tc := range []struct{ name, url, want string }{
		{"connection refused", "http://alice:s3cret@" + closedAddr(t) + "/mcp", "connect"},
		{"500 quoting the URL", "http://alice:s3cret@" + live + "/500/mcp", "Internal Server Error"},
		{"401 quoting the URL", "http://alice:s3cret@" + live + "/401/mcp", "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mcptool.New(mcptool.Config{Name: "remote", URL: tc.url, Timeout: 5 * time.Second})
			t.Cleanup(func() { _ = s.Close() })
			_, err := s.Tools(context.Background())
			if err == nil {
				t.Fatal("listing the tools succeeded")
			}
			noCredentials(t, "error", err.Error())
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}

	t.Run("results and call errors", func(t *testing.T) {
		s := mcptool.New(mcptool.Config{Name: "remote", URL: "http://alice:s3cret@" + live + "/mcp", Timeout: 5 * time.Second})
		t.Cleanup(func() { _ = s.Close() })
		tools, err := s.Tools(context.Background())
		if err != nil {
			t.Fatal(err) // the credentials were sent: the server let us in
		}
		echo := byName(t, tools)["remote__echo"]
		res, err := call(t, echo, `{"msg":"clone http://alice:s3cret@git.example/repo"}`)
		if err != nil {
			t.Fatal(err)
		}
		noCredentials(t, "result", res.Content)
		if !strings.Contains(res.Content, "clone http://git.example/repo") {
			t.Errorf("result %q lost the URL", res.Content)
		}
		broken.Store(true)
		res, err = call(t, echo, `{"msg":"again"}`)
		if err == nil {
			t.Fatalf("the call succeeded against a broken server: %+v", res)
		}
		noCredentials(t, "error", err.Error())
	})
}

func TestLoginErrorsHoldNoCredentials(t *testing.T) {
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(open.Close)
	for _, tc := range []struct{ name, url, want string }{
		{"connection refused", "http://alice:s3cret@" + closedAddr(t) + "/mcp", "oauth: reach http://127.0.0.1"},
		{"no login needed", "http://alice:s3cret@" + strings.TrimPrefix(open.URL, "http://") + "/mcp", "no login needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mcptool.Login(context.Background(), mcptool.LoginOptions{URL: tc.url, Open: func(string) {}})
			if err == nil {
				t.Fatal("Login succeeded")
			}
			noCredentials(t, "error", err.Error())
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
