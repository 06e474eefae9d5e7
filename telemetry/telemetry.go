// Package telemetry makes what a Myriad node does visible to the tools
// operators already run: Prometheus metrics (on /metrics of myriad serve)
// and OpenTelemetry traces.
//
// It reads nothing but what the engine tells an Observer: each run the
// node accepts, and each journal entry its writers append, with the run's
// agent, flow, place in its tree and metadata. Every entry is journaled by
// one writer, so across a cluster each is counted once, on the node that
// wrote it: sum a counter over the nodes for the cluster's figure.
//
//	t := telemetry.New(telemetry.Options{})
//	node, _ := myriad.Open(ctx, proj, myriad.NodeOptions{Observers: []engine.Observer{t}})
//	t.Register(node.Engine)          // gauges: workers, queue, followers
//	http.Handle("/metrics", t.Handler())
package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// Options configure telemetry.
type Options struct {
	// Registry takes the metrics (default: a new one, with the Go runtime's
	// and the process's collectors).
	Registry *prometheus.Registry
	// Spans, when set, takes the runs' spans (an OTLP exporter behind a
	// batcher: see SpansFromEnv); nil writes none.
	Spans sdktrace.SpanProcessor
	// Resource describes this process in traces (default: service.name
	// myriad, and what OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES say).
	Resource *resource.Resource
	// Models says which provider and model id each configured model is.
	Models map[string]Model
	// Version is Myriad's, for the traces' resource and scope.
	Version string
	// RecordContent puts messages, tool results and run outputs in spans
	// (they may hold personal data: off by default).
	RecordContent bool
}

// Telemetry observes an engine and keeps its metrics and writes its
// spans.
type Telemetry struct {
	reg *prometheus.Registry
	m   *metrics
	tp  *sdktrace.TracerProvider
	tr  *tracer
}

var _ engine.Observer = (*Telemetry)(nil)

// New returns telemetry with its metrics registered.
func New(opts Options) *Telemetry {
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	t := &Telemetry{reg: reg, m: newMetrics(reg)}
	if opts.Spans != nil {
		res := opts.Resource
		if res == nil {
			own := resource.NewSchemaless(attribute.String("service.name", "myriad"), attribute.String("service.version", opts.Version))
			res, _ = resource.Merge(resource.Default(), own)
			res, _ = resource.Merge(res, resource.Environment())
		}
		// Every span observed is written: the runs' own ids decide them
		// (see spanIDs), and child runs' traceparents are not sampled.
		t.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(opts.Spans), sdktrace.WithIDGenerator(spanIDs{}),
			sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithResource(res))
		t.tr = &tracer{t: t.tp.Tracer("github.com/myriad-ai/myriad/telemetry", trace.WithInstrumentationVersion(opts.Version),
			trace.WithSchemaURL(semconv.SchemaURL)), models: opts.Models, content: opts.RecordContent}
	}
	return t
}

// Shutdown writes the spans not yet written and stops writing.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t.tp == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// Node is what the gauges read of a node: the engine.
type Node interface {
	Stats() engine.Stats
	Backlog(ctx context.Context) (engine.Backlog, error)
	InstanceStats() engine.InstanceStats
}

// Register adds the gauges that read a node at each scrape: its workers,
// the work queue, the watches open on it.
func (t *Telemetry) Register(n Node) { t.reg.MustRegister(nodeCollector{n}) }

// Handler serves the metrics in Prometheus' text format.
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{Registry: t.reg})
}

// Request counts an HTTP request the API answered (api.Options.Requests).
func (t *Telemetry) Request(route string, status int, d time.Duration) {
	t.m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	t.m.requestDuration.WithLabelValues(route).Observe(d.Seconds())
}

// Accepted counts a run this node accepted.
func (t *Telemetry) Accepted(info run.Info) {
	t.m.accepted.WithLabelValues(info.Agent, info.Flow).Inc()
}

