package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/myriad-ai/myriad/cli"
)

// lockedBuffer is stderr written by a serving command; wrote rings at
// each write.
type lockedBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return l.b.Write(p)
}

// waitFor waits until found says the lines hold what it looks for.
func (l *lockedBuffer) waitFor(t *testing.T, found func([]map[string]any) bool) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for !found(l.jsonLines(t)) {
		select {
		case <-l.wrote:
		case <-timeout:
			t.Fatalf("not in the log:\n%s", l.b.String())
		}
	}
}

// jsonLines are the JSON log lines written so far.
func (l *lockedBuffer) jsonLines(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// server is a myriad serve running in this process.
type server struct {
	base   string
	stderr *lockedBuffer
	stop   func() // stops it and waits; once
}

// serving starts myriad serve on a project and a data directory, with JSON
// logs, and stops it when the test ends.
func serving(t *testing.T, cfg, data string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{stderr: &lockedBuffer{wrote: make(chan struct{}, 1)}}
	done := make(chan int)
	go func() {
		done <- cli.Main(ctx, append([]string{"serve", "--config", cfg, "--data", data, "--listen", "127.0.0.1:0", "--log-format", "json"}, args...),
			io.Discard, srv.stderr)
	}()
	var once sync.Once
	srv.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(srv.stop)
	srv.stderr.waitFor(t, func(lines []map[string]any) bool {
		for _, l := range lines {
			if l["msg"] == "myriad serving" {
				srv.base = "http://" + l["addr"].(string)
			}
		}
		return srv.base != ""
	})
	return srv
}

// otlpReceiver is an OTLP/HTTP trace receiver: the span names it got.
type otlpReceiver struct {
	mu    sync.Mutex
	names []string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				o.names = append(o.names, sp.Name)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil)
}

// myriad serve with JSON logs and the access log: a line per run event and
// per request, /metrics that moved with the run, and the run's spans
// exported over OTLP where the standard variables say.
func TestServeLogsAndMetrics(t *testing.T) {
	otlp := &otlpReceiver{}
	collector := httptest.NewServer(otlp)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "myriad.yaml")
	os.WriteFile(cfg, []byte("models:\n  m: {provider: scripted, rules: [{reply: {text: fine}}]}\nagents:\n  a: {model: m}\n"), 0o600)
	srv := serving(t, cfg, filepath.Join(dir, "data"), "--access-log")
	base, stderr := srv.base, srv.stderr
	resp, err := http.Post(base+"/v1/runs", "application/json", strings.NewReader(`{"agent":"a","input":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp, err = http.Get(base + "/v1/runs/" + created.ID + "?wait=10s"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte(`myriad_runs_ended_total{agent="a",code="",flow="",outcome="completed"} 1`)) ||
		!bytes.Contains(metrics, []byte(`myriad_http_requests_total{code="201",route="POST /v1/runs"} 1`)) {
		t.Fatalf("/metrics:\n%s", metrics)
	}
	// The access line is written once the handler has returned, which may
	// be after the client has the answer: wait for it.
	want := []string{"run accepted", "run started", "run completed", "access"}
	stderr.waitFor(t, func(lines []map[string]any) bool {
		seen := map[string]bool{}
		for _, l := range lines {
			msg, _ := l["msg"].(string)
			if l["run_id"] == created.ID && l["agent"] == "a" && l["trace_id"] != nil {
				seen[msg] = true
			}
			if msg == "http request" && l["path"] == "/metrics" && l["status"] == 200.0 {
				seen["access"] = true
			}
		}
		for _, w := range want {
			if !seen[w] {
				return false
			}
		}
		return true
	})
	// Stopping writes the spans still held.
	srv.stop()
	otlp.mu.Lock()
	defer otlp.mu.Unlock()
	if !slices.Contains(otlp.names, "invoke_agent a") || !slices.Contains(otlp.names, "chat m") {
		t.Fatalf("spans received over OTLP: %v", otlp.names)
	}
}
