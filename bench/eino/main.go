// Command eino runs the benchmark session of docs/benchmarks.md with an Eino
// ReAct agent instead of Myriad, for a peer comparison (bench/compare).
//
// A session is one agent run against `myriad mock-llm --rules
// bench/rules.yaml`: the model (Eino's OpenAI chat model, pointed at the
// mock's /v1) calls the tool `echo` with {"step": N} until it has 3 tool
// results, then answers; the tool POSTs its arguments to the mock's
// /v1/tools/echo, like Myriad's http tool. So 4 model calls and 3 tool calls,
// each one loopback HTTP exchange. Every session's requests are counted at
// the HTTP transport and a session that did not make exactly 4 model and 3
// tool calls, or did not end with the mock's final answer, fails.
//
// Nothing is durable here: Eino keeps the run in memory. It prints one JSON
// line with the field names of `myriad bench`, plus cpu_s.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudwego/eino-ext/components/model/openai"
	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/flow/agent/react"
	"github.com/cloudwego/eino/schema"
	"github.com/eino-contrib/jsonschema"
)

// The session's shape, fixed by bench/rules.yaml.
const (
	wantModelCalls = 4
	wantToolCalls  = 3
)

// echoSchema is the parameters schema of the echo tool in bench/myriad.yaml.
const echoSchema = `{"type":"object","properties":{"step":{"type":"integer"}},"required":["step"]}`

// maxResponseBytes caps a tool answer, as Myriad's http tool does.
const maxResponseBytes = 1 << 20

