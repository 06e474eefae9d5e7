package openai

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/model"
)

// attemptTimeout is the per-attempt limit of the timeout tests: long enough
// for a loopback answer under the race detector, short enough to wait for
// a few times.
const attemptTimeout = 200 * time.Millisecond

// TestTimeoutRetried checks that an attempt that runs out of Config.Timeout
// is retried like a dropped connection, and that a call whose last attempt
// ran out of time says so.
func TestTimeoutRetried(t *testing.T) {
	okBody := fixture(t, "completion_json.json")
	okStream := fixture(t, "stream_text_tool_calls.sse")
	// The stream stops right after its first piece of text.
	at := strings.Index(okStream, `"Checking "`)
	firstText := at + strings.Index(okStream[at:], "\n\n") + 2
	overloaded := errorReply(500, `{"error":{"message":"overloaded"}}`, map[string]string{"Retry-After-Ms": "1"})
	tests := []struct {
		name        string
		maxRetries  int
		stream      bool
		replies     []reply
		wantCalls   int
		wantTimeout *model.TimeoutError // nil: see wantStatus
		wantStatus  int                 // 0 with wantTimeout nil: success
		wantMsg     string
	}{
		{
			name:      "no answer, then an answer",
			replies:   []reply{{stall: true}, jsonReply(okBody)},
			wantCalls: 2,
		},
		{
			name:       "no answer twice, then an answer",
			maxRetries: 2,
			replies:    []reply{{stall: true}, {stall: true}, jsonReply(okBody)},
			wantCalls:  3,
		},
		{
			// The SDK reads a complete answer after its retry loop; the
			// attempt's time covers that read too.
			name:      "an answer that stops coming, then an answer",
			replies:   []reply{{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: okBody, stallAfter: 20}, jsonReply(okBody)},
			wantCalls: 2,
		},
		{
			name:      "no answer, then a stream",
			stream:    true,
			replies:   []reply{{stall: true}, sseReply(okStream)},
			wantCalls: 2,
		},
		{
			name:        "never an answer",
			maxRetries:  1,
			replies:     []reply{{stall: true}},
			wantCalls:   2,
			wantTimeout: &model.TimeoutError{Timeout: attemptTimeout, Attempts: 2, TimedOut: 2},
			wantMsg:     "model call timed out after 200ms on each of 2 attempts (raise timeout or max_retries in the model's configuration)",
		},
		{
			name:        "never an answer, no retries",
			maxRetries:  -1,
			replies:     []reply{{stall: true}, jsonReply(okBody)},
			wantCalls:   1,
			wantTimeout: &model.TimeoutError{Timeout: attemptTimeout, Attempts: 1, TimedOut: 1},
			wantMsg:     "model call timed out after 200ms on its only attempt (raise timeout or max_retries in the model's configuration)",
		},
		{
			name:        "an error, then no answer",
			maxRetries:  1,
			replies:     []reply{overloaded, {stall: true}},
			wantCalls:   2,
			wantTimeout: &model.TimeoutError{Timeout: attemptTimeout, Attempts: 2, TimedOut: 1},
			wantMsg:     "timed out after 200ms on 1 of 2 attempts, the last one included",
		},
		{
			name:       "no answer, then an error",
			maxRetries: 1,
			replies:    []reply{{stall: true}, overloaded},
			wantCalls:  2,
			wantStatus: 500,
			wantMsg:    "overloaded",
		},
		{
			// Text already passed on would be passed on twice.
			name:        "a stream that stops after its first text is not retried",
			stream:      true,
			replies:     []reply{{status: 200, header: map[string]string{"Content-Type": "text/event-stream"}, body: okStream, stallAfter: firstText}, sseReply(okStream)},
			wantCalls:   1,
			wantTimeout: &model.TimeoutError{Timeout: attemptTimeout, Attempts: 1, TimedOut: 1, Streaming: true},
			wantMsg:     "model call timed out after 200ms while streaming its answer, which is not retried (raise timeout in the model's configuration)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newFakeServer(t, tt.replies...)
			p := newProvider(t, s, Config{Timeout: attemptTimeout, MaxRetries: tt.maxRetries})
			var sink func(model.Delta)
			if tt.stream {
				sink = func(model.Delta) {}
			}
			resp, err := p.Generate(context.Background(), &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "hi"}}}, sink)
			if got := len(s.requests()); got != tt.wantCalls {
				t.Errorf("server got %d requests, want %d", got, tt.wantCalls)
			}
			switch {
			case tt.wantTimeout != nil:
				var te *model.TimeoutError
				if !errors.As(err, &te) {
					t.Fatalf("error %v (%T) is not a *model.TimeoutError", err, err)
				}
				if !reflect.DeepEqual(te, tt.wantTimeout) {
					t.Errorf("TimeoutError = %+v, want %+v", te, tt.wantTimeout)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
				}
			case tt.wantStatus != 0:
				var se *model.StatusError
				if !errors.As(err, &se) || se.StatusCode != tt.wantStatus {
					t.Fatalf("error %v, want a *model.StatusError with status %d", err, tt.wantStatus)
				}
			default:
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if resp.Message.Content == "" && len(resp.Message.ToolCalls) == 0 {
					t.Errorf("empty response %+v", resp)
				}
				return
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

// TestTimeoutCallerGivesUp checks that the caller's own cancellation or
// deadline is never retried, nor reported as the model's timeout.
func TestTimeoutCallerGivesUp(t *testing.T) {
	tests := []struct {
		name    string
		stream  bool
		context func() (context.Context, context.CancelFunc)
		// stop, when set, is called once the request arrived.
		stop    bool
		wantErr error
	}{
		{"canceled", false, func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, true, context.Canceled},
		{"canceled while streaming", true, func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, true, context.Canceled},
		{"deadline shorter than the timeout", false, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), attemptTimeout)
		}, false, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newFakeServer(t, reply{stall: true})
			// An attempt's own limit far beyond the test, and retries to
			// spare: only the caller can end the call.
			p := newProvider(t, s, Config{Timeout: time.Hour, MaxRetries: 3})
			ctx, cancel := tt.context()
			defer cancel()
			done := make(chan error, 1)
			var sink func(model.Delta)
			if tt.stream {
				sink = func(model.Delta) {}
			}
			go func() {
				_, err := p.Generate(ctx, &model.Request{Messages: []model.Message{{Role: model.RoleUser, Content: "hi"}}}, sink)
				done <- err
			}()
			<-s.arrived
			if tt.stop {
				cancel()
			}
			err := <-done
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			var te *model.TimeoutError
			if errors.As(err, &te) {
				t.Errorf("the caller's %v is reported as the model's timeout: %v", tt.wantErr, err)
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("server got %d requests, want 1: the caller's %v is not retried", n, tt.wantErr)
			}
		})
	}
}
