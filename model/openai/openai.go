// Package openai is the [model.Provider] for OpenAI's Chat Completions API and
// for the many servers that speak it (vLLM, Ollama, llama.cpp, LiteLLM, ...).
//
// It is a thin translation layer over github.com/openai/openai-go: Myriad's
// conversation becomes a chat completion request, and the completion (or the
// accumulated stream of chunks) becomes a [model.Response]. Retrying transient
// failures is left to the SDK, which already backs off with jitter and honours
// Retry-After; what reaches the caller after that is a wrapped
// [*model.StatusError] when the endpoint answered with an HTTP error, or a
// [*model.TimeoutError] when the last attempt ran out of time. Errors never
// hold the user-info of the base URL.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/shared"

	"github.com/myriad-ai/myriad/internal/outbound"
	"github.com/myriad-ai/myriad/internal/redact"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/model/internal/attempt"
)

// providerName is the Provider field of the errors this package returns.
const providerName = "openai"

// defaultBaseURL is where requests go when neither Config.BaseURL nor
// OPENAI_BASE_URL says otherwise; it matches the SDK's own default.
const defaultBaseURL = "https://api.openai.com/v1/"

// DefaultMaxRetries is how many times a transient failure is retried when
// Config.MaxRetries is zero.
const DefaultMaxRetries = 3

// Config says which endpoint and model a [Provider] talks to.
type Config struct {
	// BaseURL is the API root that "chat/completions" is appended to, such as
	// "http://localhost:11434/v1" for Ollama. Empty means OPENAI_BASE_URL if
	// set, else OpenAI's own API.
	BaseURL string
	// Model is the model id sent with every request. Required.
	Model string
	// APIKey is sent as a bearer token. Empty means OPENAI_API_KEY if set;
	// local servers usually need none.
	APIKey string
	// Headers are added to every request, for gateways that want their own.
	Headers map[string]string
	// MaxRetries caps the retries of a transient failure (429, 408, 409,
	// 5xx, connection errors). Zero means DefaultMaxRetries; negative means
	// never retry.
	MaxRetries int
	// Timeout bounds each attempt, including reading a streamed body, so a
	// stalled server cannot hold a run forever. An attempt that runs out of
	// it is retried like a dropped connection, up to MaxRetries, except
	// once a streamed answer has begun. Zero means no limit beyond the
	// caller's context.
	Timeout time.Duration
}

// Provider generates with an OpenAI-compatible Chat Completions endpoint.
// It is safe for concurrent use.
type Provider struct {
	client oai.Client
	model  string
	// endpoint names the endpoint in errors, without user-info.
	endpoint string
	timeout  time.Duration
	// maxCompletionTokens selects which field carries Request.MaxTokens; see
	// [New] for why it depends on the endpoint.
	maxCompletionTokens bool
}

var _ model.Provider = (*Provider)(nil)

// New returns a Provider for cfg. It does not contact the endpoint.
func New(cfg Config) (*Provider, error) {
	if cfg.Model == "" {
		return nil, errors.New("openai: config has no model")
	}
	base := cfg.BaseURL
	if base == "" {
		base = os.Getenv("OPENAI_BASE_URL")
	}
	if base == "" {
		base = defaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("openai: base URL %q is not an http(s) URL", redact.URL(base))
	}
	if timeout := cfg.Timeout; timeout < 0 {
		return nil, fmt.Errorf("openai: negative timeout %v", timeout)
	}

	opts := []option.RequestOption{
		// The SDK's default client keeps two idle connections per host;
		// agents make many calls at once.
		option.WithHTTPClient(outbound.Client()),
		option.WithBaseURL(base),
		option.WithMaxRetries(maxRetries(cfg.MaxRetries)),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	// Not option.WithRequestTimeout: the SDK does not retry an attempt
	// that runs out of it (see package attempt). The middleware also
	// counts attempts when there is no timeout, for the error message.
	opts = append(opts, option.WithMiddleware(attempt.Middleware(cfg.Timeout)))
	for k, v := range cfg.Headers {
		opts = append(opts, option.WithHeader(k, v))
	}

	return &Provider{
		client:   oai.NewClient(opts...),
		model:    cfg.Model,
		endpoint: redact.URL(strings.TrimSuffix(base, "/") + "/chat/completions"),
		timeout:  cfg.Timeout,
		// OpenAI's reasoning models reject max_tokens and want
		// max_completion_tokens, while several compatible servers (Ollama
		// among them) only understand max_tokens and silently ignore the
		// other, leaving the answer uncapped. So only OpenAI itself gets the
		// new name.
		maxCompletionTokens: u.Hostname() == "api.openai.com",
	}, nil
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
		return nil, fmt.Errorf("openai: model %q: nil request", p.model)
	}
	// The last HTTP response is kept because the SDK does not always turn an
	// error response into an *oai.Error (see wrap).
	var last *http.Response
	keep := option.WithResponseInto(&last)
	actx, call := attempt.Start(ctx)
	var resp *model.Response
	if sink == nil {
		body, err := p.wireBody(req)
		if err != nil {
			return nil, fmt.Errorf("openai: building request for model %q: %w", p.model, err)
		}
		resp, err = p.complete(actx, body, keep)
		if err != nil {
			return nil, p.wrap(call.Err(err, p.timeout), last)
		}
		return resp, nil
	}
	params, err := p.params(req)
	if err != nil {
		return nil, fmt.Errorf("openai: building request for model %q: %w", p.model, err)
	}
	if resp, err = p.stream(actx, params, sink, keep); err != nil {
		return nil, p.wrap(call.Err(err, p.timeout), last)
	}
	return resp, nil
}

