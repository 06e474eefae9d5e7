package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/api/client"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/mockllm"
	"github.com/myriad-ai/myriad/model/scripted"
	"github.com/myriad-ai/myriad/run"
)

// These tests kill -9 a real myriad serve process and restart it on the same
// data directory.

var binPath string

// plainBin builds myriad without the race detector, once, for tests that
// measure the server's memory (the detector multiplies it).
var plainBin = sync.OnceValues(func() (string, error) {
	path := binPath + "-plain"
	out, err := exec.Command("go", "build", "-o", path, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build myriad: %v\n%s", err, out)
	}
	return path, nil
})

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "myriad-bin-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "myriad")
	out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build myriad: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const rules = `
- when: {tool_results: 3}
  reply: {text: "all three records written"}
- reply:
    tool_calls:
      - name: record
        arguments: '{"n": {{.ToolResults}}}'
`

// hold is a gate an HTTP handler can stop at: arrivals are announced on
// arrived; the handler then waits until its request is abandoned.
type hold struct {
	mu      sync.Mutex
	at      int // the 1-based request number to hold, 0 for none
	n       int
	arrived chan int
}

func newHold(at int) *hold { return &hold{at: at, arrived: make(chan int, 64)} }

// enter counts a request and, for the held one, blocks until the client
// (the killed process) goes away. It reports the request's number.
func (h *hold) enter(r *http.Request) int {
	h.mu.Lock()
	h.n++
	n := h.n
	h.mu.Unlock()
	h.arrived <- n
	if n == h.at {
		<-r.Context().Done()
	}
	return n
}

type fixture struct {
	t         *testing.T
	dir       string
	config    string
	modelHold *hold
	toolHold  *hold

	mu       sync.Mutex
	turns    []int          // the turn number of each model request
	toolKeys map[string]int // tool calls by idempotency key
}

func newFixture(t *testing.T, modelHoldAt, toolHoldAt int) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), modelHold: newHold(modelHoldAt), toolHold: newHold(toolHoldAt), toolKeys: map[string]int{}}
	rs, err := scripted.ParseRules([]byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	mock, err := mockllm.New(mockllm.Options{Rules: rs})
	if err != nil {
		t.Fatal(err)
	}
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/chat/completions") {
			body, _ := io.ReadAll(r.Body)
			var req struct {
				Messages []struct{ Role string } `json:"messages"`
			}
			_ = json.Unmarshal(body, &req)
			turn := 1
			for _, m := range req.Messages {
				if m.Role == "assistant" {
					turn++
				}
			}
			f.mu.Lock()
			f.turns = append(f.turns, turn)
			f.mu.Unlock()
			f.modelHold.enter(r)
			if r.Context().Err() != nil {
				return
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		mock.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(llm.Close)
	tools := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: the server notices a vanished client only
		// once the request is consumed.
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.toolKeys[r.Header.Get("Idempotency-Key")]++
		f.mu.Unlock()
		f.toolHold.enter(r)
		if r.Context().Err() != nil {
			return
		}
		fmt.Fprintf(w, `{"recorded": %s}`, body)
	}))
	t.Cleanup(tools.Close)
	f.config = filepath.Join(f.dir, "myriad.yaml")
	cfg := fmt.Sprintf(`
models:
  mock:
    provider: openai
    model: scripted
    base_url: %s/v1
agents:
  writer:
    model: mock
    tools: [record]
tools:
  record:
    type: http
    url: %s/record
    description: Writes a record; not safe to repeat.
    parameters: {type: object, properties: {n: {type: integer}}, required: [n]}
    idempotent: false
`, llm.URL, tools.URL)
	if err := os.WriteFile(f.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

type proc struct {
	cmd  *exec.Cmd
	addr string
}

var addrLine = regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)

// serve starts myriad serve and waits for it to listen.
func (f *fixture) serve() *proc {
	f.t.Helper()
	return f.serveWith(binPath)
}

// serveWith starts myriad serve from the binary at bin.
func (f *fixture) serveWith(bin string) *proc {
	f.t.Helper()
	cmd := exec.Command(bin, "serve", "--config", f.config, "--data", filepath.Join(f.dir, "data"), "--listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := addrLine.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
			if testing.Verbose() {
				fmt.Fprintln(os.Stderr, "  serve:", sc.Text())
			}
		}
	}()
	select {
	case a := <-addr:
		return &proc{cmd: cmd, addr: a}
	case <-time.After(30 * time.Second):
		f.t.Fatal("myriad serve did not start listening within 30s")
	}
	return nil
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func (p *proc) client() *client.Client { return client.New("http://"+p.addr, "") }

// waitArrival waits for the n-th request at a hold.
func waitArrival(t *testing.T, h *hold, n int, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	deadline := time.After(within)
	for {
		select {
		case got := <-h.arrived:
			if got >= n {
				return time.Since(began)
			}
		case <-deadline:
			t.Fatalf("request %d did not arrive within %s", n, within)
		}
	}
}

// follow streams a run's events until stop says so.
func follow(t *testing.T, c *client.Client, id string, stop func(journal.Event) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.Events(ctx, id, 0, func(ev run.TreeEvent) bool { return !stop(ev.Event) })
	if err != nil {
		t.Fatalf("follow %s: %v", id, err)
	}
}

