package telemetry_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/telemetry"
)

func attr(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// A run with two tool calls and a child agent is one trace: the run's
// invoke_agent span under the caller's, chat and execute_tool spans under
// it, the child's invoke_agent under the call that started it, with the
// GenAI attributes.
func TestARunTreeIsOneTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel := telemetry.New(telemetry.Options{Spans: sdktrace.NewSimpleSpanProcessor(exp),
		Models: map[string]telemetry.Model{"smart": {Provider: "openai", ID: "gpt-5"}, "fast": {Provider: "anthropic", ID: "claude-haiku"}}})
	rt := team(t, tel)
	caller := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "boss", Input: "go", Metadata: map[string]string{"traceparent": caller}})
	if err != nil {
		t.Fatal(err)
	}
	waitCompleted(t, rt, rec.ID)
	spans := exp.GetSpans()
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		if s.SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("span %s is in trace %s, not the caller's", s.Name, s.SpanContext.TraceID())
		}
		byName[s.Name] = append(byName[s.Name], s)
	}
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		if len(byName[name]) != 1 {
			t.Fatalf("%d spans %q (spans: %v)", len(byName[name]), name, names(spans))
		}
		return byName[name][0]
	}
	boss, helper, call := one("invoke_agent boss"), one("invoke_agent helper"), one("execute_tool helper")
	if boss.Parent.SpanID().String() != "b7ad6b7169203331" {
		t.Errorf("the run's span hangs from %s, not the caller's span", boss.Parent.SpanID())
	}
	if call.Parent.SpanID() != boss.SpanContext.SpanID() || helper.Parent.SpanID() != call.SpanContext.SpanID() {
		t.Errorf("the child's span is not under the call under the run: %v %v", call.Parent.SpanID(), helper.Parent.SpanID())
	}
	if attr(call, "gen_ai.agent.name").AsString() != "boss" || strings.Contains(attr(call, "gen_ai.tool.call.id").AsString(), "/") {
		t.Errorf("the sub-agent call's span: %v", call.Attributes)
	}
	if len(byName["chat gpt-5"]) != 3 || len(byName["chat claude-haiku"]) != 1 || len(byName["execute_tool lookup"]) != 2 {
		t.Fatalf("spans: %v", names(spans))
	}
	for _, s := range append(byName["chat gpt-5"], byName["execute_tool lookup"]...) {
		if s.Parent.SpanID() != boss.SpanContext.SpanID() || s.StartTime.After(s.EndTime) {
			t.Errorf("%s: parent %s, %v–%v", s.Name, s.Parent.SpanID(), s.StartTime, s.EndTime)
		}
	}
	if s := byName["chat claude-haiku"][0]; s.Parent.SpanID() != helper.SpanContext.SpanID() {
		t.Errorf("the child's chat span is not under it")
	}
	var failed int
	for _, s := range byName["execute_tool lookup"] {
		if attr(s, "gen_ai.tool.name").AsString() != "lookup" || attr(s, "gen_ai.tool.call.id").AsString() == "" {
			t.Errorf("tool span attributes %v", s.Attributes)
		}
		if s.Status.Code == codes.Error {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d failed tool spans, want 1", failed)
	}
	last := byName["chat gpt-5"][0]
	for _, s := range byName["chat gpt-5"] {
		if attr(s, "gen_ai.usage.cache_read.input_tokens").AsInt64() == 60 {
			last = s
		}
	}
	want := map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-5",
		"gen_ai.agent.name": "boss", "gen_ai.usage.input_tokens": int64(100), "gen_ai.usage.output_tokens": int64(5),
		"gen_ai.usage.cache_read.input_tokens": int64(60)}
	for k, v := range want {
		if got := attr(last, k).AsInterface(); got != v {
			t.Errorf("chat span %s = %v, want %v", k, got, v)
		}
	}
	if reasons := attr(last, "gen_ai.response.finish_reasons").AsStringSlice(); len(reasons) != 1 {
		t.Errorf("finish reasons %v", reasons)
	}
	if attr(boss, "gen_ai.operation.name").AsString() != "invoke_agent" || boss.Status.Code == codes.Error {
		t.Errorf("run span %+v", boss)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}
