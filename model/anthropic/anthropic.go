// Package anthropic is the [model.Provider] for Anthropic's Messages API.
//
// It is a thin translation layer over github.com/anthropics/anthropic-sdk-go:
// Myriad's role-per-message conversation becomes the Messages API's system
// prompt plus alternating turns of content blocks (tool_use in assistant
// turns, tool_result in user turns), and the answer's blocks, or the
// accumulated stream of events, become a [model.Response]. Retrying transient
// failures is left to the SDK, which backs off with jitter and honours
// Retry-After; what reaches the caller after that is a wrapped
// [*model.StatusError] when the endpoint answered with an error, or a
// [*model.TimeoutError] when the last attempt ran out of time. Errors never
// hold the user-info of the base URL.
package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/anthropics/anthropic-sdk-go/packages/param"

	"github.com/myriad-ai/myriad/internal/outbound"
	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/model/internal/attempt"
)

// providerName is the Provider field of the errors this package returns.
const providerName = "anthropic"

// defaultBaseURL is where requests go when neither Config.BaseURL nor
// ANTHROPIC_BASE_URL says otherwise; it matches the SDK's own default.
const defaultBaseURL = "https://api.anthropic.com/"

// DefaultMaxRetries is how many times a transient failure is retried when
// Config.MaxRetries is zero.
const DefaultMaxRetries = 3

// DefaultMaxTokens caps an answer when neither the request nor the config
// does; the Messages API insists on a cap.
const DefaultMaxTokens = 4096

// Config says which endpoint and model a [Provider] talks to.
type Config struct {
	// BaseURL is the API root that "v1/messages" is appended to. Empty means
	// ANTHROPIC_BASE_URL if set, else Anthropic's own API.
	BaseURL string
	// Model is the model id sent with every request. Required.
	Model string
	// APIKey is sent as the x-api-key header. Empty means ANTHROPIC_API_KEY.
	APIKey string
	// Headers are added to every request, for gateways or beta features.
	Headers map[string]string
	// MaxRetries caps the retries of a transient failure (429, 408, 409,
	// 5xx including 529 overloaded, connection errors). Zero means
	// DefaultMaxRetries; negative means never retry.
	MaxRetries int
	// Timeout bounds each attempt, including reading a streamed body, so a
	// stalled server cannot hold a run forever. An attempt that runs out of
	// it is retried like a dropped connection, up to MaxRetries, except
	// once a streamed answer has begun. Zero means no limit beyond the
	// caller's context (and the SDK's own 10 minutes for non-streaming
	// calls).
	Timeout time.Duration
	// MaxTokens caps answers of requests that set no cap of their own. Zero
	// means DefaultMaxTokens.
	MaxTokens int
}

// Provider generates with Anthropic's Messages API. It is safe for
// concurrent use.
type Provider struct {
	client sdk.Client
	model  string
	// endpoint names the endpoint in errors, without user-info.
	endpoint  string
	maxTokens int
	timeout   time.Duration
}

var _ model.Provider = (*Provider)(nil)

