package telemetry_test

import (
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/telemetry"
)

// session is the benchmark session's entries (bench/rules.yaml): 4 model
// answers, 3 tool calls, the run's start and end.
func session(id string) []engine.Entry {
	now := time.Now()
	entry := func(typ string, v any) engine.Entry {
		return engine.Entry{Event: journal.Event{RunID: id, Type: typ, Time: now}, Value: v}
	}
	out := []engine.Entry{entry(journal.TypeRunStarted, journal.RunStarted{Agent: "worker"})}
	for turn := 1; turn <= 4; turn++ {
		out = append(out, entry(journal.TypeModelResponse, journal.ModelResponse{Turn: turn, ModelName: "mock", Model: "mock",
			Usage: model.Usage{InputTokens: 120, OutputTokens: 20}, StopReason: "tool_calls", DurationMS: 1}))
		if turn < 4 {
			out = append(out, entry(journal.TypeToolStarted, journal.ToolStarted{CallID: "c", Name: "echo"}),
				entry(journal.TypeToolFinished, journal.ToolFinished{CallID: "c", Name: "echo", Content: "ok", DurationMS: 1, SpanID: "00f067aa0ba902b7"}))
		}
	}
	return append(out, entry(journal.TypeRunCompleted, journal.RunCompleted{Output: "done"}))
}

// The cost telemetry adds to one session on the writer's path: metrics,
// and spans made and handed to a batcher.
func BenchmarkSession(b *testing.B) {
	for _, tc := range []struct {
		name  string
		spans bool
	}{{"metrics", false}, {"metrics+spans", true}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := telemetry.Options{}
			if tc.spans {
				opts.Spans = sdktrace.NewBatchSpanProcessor(tracetest.NewNoopExporter())
			}
			tel := telemetry.New(opts)
			info := run.InfoOf("run_000661ba5c485fe1d1021523f080", &journal.RunStarted{Agent: "worker", Submitted: time.Now()})
			info.Started = time.Now()
			entries := session(info.ID)
			b.ReportAllocs()
			for b.Loop() {
				tel.Accepted(info)
				for _, e := range entries {
					tel.Journaled(info, e)
				}
			}
		})
	}
}
