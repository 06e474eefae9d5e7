package anthropic

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	sdk "github.com/anthropics/anthropic-sdk-go"

	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/model"
)

// maxMessageLen bounds how much of an error body ends up in an error
// message, since proxies sometimes answer with whole HTML pages.
const maxMessageLen = 1000

// typeStatus is the HTTP status Anthropic documents for each error type. An
// error event in the middle of a stream arrives on a 200 response, and
// callers still need to tell an overloaded server from a bad request.
var typeStatus = map[string]int{
	"invalid_request_error": 400,
	"authentication_error":  401,
	"billing_error":         402,
	"permission_error":      403,
	"not_found_error":       404,
	"request_too_large":     413,
	"rate_limit_error":      429,
	"api_error":             500,
	"timeout_error":         504,
	"overloaded_error":      529,
}

// statusError converts the SDK's error for an error response or an error
// event. It returns nil for an error event of a type with no known status,
// which is better reported as it is than under a made-up status.
func statusError(apiErr *sdk.Error) *model.StatusError {
	body := apiErr.RawJSON()
	code := apiErr.StatusCode
	if code < 400 {
		code = typeStatus[errorType(body)]
		if code == 0 {
			return nil
		}
	}
	se := &model.StatusError{Provider: providerName, StatusCode: code, Message: errorMessage(body)}
	if apiErr.Response != nil && apiErr.StatusCode >= 400 {
		se.RetryAfter = retryAfter(apiErr.Response.Header, time.Now())
	}
	if se.Message == "" {
		se.Message = http.StatusText(code)
	}
	// Proxies' error pages sometimes quote the URL they were asked for.
	se.Message = redact.Text(se.Message)
	return se
}

// errorBody is Anthropic's error envelope.
type errorBody struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func errorType(body string) string {
	var v errorBody
	_ = json.Unmarshal([]byte(body), &v)
	return v.Error.Type
}

// errorMessage finds the human-readable part of an error body, falling back
// to the body itself for proxies that do not use Anthropic's envelope.
func errorMessage(body string) string {
	var v errorBody
	if json.Unmarshal([]byte(body), &v) == nil && v.Error.Message != "" {
		return v.Error.Message
	}
	msg := strings.TrimSpace(body)
	if len(msg) > maxMessageLen {
		msg = msg[:maxMessageLen] + "…"
	}
	return msg
}

// retryAfter reads the wait a response asks for, preferring the
// millisecond header over the standard one, as the SDK does.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil {
			return duration(ms, time.Millisecond)
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return duration(s, time.Second)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// duration converts n units to a Duration, treating nonsense (negative, NaN)
// as no wait and saturating instead of overflowing.
func duration(n float64, unit time.Duration) time.Duration {
	d := n * float64(unit)
	switch {
	case !(d > 0):
		return 0
	case d >= math.MaxInt64:
		return math.MaxInt64
	}
	return time.Duration(d)
}
