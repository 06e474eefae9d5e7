package myriad_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
)

// A run's cost is its model calls at their models' prices then, its tool
// calls at their prices, and its children's, by model and by tool.
func TestARunReportsItsCost(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `"found"`) }))
	defer api.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "myriad.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`
models:
  big:
    provider: scripted
    prices: [{input: 2, output: 8}]
    rules:
      - when: {last_tool: helper}
        reply: {text: "done", usage: {input_tokens: 1000, output_tokens: 500}}
      - when: {last_tool: lookup}
        reply: {tool_calls: [{name: helper, arguments: {task: "sum up"}}], usage: {input_tokens: 1000, output_tokens: 500}}
      - reply: {tool_calls: [{name: lookup, arguments: {}}], usage: {input_tokens: 1000, output_tokens: 500}}
  small:
    provider: scripted
    prices: [{input: 100, output: 100, from: "2999-01-01"}, {input: 1, output: 1, cached_input: 0.5, from: "2000-01-01"}]
    rules: [{reply: {text: "summed", usage: {input_tokens: 1000, cached_input_tokens: 400, output_tokens: 1000}}}]
tools:
  lookup: {type: http, url: %q, description: Looks up., price: 0.01}
agents:
  boss: {model: big, tools: [lookup], sub_agents: [helper]}
  helper: {model: small}
`, api.URL)), 0o600)
	proj, err := myriad.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer proj.Close()
	ctx := context.Background()
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	rec, _, err := node.Engine.Submit(ctx, engine.SubmitRequest{Agent: "boss", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if rec, err = node.Engine.Wait(wctx, rec.ID); err != nil || rec.Status != run.StatusCompleted {
		t.Fatalf("%+v %v", rec, err)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	// boss: 3 calls of 1000 in at $2/M and 500 out at $8/M; helper: 600
	// uncached at $1/M, 400 cached at $0.5/M, 1000 out at $1/M.
	big, small, lookup := 3*(0.002+0.004), 0.0006+0.0002+0.001, 0.01
	c := rec.Cost
	if c == nil || !near(c.USD, big+small+lookup) || !near(c.Models["big"], big) || !near(c.Models["small"], small) || !near(c.Tools["lookup"], lookup) {
		t.Fatalf("cost %+v, want big %v small %v lookup %v", c, big, small, lookup)
	}
}
