package httptool_test

import (
	"context"
	"encoding/json"
	"io"
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
