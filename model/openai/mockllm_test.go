package openai_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/mockllm"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/model/openai"
	"github.com/myriad-ai/myriad/model/scripted"
)

// The provider against Myriad's own mock server: a full tool round trip,
// streaming, and injected 429s retried with Retry-After.
func TestAgainstMockLLM(t *testing.T) {
	rules, err := scripted.ParseRules([]byte(`
- when: {last_tool: lookup}
  reply: {text: "found {{.LastToolResult}}"}
- reply: {tool_calls: [{name: lookup, arguments: {id: "42"}}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	mock, err := mockllm.New(mockllm.Options{Rules: rules, FailFirst: 2, FailStatus: 429, RetryAfter: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mock.Handler())
	defer srv.Close()
	p, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1", Model: "scripted", APIKey: "unused", MaxRetries: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := &model.Request{
		Messages: []model.Message{{Role: model.RoleUser, Content: "find 42"}},
		Tools:    []model.ToolSpec{{Name: "lookup", Parameters: json.RawMessage(`{"type":"object"}`)}},
	}
	resp, err := p.Generate(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := mock.Stats(); st.Requests != 3 || st.FailedInjected != 2 {
		t.Fatalf("stats %+v: want 2 injected 429s then a success", st)
	}
	if len(resp.Message.ToolCalls) != 1 || resp.Message.ToolCalls[0].Name != "lookup" || string(resp.Message.ToolCalls[0].Arguments) != `{"id":"42"}` {
		t.Fatalf("tool call %+v", resp.Message)
	}
	req.Messages = append(req.Messages, resp.Message,
		model.Message{Role: model.RoleTool, ToolCallID: resp.Message.ToolCalls[0].ID, Name: "lookup", Content: "record 42"})
	var streamed string
	resp, err = p.Generate(ctx, req, func(d model.Delta) { streamed += d.Text })
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.Content != "found record 42" || streamed != resp.Message.Content || resp.Usage.Total() == 0 {
		t.Fatalf("final %q, streamed %q, usage %+v", resp.Message.Content, streamed, resp.Usage)
	}
}
