package engine

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/store/storetest"
)

// A ledger counts what was spent in the window before now, in slices of
// a sixtieth of the window; the oldest slice counts whole.
func TestLedgerWindow(t *testing.T) {
	b := &Budget{Name: "b", USD: 10, Window: time.Hour} // slices of a minute
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	type spend struct {
		at  time.Duration // after t0
		usd float64
	}
	tests := []struct {
		name   string
		spends []spend
		now    time.Duration
		want   float64
	}{
		{"nothing", nil, 0, 0},
		{"one slice", []spend{{0, 1}, {30 * time.Second, 2}}, time.Minute, 3},
		{"within the hour", []spend{{0, 1}, {59 * time.Minute, 2}}, 59 * time.Minute, 3},
		{"the oldest slice counts whole", []spend{{0, 1}, {30 * time.Second, 2}}, time.Hour + 10*time.Second, 3},
		{"past the window", []spend{{0, 1}, {30 * time.Minute, 2}}, time.Hour + time.Minute, 2},
		{"all gone", []spend{{0, 1}, {30 * time.Minute, 2}}, 3 * time.Hour, 0},
		{"a refund", []spend{{0, 1}, {time.Second, -0.5}}, 2 * time.Second, 0.5},
		{"never below zero", []spend{{0, 1}, {time.Second, -5}}, 2 * time.Second, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l ledger
			for _, s := range tc.spends {
				at := t0.Add(s.at)
				l.prune(b, at)
				l.add(b.sliceAt(at), s.usd)
			}
			l.prune(b, t0.Add(tc.now))
			if got := l.spent(); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("spent %v, want %v (slices %+v)", got, tc.want, l.Slices)
			}
			if len(l.Slices) > ledgerSlices+1 {
				t.Errorf("%d slices kept", len(l.Slices))
			}
		})
	}
}

// A budget whose window changed counts what its ledger holds anew: a
// longer window keeps the spend (and takes new reservations), a shorter
// one drops what fell out of it.
func TestLedgerWindowChanged(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	day, week, hour := &Budget{Window: 24 * time.Hour}, &Budget{Window: 7 * 24 * time.Hour}, &Budget{Window: time.Hour}
	var l ledger
	for _, at := range []time.Duration{0, 3 * time.Hour, 20 * time.Hour} {
		l.prune(day, t0.Add(at))
		l.add(day.sliceAt(t0.Add(at)), 1)
	}
	now := t0.Add(20*time.Hour + time.Minute)
	longer := l
	longer.Slices = append([]ledgerSlice(nil), l.Slices...)
	longer.prune(week, now)
	longer.add(week.sliceAt(now), 1)
	if got := longer.spent(); got != 4 {
		t.Errorf("7d after 24h: spent %v, want 4 (3 before, 1 after the change)", got)
	}
	l.prune(hour, now)
	if got := l.spent(); got != 1 {
		t.Errorf("1h after 24h: spent %v, want 1 (the last hour's)", got)
	}
}

func TestCheckBudgets(t *testing.T) {
	tests := []struct {
		budgets []Budget
		want    string
	}{
		{[]Budget{{Name: "ok", USD: 1, Window: time.Hour}}, ""},
		{[]Budget{{Name: "a.b", USD: 1, Window: time.Hour}}, `budget "a.b": a name is 1 to 64 letters, digits, _ or -`},
		{[]Budget{{Name: "x", USD: 1, Window: time.Hour}, {Name: "x", USD: 2, Window: time.Hour}}, "budget x: two budgets have this name"},
		{[]Budget{{Name: "x", USD: math.NaN(), Window: time.Hour}}, "budget x: usd must be positive"},
		{[]Budget{{Name: "x", USD: 1, Window: time.Millisecond}}, "budget x: window must be 1s or longer"},
	}
	for _, tc := range tests {
		err := checkBudgets(tc.budgets)
		if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
			t.Errorf("%+v: %v, want %q", tc.budgets, err, tc.want)
		}
	}
}

// BenchmarkBudgetContention reserves and settles in one budget from 16
// goroutines at once: the ops per second one budget's ledger takes when
// every call of every run writes it.
func BenchmarkBudgetContention(b *testing.B) {
	st, _ := storetest.Open(b)
	e, err := New(st, Options{Budgets: []Budget{{Name: "all", USD: 1e12, Window: time.Hour}}})
	if err != nil {
		b.Fatal(err)
	}
	rb := e.budgetFor(nil)
	ctx := context.Background()
	b.SetParallelism(8) // 16 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h, err := rb.Reserve(ctx, "a", 0.01)
			if err != nil {
				b.Fatal(err)
			}
			h.Settle(ctx, 0.005)
		}
	})
}
