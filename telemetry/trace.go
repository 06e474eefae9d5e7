package telemetry

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
)

// Spans are written from the journal after the fact: each when the entry
// that ends it is journaled, with the times the entries hold. Their ids
// are derived from the runs, calls and turns they stand for, the same
// that the tool calls' traceparents carry (tool.TraceParent), so a span
// written on one node, or after a restart, finds its parent written on
// another, and a tool's own spans nest under the call that made them:
//
//	invoke_agent boss              (run span; a caller's traceparent is its parent)
//	├── chat smart                 (one per model response)
//	├── execute_tool lookup        (one per tool call; its span id is the call's traceparent's)
//	└── execute_tool helper        (a sub-agent call)
//	    └── invoke_agent helper    (the child run)
//	invoke_workflow review         (a flow run)
//	└── node draft#1               (one per node visit; its agent's child runs nest under it)

// tracer writes the spans of the runs it observes.
type tracer struct {
	t       trace.Tracer
	models  map[string]Model
	content bool
}

// Model is what a trace says of a configured model: its provider
// (gen_ai.provider.name: openai, anthropic, ...) and its id.
type Model struct {
	Provider string
	ID       string
}

// spanIDs makes the SDK use the ids a span's context asks for.
type spanIDs struct{}

type wantIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

type idsKey struct{}

var _ sdktrace.IDGenerator = spanIDs{}

func (spanIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	w, _ := ctx.Value(idsKey{}).(wantIDs)
	return w.trace, w.span
}

func (spanIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	w, _ := ctx.Value(idsKey{}).(wantIDs)
	return w.span
}

// spanOf is the span id derived from a key, as tool.TraceParent derives a
// call's.
func spanOf(key string) trace.SpanID { return trace.SpanID(tool.SpanID(key)) }

func runSpan(runID string) trace.SpanID { return spanOf("run\x00" + runID) }

// span is one span to write.
type span struct {
	name       string
	kind       trace.SpanKind
	traceID    trace.TraceID
	id, parent trace.SpanID
	start, end time.Time
	attrs      []attribute.KeyValue
	err        string // the status message of a failure
	errType    string
}

func (t *tracer) write(s span) {
	ctx := context.WithValue(context.Background(), idsKey{}, wantIDs{trace: s.traceID, span: s.id})
	if s.parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: s.traceID, SpanID: s.parent, TraceFlags: trace.FlagsSampled, Remote: true}))
	}
	if s.end.Before(s.start) {
		s.start = s.end
	}
	_, sp := t.t.Start(ctx, s.name, trace.WithTimestamp(s.start), trace.WithSpanKind(s.kind), trace.WithAttributes(s.attrs...))
	if s.err != "" {
		sp.SetStatus(codes.Error, s.err)
		sp.SetAttributes(semconv.ErrorTypeKey.String(s.errType))
	}
	sp.End(trace.WithTimestamp(s.end))
}

// journaled writes the span an entry ends, if it ends one.
func (t *tracer) journaled(info run.Info, ev engine.Entry) {
	switch ev.Type {
	case journal.TypeModelResponse, journal.TypeToolFinished, journal.TypeNodeFinished,
		journal.TypeRunCompleted, journal.TypeRunFailed, journal.TypeRunCanceled:
	default:
		return // ends no span
	}
	traceID, _ := trace.TraceIDFromHex(info.TraceID())
	self := runSpan(info.ID)
	// A call's span names the agent that made it (after a handoff, the
	// one holding the conversation); the run's span, the run's agent.
	base := []attribute.KeyValue{semconv.GenAIAgentNameKey.String(info.Actor())}
	if ev.Type == journal.TypeRunCompleted || ev.Type == journal.TypeRunFailed || ev.Type == journal.TypeRunCanceled {
		base = []attribute.KeyValue{semconv.GenAIAgentNameKey.String(info.Agent)}
	}
	if info.Flow != "" {
		base = []attribute.KeyValue{semconv.GenAIWorkflowNameKey.String(info.Flow)}
	}
	if info.Instance != "" {
		base = append(base, semconv.GenAIConversationIDKey.String(info.Agent+"/"+info.Instance))
	}
	switch ev.Type {
	case journal.TypeModelResponse:
		if r, ok := engine.EntryData[journal.ModelResponse](ev); ok {
			t.write(t.chatSpan(traceID, self, info, ev.Event, r, base))
		}
	case journal.TypeToolFinished:
		if f, ok := engine.EntryData[journal.ToolFinished](ev); ok {
			t.write(t.toolSpan(traceID, self, info, ev.Event, f, base))
		}
	case journal.TypeNodeFinished:
		if n, ok := engine.EntryData[journal.NodeFinished](ev); ok {
			s := span{name: "node " + n.Key, kind: trace.SpanKindInternal, traceID: traceID, id: nodeSpan(info.ID, n.Key), parent: self,
				start: ev.Time.Add(-ms(n.DurationMS)), end: ev.Time,
				attrs: append(base, attribute.String("myriad.flow.node", n.Node), attribute.Int("myriad.flow.visit", n.Visit))}
			if n.Error != "" {
				s.err, s.errType = run.CutText(n.Error, 500), "node_failed"
			}
			t.write(s)
		}
	default:
		t.runEnded(traceID, self, info, ev, base)
	}
}

