package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/console"
)

// The console's page and files are served from the binary, with a content
// security policy that lets them reach this server only.
func TestServesThePages(t *testing.T) {
	srv := httptest.NewServer(console.Handler())
	defer srv.Close()
	tests := []struct{ path, contentType, contains string }{
		{"/", "text/html", `<script type="module" src="/console/app.js">`},
		{"/console/app.js", "text/javascript", "function route()"},
		{"/console/api.js", "text/javascript", "export async function follow"},
		{"/console/app.css", "text/css", "--accent"},
	}
	for _, tc := range tests {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: %s %s", tc.path, resp.Status, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: content security policy %q", tc.path, csp)
		}
	}
	if resp, err := http.Get(srv.URL + "/console/nothing.js"); err != nil || resp.StatusCode != 404 {
		t.Errorf("a missing file: %v %v", resp.Status, err)
	}
}
