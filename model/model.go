// Package model defines how Myriad talks to language models.
//
// Every backend (an OpenAI-compatible endpoint, Anthropic's Messages API, the
// deterministic scripted model) implements [Provider]. The agent loop builds a
// [Request] from the conversation and the agent's tools, and journals the
// [Response] before it acts on it, so a finished model call is never repeated
// when a run resumes.
package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Role is the author of a message.
type Role string

// The roles a conversation may contain.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Message is one entry of a conversation.
type Message struct {
	Role    Role   `json:"role"`
	Content string `json:"content,omitempty"`
	// ToolCalls are the calls an assistant message asks for.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID and Name identify the call a tool message answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
	Name       string `json:"name,omitempty"`
	// IsError marks a tool message that reports a failed call.
	IsError bool `json:"is_error,omitempty"`
}

// ToolCall is a model's request to call one tool.
type ToolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// ToolSpec describes a tool to the model.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// Request is one model call.
type Request struct {
	Messages []Message  `json:"messages"`
	Tools    []ToolSpec `json:"tools,omitempty"`
	// MaxTokens caps the response length; zero leaves it to the provider.
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	// OutputSchema, when set, asks for a JSON answer matching this schema.
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
}

// Usage counts the tokens of one call.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	// CachedInputTokens is the part of InputTokens the provider read from
	// its prompt cache (priced lower).
	CachedInputTokens int `json:"cached_input_tokens,omitempty"`
}

// Add returns the sum of u and o.
func (u Usage) Add(o Usage) Usage {
	return Usage{InputTokens: u.InputTokens + o.InputTokens, OutputTokens: u.OutputTokens + o.OutputTokens,
		CachedInputTokens: u.CachedInputTokens + o.CachedInputTokens}
}

// Sub returns u less o.
func (u Usage) Sub(o Usage) Usage {
	return Usage{InputTokens: u.InputTokens - o.InputTokens, OutputTokens: u.OutputTokens - o.OutputTokens,
		CachedInputTokens: u.CachedInputTokens - o.CachedInputTokens}
}

// Total is the number of input and output tokens.
func (u Usage) Total() int { return u.InputTokens + u.OutputTokens }

// Response is a model's complete answer.
type Response struct {
	// Message is the assistant message: text, tool calls, or both.
	Message Message `json:"message"`
	Usage   Usage   `json:"usage"`
	// Model is the model id the provider reports having used.
	Model      string `json:"model,omitempty"`
	StopReason string `json:"stop_reason,omitempty"`
}

// Delta is a piece of a streamed answer.
type Delta struct {
	Text string `json:"text,omitempty"`
}

// Provider turns a request into a response.
type Provider interface {
	// Generate sends req and returns the complete response. When sink is not
	// nil the provider streams and calls sink with each piece of text as it
	// arrives; the returned response is the same as without streaming.
	Generate(ctx context.Context, req *Request, sink func(Delta)) (*Response, error)
}

// StatusError is a failed call that the provider's endpoint answered with an
// HTTP status. Providers return it (wrapped) so callers can tell a rejected
// request from a transport failure.
type StatusError struct {
	Provider   string
	StatusCode int
	Message    string
	// RetryAfter is the wait the endpoint asked for, if any.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.Provider, e.StatusCode, e.Message)
}

// Temporary reports whether retrying the same request may succeed.
func (e *StatusError) Temporary() bool {
	return e.StatusCode == 408 || e.StatusCode == 409 || e.StatusCode == 429 || e.StatusCode >= 500
}

// TimeoutError is a failed call whose last attempt ran out of the
// per-attempt time limit (a model's timeout). The caller's own deadline or
// cancellation is never reported as one. It matches
// context.DeadlineExceeded with errors.Is.
type TimeoutError struct {
	// Timeout is the limit of each attempt.
	Timeout time.Duration
	// Attempts is how many attempts were made, and TimedOut how many of
	// them ran out of time, the last one included.
	Attempts, TimedOut int
	// Streaming says the last attempt ran out of time while the answer was
	// streaming, which is never retried: text already passed on would be
	// passed on twice.
	Streaming bool
}

func (e *TimeoutError) Error() string {
	// Providers do not know the model's name in the configuration; the
	// agent loop puts it in front of this message.
	const fix = "raise timeout or max_retries in the model's configuration"
	switch {
	case e.Streaming:
		return fmt.Sprintf("model call timed out after %v while streaming its answer, which is not retried (raise timeout in the model's configuration)", e.Timeout)
	case e.Attempts <= 1:
		return fmt.Sprintf("model call timed out after %v on its only attempt (%s)", e.Timeout, fix)
	case e.TimedOut >= e.Attempts:
		return fmt.Sprintf("model call timed out after %v on each of %d attempts (%s)", e.Timeout, e.Attempts, fix)
	}
	return fmt.Sprintf("model call timed out after %v on %d of %d attempts, the last one included (%s)", e.Timeout, e.TimedOut, e.Attempts, fix)
}

// Unwrap makes errors.Is(err, context.DeadlineExceeded) hold, as it did
// before the error said more.
func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// ErrNoRule is returned by the scripted model when no rule matches.
var ErrNoRule = errors.New("no scripted rule matches the conversation")
