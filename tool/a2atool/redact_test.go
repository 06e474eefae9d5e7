package a2atool_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/a2atool"
)

// TestNoCredentialsShown checks that user-info in the agent's URL (sent as
// Basic authentication when the card is read) reaches no error, result or
// progress message.
func TestNoCredentialsShown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	// A proxy in front of the card that quotes the URL it was asked for.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		status := http.StatusInternalServerError
		if strings.HasPrefix(r.URL.Path, "/401") {
			status = http.StatusUnauthorized
		}
		http.Error(w, "failed for http://"+user+":"+pass+"@"+r.Host+r.URL.Path, status)
	}))
	t.Cleanup(proxy.Close)
	_, live := serve(t, true)
	withCredentials := func(u string) string { return strings.Replace(u, "http://", "http://alice:s3cret@", 1) }

	tests := []struct {
		name, url, input string
		want             string // in the result, or else the error
		callErr          bool
	}{
		{"connection refused", "http://alice:s3cret@" + closed + "/a2a/echo", "x", "read the agent card of echo at http://" + closed + "/a2a/echo", true},
		{"500 quoting the URL", withCredentials(proxy.URL) + "/500", "x", "read the agent card of echo at " + proxy.URL + "/500", true},
		{"401 quoting the URL", withCredentials(proxy.URL) + "/401", "x", "read the agent card of echo at " + proxy.URL + "/401", true},
		{"the agent quotes a URL", withCredentials(live), "tea from http://alice:s3cret@shop.example/", "echo: tea from http://shop.example/", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var progress []string
			args, _ := json.Marshal(map[string]string{"input": tc.input})
			res, err := a2atool.New(a2atool.Config{Name: "echo", URL: tc.url}).Call(context.Background(),
				&tool.Call{RunID: "run_1", ID: "c1", IdempotencyKey: "run_1/1", Arguments: args,
					Progress: func(p tool.Progress) { progress = append(progress, p.Message) }})
			got := res.Content
			if err != nil {
				got = err.Error()
			}
			if (err != nil) != tc.callErr || !strings.Contains(got, tc.want) {
				t.Fatalf("got %q (call error %v), want %q", got, err, tc.want)
			}
			for _, text := range append(progress, got) {
				for _, secret := range []string{"s3cret", "alice"} {
					if strings.Contains(text, secret) {
						t.Errorf("%q holds %q", text, secret)
					}
				}
			}
			if !tc.callErr && len(progress) == 0 {
				t.Error("no progress reported")
			}
		})
	}
}
