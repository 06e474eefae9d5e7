package mockllm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/myriad-ai/myriad/model"
)

// The wire types below cover the part of OpenAI's Chat Completions API that
// agents use. Unknown request fields are ignored, as OpenAI-compatible
// servers commonly do, so any client's extra parameters are accepted.

type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Tools         []chatTool    `json:"tools"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int     `json:"max_tokens"`
	MaxCompletionTokens *int     `json:"max_completion_tokens"`
	Temperature         *float64 `json:"temperature"`
	ResponseFormat      *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCalls  []chatToolCall  `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type chatToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// parseChatRequest decodes and converts a request body. Errors are meant for
// the client, as the message of a 400 answer.
func parseChatRequest(body []byte) (*chatRequest, *model.Request, error) {
	var cr chatRequest
	if err := json.Unmarshal(body, &cr); err != nil {
		return nil, nil, fmt.Errorf("invalid JSON body: %v", err)
	}
	if len(cr.Messages) == 0 {
		return nil, nil, errors.New("messages: must contain at least one message")
	}
	req := &model.Request{Messages: make([]model.Message, 0, len(cr.Messages))}
	// Tool messages carry only the call id; the tool name, which rules
	// match on, is on the assistant message that made the call.
	var names map[string]string
	for i := range cr.Messages {
		cm := &cr.Messages[i]
		text, err := contentText(cm.Content)
		if err != nil {
			return nil, nil, fmt.Errorf("messages[%d].content: %v", i, err)
		}
		m := model.Message{Content: text}
		switch cm.Role {
		case "system", "developer":
			m.Role = model.RoleSystem
		case "user":
			m.Role = model.RoleUser
		case "assistant":
			m.Role = model.RoleAssistant
			for j := range cm.ToolCalls {
				tc := &cm.ToolCalls[j]
				m.ToolCalls = append(m.ToolCalls, model.ToolCall{
					ID:        tc.ID,
					Name:      tc.Function.Name,
					Arguments: rawArguments(tc.Function.Arguments),
				})
				if tc.ID != "" {
					if names == nil {
						names = make(map[string]string)
					}
					names[tc.ID] = tc.Function.Name
				}
			}
		case "tool", "function":
			m.Role = model.RoleTool
			m.ToolCallID = cm.ToolCallID
			m.Name = cm.Name
			if n, ok := names[cm.ToolCallID]; ok && cm.ToolCallID != "" {
				m.Name = n
			}
		case "":
			return nil, nil, fmt.Errorf("messages[%d].role: missing", i)
		default:
			return nil, nil, fmt.Errorf("messages[%d].role: unknown role %q", i, cm.Role)
		}
		req.Messages = append(req.Messages, m)
	}
	for i := range cr.Tools {
		t := &cr.Tools[i]
		if t.Type != "" && t.Type != "function" {
			continue
		}
		if t.Function.Name == "" {
			return nil, nil, fmt.Errorf("tools[%d].function.name: missing", i)
		}
		req.Tools = append(req.Tools, model.ToolSpec{
			Name:        t.Function.Name,
			Description: t.Function.Description,
			Parameters:  t.Function.Parameters,
		})
	}
	if cr.MaxCompletionTokens != nil {
		req.MaxTokens = *cr.MaxCompletionTokens
	} else if cr.MaxTokens != nil {
		req.MaxTokens = *cr.MaxTokens
	}
	req.Temperature = cr.Temperature
	if rf := cr.ResponseFormat; rf != nil && rf.JSONSchema != nil && len(rf.JSONSchema.Schema) > 0 {
		req.OutputSchema = rf.JSONSchema.Schema
	}
	return &cr, req, nil
}

// contentText flattens string or array-of-parts content to text. Non-text
// parts (images, audio, files) have nothing a rule could match, so they are
// dropped rather than rejected.
func contentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", fmt.Errorf("invalid content parts: %v", err)
		}
		var b strings.Builder
		n := 0
		for _, p := range parts {
			if p.Type != "text" && p.Type != "input_text" && p.Type != "" {
				continue
			}
			if n > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(p.Text)
			n++
		}
		return b.String(), nil
	}
	return "", errors.New("must be a string, an array of content parts, or null")
}

// rawArguments keeps arguments that are JSON as they are, and quotes the
// rest, because model.ToolCall.Arguments must stay valid JSON.
func rawArguments(s string) json.RawMessage {
	if strings.TrimSpace(s) == "" {
		return json.RawMessage("{}")
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// Response types.

type completion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   usage    `json:"usage"`
}

type choice struct {
	Index        int         `json:"index"`
	Message      respMessage `json:"message"`
	FinishReason string      `json:"finish_reason"`
	Logprobs     *struct{}   `json:"logprobs"`
}

type respMessage struct {
	Role      string         `json:"role"`
	Content   *string        `json:"content"`
	Refusal   *string        `json:"refusal"`
	ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
}

type usage struct {
	PromptTokens        int                `json:"prompt_tokens"`
	CompletionTokens    int                `json:"completion_tokens"`
	TotalTokens         int                `json:"total_tokens"`
	PromptTokensDetails *promptTokenDetail `json:"prompt_tokens_details,omitempty"`
}

type promptTokenDetail struct {
	CachedTokens int `json:"cached_tokens"`
}

type chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	FinishReason *string    `json:"finish_reason"`
}

type chunkDelta struct {
	Role      string         `json:"role,omitempty"`
	Content   *string        `json:"content,omitempty"`
	ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
}

type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func toUsage(u model.Usage) usage {
	out := usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.Total()}
	if u.CachedInputTokens > 0 {
		out.PromptTokensDetails = &promptTokenDetail{CachedTokens: u.CachedInputTokens}
	}
	return out
}

func wireToolCalls(calls []model.ToolCall) []chatToolCall {
	if len(calls) == 0 {
		return nil
	}
	out := make([]chatToolCall, len(calls))
	for i, c := range calls {
		out[i].ID = c.ID
		out[i].Type = "function"
		out[i].Function.Name = c.Name
		out[i].Function.Arguments = string(c.Arguments)
	}
	return out
}
