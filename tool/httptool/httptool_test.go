package httptool_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/httptool"
)

func TestCall(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"key":"` + r.Header.Get("Idempotency-Key") + `","auth":"` + r.Header.Get("X-Token") + `","args":` + string(body) + `}`))
		case "/fail":
			http.Error(w, "no such customer", http.StatusNotFound)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	tests := []struct {
		path    string
		timeout time.Duration
		want    string
		isError bool
		err     string
	}{
		{"/ok", time.Second, `{"key":"run_1/3","auth":"t0k","args":{"id":"7"}}`, false, ""},
		{"/fail", time.Second, "HTTP 404 from lookup: no such customer", true, ""},
		{"/slow", 50 * time.Millisecond, "", false, "no answer from"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			tl := httptool.New(httptool.Config{Name: "lookup", URL: srv.URL + tc.path, Timeout: tc.timeout, Headers: map[string]string{"X-Token": "t0k"}})
			res, err := tl.Call(context.Background(), &tool.Call{RunID: "run_1", IdempotencyKey: "run_1/3", Arguments: json.RawMessage(`{"id":"7"}`)})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || res.Content != tc.want || res.IsError != tc.isError {
				t.Fatalf("got %+v %v, want %q error=%v", res, err, tc.want, tc.isError)
			}
		})
	}
}

// TestNoCredentialsShown checks that user-info in the tool's URL is sent
// (as Basic authentication) but never reaches an error or a result.
func TestNoCredentialsShown(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body, or the server cannot see the client go away.
		io.Copy(io.Discard, r.Body)
		user, pass, _ := r.BasicAuth()
		switch r.URL.Path {
		case "/ok":
			if user == "alice" && pass == "s3cret" {
				io.WriteString(w, "welcome")
			}
		case "/500":
			// A proxy quoting the URL it was asked for.
			http.Error(w, "upstream failed for http://"+user+":"+pass+"@"+r.Host+r.URL.Path, http.StatusInternalServerError)
		case "/401":
			w.Header().Set("WWW-Authenticate", `Basic realm="hooks"`)
			http.Error(w, `{"error":"wrong password for `+"http://"+user+":"+pass+"@"+r.Host+r.URL.Path+`"}`, http.StatusUnauthorized)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	live := strings.TrimPrefix(srv.URL, "http://")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	tests := []struct {
		name, url string
		timeout   time.Duration
		want      string // in the result, or else the error
		isError   bool
		err       bool
	}{
		{"credentials are sent", "http://alice:s3cret@" + live + "/ok", time.Second, "welcome", false, false},
		{"500 quoting the URL", "http://alice:s3cret@" + live + "/500", time.Second, "HTTP 500 from lookup: upstream failed for http://" + live + "/500", true, false},
		{"401 quoting the URL", "http://alice:s3cret@" + live + "/401", time.Second, `HTTP 401 from lookup: {"error":"wrong password for http://` + live + `/401"}`, true, false},
		{"connection refused", "http://alice:s3cret@" + closed + "/hook", time.Second, "http://" + closed + "/hook", false, true},
		{"no answer in time", "http://alice:s3cret@" + live + "/slow", 50 * time.Millisecond, "no answer from http://" + live + "/slow within", false, true},
		{"unparsable URL", "http://alice:s3cret@" + live + "/%zz", time.Second, "url http://" + live + "/%zz does not parse", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := httptool.New(httptool.Config{Name: "lookup", URL: tc.url, Timeout: tc.timeout})
			res, err := tl.Call(context.Background(), &tool.Call{RunID: "run_1", IdempotencyKey: "run_1/3", Arguments: json.RawMessage(`{}`)})
			got := res.Content
			if tc.err {
				if err == nil {
					t.Fatalf("no error; result %+v", res)
				}
				got = err.Error()
			} else if err != nil || res.IsError != tc.isError {
				t.Fatalf("got %+v, %v; want a result with IsError %v", res, err, tc.isError)
			}
			for _, secret := range []string{"s3cret", "alice"} {
				if strings.Contains(got, secret) {
					t.Errorf("%q holds %q", got, secret)
				}
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("%q does not say %q", got, tc.want)
			}
		})
	}
}
