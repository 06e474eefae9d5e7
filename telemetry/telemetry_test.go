package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	prommodel "github.com/prometheus/common/model"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/model/scripted/scriptedtest"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/telemetry"
	"github.com/myriad-ai/myriad/tool"
)

// endings tells of each run's end once the observers before it have seen
// it: a waiter on the engine may learn of the end first.
type endings chan string

func (endings) Accepted(run.Info) {}

func (e endings) Journaled(info run.Info, ev engine.Entry) {
	if journal.Terminal(ev.Type) {
		e <- info.ID
	}
}

// observed waits until the observers have seen run id end.
func (e endings) observed(t *testing.T, id string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ended := <-e:
			if ended == id {
				return
			}
		case <-timeout:
			t.Fatalf("the observers did not see run %s end", id)
		}
	}
}

var ends = endings(make(chan string, 1024))

// team is a boss that calls a tool twice (once failing) and a helper
// agent, with telemetry observing.
func team(t *testing.T, observers ...engine.Observer) *engine.Engine {
	t.Helper()
	lookup, err := tool.NewFunc("lookup", "looks a key up", func(_ context.Context, _ *tool.Call, in struct {
		Key string `json:"key"`
	}) (string, error) {
		if in.Key == "missing" {
			return "", errors.New("no such key")
		}
		return "value of " + in.Key, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := storetest.Open(t)
	rt, err := engine.New(b, engine.Options{Workers: 4, Observers: append(observers, ends), Agents: map[string]*agent.Agent{
		"boss": {ModelName: "smart", Tools: []tool.Tool{lookup}, SubAgents: []agent.SubAgent{{Agent: "helper"}},
			Prices: model.Prices{{Input: 1, Output: 1}}, ToolPrice: func(string) float64 { return 0.5 },
			Model: scriptedtest.Model(t, `
- when: {last_tool: helper}
  reply: {text: "done", usage: {input_tokens: 100, cached_input_tokens: 60, output_tokens: 5}}
- when: {last_tool: lookup}
  reply: {tool_calls: [{name: helper, arguments: {task: "sum up"}}]}
- reply: {tool_calls: [{name: lookup, arguments: {key: a}}, {name: lookup, arguments: {key: missing}}]}
`)},
		"helper": {ModelName: "fast", Model: scriptedtest.Model(t, `- reply: {text: "summed"}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	return rt
}

func runBoss(t *testing.T, rt *engine.Engine) *run.Record {
	t.Helper()
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "boss", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	return waitCompleted(t, rt, rec.ID)
}

func waitCompleted(t *testing.T, rt *engine.Engine, id string) *run.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, err := rt.Wait(ctx, id)
	if err != nil || rec.Status != run.StatusCompleted {
		t.Fatalf("%+v %v", rec, err)
	}
	ends.observed(t, id)
	return rec
}

// scrape reads the metrics as Prometheus would, over HTTP.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(prommodel.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// value is the sample of a family whose labels include want: a counter's
// or gauge's value, a histogram's count; -1 when there is none.
func value(families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// A scrape after runs finds the counters and histograms moved, by agent,
// model and tool, and the node's gauges.
func TestMetricsMoveWithRuns(t *testing.T) {
	tel := telemetry.New(telemetry.Options{})
	rt := team(t, tel)
	tel.Register(rt)
	runBoss(t, rt)
	runBoss(t, rt)
	families := scrape(t, tel.Handler())
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"myriad_runs_accepted_total", map[string]string{"agent": "boss"}, 2},
		{"myriad_runs_started_total", map[string]string{"agent": "helper"}, 2},
		{"myriad_runs_ended_total", map[string]string{"agent": "boss", "outcome": "completed"}, 2},
		{"myriad_runs_ended_total", map[string]string{"agent": "helper", "outcome": "completed"}, 2},
		{"myriad_run_duration_seconds", map[string]string{"agent": "boss", "outcome": "completed"}, 2},
		{"myriad_tool_calls_total", map[string]string{"tool": "lookup", "agent": "boss", "outcome": "ok"}, 2},
		{"myriad_tool_calls_total", map[string]string{"tool": "lookup", "agent": "boss", "outcome": "error"}, 2},
		{"myriad_tool_duration_seconds", map[string]string{"tool": "lookup", "outcome": "error"}, 2},
		{"myriad_tool_calls_total", map[string]string{"tool": "helper", "agent": "boss", "outcome": "ok"}, 2}, // a sub-agent call
		{"myriad_step_duration_seconds", map[string]string{"agent": "boss", "kind": "tool"}, 6},
		{"myriad_model_calls_total", map[string]string{"model": "smart", "agent": "boss"}, 6},
		{"myriad_model_calls_total", map[string]string{"model": "fast", "agent": "helper"}, 2},
		{"myriad_model_duration_seconds", map[string]string{"model": "smart"}, 6},
		{"myriad_step_duration_seconds", map[string]string{"agent": "boss", "kind": "model"}, 6},
		{"myriad_tokens_total", map[string]string{"model": "smart", "kind": "cached_input"}, 120},
		{"myriad_tokens_total", map[string]string{"model": "smart", "kind": "output"}, -2},      // any
		{"myriad_tool_cost_usd_total", map[string]string{"tool": "lookup", "agent": "boss"}, 2}, // 4 calls at 0.5
		{"myriad_model_cost_usd_total", map[string]string{"model": "smart", "agent": "boss"}, -2},
		{"myriad_workers", nil, 4},
		{"myriad_workers_busy", nil, -2},
		{"myriad_followers", nil, -2},
		{"myriad_queue_waiting", nil, -2},
		{"myriad_instance_activation_seconds", nil, -2},
		{"myriad_instance_cache_hits_total", nil, -2},
		{"myriad_instance_cache_bytes", nil, -2},
		{"go_goroutines", nil, -2},
	}
	for _, c := range checks {
		got := value(families, c.name, c.labels)
		if c.want == -2 && got >= 0 || got == c.want {
			continue
		}
		t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
	}
}
