package a2atool_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/a2atool"
)

// serve1 is an A2A 1.0 agent, as the specification's wire has it (the
// captures of the A2A JS SDK's server): a 1.0-only card, and a JSON-RPC
// endpoint that refuses any request not marked A2A-Version: 1.0.
func serve1(t *testing.T, streaming bool) (url string, methods func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /.well-known/agent-card.json", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"name":"v1","description":"d","version":"1","capabilities":{"streaming":%v},
			"supportedInterfaces":[{"url":%q,"protocolBinding":"HTTP+JSON","protocolVersion":"1.0"},{"url":%q,"protocolBinding":"JSONRPC","protocolVersion":"1.0"}],
			"securitySchemes":{"bearer":{"httpAuthSecurityScheme":{"scheme":"Bearer"}}},"defaultInputModes":["text/plain"],"defaultOutputModes":["text/plain"],"skills":[]}`,
			streaming, srv.URL+"/rest", srv.URL+"/rpc")
	})
	task := func(state, text string) string {
		art := ""
		if text != "" {
			art = fmt.Sprintf(`,"artifacts":[{"artifactId":"a","parts":[{"text":%q}]}]`, text)
		}
		return fmt.Sprintf(`{"id":"t-1","contextId":"c-1","status":{"state":%q,"timestamp":"2026-12-03T10:09:12.748Z"}%s}`, state, art)
	}
	mux.HandleFunc("POST /rpc", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Message struct {
					Role  string `json:"role"`
					Parts []struct {
						Text string `json:"text"`
						Kind string `json:"kind"`
					} `json:"parts"`
				} `json:"message"`
			} `json:"params"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		mu.Lock()
		seen = append(seen, req.Method+" "+r.Header.Get("A2A-Version"))
		mu.Unlock()
		reply := func(result string) string {
			return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, req.ID, result)
		}
		if r.Header.Get("A2A-Version") != "1.0" {
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32009,"message":"version"}}`, req.ID)
			return
		}
		m := req.Params.Message
		input := ""
		if len(m.Parts) > 0 && m.Parts[0].Kind == "" && m.Role == "ROLE_USER" {
			input = m.Parts[0].Text
		}
		switch req.Method {
		case "SendMessage":
			if input == "ask" {
				fmt.Fprint(w, reply(`{"task":`+strings.Replace(task("TASK_STATE_INPUT_REQUIRED", ""), `"timestamp"`, `"message":{"messageId":"q","role":"ROLE_AGENT","parts":[{"text":"which one?"}]},"timestamp"`, 1)+`}`))
				return
			}
			fmt.Fprint(w, reply(`{"task":`+task("TASK_STATE_COMPLETED", "echo: "+input)+`}`))
		case "SendStreamingMessage":
			w.Header().Set("Content-Type", "text/event-stream")
			for _, ev := range []string{
				`{"task":` + task("TASK_STATE_SUBMITTED", "") + `}`,
				`{"statusUpdate":{"taskId":"t-1","contextId":"c-1","status":{"state":"TASK_STATE_WORKING","message":{"messageId":"w","role":"ROLE_AGENT","parts":[{"text":"thinking about ` + input + `"}]}}}}`,
				`{"artifactUpdate":{"taskId":"t-1","contextId":"c-1","artifact":{"artifactId":"a","parts":[{"text":"echo: ` + input + `"}]},"lastChunk":true}}`,
				`{"statusUpdate":{"taskId":"t-1","contextId":"c-1","status":{"state":"TASK_STATE_COMPLETED"}}}`,
			} {
				fmt.Fprintf(w, "data: %s\n\n", reply(ev))
			}
		default:
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"no"}}`, req.ID)
		}
	})
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestSpeaksA2A1WhenTheCardOffersIt: given a card with a 1.0 JSON-RPC
// interface, the tool speaks 1.0 (method names, roles, parts without
// kind, the A2A-Version header), streaming or not.
func TestSpeaksA2A1WhenTheCardOffersIt(t *testing.T) {
	for _, streaming := range []bool{true, false} {
		url, methods := serve1(t, streaming)
		tl := a2atool.New(a2atool.Config{Name: "v1", URL: url})
		var progress []string
		res, err := tl.Call(context.Background(), &tool.Call{RunID: "run_1", ID: "c1", Arguments: json.RawMessage(`{"input":"tea"}`),
			Progress: func(p tool.Progress) { progress = append(progress, p.Message) }})
		if err != nil || res.IsError || res.Content != "echo: tea" {
			t.Fatalf("streaming=%v: %+v %v", streaming, res, err)
		}
		want := "SendMessage 1.0"
		if streaming {
			want = "SendStreamingMessage 1.0"
			if !strings.Contains(strings.Join(progress, "|"), "thinking about tea") {
				t.Fatalf("progress %q", progress)
			}
		}
		if got := methods(); len(got) != 1 || got[0] != want {
			t.Fatalf("streaming=%v: requests %q", streaming, got)
		}
		if !streaming {
			res, err = tl.Call(context.Background(), &tool.Call{RunID: "run_1", ID: "c2", Arguments: json.RawMessage(`{"input":"ask"}`)})
			if err != nil || !strings.Contains(res.Content, "needs more input before it can finish (task_id t-1): which one?") {
				t.Fatalf("input required: %+v %v", res, err)
			}
		}
	}
}
