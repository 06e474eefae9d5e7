// Package examples_test drives every example project through the scripted
// model, so the examples in the docs keep working.
package examples_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/a2aserver"
	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

func open(t *testing.T, path string) *myriad.Node {
	t.Helper()
	proj, err := myriad.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	node, err := myriad.Open(context.Background(), proj, myriad.NodeOptions{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	return node
}

func wait(t *testing.T, rt *engine.Engine, id string) *run.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := rt.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for %s: %v", id, err)
	}
	return rec
}

func childrenOf(t *testing.T, rt *engine.Engine, parent string) []*run.Record {
	t.Helper()
	var out []*run.Record
	cursor := ""
	for {
		page, next, err := rt.List(context.Background(), run.Filter{Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range page {
			if rec.Parent == parent {
				out = append(out, rec)
			}
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

func TestResearchTeam(t *testing.T) {
	node := open(t, "research-team/myriad.yaml")
	rt := node.Engine
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "supervisor", Input: "heat pumps in cold climates"})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted {
		t.Fatalf("%s %+v", rec.Status, rec.Error)
	}
	for _, part := range []string{"[web]", "[papers]", "[data]"} {
		if !strings.Contains(rec.Output, part) {
			t.Errorf("the report lacks the %s worker: %q", part, rec.Output)
		}
	}
	workers := childrenOf(t, rt, rec.ID)
	if len(workers) != 3 {
		t.Fatalf("%d workers ran, want 3", len(workers))
	}
	// The three workers ran in parallel: all were started before any
	// reported back, in one model turn.
	evs, err := rt.Events(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	if got := strings.Join(types, " "); !strings.HasPrefix(got, "run.started model.response tool.started tool.started tool.started") {
		t.Errorf("journal %s", got)
	}
}

func TestSupportTriage(t *testing.T) {
	var mu sync.Mutex
	var refunds []string
	refundSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		refunds = append(refunds, r.Header.Get("Idempotency-Key")+" "+string(body))
		mu.Unlock()
		w.Write([]byte(`{"refunded": true}`))
	}))
	defer refundSrv.Close()
	t.Setenv("REFUND_URL", refundSrv.URL+"/refund")
	node := open(t, "support-triage/myriad.yaml")
	rt := node.Engine
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "triage", Instance: "customer-42", Input: "I was charged twice for my invoice"})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusWaiting || len(rec.Approvals) != 1 || rec.Approvals[0].Name != "refund" {
		t.Fatalf("want the refund waiting for approval: %s %+v", rec.Status, rec.Approvals)
	}
	// The refund is billing's, after the handoff: it is listed under billing.
	if pending, err := rt.PendingApprovals(ctx, "billing"); err != nil || len(pending) != 1 || pending[0].Agent != "billing" {
		t.Fatalf("approvals of billing: %+v %v", pending, err)
	}
	mu.Lock()
	if len(refunds) != 0 {
		t.Fatalf("refunded before approval: %v", refunds)
	}
	mu.Unlock()
	if _, err := rt.Decide(ctx, rec.ID, rec.Approvals[0].ApprovalID, run.Decision{Decision: journal.Approve}); err != nil {
		t.Fatal(err)
	}
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted || !strings.Contains(rec.Output, "refunded") {
		t.Fatalf("%s %q", rec.Status, rec.Output)
	}
	mu.Lock()
	if len(refunds) != 1 || !strings.Contains(refunds[0], `"invoice":"INV-1001"`) {
		t.Fatalf("refund calls %v", refunds)
	}
	mu.Unlock()
	evs, _ := rt.Events(ctx, rec.ID)
	var handoff journal.Handoff
	for _, ev := range evs {
		if ev.Type == journal.TypeHandoff {
			_ = json.Unmarshal(ev.Data, &handoff)
		}
	}
	if handoff.From != "triage" || handoff.To != "billing" {
		t.Fatalf("handoff %+v", handoff)
	}
	// The customer writes again: billing, which holds the conversation,
	// answers without a second triage.
	next, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "triage", Instance: "customer-42", Input: "thanks, and my address changed"})
	if err != nil {
		t.Fatal(err)
	}
	if next = wait(t, rt, next.ID); next.Output != "Billing here: thanks, and my address changed" {
		t.Fatalf("follow-up: %s %q", next.Status, next.Output)
	}
}

func TestMapReduceOver100Documents(t *testing.T) {
	node := open(t, "map-reduce/myriad.yaml")
	rt := node.Engine
	docs, err := os.ReadFile("map-reduce/docs.json")
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Flow: "digest", Input: "Digest the corpus", State: docs})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, rt, rec.ID)
	if rec.Status != run.StatusCompleted || rec.Output != "Digest of 100 documents: every one was summarized." {
		t.Fatalf("%s %q %+v", rec.Status, rec.Output, rec.Error)
	}
	var state struct {
		Summaries []string `json:"summaries"`
	}
	if err := json.Unmarshal(rec.OutputJSON, &state); err != nil {
		t.Fatal(err)
	}
	if len(state.Summaries) != 100 || state.Summaries[41] != "Doc 042: the gist in one line." {
		t.Fatalf("%d summaries, #42 %q", len(state.Summaries), state.Summaries[41])
	}
	if kids := childrenOf(t, rt, rec.ID); len(kids) != 101 {
		t.Fatalf("%d child runs, want 100 summaries and a digest", len(kids))
	}
}

// The A2A pair: the back office served over HTTP (as myriad serve does),
// the front desk calling its billing agent as a tool.
func TestA2APair(t *testing.T) {
	back := open(t, "a2a/backoffice/myriad.yaml")
	srv, err := a2aserver.New(back.Engine, a2aserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.New(back.Engine, api.Options{A2A: srv}))
	t.Cleanup(hs.Close)
	t.Setenv("BACKOFFICE_URL", hs.URL)
	front := open(t, "a2a/frontdesk/myriad.yaml")
	rec, _, err := front.Engine.Submit(context.Background(), engine.SubmitRequest{Agent: "front", Input: "Is invoice 42 paid?"})
	if err != nil {
		t.Fatal(err)
	}
	if rec = wait(t, front.Engine, rec.ID); rec.Status != run.StatusCompleted ||
		rec.Output != "The back office says: Invoice 42 was paid in full on 3 March." {
		t.Fatalf("%s %q %+v", rec.Status, rec.Output, rec.Error)
	}
}
