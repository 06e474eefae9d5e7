package headertransport_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/myriad-ai/myriad/internal/headertransport"
)

func TestClientSendsHeaders(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Header.Get("Authorization") + "|" + r.Header.Get("X-Other")))
	}))
	defer srv.Close()
	tests := []struct {
		name    string
		url     string
		headers map[string]string
		want    string
	}{
		{"none", srv.URL, nil, "|"},
		{"some", srv.URL + "/mcp", map[string]string{"Authorization": "Bearer t", "X-Other": "o"}, "Bearer t|o"},
		{"another origin", "http://elsewhere.example/mcp", map[string]string{"Authorization": "Bearer t", "X-Other": "o"}, "|caller's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set("X-Other", "caller's")
			if tc.name == "none" {
				req.Header.Del("X-Other")
			}
			resp, err := headertransport.Client(nil, tc.url, tc.headers).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			buf := make([]byte, 100)
			n, _ := resp.Body.Read(buf)
			if got := string(buf[:n]); got != tc.want {
				t.Fatalf("server saw %q, want %q", got, tc.want)
			}
			if req.Header.Get("Authorization") != "" {
				t.Fatal("the caller's request was changed")
			}
		})
	}
}
