package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
)

// flowBenchResult is the JSON line bench --flow prints.
type flowBenchResult struct {
	Flow           string  `json:"flow"`
	Items          int     `json:"items"`
	Runs           int     `json:"runs"`
	Status         string  `json:"status"`
	Durable        bool    `json:"durable"`
	Seconds        float64 `json:"seconds"`
	PerChildUS     float64 `json:"per_child_us"`
	ParentEntries  int     `json:"parent_journal_entries"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	BaselineRSSMB  float64 `json:"baseline_rss_mb"`
	RSSGrowthMB    float64 `json:"rss_growth_mb"`
	ChildrenPerSec float64 `json:"children_per_s"`
}

// benchFlow runs one flow with --items items in state key --items-key and
// measures it end to end: fan-out, every child run, gathering, reduction.
func benchFlow(ctx context.Context, e *env, proj *myriad.Project, name string, items int, key, dir string, memory bool, log *slog.Logger) error {
	if _, ok := proj.Flows[name]; !ok {
		return fmt.Errorf("--flow: unknown flow %q", name)
	}
	list := make([]string, items)
	for i := range list {
		list[i] = fmt.Sprintf("document %d", i+1)
	}
	state, _ := json.Marshal(map[string]any{key: list})
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{DataDir: dir, Memory: memory, Logger: log})
	if err != nil {
		return err
	}
	defer node.Close()
	baseline := currentRSSMB()
	fmt.Fprintf(e.stderr, "bench: flow %s over %d items, %s\n", name, items, map[bool]string{true: "in memory", false: "durable (file storage)"}[memory])
	began := time.Now()
	rec, _, err := node.Engine.Submit(ctx, engine.SubmitRequest{Flow: name, Input: "benchmark", State: state})
	if err != nil {
		return err
	}
	rec, err = node.Engine.Wait(ctx, rec.ID)
	if err != nil {
		return err
	}
	elapsed := time.Since(began)
	res := flowBenchResult{Flow: name, Items: items, Runs: items + 2, Status: string(rec.Status), Durable: !memory,
		Seconds: round(elapsed.Seconds(), 3), ParentEntries: rec.Steps, PeakRSSMB: peakRSSMB(), BaselineRSSMB: baseline}
	res.RSSGrowthMB = round(res.PeakRSSMB-baseline, 1)
	res.PerChildUS = round(float64(elapsed.Microseconds())/float64(items), 1)
	res.ChildrenPerSec = round(float64(items)/elapsed.Seconds(), 1)
	line, _ := json.Marshal(res)
	fmt.Fprintf(e.stdout, "%s\n", line)
	if rec.Status != run.StatusCompleted {
		msg := string(rec.Status)
		if rec.Error != nil {
			msg = rec.Error.Code + ": " + rec.Error.Message
		}
		return &exitError{code: 1, err: fmt.Errorf("the flow run did not complete: %s", msg)}
	}
	return nil
}

// currentRSSMB reads the process's resident set size now (Linux).
func currentRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, rss float64
	fmt.Sscan(string(data), &size, &rss)
	return round(rss*float64(os.Getpagesize())/(1<<20), 1)
}
