package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// SpansFromEnv is the OTLP export the standard OpenTelemetry variables
// ask for, behind a batcher, or nil when they ask for none: traces go out
// only when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set,
// or OTEL_TRACES_EXPORTER=otlp; OTEL_TRACES_EXPORTER=none turns them off.
// OTEL_EXPORTER_OTLP_PROTOCOL (or ..._TRACES_PROTOCOL) picks grpc or
// http/protobuf (the default); headers, timeouts, TLS and compression come
// from their variables too, read by the exporters themselves. where says
// where spans go, for the log (the endpoint, without credentials).
func SpansFromEnv(ctx context.Context) (sp sdktrace.SpanProcessor, where string, err error) {
	exporter := strings.ToLower(os.Getenv("OTEL_TRACES_EXPORTER"))
	endpoint := firstEnv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	switch {
	case exporter == "none":
		return nil, "", nil
	case exporter != "" && exporter != "otlp":
		return nil, "", fmt.Errorf("OTEL_TRACES_EXPORTER=%q: Myriad exports traces with otlp (or none)", exporter)
	case exporter == "" && endpoint == "":
		return nil, "", nil
	}
	var exp *otlptrace.Exporter
	switch protocol := firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"); protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: use grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, "", fmt.Errorf("OTLP trace exporter: %w", err)
	}
	if endpoint == "" {
		endpoint = "the default OTLP endpoint"
	}
	return sdktrace.NewBatchSpanProcessor(exp), endpoint, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
