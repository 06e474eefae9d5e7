package api

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/run"
)

// usage answers GET /v1/usage: what root runs (their children included)
// used and cost in a time range, grouped by agent (or flow), model, tool
// or a key of their metadata.
func (s *Server) usage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	by := q.Get("group_by")
	if by == "" {
		by = "agent"
	}
	key, isMeta := strings.CutPrefix(by, "metadata.")
	if by != "agent" && by != "model" && by != "tool" && (!isMeta || key == "") {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("group_by: %s is not agent, model, tool or metadata.KEY", run.Quote(by)))
		return
	}
	out := apitype.Usage{GroupBy: by, Groups: []apitype.UsageGroup{}}
	f := run.Filter{Roots: true}
	if msg := readTimeRange(q, &f.From, &f.To); msg != "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, msg)
		return
	}
	if !f.From.IsZero() {
		out.From = &f.From
	}
	if !f.To.IsZero() {
		out.To = &f.To
	}
	groups := map[string]*apitype.UsageGroup{}
	group := func(k string) *apitype.UsageGroup {
		if groups[k] == nil {
			groups[k] = &apitype.UsageGroup{Key: k}
		}
		return groups[k]
	}
	for rec, err := range s.rt.Runs(r.Context(), f) {
		if err != nil {
			s.fail(w, r, err)
			return
		}
		addRun(&out.Total, rec, costOf(rec))
		switch {
		case by == "agent":
			name := rec.Agent
			if rec.Flow != "" {
				name = rec.Flow
			}
			addRun(group(name), rec, costOf(rec))
		case isMeta:
			addRun(group(rec.Metadata[key]), rec, costOf(rec))
		case by == "tool":
			for name := range toolNames(rec) {
				g := group(name)
				g.Runs++
				if rec.Cost != nil {
					g.USD += rec.Cost.Tools[name]
				}
				use := rec.Tools[name]
				g.Calls, g.Errors, g.DurationMS = g.Calls+use.Calls, g.Errors+use.Errors, g.DurationMS+use.DurationMS
			}
		case rec.Cost != nil:
			for name, usd := range rec.Cost.Models {
				g := group(name)
				g.Runs++
				g.USD += usd
			}
		}
	}
	round := func(v float64) float64 { return math.Round(v*1e10) / 1e10 }
	out.Total.USD = round(out.Total.USD)
	for _, g := range groups {
		g.USD, g.DurationMS = round(g.USD), math.Round(g.DurationMS*1000)/1000
		out.Groups = append(out.Groups, *g)
	}
	sort.Slice(out.Groups, func(i, j int) bool {
		if out.Groups[i].USD != out.Groups[j].USD {
			return out.Groups[i].USD > out.Groups[j].USD
		}
		return out.Groups[i].Key < out.Groups[j].Key
	})
	writeJSON(w, http.StatusOK, out)
}

// toolNames are the tools a run used or paid for.
func toolNames(rec *run.Record) map[string]bool {
	names := map[string]bool{}
	for name := range rec.Tools {
		names[name] = true
	}
	if rec.Cost != nil {
		for name := range rec.Cost.Tools {
			names[name] = true
		}
	}
	return names
}

func costOf(rec *run.Record) float64 {
	if rec.Cost == nil {
		return 0
	}
	return rec.Cost.USD
}

func addRun(g *apitype.UsageGroup, rec *run.Record, usd float64) {
	g.Runs++
	g.USD += usd
	g.InputTokens += rec.Usage.InputTokens
	g.OutputTokens += rec.Usage.OutputTokens
	g.CachedInputTokens += rec.Usage.CachedInputTokens
}

// readTimeRange reads the from and to parameters; a non-empty answer says
// what is wrong with them.
func readTimeRange(q url.Values, from, to *time.Time) string {
	for _, bound := range []struct {
		name string
		t    *time.Time
	}{{"from", from}, {"to", to}} {
		if v := q.Get(bound.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				msg := fmt.Sprintf("%s: %s is not a day (2026-06-01) or a time (RFC 3339)", bound.name, run.Quote(v))
				if strings.Contains(v, " ") {
					msg += `; a "+" in a URL must be written %2B`
				}
				return msg
			}
			*bound.t = t
		}
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(*to) {
		return "from: must come before to (to is not included)"
	}
	return ""
}

// metadataParam is KEY when a query parameter is metadata[KEY] (OpenAPI's
// deepObject style), "" otherwise.
func metadataParam(name string) string {
	key, ok := strings.CutPrefix(name, "metadata[")
	if !ok || !strings.HasSuffix(key, "]") {
		return ""
	}
	return strings.TrimSuffix(key, "]")
}

// metadataParams reads metadata[KEY]=VALUE parameters; nil when there are
// none. A key given twice is an error: a run has one value for it.
func metadataParams(q url.Values) (map[string]string, string) {
	var m map[string]string
	for name, values := range q {
		if key := metadataParam(name); key != "" {
			if len(values) > 1 {
				return nil, fmt.Sprintf("%s: given %d times; a run has one value for a key", run.CutText(name, 200), len(values))
			}
			if m == nil {
				m = map[string]string{}
			}
			m[key] = values[0]
		}
	}
	return m, ""
}

// parseTime reads a day (UTC) or an RFC 3339 time.
func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

// budgets answers GET /v1/budgets.
func (s *Server) budgets(w http.ResponseWriter, r *http.Request) {
	all, err := s.rt.Budgets(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := apitype.BudgetList{Budgets: []apitype.Budget{}}
	for _, b := range all {
		ab := apitype.Budget{Name: b.Name, Agent: b.Agent, MetadataKey: b.MetadataKey, USD: b.USD,
			WindowSeconds: b.Window.Seconds(), Spent: []apitype.BudgetSpent{}}
		for _, v := range b.Spent {
			ab.Spent = append(ab.Spent, apitype.BudgetSpent{Value: v.Value, USD: math.Round(v.USD*1e9) / 1e9})
		}
		out.Budgets = append(out.Budgets, ab)
	}
	writeJSON(w, http.StatusOK, out)
}
