package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
)

// bench --actors measures agents as virtual actors: messages to
// instances, each a turn of its instance.
//
//   - send: --sessions messages to --instances instances (default: one
//     each, all new), as fast as they are stored; then the wait until
//     every turn has ended. Reports the rate of stored sends, the rate of
//     handled messages, the activations' latency (claim to state folded,
//     cold when the snapshot came from the store), disk and peak RSS.
//   - ask: --concurrency clients each ask and wait for the answer, over
//     --instances instances. Reports the round trip's latency and rate.

// actorsResult is the one JSON line bench --actors prints.
type actorsResult struct {
	Mode        string  `json:"mode"`
	Agent       string  `json:"agent"`
	Messages    int     `json:"messages"`
	Instances   int     `json:"instances"`
	Concurrency int     `json:"concurrency"`
	OK          int     `json:"ok"`
	Failed      int     `json:"failed"`
	Seconds     float64 `json:"seconds"`
	// SendsPerS is the rate at which sends were stored (send mode);
	// HandledPerS the rate of turns that ended, end to end.
	SendsPerS   float64 `json:"sends_per_s,omitempty"`
	SendSeconds float64 `json:"send_seconds,omitempty"`
	HandledPerS float64 `json:"handled_per_s"`
	P50AskMS    float64 `json:"p50_ask_ms,omitempty"`
	P99AskMS    float64 `json:"p99_ask_ms,omitempty"`
	// Activations on this node: cold ones read the snapshot from the
	// store, warm ones found it in the node's cache.
	ColdActivations int     `json:"cold_activations"`
	P50ColdActMS    float64 `json:"p50_cold_activation_ms"`
	P99ColdActMS    float64 `json:"p99_cold_activation_ms"`
	WarmActivations int     `json:"warm_activations"`
	P50WarmActMS    float64 `json:"p50_warm_activation_ms"`
	P99WarmActMS    float64 `json:"p99_warm_activation_ms"`
	StoreBytes      uint64  `json:"store_bytes"`
	DiskBytes       int64   `json:"disk_bytes,omitempty"`
	PeakRSSMB       float64 `json:"peak_rss_mb"`
	FirstError      string  `json:"first_error,omitempty"`
}

type actorsBench struct {
	e           *env
	mode        string
	agent       string
	messages    int
	instances   int
	concurrency int
	input       string
	noWorkers   bool

	mu   sync.Mutex
	cold []float64
	warm []float64
}

// address is the i-th instance's: a hierarchy a thousand wide.
func (b *actorsBench) address(i int) engine.Address {
	i %= b.instances
	return engine.Address{Agent: b.agent, Key: fmt.Sprintf("bench/g%d/i%d", i/1000, i)}
}

func (b *actorsBench) onActivation(d time.Duration, cached bool) {
	ms := float64(d.Microseconds()) / 1000
	b.mu.Lock()
	if cached {
		b.warm = append(b.warm, ms)
	} else {
		b.cold = append(b.cold, ms)
	}
	b.mu.Unlock()
}

func benchActors(ctx context.Context, b *actorsBench, proj *myriad.Project, dir, natsURL string, log *slog.Logger) error {
	if b.instances <= 0 {
		b.instances = b.messages
	}
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{DataDir: dir, NATSURL: natsURL, Workers: b.concurrency, NoWorkers: b.noWorkers,
		Logger: log, OnActivation: b.onActivation})
	if err != nil {
		return err
	}
	defer node.Close()
	fmt.Fprintf(b.e.stderr, "bench: %s %d messages to %d instances of %s, %d at a time\n", b.mode, b.messages, b.instances, b.agent, b.concurrency)
	res := actorsResult{Mode: b.mode, Agent: b.agent, Messages: b.messages, Instances: b.instances, Concurrency: b.concurrency}
	var asks []float64
	began := time.Now()
	var failed atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	var done atomic.Int64
	stop := b.progress(&done)
	defer stop()
	switch b.mode {
	case "send":
		ids := make([]string, b.messages)
		b.parallel(ctx, b.messages, func(i int) {
			rec, err := node.Engine.Send(ctx, engine.Message{To: b.address(i), Text: b.input})
			if err != nil {
				fail(err)
				return
			}
			ids[i] = rec.ID
		})
		res.SendSeconds = round(time.Since(began).Seconds(), 3)
		res.SendsPerS = round(float64(b.messages-int(failed.Load()))/res.SendSeconds, 1)
		fmt.Fprintf(b.e.stderr, "bench: %d sends stored in %.1fs; waiting for the turns\n", b.messages, res.SendSeconds)
		b.parallel(ctx, b.messages, func(i int) {
			if ids[i] == "" {
				return
			}
			rec, err := node.Engine.Wait(ctx, ids[i])
			switch {
			case err != nil:
				fail(err)
			case rec.Status != run.StatusCompleted:
				fail(fmt.Errorf("run %s %s", rec.ID, rec.Status))
			}
			done.Add(1)
		})
	case "ask":
		var mu sync.Mutex
		asks = make([]float64, 0, b.messages)
		b.parallel(ctx, b.messages, func(i int) {
			t0 := time.Now()
			rec, err := node.Engine.Ask(ctx, engine.Message{To: b.address(i), Text: b.input})
			switch {
			case err != nil:
				fail(err)
			case rec.Status != run.StatusCompleted:
				fail(fmt.Errorf("run %s %s", rec.ID, rec.Status))
			default:
				mu.Lock()
				asks = append(asks, float64(time.Since(t0).Microseconds())/1000)
				mu.Unlock()
			}
			done.Add(1)
		})
	}
	if ctx.Err() != nil {
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	elapsed := time.Since(began).Seconds()
	res.Seconds = round(elapsed, 3)
	res.Failed = int(failed.Load())
	res.OK = b.messages - res.Failed
	res.HandledPerS = round(float64(res.OK)/elapsed, 1)
	res.P50AskMS, res.P99AskMS = round(percentile(asks, 50), 2), round(percentile(asks, 99), 2)
	b.mu.Lock()
	res.ColdActivations, res.WarmActivations = len(b.cold), len(b.warm)
	res.P50ColdActMS, res.P99ColdActMS = round(percentile(b.cold, 50), 3), round(percentile(b.cold, 99), 3)
	res.P50WarmActMS, res.P99WarmActMS = round(percentile(b.warm, 50), 3), round(percentile(b.warm, 99), 3)
	b.mu.Unlock()
	if u, err := node.Engine.Storage(ctx); err == nil {
		res.StoreBytes = u.Bytes
	}
	res.DiskBytes = diskUsage(dir)
	res.PeakRSSMB = peakRSSMB()
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}
	line, _ := json.Marshal(res)
	fmt.Fprintf(b.e.stdout, "%s\n", line)
	if res.Failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d messages failed (first: %s)", res.Failed, res.FirstError)}
	}
	return nil
}

// parallel calls f for 0..n-1 from --concurrency goroutines.
func (b *actorsBench) parallel(ctx context.Context, n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(b.concurrency, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// progress prints how many turns are done every few seconds.
func (b *actorsBench) progress(done *atomic.Int64) (stop func()) {
	t := time.NewTicker(5 * time.Second)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				fmt.Fprintf(b.e.stderr, "bench: %d/%d turns done\n", done.Load(), b.messages)
			case <-quit:
				return
			}
		}
	}()
	return func() { t.Stop(); close(quit) }
}

// diskUsage sums the sizes of the files under dir (0 without one).
func diskUsage(dir string) int64 {
	if dir == "" {
		return 0
	}
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