func (t *tracer) chatSpan(traceID trace.TraceID, self trace.SpanID, info run.Info, ev journal.Event, r journal.ModelResponse, base []attribute.KeyValue) span {
	m := t.models[r.ModelName]
	requested := m.ID
	if requested == "" {
		requested = r.ModelName
	}
	provider := m.Provider
	if provider == "" {
		provider = "unknown"
	}
	attrs := append(base,
		semconv.GenAIOperationNameChat,
		semconv.GenAIProviderNameKey.String(provider),
		semconv.GenAIRequestModelKey.String(requested),
		semconv.GenAIResponseModelKey.String(r.Model),
		semconv.GenAIUsageInputTokensKey.Int(r.Usage.InputTokens),
		semconv.GenAIUsageOutputTokensKey.Int(r.Usage.OutputTokens),
		attribute.String("myriad.model", r.ModelName),
	)
	if r.Usage.CachedInputTokens > 0 {
		attrs = append(attrs, semconv.GenAIUsageCacheReadInputTokensKey.Int(r.Usage.CachedInputTokens))
	}
	if r.StopReason != "" {
		attrs = append(attrs, semconv.GenAIResponseFinishReasonsKey.StringSlice([]string{r.StopReason}))
	}
	if r.FirstTokenMS > 0 {
		attrs = append(attrs, semconv.GenAIResponseTimeToFirstChunkKey.Float64(r.FirstTokenMS/1000))
	}
	if r.CostUSD > 0 {
		attrs = append(attrs, attribute.Float64("myriad.cost.usd", r.CostUSD))
	}
	if t.content {
		if out, err := json.Marshal([]any{r.Message}); err == nil {
			attrs = append(attrs, semconv.GenAIOutputMessagesKey.String(string(out)))
		}
	}
	return span{name: "chat " + requested, kind: trace.SpanKindClient, traceID: traceID,
		id: spanOf("chat\x00" + info.ID + "/" + strconv.Itoa(r.Turn)), parent: self,
		start: ev.Time.Add(-ms(r.DurationMS)), end: ev.Time, attrs: attrs}
}

func (t *tracer) toolSpan(traceID trace.TraceID, self trace.SpanID, info run.Info, ev journal.Event, f journal.ToolFinished, base []attribute.KeyValue) span {
	id, err := trace.SpanIDFromHex(f.SpanID)
	if err != nil {
		id = spanOf("tool\x00" + info.ID + "/" + f.CallID)
	}
	attrs := append(base, semconv.GenAIOperationNameExecuteTool, semconv.GenAIToolNameKey.String(f.Name),
		semconv.GenAIToolCallIDKey.String(f.CallID))
	if f.CostUSD > 0 {
		attrs = append(attrs, attribute.Float64("myriad.cost.usd", f.CostUSD))
	}
	if t.content {
		attrs = append(attrs, semconv.GenAIToolCallResultKey.String(f.Content))
	}
	s := span{name: "execute_tool " + f.Name, kind: trace.SpanKindInternal, traceID: traceID, id: id, parent: self,
		start: ev.Time.Add(-ms(f.DurationMS)), end: ev.Time, attrs: attrs}
	if f.IsError {
		s.err, s.errType = run.CutText(f.Content, 500), "tool_error"
	}
	return s
}

