package mockllm

import (
	"context"
	"errors"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// The mock exists to stand in for OpenAI, so it is checked against the
// official client too: a response the SDK cannot read is a broken mock even
// if it looks right to a hand-written decoder.
func TestOpenAISDK(t *testing.T) {
	s, ts := newTestServer(t, Options{FailFirst: 2, RetryAfter: 5 * time.Millisecond})
	client := oai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("test"), option.WithMaxRetries(2))
	ctx := context.Background()

	params := oai.ChatCompletionNewParams{
		Model:    "gpt-test",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("weather in Paris")},
		Tools: []oai.ChatCompletionToolUnionParam{oai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:       "get_weather",
			Parameters: shared.FunctionParameters{"type": "object"},
		})},
	}
	// The first two attempts fail with 500 and Retry-After-Ms: 5; the SDK
	// retries and the third succeeds.
	cc, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Requests != 3 || st.FailedInjected != 2 || st.Completions != 1 {
		t.Errorf("stats %+v", st)
	}
	msg := cc.Choices[0].Message
	if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_weather" || msg.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` ||
		cc.Choices[0].FinishReason != "tool_calls" || cc.Usage.PromptTokens == 0 {
		t.Fatalf("completion %+v", cc)
	}

	params.Messages = append(params.Messages, msg.ToParam(), oai.ToolMessage("sunny", msg.ToolCalls[0].ID))
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var acc oai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "Forecast: sunny" {
		t.Errorf("streamed content %q", got)
	}

	// A tool call streamed in deltas is reassembled by the SDK.
	params.Messages = params.Messages[:1]
	stream = client.Chat.Completions.NewStreaming(ctx, params)
	acc = oai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if tc := acc.Choices[0].Message.ToolCalls; len(tc) != 1 || tc[0].ID != "call_1_0" || tc[0].Function.Arguments != `{"city":"Paris"}` {
		t.Errorf("streamed tool calls %+v", tc)
	}

	// Rule errors arrive as API errors with their status.
	params.Messages = []oai.ChatCompletionMessageParamUnion{oai.UserMessage("fail please")}
	_, err = client.Chat.Completions.New(ctx, params, option.WithMaxRetries(0))
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type != "rate_limit_error" {
		t.Errorf("err = %v", err)
	}
}