// complete makes a non-streaming call with a body built by wireBody,
// through the SDK's transport (retries, authentication, error decoding).
func (p *Provider) complete(ctx context.Context, body []byte, opts ...option.RequestOption) (*model.Response, error) {
	var out wireCompletion
	if err := p.client.Post(ctx, "chat/completions", json.RawMessage(body), &out, opts...); err != nil {
		return nil, err
	}
	return out.response()
}

func (p *Provider) stream(ctx context.Context, params oai.ChatCompletionNewParams, sink func(model.Delta), opts ...option.RequestOption) (*model.Response, error) {
	params.StreamOptions = oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)}
	stream := p.client.Chat.Completions.NewStreaming(ctx, params, opts...)
	defer stream.Close()

	var (
		acc      oai.ChatCompletionAccumulator
		usage    *oai.CompletionUsage
		finished bool
	)
	for stream.Next() {
		chunk := stream.Current()
		if !acc.AddChunk(chunk) && len(chunk.Choices) > 0 {
			// A usage-only chunk that the accumulator refuses (some servers
			// give it a different id) loses nothing, since usage is taken
			// below; a refused choice chunk would lose part of the answer.
			return nil, fmt.Errorf("stream chunk %q does not continue completion %q", chunk.ID, acc.ID)
		}
		// Usage is taken from the last chunk that carries it rather than
		// summed, because servers that report it on every chunk report
		// running totals.
		if chunk.JSON.Usage.Valid() {
			u := chunk.Usage
			usage = &u
		}
		for _, c := range chunk.Choices {
			if c.Index != 0 {
				continue
			}
			if c.Delta.Content != "" {
				sink(model.Delta{Text: c.Delta.Content})
			}
			if c.FinishReason != "" {
				finished = true
			}
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	// A stream cut off without a finish reason would otherwise pass for a
	// complete answer and be journaled as one.
	if !finished {
		return nil, errors.New("stream ended before the model finished its answer")
	}
	return convertCompletion(&acc.ChatCompletion, usage)
}

// params translates a Myriad request into chat completion parameters.
func (p *Provider) params(req *model.Request) (oai.ChatCompletionNewParams, error) {
	params := oai.ChatCompletionNewParams{Model: p.model}
	for i, m := range req.Messages {
		msg, err := convertMessage(m)
		if err != nil {
			return params, fmt.Errorf("message %d: %w", i, err)
		}
		params.Messages = append(params.Messages, msg)
	}
	for _, t := range req.Tools {
		tool, err := convertTool(t)
		if err != nil {
			return params, err
		}
		params.Tools = append(params.Tools, tool)
	}
	if req.MaxTokens > 0 {
		if p.maxCompletionTokens {
			params.MaxCompletionTokens = oai.Int(int64(req.MaxTokens))
		} else {
			params.MaxTokens = oai.Int(int64(req.MaxTokens))
		}
	}
	if req.Temperature != nil {
		params.Temperature = oai.Float(*req.Temperature)
	}
	if len(req.OutputSchema) > 0 {
		if !json.Valid(req.OutputSchema) {
			return params, errors.New("output schema is not valid JSON")
		}
		params.ResponseFormat = oai.ChatCompletionNewParamsResponseFormatUnion{
			OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
					Name: "output",
					// Sent verbatim so property order, which strict decoders
					// follow when they write the answer, survives.
					Schema: json.RawMessage(req.OutputSchema),
				},
			},
		}
	}
	return params, nil
}

