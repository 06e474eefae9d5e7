package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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

// myriad serve with JSON logs and the access log: a line per run event and
// per request, and /metrics that moved with the run.
func TestServeLogsAndMetrics(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "myriad.yaml")
	os.WriteFile(cfg, []byte("models:\n  m: {provider: scripted, rules: [{reply: {text: fine}}]}\nagents:\n  a: {model: m}\n"), 0o600)
	ctx, stop := context.WithCancel(context.Background())
	stderr := &lockedBuffer{wrote: make(chan struct{}, 1)}
	done := make(chan int)
	go func() {
		done <- cli.Main(ctx, []string{"serve", "--config", cfg, "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0",
			"--log-format", "json", "--access-log"}, io.Discard, stderr)
	}()
	defer func() { stop(); <-done }()
	var base string
	stderr.waitFor(t, func(lines []map[string]any) bool {
		for _, l := range lines {
			if l["msg"] == "myriad serving" {
				base = "http://" + l["addr"].(string)
			}
		}
		return base != ""
	})
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
	if !bytes.Contains(metrics, []byte(`myriad_runs_ended_total{agent="a",code="",flow="",outcome="completed"} 1`)) {
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
}