// New returns a Provider for cfg. It does not contact the endpoint.
func New(cfg Config) (*Provider, error) {
	if cfg.Model == "" {
		return nil, errors.New("anthropic: config has no model")
	}
	base := cfg.BaseURL
	if base == "" {
		base = os.Getenv("ANTHROPIC_BASE_URL")
	}
	if base == "" {
		base = defaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("anthropic: base URL %q is not an http(s) URL", redact.URL(base))
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("anthropic: negative timeout %v", cfg.Timeout)
	}
	if cfg.MaxTokens < 0 {
		return nil, fmt.Errorf("anthropic: negative max tokens %d", cfg.MaxTokens)
	}
	key := cfg.APIKey
	if key == "" {
		key = os.Getenv("ANTHROPIC_API_KEY")
	}

	opts := []option.RequestOption{
		// Without this the SDK also looks for credentials in profile files
		// and federation settings; a runtime should use only what it was
		// configured with.
		option.WithoutEnvironmentDefaults(),
		// That also drops the SDK's default HTTP client, so put back the
		// equivalent.
		option.WithHTTPClient(httpClient()),
		option.WithBaseURL(base),
		option.WithMaxRetries(maxRetries(cfg.MaxRetries)),
	}
	if key != "" {
		opts = append(opts, option.WithAPIKey(key))
	}
	if cfg.Timeout > 0 {
		// Unlike openai-go, this SDK retries an attempt that runs out of
		// its request timeout (its retry loop tells the attempt's deadline
		// from the caller's), so the timeout stays the SDK's: its
		// non-streaming calls need it to pick their own limit.
		opts = append(opts, option.WithRequestTimeout(cfg.Timeout))
	}
	// Counts attempts and the ones that ran out of time, for the error.
	opts = append(opts, option.WithMiddleware(attempt.Middleware(0)))
	for k, v := range cfg.Headers {
		opts = append(opts, option.WithHeader(k, v))
	}

	maxTokens := cfg.MaxTokens
	if maxTokens == 0 {
		maxTokens = DefaultMaxTokens
	}
	return &Provider{
		client:    sdk.NewClient(opts...),
		model:     cfg.Model,
		endpoint:  redact.URL(strings.TrimSuffix(base, "/") + "/v1/messages"),
		maxTokens: maxTokens,
		timeout:   cfg.Timeout,
	}, nil
}

// responseHeaderTimeout bounds the wait for response headers, as the SDK's
// default client does, so a server that accepts the connection and never
// answers cannot hang a call that has no Timeout. Streamed bodies are not
// affected.
const responseHeaderTimeout = 10 * time.Minute

// httpClient is Myriad's pooled outbound client with the SDK's default wait
// for response headers.
func httpClient() *http.Client {
	t := outbound.Client().Transport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = responseHeaderTimeout
	return &http.Client{Transport: t}
}

// maxRetries turns Config.MaxRetries into the count the SDK expects, which
// panics on negative values.
func maxRetries(n int) int {
	switch {
	case n == 0:
		return DefaultMaxRetries
	case n < 0:
		return 0
	}
	return n
}

// Generate sends req to the endpoint. With a nil sink it makes one
// non-streaming call; otherwise it streams, passing each piece of answer text
// to sink as it arrives, and returns the same response the non-streaming call
// would.
func (p *Provider) Generate(ctx context.Context, req *model.Request, sink func(model.Delta)) (*model.Response, error) {
	if req == nil {
		return nil, fmt.Errorf("anthropic: model %q: nil request", p.model)
	}
	params, err := p.params(req)
	if err != nil {
		return nil, fmt.Errorf("anthropic: building request for model %q: %w", p.model, err)
	}
	if sink == nil && p.timeout == 0 {
		// The SDK refuses non-streaming calls whose max_tokens could take
		// longer than its 10-minute default timeout. Streaming without a sink
		// gives the same response.
		if _, err := sdk.CalculateNonStreamingTimeout(int(params.MaxTokens), params.Model, nil); err != nil {
			sink = func(model.Delta) {}
		}
	}
	// The limit each attempt had, for the error if the last one ran out
	// of it: the configured one, else the SDK's own for a complete answer.
	limit := p.timeout
	if limit == 0 && sink == nil {
		limit, _ = sdk.CalculateNonStreamingTimeout(int(params.MaxTokens), params.Model, nil)
	}
	actx, call := attempt.Start(ctx)
	var resp *model.Response
	if sink == nil {
		resp, err = p.complete(actx, params)
	} else {
		resp, err = p.stream(actx, params, sink)
	}
	if err != nil {
		return nil, p.wrap(call.Err(err, limit))
	}
	return resp, nil
}

func (p *Provider) complete(ctx context.Context, params sdk.MessageNewParams) (*model.Response, error) {
	msg, err := p.client.Messages.New(ctx, params)
	if err != nil {
		return nil, err
	}
	return convertMessage(msg), nil
}