// Journaled counts what an entry says, and writes the span it ends.
func (t *Telemetry) Journaled(info run.Info, ev engine.Entry) {
	if t.tr != nil {
		t.tr.journaled(info, ev)
	}
	m := t.m
	switch ev.Type {
	case journal.TypeRunStarted:
		m.started.WithLabelValues(info.Agent, info.Flow).Inc()
	case journal.TypeModelResponse:
		if r, ok := engine.EntryData[journal.ModelResponse](ev); ok {
			m.modelResponse(info, r)
		}
	case journal.TypeToolFinished:
		f, ok := engine.EntryData[journal.ToolFinished](ev)
		if !ok {
			return
		}
		outcome := "ok"
		if f.IsError {
			outcome = "error"
		}
		m.toolCalls.WithLabelValues(f.Name, info.Actor(), info.Flow, outcome).Inc()
		m.toolDuration.WithLabelValues(f.Name, outcome).Observe(f.DurationMS / 1000)
		m.stepDuration.WithLabelValues(info.Actor(), info.Flow, "tool").Observe(f.DurationMS / 1000)
		if f.CostUSD > 0 {
			m.toolCost.WithLabelValues(f.Name, info.Actor(), info.Flow).Add(f.CostUSD)
		}
	case journal.TypeRunWaiting:
		w, _ := engine.EntryData[journal.RunWaiting](ev)
		for _, reason := range w.Reasons() {
			m.waiting.WithLabelValues(info.Agent, info.Flow, reason).Inc()
		}
	case journal.TypeRunInDoubt:
		d, _ := engine.EntryData[journal.RunInDoubt](ev)
		m.inDoubt.WithLabelValues(info.Agent, info.Flow, d.Name).Inc()
	case journal.TypeRunCompleted, journal.TypeRunFailed, journal.TypeRunCanceled:
		outcome, code := ended(ev)
		m.ended.WithLabelValues(info.Agent, info.Flow, outcome, code).Inc()
		if subAgentRun(info) {
			// The parent journals no end of its call of a sub-agent: the
			// child's end is the call's.
			result := "ok"
			if outcome != "completed" {
				result = "error"
			}
			parent := parentAgent(info.Path)
			m.toolCalls.WithLabelValues(info.Agent, parent, "", result).Inc()
			if !info.Submitted.IsZero() {
				d := ev.Time.Sub(info.Submitted).Seconds()
				m.toolDuration.WithLabelValues(info.Agent, result).Observe(d)
				m.stepDuration.WithLabelValues(parent, "", "tool").Observe(d)
			}
		}
		if !info.Submitted.IsZero() {
			m.runDuration.WithLabelValues(info.Agent, info.Flow, outcome).Observe(ev.Time.Sub(info.Submitted).Seconds())
		}
	}
}

// subAgentRun reports a child run an agent started by calling a
// sub-agent (a flow node's runs are the node's, not calls).
func subAgentRun(info run.Info) bool {
	if info.Parent == "" {
		return false
	}
	node, _, _ := strings.Cut(info.ParentCall, "/")
	return !strings.Contains(node, "#")
}

// ended is how a run ended: completed, failed (with its code) or canceled.
func ended(ev engine.Entry) (outcome, code string) {
	switch ev.Type {
	case journal.TypeRunCompleted:
		return "completed", ""
	case journal.TypeRunFailed:
		f, _ := engine.EntryData[journal.RunFailed](ev)
		return "failed", f.Code
	}
	return "canceled", ""
}

// nodeCollector reads a node's gauges at each scrape.
type nodeCollector struct{ n Node }

var (
	descWorkers     = prometheus.NewDesc("myriad_workers", "Runs this node executes at once.", nil, nil)
	descBusy        = prometheus.NewDesc("myriad_workers_busy", "Runs and instances this node is executing now.", nil, nil)
	descFollowers   = prometheus.NewDesc("myriad_followers", "Watches of runs open on this node (SSE, A2A and MCP streams, waits).", nil, nil)
	descQueued      = prometheus.NewDesc("myriad_queue_waiting", "Runs and instances with work no node has taken yet (the cluster's work queue).", nil, nil)
	descQueuedTaken = prometheus.NewDesc("myriad_queue_taken", "Runs and instances taken from the work queue and not yet done (the cluster's).", nil, nil)
	descQueueAge    = prometheus.NewDesc("myriad_queue_oldest_waiting_seconds", "How long the oldest entry no node has taken has waited on the cluster's work queue (0 when none waits): scale out when it grows.", nil, nil)
	descActivation  = prometheus.NewDesc("myriad_instance_activation_seconds", "How long this node took to activate an agent instance: from claiming it to its state read and folded.", nil, nil)
	descCacheHits   = prometheus.NewDesc("myriad_instance_cache_hits_total", "Activations on this node that found the instance's snapshot in its cache.", nil, nil)
	descCacheBytes  = prometheus.NewDesc("myriad_instance_cache_bytes", "Bytes of instance snapshots this node's cache holds (bounded by server.instance_cache_mb).", nil, nil)
	descCached      = prometheus.NewDesc("myriad_instance_cache_instances", "Instances whose snapshots this node's cache holds.", nil, nil)
)

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkers, descBusy, descFollowers, descQueued, descQueuedTaken, descQueueAge,
		descActivation, descCacheHits, descCacheBytes, descCached} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.Stats()
	ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(s.Workers))
	ch <- prometheus.MustNewConstMetric(descBusy, prometheus.GaugeValue, float64(s.Busy))
	ch <- prometheus.MustNewConstMetric(descFollowers, prometheus.GaugeValue, float64(s.Followers))
	is := c.n.InstanceStats()
	buckets := make(map[float64]uint64, len(engine.ActivationBuckets))
	var cum uint64
	for i, b := range engine.ActivationBuckets {
		cum += is.Latency[i]
		buckets[b.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(descActivation, is.Activations, is.LatencySum.Seconds(), buckets)
	ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(is.CacheHits))
	ch <- prometheus.MustNewConstMetric(descCacheBytes, prometheus.GaugeValue, float64(is.CachedBytes))
	ch <- prometheus.MustNewConstMetric(descCached, prometheus.GaugeValue, float64(is.CachedInstances))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if b, err := c.n.Backlog(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(b.Waiting))
		ch <- prometheus.MustNewConstMetric(descQueuedTaken, prometheus.GaugeValue, float64(b.Taken))
		var age float64
		if !b.Oldest.IsZero() {
			age = max(time.Since(b.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descQueueAge, prometheus.GaugeValue, age)
	}
}
