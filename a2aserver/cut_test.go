package a2aserver_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// A name the SDK would echo whole in a 0.3 error comes back cut.
func TestA2A03ErrorsDoNotEchoLongNames(t *testing.T) {
	_, base := newServer(t)
	big := strings.Repeat("x", 100000)
	status, h, data := v1(t, "POST", base+"/a2a/greeter", "",
		`{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","messageId":"m","parts":[{"kind":"`+big+`"}]}}}`)
	var out struct {
		ID    int `json:"id"`
		Error struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &out); err != nil || status != 200 || out.ID != 1 || out.Error.Code != -32700 {
		t.Fatalf("%d %v %.300s", status, err, data)
	}
	if len(data) > 1000 || !strings.Contains(string(out.Error.Data), "cut: ") || h.Get("Content-Type") != "application/json" {
		t.Fatalf("%d bytes, %s: %.600s", len(data), h.Get("Content-Type"), data)
	}
	// A stream passes through as it comes.
	_, h, data = v1(t, "POST", base+"/a2a/greeter", "",
		`{"jsonrpc":"2.0","id":2,"method":"message/stream","params":{"message":{"role":"user","messageId":"s","parts":[{"kind":"text","text":"Ed"}]}}}`)
	if !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") || !strings.Contains(string(data), "hello Ed") {
		t.Fatalf("stream: %s %.500s", h.Get("Content-Type"), data)
	}
}
