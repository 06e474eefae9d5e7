package openai

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/model"
)

// maxMessageLen bounds how much of an error body ends up in an error
// message, since some servers answer with whole HTML pages.
const maxMessageLen = 1000

// statusError describes an HTTP error response. msg is the message the SDK
// parsed from the body, if it managed to.
func statusError(code int, msg string, res *http.Response) *model.StatusError {
	se := &model.StatusError{Provider: providerName, StatusCode: code, Message: msg}
	if res != nil {
		se.RetryAfter = retryAfter(res.Header, time.Now())
		if se.StatusCode == 0 {
			se.StatusCode = res.StatusCode
		}
	}
	if se.Message == "" {
		// Compatible servers do not all use OpenAI's {"error": {...}}
		// envelope, which is the only one the SDK parses.
		se.Message = errorMessage(responseBody(res))
	}
	if se.Message == "" {
		se.Message = http.StatusText(se.StatusCode)
	}
	// Proxies' error pages sometimes quote the URL they were asked for.
	se.Message = redact.Text(se.Message)
	return se
}

// responseBody reads the body the SDK buffered for the error, leaving a fresh
// copy in place for anyone who dumps the response later.
func responseBody(res *http.Response) []byte {
	if res == nil || res.Body == nil {
		return nil
	}
	body, _ := io.ReadAll(res.Body)
	res.Body = io.NopCloser(bytes.NewReader(body))
	return body
}

// errorMessage finds the human-readable part of an error body in the shapes
// OpenAI-compatible servers use, falling back to the body itself.
func errorMessage(body []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil {
		var nested struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(v.Error, &nested) == nil && nested.Message != "":
			return nested.Message
		case json.Unmarshal(v.Error, &s) == nil && s != "":
			return s
		case v.Message != "":
			return v.Message
		case json.Unmarshal(v.Detail, &s) == nil && s != "":
			return s
		}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > maxMessageLen {
		msg = msg[:maxMessageLen] + "…"
	}
	return msg
}

// retryAfter reads the wait a response asks for, preferring the
// millisecond header OpenAI sends over the standard one, as the SDK does.
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
