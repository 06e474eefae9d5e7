package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// metrics are the series telemetry keeps. Runs are labelled by agent and
// flow (one of the two is empty); docs/observability.md lists them all.
type metrics struct {
	accepted, started *prometheus.CounterVec
	ended             *prometheus.CounterVec
	runDuration       *prometheus.HistogramVec
	waiting, inDoubt  *prometheus.CounterVec
	stepDuration      *prometheus.HistogramVec
	modelCalls        *prometheus.CounterVec
	modelDuration     *prometheus.HistogramVec
	firstToken        *prometheus.HistogramVec
	tokens            *prometheus.CounterVec
	toolCalls         *prometheus.CounterVec
	toolDuration      *prometheus.HistogramVec
	modelCost         *prometheus.CounterVec
	toolCost          *prometheus.CounterVec
	requests          *prometheus.CounterVec
	requestDuration   *prometheus.HistogramVec
}

// Buckets: steps take milliseconds to minutes, runs seconds to hours.
var (
	stepBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	runBuckets  = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 14400, 86400}
)

func newMetrics(reg prometheus.Registerer) *metrics {
	runs := []string{"agent", "flow"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		reg.MustRegister(h)
		return h
	}
	return &metrics{
		accepted:        counter("myriad_runs_accepted_total", "Runs accepted by this node (submitted through a door or the Go API).", runs...),
		started:         counter("myriad_runs_started_total", "Runs started (root and child runs).", runs...),
		ended:           counter("myriad_runs_ended_total", "Runs ended, by outcome (completed, failed, canceled) and, for failures, error code.", append(runs, "outcome", "code")...),
		runDuration:     histogram("myriad_run_duration_seconds", "Time from a run's acceptance to its end.", runBuckets, append(runs, "outcome")...),
		waiting:         counter("myriad_runs_waiting_total", "Times a run began to wait, by what for (approval, input, children, timer).", append(runs, "reason")...),
		inDoubt:         counter("myriad_runs_in_doubt_total", "Times a run went in doubt over a non-idempotent tool call.", append(runs, "tool")...),
		stepDuration:    histogram("myriad_step_duration_seconds", "Duration of a run's steps: model calls and tool calls.", stepBuckets, append(runs, "kind")...),
		modelCalls:      counter("myriad_model_calls_total", "Model calls answered.", "model", "agent", "flow"),
		modelDuration:   histogram("myriad_model_duration_seconds", "Duration of model calls.", stepBuckets, "model"),
		firstToken:      histogram("myriad_model_time_to_first_token_seconds", "Time to the first streamed piece of a model's answer (streamed calls).", stepBuckets, "model"),
		tokens:          counter("myriad_tokens_total", "Tokens used, by kind: input (cached included), cached_input, output.", "model", "agent", "flow", "kind"),
		toolCalls:       counter("myriad_tool_calls_total", "Tool calls finished, by outcome (ok, error).", "tool", "agent", "flow", "outcome"),
		toolDuration:    histogram("myriad_tool_duration_seconds", "Duration of tool calls.", stepBuckets, "tool", "outcome"),
		modelCost:       counter("myriad_model_cost_usd_total", "What model calls cost at the models' prices, in US dollars.", "model", "agent", "flow"),
		toolCost:        counter("myriad_tool_cost_usd_total", "What tool calls cost at the tools' prices, in US dollars.", "tool", "agent", "flow"),
		requests:        counter("myriad_http_requests_total", "HTTP requests answered, by route pattern and status code.", "route", "code"),
		requestDuration: histogram("myriad_http_request_duration_seconds", "Time to answer an HTTP request (a stream: until it ends).", stepBuckets, "route"),
	}
}

// modelResponse counts a model call.
func (m *metrics) modelResponse(info run.Info, r journal.ModelResponse) {
	name := r.ModelName
	if name == "" {
		name = r.Model
	}
	m.modelCalls.WithLabelValues(name, info.Actor(), info.Flow).Inc()
	m.modelDuration.WithLabelValues(name).Observe(r.DurationMS / 1000)
	m.stepDuration.WithLabelValues(info.Actor(), info.Flow, "model").Observe(r.DurationMS / 1000)
	if r.FirstTokenMS > 0 {
		m.firstToken.WithLabelValues(name).Observe(r.FirstTokenMS / 1000)
	}
	m.tokens.WithLabelValues(name, info.Actor(), info.Flow, "input").Add(float64(r.Usage.InputTokens))
	m.tokens.WithLabelValues(name, info.Actor(), info.Flow, "output").Add(float64(r.Usage.OutputTokens))
	if r.Usage.CachedInputTokens > 0 {
		m.tokens.WithLabelValues(name, info.Actor(), info.Flow, "cached_input").Add(float64(r.Usage.CachedInputTokens))
	}
	if r.CostUSD > 0 {
		m.modelCost.WithLabelValues(name, info.Actor(), info.Flow).Add(r.CostUSD)
	}
}
