package myriad_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
)

// A run's cost is its model calls at their models' prices then, its tool
// calls at their prices, and its children's, by model and by tool.
func TestARunReportsItsCost(t *testing.T) {
	lookupURL := lookupAPI(t)
	node := openProject(t, fmt.Sprintf(`
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
  loop:
    provider: scripted
    prices: [{input: 2, output: 8}]
    rules: [{reply: {tool_calls: [{name: lookup, arguments: {}}], usage: {input_tokens: 1000, output_tokens: 500}}}]
  small:
    provider: scripted
    prices: [{input: 100, output: 100, from: "2999-01-01"}, {input: 1, output: 1, cached_input: 0.5, from: "2000-01-01"}]
    rules: [{reply: {text: "summed", usage: {input_tokens: 1000, cached_input_tokens: 400, output_tokens: 1000}}}]
tools:
  lookup: {type: http, url: %q, description: Looks up., price: 0.01}
agents:
  boss: {model: big, tools: [lookup], sub_agents: [helper]}
  helper: {model: small}
  spender: {model: loop, tools: [lookup], cost_budget: 0.02}
flows:
  fetch: {start: [f], nodes: {f: {tool: lookup, output: r}}, output: r}
`, lookupURL))
	ctx := context.Background()
	rec, _, err := node.Engine.Submit(ctx, engine.SubmitRequest{Agent: "boss", Input: "go", Metadata: map[string]string{"customer": "c-1"}})
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

	// GET /v1/usage totals the root runs (their children inside them).
	srv := httptest.NewServer(api.New(node.Engine, api.Options{}))
	defer srv.Close()
	usage := func(query string) apitype.Usage {
		t.Helper()
		resp, err := http.Get(srv.URL + "/v1/usage?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var u apitype.Usage
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&u) != nil {
			t.Fatalf("%s: %s", query, resp.Status)
		}
		return u
	}
	tests := []struct {
		query string
		want  map[string]float64
	}{
		{"group_by=agent", map[string]float64{"boss": big + small + lookup}},
		{"group_by=model", map[string]float64{"big": big, "small": small}},
		{"group_by=tool", map[string]float64{"lookup": lookup}},
		{"group_by=metadata.customer", map[string]float64{"c-1": big + small + lookup}},
		{"group_by=agent&from=2999-01-01", map[string]float64{}},
		{"group_by=agent&to=2000-01-01T00:00:00Z", map[string]float64{}},
	}
	for _, tc := range tests {
		u := usage(tc.query)
		got := map[string]float64{}
		for _, g := range u.Groups {
			got[g.Key] = g.USD
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: groups %+v, want %v", tc.query, u.Groups, tc.want)
		}
		for k, v := range tc.want {
			if !near(got[k], v) {
				t.Errorf("%s: %s = %v, want %v", tc.query, k, got[k], v)
			}
		}
	}
	// Tools' calls, failures and time, by tool, as well as their cost.
	if u := usage("group_by=tool"); len(u.Groups) != 1 || u.Groups[0].Calls != 1 || u.Groups[0].Errors != 0 || u.Groups[0].DurationMS <= 0 {
		t.Errorf("tools %+v, want lookup called once", u.Groups)
	}
	if use := rec.Tools["lookup"]; len(rec.Tools) != 1 || use.Calls != 1 || use.DurationMS <= 0 {
		t.Errorf("the record's tools %+v: want lookup's one call, and no sub-agent call", rec.Tools)
	}
	if u := usage("group_by=agent"); u.Total.Runs != 1 || u.Total.InputTokens != 4000 {
		t.Errorf("total %+v: one root run, its child's tokens included", u.Total)
	}
	resp, err := http.Get(srv.URL + "/v1/usage?group_by=color")
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("a bad group_by: %v %v", resp.Status, err)
	}
	resp.Body.Close()

	// A flow's tool node is priced like an agent's tool call.
	rec, _, err = node.Engine.Submit(ctx, engine.SubmitRequest{Flow: "fetch", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err = node.Engine.Wait(wctx, rec.ID); err != nil || rec.Status != run.StatusCompleted || rec.Cost == nil || !near(rec.Cost.Tools["lookup"], lookup) {
		t.Fatalf("flow %+v %+v %v", rec, rec.Cost, err)
	}

	// A run that reaches its cost budget stops before its next model call.
	rec, _, err = node.Engine.Submit(ctx, engine.SubmitRequest{Agent: "spender", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err = node.Engine.Wait(wctx, rec.ID); err != nil || rec.Status != run.StatusFailed || rec.Error.Code != "cost_budget_exceeded" ||
		rec.Error.Message != "the run spent $0.0320, its budget is $0.0200 (raise agents.spender.cost_budget)" {
		t.Fatalf("%+v %+v %v", rec, rec.Error, err)
	}
}

// lookupAPI serves a priced HTTP tool's endpoint: every call is "found".
func lookupAPI(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `"found"`) }))
	t.Cleanup(srv.Close)
	return srv.URL
}
