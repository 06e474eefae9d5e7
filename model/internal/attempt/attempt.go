// Package attempt bounds and follows the HTTP attempts an SDK makes for one
// model call, so that an attempt that runs out of time is retried like a
// dropped connection, and the error of a call whose last attempt ran out of
// time says so (a [*model.TimeoutError]) instead of "context deadline
// exceeded".
//
// It plugs into the OpenAI and Anthropic SDKs as request middleware
// (option.WithMiddleware in both), which runs once per attempt, inside the
// SDKs' retry loops.
//
// Why not the SDKs' own per-attempt timeout (option.WithRequestTimeout)?
// openai-go derives each attempt's context from the caller's and, when an
// attempt fails, checks that attempt context: a timed-out attempt looks
// exactly like a canceled caller, so the SDK returns at once instead of
// retrying. It also reads a complete answer's body after its retry loop,
// where a stalled body can no longer be retried. The timeout given here is
// applied below the SDK instead, body read included: the attempt's failure
// reaches the SDK as a connection error while the caller's context is
// still live, and the SDK retries it with its backoff. anthropic-sdk-go
// (v1.84) tells the two contexts apart and retries on its own; there the
// middleware is given no timeout and only counts.
package attempt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/myriad-ai/myriad/model"
)

// Call follows the attempts of one model call. Its methods are safe for
// concurrent use: a streamed body may be read after the call returned.
type Call struct {
	// caller is the context the call was made with: when it is done, the
	// caller gave up, which is never an attempt's timeout.
	caller context.Context

	mu           sync.Mutex
	attempts     int
	timeouts     int
	lastTimedOut bool // the latest attempt ran out of time
	streaming    bool // ... while its answer was streaming
}

type callKey struct{}

// Start returns a context for the SDK call that carries a new Call, in which
// [Middleware] records each attempt.
func Start(ctx context.Context) (context.Context, *Call) {
	c := &Call{caller: ctx}
	return context.WithValue(ctx, callKey{}, c), c
}

// Err returns the error a call ended with, made a [*model.TimeoutError]
// when the call's last attempt ran out of its time limit, timeout. The
// caller's own cancellation or deadline comes back as it is.
func (c *Call) Err(err error, timeout time.Duration) error {
	if err == nil || c.caller.Err() != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lastTimedOut {
		return err
	}
	return &model.TimeoutError{Timeout: timeout, Attempts: c.attempts, TimedOut: c.timeouts, Streaming: c.streaming}
}

func (c *Call) begin() {
	c.mu.Lock()
	c.attempts++
	c.lastTimedOut, c.streaming = false, false
	c.mu.Unlock()
}

// timedOut reports whether the attempt whose context is ctx failed because
// its own deadline passed, rather than because the caller gave up, and if
// so records it.
func (c *Call) timedOut(ctx context.Context, streaming bool) bool {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || c.caller.Err() != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lastTimedOut {
		c.timeouts++
	}
	c.lastTimedOut, c.streaming = true, streaming
	return true
}

// errTimedOut is what a timed-out attempt returns to the SDK. It is not the
// context's error itself, which the SDKs compare against; it still matches
// context.DeadlineExceeded with errors.Is.
var errTimedOut = fmt.Errorf("the attempt ran out of time: %w", context.DeadlineExceeded)

// Middleware returns request middleware for the OpenAI or Anthropic SDK
// that records every attempt in the Call of the request's context (see
// [Start]) and, when timeout is positive, bounds each attempt by it:
// sending the request, waiting for the answer and reading it, whether it
// is read before the middleware returns (a complete answer) or after (a
// streamed one, whose body keeps the deadline until it is closed).
//
// A timed-out attempt returns no response and an error, which the SDKs
// retry as they retry a dropped connection. With timeout zero the
// middleware only records attempts, and recognizes the ones that run out of
// a deadline the SDK set itself.
func Middleware(timeout time.Duration) func(*http.Request, func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	return func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		c, _ := req.Context().Value(callKey{}).(*Call)
		if c == nil {
			// A request made without Start: still bounded, just not
			// reported on.
			c = &Call{caller: req.Context()}
		}
		c.begin()
		ctx, cancel := req.Context(), context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, timeout)
			req = req.WithContext(ctx)
		}
		res, err := next(req)
		if err != nil {
			cancel()
			if c.timedOut(ctx, false) {
				if res != nil && res.Body != nil {
					res.Body.Close()
				}
				return nil, errTimedOut
			}
			return res, err
		}
		stream := streamed(res)
		if timeout > 0 && !stream {
			// openai-go reads a complete answer after its retry loop,
			// where running out of time could no longer be retried: read
			// it here, within the attempt.
			data, err := io.ReadAll(res.Body)
			res.Body.Close()
			cancel()
			if err != nil && c.timedOut(ctx, false) {
				return nil, errTimedOut
			}
			// Any other failure is the SDK's to report, as it would
			// without this middleware: the bytes read, then the error.
			res.Body = &replay{Reader: bytes.NewReader(data), err: err}
			return res, nil
		}
		res.Body = &body{rc: res.Body, ctx: ctx, stop: cancel, call: c, stream: stream}
		return res, nil
	}
}

// streamed reports whether res carries a server-sent event stream, which
// its reader consumes as it arrives.
func streamed(res *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	return mt == "text/event-stream"
}

// body is a response body read after the middleware returned. It keeps the
// attempt's deadline until it is closed, and records running out of it.
type body struct {
	rc     io.ReadCloser
	ctx    context.Context
	stop   context.CancelFunc
	call   *Call
	stream bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && b.call.timedOut(b.ctx, b.stream) {
		// The transport's own error for a canceled read varies; this one
		// says what happened and matches context.DeadlineExceeded.
		err = errTimedOut
	}
	return n, err
}

func (b *body) Close() error {
	err := b.rc.Close()
	b.stop()
	return err
}

// replay is a buffered body that ends with the error its reading ended
// with, if any.
type replay struct {
	*bytes.Reader
	err error
}

func (r *replay) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if err == io.EOF && r.err != nil {
		err = r.err
	}
	return n, err
}

func (r *replay) Close() error { return nil }
