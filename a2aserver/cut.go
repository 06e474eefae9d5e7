package a2aserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/myriad-ai/myriad/run"
)

// cutErrors serves h (the SDK's 0.3 JSON-RPC binding) with the long words
// of its JSON-RPC errors cut to 200 bytes: the SDK quotes a caller's
// unknown part kind whole, megabytes of it. Streams pass through.
func cutErrors(h http.Handler, w http.ResponseWriter, r *http.Request) {
	cw := &errorCutter{ResponseWriter: w}
	h.ServeHTTP(cw, r)
	cw.finish()
}

// errorCutter holds back an answer that is not a stream until the
// handler is done.
type errorCutter struct {
	http.ResponseWriter
	status  int
	holding bool
	body    bytes.Buffer
}

func (c *errorCutter) WriteHeader(status int) {
	if c.status != 0 {
		return
	}
	c.status = status
	c.holding = !strings.HasPrefix(c.Header().Get("Content-Type"), "text/event-stream")
	if !c.holding {
		c.ResponseWriter.WriteHeader(status)
	}
}

func (c *errorCutter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.holding {
		return c.body.Write(p)
	}
	return c.ResponseWriter.Write(p)
}

// Flush passes a stream's events on at once.
func (c *errorCutter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok && !c.holding {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (c *errorCutter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *errorCutter) finish() {
	if !c.holding {
		return
	}
	data := c.body.Bytes()
	var resp map[string]any
	if json.Unmarshal(data, &resp) == nil {
		if c.Header().Get("Content-Type") == "" {
			c.Header().Set("Content-Type", "application/json") // the SDK sets none
		}
		if resp["error"] != nil {
			resp["error"] = cutStrings(resp["error"])
			data, _ = json.Marshal(resp)
			data = append(data, '\n')
		}
	}
	c.Header().Set("Content-Length", strconv.Itoa(len(data)))
	c.ResponseWriter.WriteHeader(c.status)
	_, _ = c.ResponseWriter.Write(data)
}

// cutStrings cuts the long words of every string in v.
func cutStrings(v any) any {
	switch v := v.(type) {
	case string:
		return run.CutWords(v)
	case map[string]any:
		for k, x := range v {
			v[k] = cutStrings(x)
		}
	case []any:
		for i, x := range v {
			v[i] = cutStrings(x)
		}
	}
	return v
}