func TestKillDuringModelCall(t *testing.T) {
	// Hold the second model call: turn 1 and tool call 1 are done by then.
	f := newFixture(t, 2, 0)
	p := f.serve()
	ref, err := p.client().Submit(context.Background(), apitype.CreateRunRequest{Agent: "writer", Input: "write three records"}, "")
	if err != nil {
		t.Fatal(err)
	}
	waitArrival(t, f.modelHold, 2, 30*time.Second)
	p.kill(t)

	p = f.serve()
	recovery := waitArrival(t, f.modelHold, 3, 10*time.Second)
	if recovery > 5*time.Second {
		t.Errorf("recovery started %s after the restart, want within 5s", recovery)
	}
	rec, err := p.client().Wait(context.Background(), ref.ID, 30*time.Second)
	if err != nil || rec.Status != run.StatusCompleted {
		t.Fatalf("run: %+v %v", rec, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Turn 2 was cut off and asked again; no finished model call repeats.
	if got := fmt.Sprint(f.turns); got != "[1 2 2 3 4]" {
		t.Errorf("model requests by turn %s, want [1 2 2 3 4]", got)
	}
	if len(f.toolKeys) != 3 {
		t.Errorf("tool calls %v, want 3 distinct keys", f.toolKeys)
	}
	for k, n := range f.toolKeys {
		if n != 1 {
			t.Errorf("tool call %s executed %d times", k, n)
		}
	}
	t.Logf("recovery began %s after restart", recovery.Round(time.Millisecond))
}

func TestKillDuringNonIdempotentToolCall(t *testing.T) {
	// Hold the second tool call: it has started, and nobody knows if it took effect.
	f := newFixture(t, 0, 2)
	p := f.serve()
	ref, err := p.client().Submit(context.Background(), apitype.CreateRunRequest{Agent: "writer", Input: "write three records"}, "")
	if err != nil {
		t.Fatal(err)
	}
	waitArrival(t, f.toolHold, 2, 30*time.Second)
	p.kill(t)

	began := time.Now()
	p = f.serve()
	c := p.client()
	follow(t, c, ref.ID, func(ev journal.Event) bool { return ev.Type == journal.TypeRunInDoubt })
	if d := time.Since(began); d > 5*time.Second+2*time.Second {
		t.Errorf("in_doubt reached %s after restart", d)
	}
	rec, err := c.Wait(context.Background(), ref.ID, 30*time.Second)
	if err != nil || rec.Status != run.StatusInDoubt || rec.InDoubt == nil {
		t.Fatalf("run: %+v %v", rec, err)
	}
	if _, err := c.Resolve(context.Background(), ref.ID, run.Resolution{Action: "skip", Result: `{"recorded": {"n": 1}}`, Reason: "checked the ledger"}); err != nil {
		t.Fatal(err)
	}
	follow(t, c, ref.ID, func(ev journal.Event) bool { return journal.Terminal(ev.Type) })
	rec, err = c.Wait(context.Background(), ref.ID, 30*time.Second)
	if err != nil || rec.Status != run.StatusCompleted {
		t.Fatalf("after resolve: %+v %v", rec, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.toolKeys) != 3 {
		t.Errorf("tool calls %v, want 3 distinct keys (the in-doubt one was skipped, not repeated)", f.toolKeys)
	}
	for k, n := range f.toolKeys {
		if n != 1 {
			t.Errorf("tool call %s executed %d times", k, n)
		}
	}
}

func TestKillWhileWaitingForApproval(t *testing.T) {
	f := newFixture(t, 0, 0)
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "idempotent: false", "idempotent: false\n    approval: required", 1))
	if err := os.WriteFile(f.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	p := f.serve()
	ctx := context.Background()
	ref, err := p.client().Submit(ctx, apitype.CreateRunRequest{Agent: "writer", Input: "write three records"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := p.client().Wait(ctx, ref.ID, 30*time.Second); err != nil || rec.Status != run.StatusWaiting {
		t.Fatalf("want waiting: %+v %v", rec, err)
	}
	p.kill(t)

	p = f.serve()
	c := p.client()
	for approved := 0; ; approved++ {
		rec, err := c.Wait(ctx, ref.ID, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status == run.StatusCompleted {
			if approved != 3 {
				t.Fatalf("completed after %d approvals, want 3", approved)
			}
			break
		}
		list, err := c.Approvals(ctx, "")
		if err != nil || rec.Status != run.StatusWaiting || len(list.Approvals) != 1 {
			t.Fatalf("after %d approvals: status %s, pending %+v, %v", approved, rec.Status, list, err)
		}
		if _, err := c.Decide(ctx, ref.ID, list.Approvals[0].ApprovalID, run.Decision{Decision: "approve"}); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.toolKeys) != 3 {
		t.Errorf("tool calls %v, want 3", f.toolKeys)
	}
	for k, n := range f.toolKeys {
		if n != 1 {
			t.Errorf("tool call %s executed %d times", k, n)
		}
	}
}
