package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/telemetry"
)

// benchResult is the one JSON line bench prints.
type benchResult struct {
	Agent             string  `json:"agent"`
	Sessions          int     `json:"sessions"`
	Concurrency       int     `json:"concurrency"`
	OK                int     `json:"ok"`
	Failed            int     `json:"failed"`
	Durable           bool    `json:"durable"`
	Seconds           float64 `json:"seconds"`
	SessionsPerS      float64 `json:"sessions_per_s"`
	Steps             int     `json:"steps"`
	StepsPerS         float64 `json:"steps_per_s"`
	JournalEntries    int     `json:"journal_entries"`
	P50SessionMS      float64 `json:"p50_session_ms"`
	P99SessionMS      float64 `json:"p99_session_ms"`
	P50StepOverheadUS float64 `json:"p50_step_overhead_us"`
	P99StepOverheadUS float64 `json:"p99_step_overhead_us"`
	PeakRSSMB         float64 `json:"peak_rss_mb"`
	FirstError        string  `json:"first_error,omitempty"`
}

func bench(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "bench", "bench --config F (--agent A --sessions N [--concurrency C] | --flow F --items N)")
	path := fs.String("config", defaultConfig(), "the project file")
	agentName := fs.String("agent", "", "the agent every session runs")
	sessions := fs.Int("sessions", 1000, "number of sessions (runs)")
	concurrency := fs.Int("concurrency", 0, "sessions in flight at once (default: all of them, at most 5000)")
	input := fs.String("input", "benchmark session", "the input of every session")
	memory := fs.Bool("memory", false, "keep streams in memory (not durable: for comparison only)")
	data := fs.String("data", "", "data directory (default: a temporary directory, removed afterwards)")
	natsURL := fs.String("nats", "", "run on this NATS server or cluster (nats://a:4222,nats://b:4222,...) rather than an embedded one: three or more servers give streams three replicas")
	logs := logFlags(fs, "warn")
	observe := fs.Bool("telemetry", false, "observe as myriad serve does: metrics, and spans through a batcher to an exporter that drops them (the cost of telemetry)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured part to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file when half the sessions are done (near peak)")
	flowName := fs.String("flow", "", "benchmark one run of this flow instead of agent sessions")
	items := fs.Int("items", 1000, "with --flow: the number of items in the state list the flow maps over")
	itemsKey := fs.String("items-key", "docs", "with --flow: the state key of that list")
	actors := fs.String("actors", "", "benchmark the agent as virtual actors: send (--sessions messages, stored as fast as they go, then handled) or ask (each of --concurrency clients asks and waits)")
	instances := fs.Int("instances", 0, "with --actors: how many instances the messages go to (default: one message each)")
	noWorkers := fs.Bool("no-workers", false, "with --actors and --nats: only send and wait; the cluster's other nodes do the work")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log, err := logs.logger(e.stderr)
	if err != nil {
		return err
	}
	if *actors != "" {
		if *actors != "send" && *actors != "ask" {
			return &exitError{code: 2, err: fmt.Errorf("--actors: %q is not a mode (known: send, ask)", *actors)}
		}
		if *agentName == "" || *sessions < 1 {
			return &exitError{code: 2, err: errors.New("--actors needs --agent and --sessions ≥ 1")}
		}
		if *noWorkers && *natsURL == "" {
			return &exitError{code: 2, err: errors.New("--no-workers needs --nats: without other nodes nothing would do the work")}
		}
		proj, err := myriad.Load(*path)
		if err != nil {
			return err
		}
		defer proj.Close()
		if _, ok := proj.Agents[*agentName]; !ok {
			return fmt.Errorf("--agent: unknown agent %q (known: %s)", *agentName, strings.Join(proj.Config.AgentNames(), ", "))
		}
		dir, cleanup, err := dataDir(*data, "bench", *memory || *natsURL != "")
		if err != nil {
			return err
		}
		defer cleanup()
		if *concurrency <= 0 {
			*concurrency = 64
		}
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		b := &actorsBench{e: e, mode: *actors, agent: *agentName, messages: *sessions, instances: *instances,
			concurrency: *concurrency, input: *input, noWorkers: *noWorkers}
		return benchActors(ctx, b, proj, dir, *natsURL, log)
	}
	if *flowName != "" {
		proj, err := myriad.Load(*path)
		if err != nil {
			return err
		}
		defer proj.Close() // MCP servers started for it stop with the command
		dir, cleanup, err := dataDir(*data, "bench", *memory)
		if err != nil {
			return err
		}
		defer cleanup()
		var stopProfile func()
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			stopProfile = pprof.StopCPUProfile
			defer stopProfile()
		}
		return benchFlow(ctx, e, proj, *flowName, *items, *itemsKey, dir, *memory, log)
	}
	if *agentName == "" || *sessions < 1 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("need --agent and --sessions ≥ 1")}
	}
	if *concurrency <= 0 {
		*concurrency = min(*sessions, 5000)
	}
	proj, err := myriad.Load(*path)
	if err != nil {
		return err
	}
	defer proj.Close() // MCP servers started for it stop with the command
	if _, ok := proj.Agents[*agentName]; !ok {
		return fmt.Errorf("--agent: unknown agent %q (known: %s)", *agentName, strings.Join(proj.Config.AgentNames(), ", "))
	}
	dir, cleanup, err := dataDir(*data, "bench", *memory)
	if err != nil {
		return err
	}
	defer cleanup()

	var mu sync.Mutex
	// inFlight holds one token per session between its submission and its
	// end, so at most --concurrency sessions run at once; the harness itself
	// needs only a few goroutines, whatever the concurrency.
	inFlight := make(chan struct{}, *concurrency)
	allDone := make(chan struct{})
	var finished atomic.Int64
	finish := func() {
		<-inFlight
		if int(finished.Add(1)) == *sessions {
			close(allDone)
		}
	}
	var sessionWall, overhead []float64
	var steps, entries, failed atomic.Int64
	var firstErr atomic.Value
	onFinish := func(rec *run.Record, st engine.RunStats) {
		// Model and tool calls are the steps that do work; the rest of the
		// wall time is the runtime's overhead.
		calls := max(st.ModelCalls+st.ToolCalls, 1)
		mu.Lock()
		sessionWall = append(sessionWall, float64(st.Wall.Microseconds())/1000)
		overhead = append(overhead, float64((st.Wall-st.ModelTime-st.ToolTime).Microseconds())/float64(calls))
		half := len(sessionWall) == *sessions/2
		mu.Unlock()
		if half && *memProfile != "" {
			if f, err := os.Create(*memProfile); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		steps.Add(int64(calls))
		entries.Add(int64(st.Steps))
		if rec.Status != run.StatusCompleted {
			failed.Add(1)
			if rec.Error != nil {
				firstErr.CompareAndSwap(nil, rec.Error.Code+": "+rec.Error.Message)
			}
		}
		finish()
	}
	var observers []engine.Observer
	if *observe {
		tel := telemetry.New(telemetry.Options{Spans: sdktrace.NewBatchSpanProcessor(dropSpans{}), Models: traceModels(proj.Config)})
		defer tel.Shutdown(context.Background())
		observers = append(observers, tel)
	}
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{DataDir: dir, NATSURL: *natsURL, Memory: *memory, Workers: *concurrency,
		Logger: log, OnFinish: onFinish, Observers: observers})
	if err != nil {
		return err
	}
	defer node.Close()

	fmt.Fprintf(e.stderr, "bench: %d sessions of %s, %d at a time, %s\n", *sessions, *agentName, *concurrency, map[bool]string{true: "in memory", false: "durable (file storage)"}[*memory])
	var next atomic.Int64
	var submitErr atomic.Value
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	began := time.Now()
	var wg sync.WaitGroup
	progress := time.NewTicker(2 * time.Second)
	defer progress.Stop()
	go func() {
		for range progress.C {
			mu.Lock()
			n := len(sessionWall)
			mu.Unlock()
			fmt.Fprintf(e.stderr, "bench: %d/%d sessions done\n", n, *sessions)
		}
	}()
	for range min(*concurrency, 32) {
		wg.Go(func() {
			for ctx.Err() == nil {
				if int(next.Add(1)) > *sessions {
					return
				}
				select {
				case inFlight <- struct{}{}:
				case <-ctx.Done():
					return
				}
				if _, _, err := node.Engine.Submit(ctx, engine.SubmitRequest{Agent: *agentName, Input: *input}); err != nil {
					submitErr.CompareAndSwap(nil, err.Error())
					failed.Add(1)
					finish()
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-allDone:
	case <-ctx.Done():
	}
	elapsed := time.Since(began).Seconds()
	if ctx.Err() != nil {
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	res := benchResult{Agent: *agentName, Sessions: *sessions, Concurrency: *concurrency, Durable: !*memory,
		Seconds: round(elapsed, 3), Steps: int(steps.Load()), JournalEntries: int(entries.Load()), PeakRSSMB: peakRSSMB()}
	res.Failed = int(failed.Load())
	res.OK = *sessions - res.Failed
	res.SessionsPerS = round(float64(res.OK)/elapsed, 1)
	res.StepsPerS = round(float64(res.Steps)/elapsed, 1)
	res.P50SessionMS, res.P99SessionMS = round(percentile(sessionWall, 50), 2), round(percentile(sessionWall, 99), 2)
	res.P50StepOverheadUS, res.P99StepOverheadUS = round(percentile(overhead, 50), 1), round(percentile(overhead, 99), 1)
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	} else if v, ok := submitErr.Load().(string); ok {
		res.FirstError = v
	}
	line, _ := json.Marshal(res)
	fmt.Fprintf(e.stdout, "%s\n", line)
	if res.Failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d sessions failed (first: %s)", res.Failed, res.FirstError)}
	}
	return nil
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func round(x float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', digits, 64), 64)
	return f
}

// peakRSSMB reads the process's peak resident set size (Linux).
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

// dropSpans is an exporter that drops what it is given: bench --telemetry
// measures making spans, not sending them.
type dropSpans struct{}

func (dropSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (dropSpans) Shutdown(context.Context) error                             { return nil }
