package openaiserver_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/openaiserver"
)

// FuzzParseChatRequest feeds arbitrary bodies to the request parser: each
// is a request whose input can be built, or an *Error of status 400 that
// names no more than 200 characters of what it quotes — never a panic.
func FuzzParseChatRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"a","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"a","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"x"},{"type":"text","text":"y"}]}]}`,
		`{"model":"a","user":"k","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"},{"role":"user","content":"z"}]}`,
		`{"model":"a","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}`,
		`{"model":"a","n":2,"messages":[]}`,
		`{"model":1}`,
		`{"model":"a","messages":[{"role":"user"}],"temperature":0.2,"max_tokens":5,"metadata":{"k":"v"}}`,
		`null`, `[]`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := openaiserver.ParseChatRequest(data)
		if err != nil {
			var e *openaiserver.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Type != "invalid_request_error" {
				t.Fatalf("error %T %v", err, err)
			}
			if len(e.Message) > 1200 || len(e.Param) > 260 {
				t.Fatalf("error quotes too much: %d bytes, param %d", len(e.Message), len(e.Param))
			}
			return
		}
		if req.Model == "" || len(req.Messages) == 0 {
			t.Fatalf("accepted %s", data)
		}
		if _, err := req.Input(false); err != nil {
			t.Fatalf("input of an accepted request: %v", err)
		}
		if _, err := req.Input(true); err != nil && !strings.Contains(err.Error(), "last message") {
			t.Fatalf("instance input: %v", err)
		}
	})
}