// runEnded writes a run's span and, for a sub-agent's run, the span of the
// call that started it (its parent journals no end of that call).
func (t *tracer) runEnded(traceID trace.TraceID, self trace.SpanID, info run.Info, ev engine.Entry, base []attribute.KeyValue) {
	start := info.Started
	if start.IsZero() {
		start = info.Submitted
	}
	s := span{kind: trace.SpanKindInternal, traceID: traceID, id: self, start: start, end: ev.Time,
		attrs: append(base, attribute.String("myriad.run_id", info.ID))}
	if info.Flow != "" {
		s.name = "invoke_workflow " + info.Flow
		s.attrs = append(s.attrs, semconv.GenAIOperationNameInvokeWorkflow)
	} else {
		s.name = "invoke_agent " + info.Agent
		s.attrs = append(s.attrs, semconv.GenAIOperationNameInvokeAgent, semconv.GenAIAgentIDKey.String(info.ID))
	}
	var usage model.Usage
	switch ev.Type {
	case journal.TypeRunFailed:
		f, _ := engine.EntryData[journal.RunFailed](ev)
		s.err, s.errType, usage = run.CutText(f.Message, 500), f.Code, f.Usage
	case journal.TypeRunCanceled:
		c, _ := engine.EntryData[journal.RunCanceled](ev)
		s.err, s.errType, usage = "canceled", "canceled", c.Usage
	case journal.TypeRunCompleted:
		c, _ := engine.EntryData[journal.RunCompleted](ev)
		usage = c.Usage
		if t.content {
			s.attrs = append(s.attrs, attribute.String("myriad.run.output", c.Output))
		}
	}
	s.attrs = append(s.attrs, semconv.GenAIUsageInputTokensKey.Int(usage.InputTokens), semconv.GenAIUsageOutputTokensKey.Int(usage.OutputTokens))
	if ev.Cost != nil {
		s.attrs = append(s.attrs, attribute.Float64("myriad.cost.usd", ev.Cost.USD))
	}
	// Whom the span hangs from: the call that started the run (a
	// sub-agent's call, or a flow's node), else the caller's span.
	if tp := info.Metadata["traceparent"]; tool.ValidTraceParent(tp) {
		s.parent, _ = trace.SpanIDFromHex(tp[36:52])
	}
	if info.Parent != "" {
		if !subAgentRun(info) {
			node, _, _ := strings.Cut(info.ParentCall, "/")
			s.parent = nodeSpan(info.Parent, node) // a flow node's (map) item
		} else {
			// The parent's call of this sub-agent: its span id is the
			// traceparent the parent gave the run.
			call := span{name: "execute_tool " + info.Agent, kind: trace.SpanKindInternal, traceID: traceID, id: s.parent,
				parent: runSpan(info.Parent), start: info.Submitted, end: ev.Time, err: s.err, errType: s.errType,
				attrs: []attribute.KeyValue{semconv.GenAIAgentNameKey.String(parentAgent(info.Path)), semconv.GenAIOperationNameExecuteTool,
					semconv.GenAIToolNameKey.String(info.Agent), semconv.GenAIToolCallIDKey.String(subAgentCall(info.ParentCall)),
					semconv.GenAIToolTypeKey.String("agent")}}
			t.write(call)
		}
	}
	t.write(s)
}

// parentAgent is the agent that called a sub-agent, from the child's path
// ("support/billing#2/lookup#1" → billing).
func parentAgent(path string) string {
	i := strings.LastIndex(path, "/")
	if i < 0 {
		return ""
	}
	parent := path[:i]
	parent = parent[strings.LastIndex(parent, "/")+1:]
	name, _, _ := strings.Cut(parent, "#")
	return name
}

// subAgentCall is the model's call id of a sub-agent call, from the
// parent's call key ("3/call_1" → call_1).
func subAgentCall(key string) string {
	_, id, found := strings.Cut(key, "/")
	if !found {
		return key
	}
	return id
}

// nodeSpan is a flow node visit's span: the span its single call (a tool,
// or an agent's run) was given as parent.
func nodeSpan(runID, key string) trace.SpanID { return spanOf(runID + "/" + key) }

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