func convertMessage(m model.Message) (oai.ChatCompletionMessageParamUnion, error) {
	switch m.Role {
	case model.RoleSystem:
		return oai.SystemMessage(m.Content), nil
	case model.RoleUser:
		return oai.UserMessage(m.Content), nil
	case model.RoleAssistant:
		var a oai.ChatCompletionAssistantMessageParam
		// OpenAI wants content or tool calls; an empty string beside tool
		// calls is noise, but alone it keeps the turn well-formed.
		if m.Content != "" || len(m.ToolCalls) == 0 {
			a.Content.OfString = oai.String(m.Content)
		}
		for _, tc := range m.ToolCalls {
			a.ToolCalls = append(a.ToolCalls, oai.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &oai.ChatCompletionMessageFunctionToolCallParam{
					ID: tc.ID,
					Function: oai.ChatCompletionMessageFunctionToolCallFunctionParam{
						Name:      tc.Name,
						Arguments: argumentsText(tc.Arguments),
					},
				},
			})
		}
		return oai.ChatCompletionMessageParamUnion{OfAssistant: &a}, nil
	case model.RoleTool:
		if m.ToolCallID == "" {
			return oai.ChatCompletionMessageParamUnion{}, errors.New("tool message has no tool call id")
		}
		content := m.Content
		if m.IsError {
			// Chat Completions has no error flag on tool results, so the
			// model only learns the call failed if the text says so.
			content = "Error: " + content
		}
		return oai.ToolMessage(content, m.ToolCallID), nil
	}
	return oai.ChatCompletionMessageParamUnion{}, fmt.Errorf("unknown role %q", m.Role)
}

func convertTool(t model.ToolSpec) (oai.ChatCompletionToolUnionParam, error) {
	if t.Name == "" {
		return oai.ChatCompletionToolUnionParam{}, errors.New("tool has no name")
	}
	def := struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	}{Name: t.Name, Description: t.Description, Parameters: t.Parameters}
	if len(t.Parameters) > 0 && !json.Valid(t.Parameters) {
		return oai.ChatCompletionToolUnionParam{}, fmt.Errorf("tool %q: parameters are not valid JSON", t.Name)
	}
	raw, err := json.Marshal(def)
	if err != nil {
		return oai.ChatCompletionToolUnionParam{}, fmt.Errorf("tool %q: %w", t.Name, err)
	}
	// The definition is sent as raw JSON because the SDK holds parameters in
	// a map, which would reorder the schema's properties.
	return oai.ChatCompletionFunctionTool(param.Override[shared.FunctionDefinitionParam](json.RawMessage(raw))), nil
}

// argumentsText is the wire form of tool call arguments: a string holding
// JSON. A JSON string in Arguments is the unparseable text a model once sent
// (see toolArguments) and goes back unchanged.
func argumentsText(args json.RawMessage) string {
	if len(args) == 0 {
		return "{}"
	}
	var s string
	if json.Unmarshal(args, &s) == nil {
		return s
	}
	return string(args)
}

// toolArguments turns the arguments text a model sent into JSON. Models
// sometimes send text that is not JSON; it is kept as a JSON string so the
// response can still be journaled and the tool can report the bad input
// instead of the whole call failing.
func toolArguments(text string) json.RawMessage {
	if strings.TrimSpace(text) == "" {
		return json.RawMessage("{}")
	}
	if json.Valid([]byte(text)) {
		return json.RawMessage(text)
	}
	b, _ := json.Marshal(text)
	return b
}

// convertCompletion turns a completion into a response. usage, when not nil,
// replaces the completion's own usage.
func convertCompletion(cc *oai.ChatCompletion, usage *oai.CompletionUsage) (*model.Response, error) {
	if len(cc.Choices) == 0 {
		return nil, errors.New("response has no choices")
	}
	choice := cc.Choices[0]
	calls := make([]wireToolCall, len(choice.Message.ToolCalls))
	for i, tc := range choice.Message.ToolCalls {
		calls[i] = wireToolCall{ID: tc.ID, Type: tc.Type, Function: wireFunction{Name: tc.Function.Name, Arguments: tc.Function.Arguments}}
	}
	msg, err := assistantMessage(choice.Message.Content, choice.Message.Refusal, calls)
	if err != nil {
		return nil, err
	}
	u := cc.Usage
	if usage != nil {
		u = *usage
	}
	return &model.Response{
		Message: msg,
		Usage: model.Usage{
			InputTokens:       int(u.PromptTokens),
			OutputTokens:      int(u.CompletionTokens),
			CachedInputTokens: int(u.PromptTokensDetails.CachedTokens),
		},
		Model:      cc.Model,
		StopReason: choice.FinishReason,
	}, nil
}

// wrap names the failed call and, when the endpoint answered with an HTTP
// error, turns the SDK's error into a *model.StatusError. last is the final
// HTTP response, if any: the SDK reports an error body whose "error" field is
// not an object (Ollama and others send a string) as a JSON decoding error,
// dropping the status, so the status is recovered from the response.
//
// The SDK's errors quote the request URL, user-info included (net/http
// masks only the password), so the result is redacted; it still unwraps to
// the SDK's error.
func (p *Provider) wrap(err error, last *http.Response) error {
	var apiErr *oai.Error
	switch {
	case errors.As(err, &apiErr):
		err = statusError(apiErr.StatusCode, apiErr.Message, apiErr.Response)
	case last != nil && last.StatusCode >= 400:
		err = statusError(last.StatusCode, "", last)
	}
	return redact.Error(fmt.Errorf("openai: chat completion with model %q at %s: %w", p.model, p.endpoint, err))
}
