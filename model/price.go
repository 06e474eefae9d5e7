package model

import (
	"math"
	"sort"
	"time"
)

// Price is what a model's tokens cost from a date on, in US dollars per
// million tokens. Cached input tokens cost CachedInput when it is set,
// else Input.
type Price struct {
	Input       float64
	Output      float64
	CachedInput float64
	// From is when the price takes effect (zero: always).
	From time.Time
}

// Prices are a model's prices over time, in any order.
type Prices []Price

// At is the price in effect at t: the latest that took effect by then.
func (ps Prices) At(t time.Time) (Price, bool) {
	sorted := append(Prices(nil), ps...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].From.Before(sorted[j].From) })
	var out Price
	found := false
	for _, p := range sorted {
		if p.From.After(t) {
			break
		}
		out, found = p, true
	}
	return out, found
}

// Cost is what u cost at t, in US dollars (0 when no price is in effect).
func (ps Prices) Cost(u Usage, t time.Time) float64 {
	p, ok := ps.At(t)
	if !ok {
		return 0
	}
	cached := min(max(u.CachedInputTokens, 0), u.InputTokens)
	cachedPrice := p.CachedInput
	if cachedPrice == 0 {
		cachedPrice = p.Input
	}
	usd := (float64(u.InputTokens-cached)*p.Input + float64(cached)*cachedPrice + float64(u.OutputTokens)*p.Output) / 1e6
	if math.IsNaN(usd) || math.IsInf(usd, 0) {
		return 0 // prices are checked when loaded; a Go caller's are not
	}
	return usd
}