func (p *Provider) stream(ctx context.Context, params sdk.MessageNewParams, sink func(model.Delta)) (*model.Response, error) {
	stream := p.client.Messages.NewStreaming(ctx, params)
	defer stream.Close()

	var (
		msg     sdk.Message
		stopped bool
	)
	for stream.Next() {
		ev := stream.Current()
		if err := msg.Accumulate(ev); err != nil {
			return nil, fmt.Errorf("accumulating stream: %w", err)
		}
		switch ev.Type {
		case "content_block_delta":
			if ev.Delta.Type == "text_delta" && ev.Delta.Text != "" {
				sink(model.Delta{Text: ev.Delta.Text})
			}
		case "message_stop":
			stopped = true
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	// A stream cut off before message_stop would otherwise pass for a
	// complete answer and be journaled as one.
	if !stopped {
		return nil, errors.New("stream ended before the model finished its answer")
	}
	return convertMessage(&msg), nil
}

// params translates a Myriad request into Messages API parameters.
func (p *Provider) params(req *model.Request) (sdk.MessageNewParams, error) {
	params := sdk.MessageNewParams{
		Model:     sdk.Model(p.model),
		MaxTokens: int64(p.maxTokens),
	}
	if req.MaxTokens > 0 {
		params.MaxTokens = int64(req.MaxTokens)
	}
	for i, m := range req.Messages {
		if m.Role == model.RoleSystem {
			if m.Content != "" {
				params.System = append(params.System, sdk.TextBlockParam{Text: m.Content})
			}
			continue
		}
		role, blocks, err := convertTurn(m)
		if err != nil {
			return params, fmt.Errorf("message %d: %w", i, err)
		}
		if len(blocks) == 0 {
			continue
		}
		// The API wants one user turn holding all the results of an
		// assistant turn's tool calls (and whatever the user adds), so
		// consecutive messages of one role share a turn.
		if n := len(params.Messages); n > 0 && params.Messages[n-1].Role == role {
			params.Messages[n-1].Content = append(params.Messages[n-1].Content, blocks...)
			continue
		}
		params.Messages = append(params.Messages, sdk.MessageParam{Role: role, Content: blocks})
	}
	for _, t := range req.Tools {
		tool, err := convertTool(t)
		if err != nil {
			return params, err
		}
		params.Tools = append(params.Tools, tool)
	}
	if req.Temperature != nil {
		params.Temperature = sdk.Float(*req.Temperature)
	}
	if len(req.OutputSchema) > 0 {
		if !json.Valid(req.OutputSchema) {
			return params, errors.New("output schema is not valid JSON")
		}
		format, err := json.Marshal(struct {
			Type   string          `json:"type"`
			Schema json.RawMessage `json:"schema"`
		}{"json_schema", req.OutputSchema})
		if err != nil {
			return params, fmt.Errorf("output schema: %w", err)
		}
		// Sent verbatim, like tool schemas, so property order survives.
		params.OutputConfig = sdk.OutputConfigParam{Format: param.Override[sdk.JSONOutputFormatParam](json.RawMessage(format))}
	}
	return params, nil
}

// convertTurn returns the role and content blocks of a non-system message.
// Empty text is left out because the API rejects empty text blocks.
func convertTurn(m model.Message) (sdk.MessageParamRole, []sdk.ContentBlockParamUnion, error) {
	var blocks []sdk.ContentBlockParamUnion
	switch m.Role {
	case model.RoleUser:
		if m.Content != "" {
			blocks = append(blocks, sdk.NewTextBlock(m.Content))
		}
		return sdk.MessageParamRoleUser, blocks, nil
	case model.RoleAssistant:
		if m.Content != "" {
			blocks = append(blocks, sdk.NewTextBlock(m.Content))
		}
		for _, tc := range m.ToolCalls {
			blocks = append(blocks, sdk.NewToolUseBlock(tc.ID, toolInput(tc.Arguments), tc.Name))
		}
		return sdk.MessageParamRoleAssistant, blocks, nil
	case model.RoleTool:
		if m.ToolCallID == "" {
			return "", nil, errors.New("tool message has no tool call id")
		}
		result := sdk.ToolResultBlockParam{ToolUseID: m.ToolCallID}
		if m.Content != "" {
			result.Content = []sdk.ToolResultBlockParamContentUnion{{OfText: &sdk.TextBlockParam{Text: m.Content}}}
		}
		if m.IsError {
			result.IsError = sdk.Bool(true)
		}
		return sdk.MessageParamRoleUser, []sdk.ContentBlockParamUnion{{OfToolResult: &result}}, nil
	}
	return "", nil, fmt.Errorf("unknown role %q", m.Role)
}

// toolInput is the input of a tool_use block, which the API requires to be
// an object. Arguments that are not one (a call recorded from another
// provider whose model sent unparseable text) are sent as an empty object
// rather than failing the whole conversation.
func toolInput(args json.RawMessage) json.RawMessage {
	trimmed := bytes.TrimSpace(args)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return json.RawMessage("{}")
	}
	return trimmed
}

func convertTool(t model.ToolSpec) (sdk.ToolUnionParam, error) {
	if t.Name == "" {
		return sdk.ToolUnionParam{}, errors.New("tool has no name")
	}
	schema := t.Parameters
	if len(schema) == 0 {
		// input_schema is required, even for a tool that takes nothing.
		schema = json.RawMessage(`{"type":"object","properties":{}}`)
	} else if !json.Valid(schema) {
		return sdk.ToolUnionParam{}, fmt.Errorf("tool %q: parameters are not valid JSON", t.Name)
	}
	tool := sdk.ToolParam{
		Name: t.Name,
		// Sent verbatim rather than split into the SDK's typed fields, which
		// would re-encode it with its properties in a different order.
		InputSchema: param.Override[sdk.ToolInputSchemaParam](schema),
	}
	if t.Description != "" {
		tool.Description = sdk.String(t.Description)
	}
	return sdk.ToolUnionParam{OfTool: &tool}, nil
}

// convertMessage turns an answer into a response. Blocks Myriad has no place
// for (thinking, server tool use) are dropped.
func convertMessage(msg *sdk.Message) *model.Response {
	out := model.Message{Role: model.RoleAssistant}
	var text strings.Builder
	for _, b := range msg.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			args := b.Input
			if len(bytes.TrimSpace(args)) == 0 {
				args = json.RawMessage("{}")
			}
			out.ToolCalls = append(out.ToolCalls, model.ToolCall{ID: b.ID, Name: b.Name, Arguments: args})
		}
	}
	out.Content = text.String()
	return &model.Response{
		Message: out,
		Usage: model.Usage{
			// input_tokens counts only the uncached part of the prompt; the
			// whole prompt is what budgets and reports care about.
			InputTokens:       int(msg.Usage.InputTokens + msg.Usage.CacheCreationInputTokens + msg.Usage.CacheReadInputTokens),
			OutputTokens:      int(msg.Usage.OutputTokens),
			CachedInputTokens: int(msg.Usage.CacheReadInputTokens),
		},
		Model:      string(msg.Model),
		StopReason: string(msg.StopReason),
	}
}

// wrap names the failed call and, when the endpoint answered with an error,
// turns the SDK's error into a *model.StatusError.
//
// The SDK's errors quote the request URL, user-info included (net/http
// masks only the password, and the SDK's own status errors print the URL
// whole), so the result is redacted; it still unwraps to the SDK's error.
func (p *Provider) wrap(err error) error {
	var apiErr *sdk.Error
	if errors.As(err, &apiErr) {
		if se := statusError(apiErr); se != nil {
			err = se
		}
	}
	return redact.Error(fmt.Errorf("anthropic: messages call with model %q at %s: %w", p.model, p.endpoint, err))
}
