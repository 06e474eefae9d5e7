package openaiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/myriad-ai/myriad/run"
)

// ChatRequest is the body of POST /v1/chat/completions as Myriad reads it.
// The sampling fields OpenAI defines (temperature, max_tokens, …) are
// accepted and left alone: the agent's own model settings decide them.
type ChatRequest struct {
	Model         string            `json:"model"`
	Messages      []Message         `json:"messages"`
	Stream        bool              `json:"stream"`
	StreamOptions *StreamOptions    `json:"stream_options"`
	User          string            `json:"user"`
	Metadata      map[string]string `json:"metadata"`
	N             *int              `json:"n"`
	Tools         []json.RawMessage `json:"tools"`
	Functions     []json.RawMessage `json:"functions"`
	// State is a flow's initial state (a JSON object): Myriad's own field.
	State json.RawMessage `json:"state"`
}

// StreamOptions are a streaming request's options.
type StreamOptions struct {
	// IncludeUsage asks for a last chunk carrying the usage.
	IncludeUsage bool `json:"include_usage"`
}

// Message is one message of a request.
type Message struct {
	Role string `json:"role"`
	// Content is a string, an array of content parts, or null.
	Content   json.RawMessage `json:"content"`
	Name      string          `json:"name"`
	ToolCalls []struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tool_calls"`
	ToolCallID string `json:"tool_call_id"`
}

// ignored are the request fields OpenAI defines that the agent's own
// settings govern: accepted, so clients that send them work, and unused.
var ignored = []string{
	"temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "presence_penalty",
	"frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "seed", "response_format",
	"parallel_tool_calls", "store", "reasoning_effort", "service_tier", "modalities", "prediction",
	"audio", "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
	"tool_choice", "function_call",
}

// messageFields are the message fields Myriad reads or accepts.
var messageFields = []string{"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "audio", "function_call"}

// MaxMessages bounds a request's messages.
const MaxMessages = 10000

// Error is a request refused, in OpenAI's terms.
type Error struct {
	Status  int
	Type    string // invalid_request_error, authentication_error, server_error, …
	Code    string
	Param   string
	Message string
	// RetryAfter is the Retry-After of a 429 or 503, in seconds (default 5).
	RetryAfter int
}

func (e *Error) Error() string { return e.Message }

func invalid(param, format string, args ...any) *Error {
	return &Error{Status: 400, Type: "invalid_request_error", Code: "invalid_request", Param: param, Message: fmt.Sprintf(format, args...)}
}

// ParseChatRequest decodes and checks a request body. Every error is an
// *Error naming the parameter at fault.
func ParseChatRequest(data []byte) (*ChatRequest, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return nil, invalid("", "the body must be a JSON object: %s", jsonProblem(err))
	}
	known := []string{"model", "messages", "stream", "stream_options", "user", "metadata", "n", "tools", "functions", "state"}
	for name := range fields {
		if !slices.Contains(known, name) && !slices.Contains(ignored, name) {
			return nil, invalid(run.CutText(name, 200), "Unrecognized request argument supplied: %s", run.CutText(name, 200))
		}
	}
	var req ChatRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&req); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			field := typeErr.Field
			if rest, ok := strings.CutPrefix(field, "messages."); ok {
				field = "messages[" + strconv.Itoa(firstBadMessage(fields["messages"])) + "]." + rest
			}
			return nil, invalid(field, "%s: must be %s, not %s", field, jsonType(typeErr.Type.Kind().String()), typeErr.Value)
		}
		return nil, invalid("", "invalid JSON body: %s", jsonProblem(err))
	}
	if err := req.check(fields); err != nil {
		return nil, err
	}
	return &req, nil
}

// firstBadMessage is the index of the first message that does not decode.
func firstBadMessage(data json.RawMessage) int {
	var raw []json.RawMessage
	_ = json.Unmarshal(data, &raw)
	for i, m := range raw {
		var msg Message
		if json.Unmarshal(m, &msg) != nil {
			return i
		}
	}
	return 0
}

