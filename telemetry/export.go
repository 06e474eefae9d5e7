package telemetry

import (
	"context"
	"fmt"
	"net/url"
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
// or OTEL_TRACES_EXPORTER=otlp (then to the specification's default,
// http://localhost:4318, or localhost:4317 over gRPC);
// OTEL_TRACES_EXPORTER=none turns them off. OTEL_EXPORTER_OTLP_PROTOCOL
// (or ..._TRACES_PROTOCOL) picks grpc or http/protobuf (the default);
// headers, timeouts, TLS and compression come from their variables too,
// read by the exporters themselves. where says where spans go, for the log:
// the protocol and the endpoint, without credentials or query.
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
	shown := ""
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, "", fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %q is not a URL like http://127.0.0.1:4318", stripURL(endpoint))
		}
		shown = stripURL(endpoint)
	}
	var exp *otlptrace.Exporter
	protocol := firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	switch protocol {
	case "", "http/protobuf":
		protocol = "http/protobuf"
		var opts []otlptracehttp.Option
		if endpoint == "" {
			// The specification's default; the exporter's own is https.
			opts, shown = []otlptracehttp.Option{otlptracehttp.WithEndpoint("localhost:4318"), otlptracehttp.WithInsecure()}, "http://localhost:4318"
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case "grpc":
		var opts []otlptracegrpc.Option
		if endpoint == "" {
			opts, shown = []otlptracegrpc.Option{otlptracegrpc.WithEndpoint("localhost:4317"), otlptracegrpc.WithInsecure()}, "http://localhost:4317"
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		return nil, "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: use grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, "", fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return sdktrace.NewBatchSpanProcessor(exp), protocol + " to " + shown, nil
}

// stripURL is a URL without what may be a secret: its user and its query.
func stripURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unreadable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
