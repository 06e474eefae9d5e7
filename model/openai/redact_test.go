package openai

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/model"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestErrorsHoldNoCredentials checks that user-info in the base URL, which
// Go's HTTP client sends as Basic authentication, never reaches an error.
func TestErrorsHoldNoCredentials(t *testing.T) {
	// A proxy that quotes the URL it was asked for, credentials included.
	echo := `{"error":{"message":"no route for http://alice:s3cret@upstream/v1"}}`
	tests := []struct {
		name    string
		replies []reply // nil: nothing listens
		stream  bool
		want    string // the error must still say this
	}{
		{name: "connection refused", want: "connection refused"},
		{name: "connection refused while streaming", stream: true, want: "connection refused"},
		{name: "500", replies: []reply{errorReply(500, `{"error":{"message":"boom"}}`, nil)}, want: "HTTP 500: boom"},
		{name: "401 quoting the URL", replies: []reply{errorReply(401, echo, nil)}, want: "no route for http://upstream/v1"},
		{name: "401 while streaming", stream: true, replies: []reply{errorReply(401, echo, nil)}, want: "HTTP 401"},
		{name: "401 without an envelope", replies: []reply{errorReply(401, `{"error":"bad key for http://alice:s3cret@h"}`, nil)}, want: "bad key for http://h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := closedPort(t)
			if tt.replies != nil {
				s := newFakeServer(t, tt.replies...)
				host = strings.TrimPrefix(s.URL, "http://")
			}
			p, err := New(Config{BaseURL: "http://alice:s3cret@" + host + "/v1", Model: "m", MaxRetries: -1})
			if err != nil {
				t.Fatal(err)
			}
			var sink func(model.Delta)
			if tt.stream {
				sink = func(model.Delta) {}
			}
			_, err = p.Generate(context.Background(), &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "hi"}}}, sink)
			if err == nil {
				t.Fatal("Generate succeeded")
			}
			msg := err.Error()
			for _, secret := range []string{"s3cret", "alice"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q holds %q", msg, secret)
				}
			}
			if !strings.Contains(msg, "http://"+host+"/v1/chat/completions") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name the endpoint http://%s/v1/chat/completions and say %q", msg, host, tt.want)
			}
			// Callers that take the status error apart see no more.
			var se *model.StatusError
			if errors.As(err, &se) && strings.Contains(se.Message, "s3cret") {
				t.Errorf("StatusError.Message %q holds the password", se.Message)
			}
		})
	}
}

func TestNewErrorHoldsNoCredentials(t *testing.T) {
	for _, base := range []string{"ftp://alice:s3cret@host/v1", "http://alice:s3cret@host:99999999/%zz"} {
		_, err := New(Config{BaseURL: base, Model: "m"})
		if err == nil {
			t.Fatalf("New accepted base URL %q", base)
		}
		if msg := err.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "alice") {
			t.Errorf("error %q holds the credentials", msg)
		}
	}
}