type result struct {
	Runtime      string  `json:"runtime"`
	Sessions     int     `json:"sessions"`
	Concurrency  int     `json:"concurrency"`
	OK           int     `json:"ok"`
	Failed       int     `json:"failed"`
	Seconds      float64 `json:"seconds"`
	SessionsPerS float64 `json:"sessions_per_s"`
	Steps        int     `json:"steps"`
	StepsPerS    float64 `json:"steps_per_s"`
	ModelCalls   int     `json:"model_calls"`
	ToolCalls    int     `json:"tool_calls"`
	P50SessionMS float64 `json:"p50_session_ms"`
	P99SessionMS float64 `json:"p99_session_ms"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	CPUS         float64 `json:"cpu_s"`
	FirstError   string  `json:"first_error,omitempty"`
}

// counts are one session's HTTP requests, by route.
type counts struct{ model, tool atomic.Int64 }

type countsKey struct{}

// countingTransport counts the requests of the session whose context they
// carry, so the check sees what really went over the wire (retries included).
type countingTransport struct{ next http.RoundTripper }

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c, ok := req.Context().Value(countsKey{}).(*counts); ok {
		switch {
		case strings.HasSuffix(req.URL.Path, "/chat/completions"):
			c.model.Add(1)
		case strings.HasSuffix(req.URL.Path, "/tools/echo"):
			c.tool.Add(1)
		}
	}
	return t.next.RoundTrip(req)
}

// newClient is the pooled client for the model and the tool, set up like
// Myriad's outbound client: the standard library keeps only 2 idle
// connections per host, which under load would dial for most calls.
func newClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * 1024
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: countingTransport{next: t}}
}

// echoTool POSTs its JSON arguments to the mock's echo route and gives the
// answer's body to the model, like Myriad's http tool.
type echoTool struct {
	url    string
	client *http.Client
	info   *schema.ToolInfo
}

func newEchoTool(url string, client *http.Client) (*echoTool, error) {
	var s jsonschema.Schema
	if err := json.Unmarshal([]byte(echoSchema), &s); err != nil {
		return nil, fmt.Errorf("echo schema: %w", err)
	}
	return &echoTool{url: url, client: client, info: &schema.ToolInfo{
		Name:        "echo",
		Desc:        "Echoes its arguments.",
		ParamsOneOf: schema.NewParamsOneOfByJSONSchema(&s),
	}}, nil
}

func (t *echoTool) Info(context.Context) (*schema.ToolInfo, error) { return t.info, nil }

func (t *echoTool) InvokableRun(ctx context.Context, args string, _ ...tool.Option) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if strings.TrimSpace(args) == "" {
		args = "{}"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(args))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/plain")
	req.Header.Set("Idempotency-Key", compose.GetToolCallID(ctx))
	resp, err := t.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("tool echo: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return "", fmt.Errorf("tool echo: read response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Sprintf("HTTP %d from echo: %s", resp.StatusCode, bytes.TrimSpace(data)), nil
	}
	return string(data), nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eino:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", "http://127.0.0.1:8421", "the base URL of `myriad mock-llm`")
	sessions := flag.Int("sessions", 1000, "number of sessions (agent runs)")
	concurrency := flag.Int("concurrency", 0, "sessions in flight at once (default: all of them, at most 5000)")
	input := flag.String("input", "benchmark session", "the input of every session")
	flag.Parse()
	if *sessions < 1 {
		return errors.New("--sessions must be at least 1")
	}
	if *concurrency <= 0 {
		*concurrency = min(*sessions, 5000)
	}
	base := strings.TrimSuffix(*url, "/")
	ctx := context.Background()

	client := newClient()
	chat, err := openai.NewChatModel(ctx, &openai.ChatModelConfig{
		APIKey:     "mock",
		BaseURL:    base + "/v1",
		Model:      "scripted",
		HTTPClient: client,
	})
	if err != nil {
		return fmt.Errorf("chat model: %w", err)
	}
	echo, err := newEchoTool(base+"/v1/tools/echo", client)
	if err != nil {
		return err
	}
	agent, err := react.NewAgent(ctx, &react.AgentConfig{
		ToolCallingModel: chat,
		ToolsConfig:      compose.ToolsNodeConfig{Tools: []tool.BaseTool{echo}},
		MaxStep:          20, // 4 model and 3 tool nodes; the graph's own steps are counted too
	})
	if err != nil {
		return fmt.Errorf("react agent: %w", err)
	}

	fmt.Fprintf(os.Stderr, "eino: %d sessions of a ReAct agent, %d at a time, in memory\n", *sessions, *concurrency)
	var (
		mu                   sync.Mutex
		wall                 []float64
		modelCalls, toolCall atomic.Int64
		failed               atomic.Int64
		firstErr             atomic.Value
		next                 atomic.Int64
		wg                   sync.WaitGroup
	)
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	began := time.Now()
	for range *concurrency {
		wg.Go(func() {
			for int(next.Add(1)) <= *sessions {
				c := new(counts)
				sctx := context.WithValue(ctx, countsKey{}, c)
				start := time.Now()
				out, err := agent.Generate(sctx, []*schema.Message{schema.UserMessage(*input)})
				ms := float64(time.Since(start).Microseconds()) / 1000
				m, t := c.model.Load(), c.tool.Load()
				modelCalls.Add(m)
				toolCall.Add(t)
				mu.Lock()
				wall = append(wall, ms)
				mu.Unlock()
				switch {
				case err != nil:
					fail(err)
				case m != wantModelCalls || t != wantToolCalls:
					fail(fmt.Errorf("session made %d model and %d tool calls, want %d and %d", m, t, wantModelCalls, wantToolCalls))
				case out == nil || !strings.HasPrefix(out.Content, "done: "):
					fail(fmt.Errorf("session ended without the final answer: %+v", out))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began).Seconds()

	res := result{Runtime: "eino", Sessions: *sessions, Concurrency: *concurrency, Seconds: round(elapsed, 3),
		ModelCalls: int(modelCalls.Load()), ToolCalls: int(toolCall.Load()), PeakRSSMB: peakRSSMB(), CPUS: round(cpuSeconds(), 3)}
	res.Steps = res.ModelCalls + res.ToolCalls
	res.Failed = int(failed.Load())
	res.OK = *sessions - res.Failed
	res.SessionsPerS = round(float64(res.OK)/elapsed, 1)
	res.StepsPerS = round(float64(res.Steps)/elapsed, 1)
	res.P50SessionMS, res.P99SessionMS = round(percentile(wall, 50), 2), round(percentile(wall, 99), 2)
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}
	line, _ := json.Marshal(res)
	fmt.Printf("%s\n", line)
	if res.Failed > 0 {
		return fmt.Errorf("%d of %d sessions failed (first: %s)", res.Failed, *sessions, res.FirstError)
	}
	return nil
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p/100)]
}

func round(x float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', digits, 64), 64)
	return f
}

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// peakRSSMB reads the process's peak resident set size, VmHWM (Linux).
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return round(kb/1024, 1)
		}
	}
	return 0
}
