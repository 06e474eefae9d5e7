package journal_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/myriad-ai/myriad/journal"
)

func entry(t *testing.T, typ string, data any) journal.Event {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return journal.Event{Type: typ, Data: raw}
}

// A journal's cost: its model calls (and summaries) by model, its tool
// calls by tool, and what its children reported, added.
func TestCostOf(t *testing.T) {
	events := []journal.Event{
		entry(t, journal.TypeRunStarted, journal.RunStarted{Agent: "boss"}),
		entry(t, journal.TypeModelResponse, journal.ModelResponse{ModelName: "big", CostUSD: 0.5}),
		entry(t, journal.TypeContextSummarized, journal.ContextSummarized{ModelName: "big", CostUSD: 0.25}),
		entry(t, journal.TypeToolFinished, journal.ToolFinished{Name: "search", CostUSD: 0.1}),
		entry(t, journal.TypeToolFinished, journal.ToolFinished{Name: "free"}),
		entry(t, journal.TypeChildrenReported, journal.ChildrenReported{Reports: []journal.ChildReport{
			{RunID: "c1", Cost: &journal.Cost{USD: 1.5, Models: map[string]float64{"small": 1}, Tools: map[string]float64{"search": 0.5}}},
			{RunID: "c2"},
		}}),
		entry(t, journal.TypeModelResponse, journal.ModelResponse{Model: "provider-id", CostUSD: 0.05}),
	}
	c := journal.CostOf(events)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	if c == nil || !near(c.USD, 2.4) || !near(c.Models["big"], 0.75) || !near(c.Models["small"], 1) || !near(c.Models["provider-id"], 0.05) ||
		!near(c.Tools["search"], 0.6) || c.Tools["free"] != 0 {
		t.Fatalf("cost %+v", c)
	}
	if journal.CostOf(events[:1]) != nil {
		t.Fatal("a journal with nothing priced has a cost")
	}
}