func (req *ChatRequest) check(fields map[string]json.RawMessage) error {
	switch {
	case req.Model == "":
		return invalid("model", "model: missing: name an agent or a flow (GET /v1/models lists them)")
	case len(req.Messages) == 0:
		return invalid("messages", "messages: missing: send at least one message")
	case len(req.Messages) > MaxMessages:
		return invalid("messages", "messages: at most %d", MaxMessages)
	case req.N != nil && *req.N != 1:
		return invalid("n", "n: only 1 choice is supported (an agent's run has one answer)")
	case len(req.Tools) > 0 || len(req.Functions) > 0:
		return invalid("tools", "tools: an agent calls its own tools inside Myriad; tools from the caller are not supported (leave tools out)")
	case req.StreamOptions != nil && !req.Stream:
		return invalid("stream_options", "stream_options: only with stream: true")
	case len(req.Metadata) > 64:
		return invalid("metadata", "metadata: at most 64 keys")
	}
	if len(req.State) > 0 {
		var obj map[string]any
		if json.Unmarshal(req.State, &obj) != nil || obj == nil {
			return invalid("state", "state: must be a JSON object (a flow's initial state)")
		}
	}
	var raw []map[string]json.RawMessage
	_ = json.Unmarshal(fields["messages"], &raw)
	for i := range req.Messages {
		for name := range raw[i] {
			if !slices.Contains(messageFields, name) {
				return invalid(fmt.Sprintf("messages[%d].%s", i, run.CutText(name, 200)), "messages[%d]: unknown field %q", i, run.CutText(name, 200))
			}
		}
		if _, err := req.Messages[i].text(i); err != nil {
			return err
		}
	}
	return nil
}

// roles are the message roles OpenAI defines.
var roles = []string{"system", "developer", "user", "assistant", "tool", "function"}

// text is a message's text: its string content, or its text parts joined.
func (m *Message) text(i int) (string, error) {
	if !slices.Contains(roles, m.Role) {
		return "", invalid(fmt.Sprintf("messages[%d].role", i), "messages[%d].role: %q is not a role (known: %s)", i, run.CutText(m.Role, 200), strings.Join(roles, ", "))
	}
	c := bytes.TrimSpace(m.Content)
	if len(c) == 0 || string(c) == "null" {
		if m.Role == "assistant" && len(m.ToolCalls) > 0 {
			return "", nil
		}
		return "", invalid(fmt.Sprintf("messages[%d].content", i), "messages[%d].content: missing", i)
	}
	var s string
	if json.Unmarshal(c, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type    string `json:"type"`
		Text    string `json:"text"`
		Refusal string `json:"refusal"`
	}
	if err := json.Unmarshal(c, &parts); err != nil {
		return "", invalid(fmt.Sprintf("messages[%d].content", i), "messages[%d].content: must be a string or an array of content parts", i)
	}
	var texts []string
	for j, p := range parts {
		if p.Type == "refusal" && m.Role == "assistant" {
			texts = append(texts, p.Refusal)
			continue
		}
		if p.Type != "text" {
			return "", invalid(fmt.Sprintf("messages[%d].content[%d].type", i, j),
				"messages[%d].content[%d]: only text parts are supported, not %q", i, j, run.CutText(p.Type, 200))
		}
		texts = append(texts, p.Text)
	}
	return strings.Join(texts, "\n"), nil
}

// Input is what the run is given: alone, the one message's text, or the
// conversation as a transcript ("role: text" paragraphs); continuing an
// instance, which remembers the conversation, the last message's text,
// which must be the user's.
func (req *ChatRequest) Input(instance bool) (string, error) {
	last := len(req.Messages) - 1
	if instance {
		if req.Messages[last].Role != "user" {
			return "", invalid(fmt.Sprintf("messages[%d].role", last),
				"messages: continuing an instance, the last message must be the user's next one (the instance remembers the rest)")
		}
		text, err := req.Messages[last].text(last)
		return text, err
	}
	if last == 0 {
		return req.Messages[0].text(0)
	}
	var b strings.Builder
	for i := range req.Messages {
		m := &req.Messages[i]
		text, err := m.text(i)
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(m.Role)
		if m.Role == "tool" && m.ToolCallID != "" {
			b.WriteString(" (" + m.ToolCallID + ")")
		}
		b.WriteString(": ")
		if text == "" && len(m.ToolCalls) > 0 {
			names := make([]string, len(m.ToolCalls))
			for j, c := range m.ToolCalls {
				names[j] = c.Function.Name
			}
			text = "(called " + strings.Join(names, ", ") + ")"
		}
		b.WriteString(text)
	}
	return b.String(), nil
}

func jsonProblem(err error) string {
	switch {
	case err == nil:
		return "null"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "it is empty or cut short"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonType names a Go kind in JSON's words.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "uint64":
		return "an integer"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "a number"
}
