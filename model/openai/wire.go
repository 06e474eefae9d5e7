package openai

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/myriad-ai/myriad/model"
)

// The non-streaming call builds its body and reads its answer with these
// plain structs and encoding/json, and leaves transport, authentication,
// retries and error decoding to the SDK (client.Post). The SDK's typed
// params marshal through reflection-heavy unions, which cost about as much
// CPU as the HTTP exchange itself at thousands of calls per second.

type wireRequest struct {
	Model               string              `json:"model"`
	Messages            []wireMessage       `json:"messages"`
	Tools               []wireTool          `json:"tools,omitempty"`
	MaxTokens           int                 `json:"max_tokens,omitempty"`
	MaxCompletionTokens int                 `json:"max_completion_tokens,omitempty"`
	Temperature         *float64            `json:"temperature,omitempty"`
	ResponseFormat      *wireResponseFormat `json:"response_format,omitempty"`
}

type wireMessage struct {
	Role       string         `json:"role"`
	Content    *string        `json:"content,omitempty"`
	ToolCalls  []wireToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type wireToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function wireFunction `json:"function"`
}

type wireFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type wireTool struct {
	Type     string          `json:"type"`
	Function json.RawMessage `json:"function"`
}

type wireResponseFormat struct {
	Type       string         `json:"type"`
	JSONSchema wireJSONSchema `json:"json_schema"`
}

type wireJSONSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
}

type wireCompletion struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content   string         `json:"content"`
			Refusal   string         `json:"refusal"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
}

// wireBody is the JSON body of a non-streaming chat completion request,
// the same one the SDK's params would produce.
func (p *Provider) wireBody(req *model.Request) ([]byte, error) {
	w := wireRequest{Model: p.model, Messages: make([]wireMessage, 0, len(req.Messages)), Temperature: req.Temperature}
	for i, m := range req.Messages {
		wm, err := wireMessageOf(m)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		w.Messages = append(w.Messages, wm)
	}
	for _, t := range req.Tools {
		if t.Name == "" {
			return nil, errors.New("tool has no name")
		}
		if len(t.Parameters) > 0 && !json.Valid(t.Parameters) {
			return nil, fmt.Errorf("tool %q: parameters are not valid JSON", t.Name)
		}
		def, err := json.Marshal(struct {
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			Parameters  json.RawMessage `json:"parameters,omitempty"`
		}{t.Name, t.Description, t.Parameters})
		if err != nil {
			return nil, fmt.Errorf("tool %q: %w", t.Name, err)
		}
		w.Tools = append(w.Tools, wireTool{Type: "function", Function: def})
	}
	if req.MaxTokens > 0 {
		if p.maxCompletionTokens {
			w.MaxCompletionTokens = req.MaxTokens
		} else {
			w.MaxTokens = req.MaxTokens
		}
	}
	if len(req.OutputSchema) > 0 {
		if !json.Valid(req.OutputSchema) {
			return nil, errors.New("output schema is not valid JSON")
		}
		w.ResponseFormat = &wireResponseFormat{Type: "json_schema", JSONSchema: wireJSONSchema{Name: "output", Schema: req.OutputSchema}}
	}
	return json.Marshal(w)
}

func wireMessageOf(m model.Message) (wireMessage, error) {
	content := m.Content
	switch m.Role {
	case model.RoleSystem, model.RoleUser:
		return wireMessage{Role: string(m.Role), Content: &content}, nil
	case model.RoleAssistant:
		w := wireMessage{Role: "assistant"}
		// As in convertMessage: content alone, or tool calls with content
		// only when there is some.
		if m.Content != "" || len(m.ToolCalls) == 0 {
			w.Content = &content
		}
		for _, tc := range m.ToolCalls {
			w.ToolCalls = append(w.ToolCalls, wireToolCall{ID: tc.ID, Type: "function",
				Function: wireFunction{Name: tc.Name, Arguments: argumentsText(tc.Arguments)}})
		}
		return w, nil
	case model.RoleTool:
		if m.ToolCallID == "" {
			return wireMessage{}, errors.New("tool message has no tool call id")
		}
		if m.IsError {
			content = "Error: " + content
		}
		return wireMessage{Role: "tool", Content: &content, ToolCallID: m.ToolCallID}, nil
	}
	return wireMessage{}, fmt.Errorf("unknown role %q", m.Role)
}

// response turns a decoded completion into a Myriad response, as
// convertCompletion does for the SDK's type.
func (c *wireCompletion) response() (*model.Response, error) {
	if len(c.Choices) == 0 {
		return nil, errors.New("response has no choices")
	}
	choice := c.Choices[0]
	msg, err := assistantMessage(choice.Message.Content, choice.Message.Refusal, choice.Message.ToolCalls)
	if err != nil {
		return nil, err
	}
	return &model.Response{
		Message: msg,
		Usage: model.Usage{InputTokens: c.Usage.PromptTokens, OutputTokens: c.Usage.CompletionTokens,
			CachedInputTokens: c.Usage.PromptTokensDetails.CachedTokens},
		Model:      c.Model,
		StopReason: choice.FinishReason,
	}, nil
}

// assistantMessage builds the answer message from a completion's choice,
// whichever decoder produced it (the SDK's types when streaming, wire
// structs otherwise).
func assistantMessage(content, refusal string, calls []wireToolCall) (model.Message, error) {
	msg := model.Message{Role: model.RoleAssistant, Content: content}
	if msg.Content == "" && refusal != "" {
		msg.Content = refusal
	}
	for i, tc := range calls {
		if tc.Type != "" && tc.Type != "function" {
			return model.Message{}, fmt.Errorf("tool call %q has unsupported type %q", tc.ID, tc.Type)
		}
		id := tc.ID
		if id == "" {
			// Some compatible servers leave ids out, but the tool results
			// sent back next turn must name the call they answer.
			id = fmt.Sprintf("call_%d", i)
		}
		msg.ToolCalls = append(msg.ToolCalls, model.ToolCall{ID: id, Name: tc.Function.Name, Arguments: toolArguments(tc.Function.Arguments)})
	}
	return msg, nil
}
