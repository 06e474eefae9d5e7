package model_test

import (
	"math"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/model"
)

func TestPricesCost(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	prices := model.Prices{
		{Input: 0.25, Output: 2, CachedInput: 0.025, From: day("2026-06-01")},
		{Input: 1, Output: 4},
	}
	u := model.Usage{InputTokens: 1_000_000, CachedInputTokens: 400_000, OutputTokens: 100_000}
	tests := []struct {
		name   string
		prices model.Prices
		usage  model.Usage
		at     time.Time
		want   float64
	}{
		{"before the dated price: the undated one", prices, u, day("2026-01-01"), 1 + 0.4},
		{"the dated price, cached input cheaper", prices, u, day("2026-07-01"), 0.6*0.25 + 0.4*0.025 + 0.1*2},
		{"cached at the input price when none is set", model.Prices{{Input: 1, Output: 4}}, u, day("2026-07-01"), 1 + 0.4},
		{"no price in effect", model.Prices{{Input: 1, From: day("2027-01-01")}}, u, day("2026-07-01"), 0},
		{"no prices", nil, u, day("2026-07-01"), 0},
		{"cached beyond input is input", model.Prices{{Input: 1, CachedInput: 0.5}}, model.Usage{InputTokens: 10, CachedInputTokens: 99}, day("2026-07-01"), 10 * 0.5 / 1e6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.prices.Cost(tc.usage, tc.at); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("Cost = %v, want %v", got, tc.want)
			}
		})
	}
}
