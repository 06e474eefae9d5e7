package attempt

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/model"
)

const limit = 200 * time.Millisecond

// server answers its first stalls requests by never answering (or, with
// midway set, by stopping partway through the body), the rest at once.
func server(t *testing.T, stalls int, midway bool, contentType string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		if int(n.Add(1)) > stalls {
			io.WriteString(w, "all of it")
			return
		}
		if midway {
			io.WriteString(w, "part")
			http.NewResponseController(w).Flush()
		}
		<-r.Context().Done()
	}))
	t.Cleanup(s.Close)
	return s, &n
}

// send plays an SDK: it tries up to 1+retries times while the attempt
// fails without a response and the caller is still there, the way
// openai-go's retry loop does, then reads the body. sdkTimeout, when set,
// is a per-attempt deadline the SDK itself sets, as anthropic-sdk-go does.
func send(ctx context.Context, url string, retries int, sdkTimeout time.Duration, mw func(*http.Request, func(*http.Request) (*http.Response, error)) (*http.Response, error)) (string, error) {
	var err error
	for range 1 + retries {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if sdkTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, sdkTimeout)
		}
		req, _ := http.NewRequestWithContext(actx, http.MethodPost, url, nil)
		var res *http.Response
		res, err = mw(req, http.DefaultClient.Do)
		if err == nil {
			var b []byte
			b, err = io.ReadAll(res.Body)
			res.Body.Close()
			cancel()
			if err == nil || ctx.Err() != nil || actx.Err() == nil {
				return string(b), err
			}
			continue // the SDK's own deadline cut the body: retry
		}
		cancel()
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
	return "", err
}

func TestMiddleware(t *testing.T) {
	tests := []struct {
		name         string
		stalls       int
		midway       bool
		stream       bool
		retries      int
		sdkTimeout   bool // the SDK sets the deadline; the middleware only counts
		want         *model.TimeoutError
		wantRequests int32 // requests the server got
	}{
		{name: "no answer, then an answer", stalls: 1, retries: 2, wantRequests: 2},
		{name: "body stops, then an answer", stalls: 1, midway: true, retries: 2, wantRequests: 2},
		{name: "never an answer", stalls: 9, retries: 1, wantRequests: 2,
			want: &model.TimeoutError{Timeout: limit, Attempts: 2, TimedOut: 2}},
		{name: "a stream that stops", stalls: 1, midway: true, stream: true, retries: 2, wantRequests: 1,
			want: &model.TimeoutError{Timeout: limit, Attempts: 1, TimedOut: 1, Streaming: true}},
		{name: "counting the SDK's own deadline", stalls: 9, retries: 1, sdkTimeout: true, wantRequests: 2,
			want: &model.TimeoutError{Timeout: limit, Attempts: 2, TimedOut: 2}},
		{name: "counting the SDK's own deadline on a body", stalls: 1, midway: true, retries: 1, sdkTimeout: true, wantRequests: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ct := "application/json"
			if tt.stream {
				ct = "text/event-stream"
			}
			s, n := server(t, tt.stalls, tt.midway, ct)
			mw, sdkTimeout := Middleware(limit), time.Duration(0)
			if tt.sdkTimeout {
				mw, sdkTimeout = Middleware(0), limit
			}
			ctx, call := Start(context.Background())
			got, err := send(ctx, s.URL, tt.retries, sdkTimeout, mw)
			err = call.Err(err, limit)
			if n.Load() != tt.wantRequests {
				t.Errorf("server got %d requests, want %d", n.Load(), tt.wantRequests)
			}
			if tt.want == nil {
				if err != nil || got != "all of it" {
					t.Fatalf("got %q, %v; want the answer", got, err)
				}
				return
			}
			var te *model.TimeoutError
			if !errors.As(err, &te) || !reflect.DeepEqual(te, tt.want) {
				t.Fatalf("error %v, want %+v", err, tt.want)
			}
		})
	}
}

func TestCallerGivesUp(t *testing.T) {
	s, n := server(t, 9, false, "application/json")
	arrived := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx, call := Start(ctx)
	// Cancel once the first request is on its way.
	mw := Middleware(time.Hour)
	var once sync.Once
	watch := func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		once.Do(func() { close(arrived) })
		return next(req)
	}
	go func() { <-arrived; cancel() }()
	_, err := send(ctx, s.URL, 3, 0, func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		return mw(req, func(r *http.Request) (*http.Response, error) { return watch(r, next) })
	})
	err = call.Err(err, time.Hour)
	var te *model.TimeoutError
	if !errors.Is(err, context.Canceled) || errors.As(err, &te) {
		t.Fatalf("error %v, want the caller's context.Canceled", err)
	}
	if n.Load() > 1 {
		t.Errorf("server got %d requests: the caller's cancellation was retried", n.Load())
	}
}
