package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/store"
)

// Budgets shared by runs. Each budget keeps a ledger in the store per
// metadata value (one in all when it has no key): what its runs spent in
// the last slices of its window. Before a priced call, a run reserves the
// call's most likely-high cost in every budget that keeps it, by
// compare-and-set on the ledger, and the reservation fails if the window's
// spend plus it would pass the limit. After the call, the reservation is
// settled to what the call cost. So runs on any node never spend more than
// a budget together, as long as a call costs no more than reserved.

// Budget is a limit on what runs spend together over a rolling window: all
// runs' calls, an agent's, or each value of a metadata key's (a tenant's).
type Budget struct {
	// Name identifies the budget in errors and in the store.
	Name string
	// Agent, when set, limits the budget to that agent's calls.
	Agent string
	// MetadataKey, when set, keeps one budget per value of this key of
	// the runs' metadata; runs without the key are not kept by it. Child
	// runs carry the key from their parents.
	MetadataKey string
	// USD is the most the runs may spend in any window.
	USD float64
	// Window is how far back spend counts.
	Window time.Duration
}

// ledgerSlices is how many slices a window is counted in. The oldest slice
// counts whole, so a window may reach one slice further back than it says.
const ledgerSlices = 60

// budgetName is what a budget's name may be: a token of a store key.
var budgetName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func checkBudgets(budgets []Budget) error {
	seen := map[string]bool{}
	for _, b := range budgets {
		switch {
		case !budgetName.MatchString(b.Name):
			return fmt.Errorf("budget %q: a name is 1 to 64 letters, digits, _ or -", b.Name)
		case seen[b.Name]:
			return fmt.Errorf("budget %s: two budgets have this name", b.Name)
		case !(b.USD > 0):
			return fmt.Errorf("budget %s: usd must be positive", b.Name)
		case b.Window < time.Second:
			return fmt.Errorf("budget %s: window must be 1s or longer", b.Name)
		}
		seen[b.Name] = true
	}
	return nil
}

// ledger is a budget's spend for one metadata value, in slices of its
// window, oldest first.
type ledger struct {
	// Value is the metadata value the ledger is for ("" for all runs).
	Value string `json:"value,omitempty"`
	// Width is the slices' width in nanoseconds: a budget whose window
	// changed finds its slices in the old width, and counts them again.
	Width  int64         `json:"width"`
	Slices []ledgerSlice `json:"slices"`
}

type ledgerSlice struct {
	N   int64   `json:"n"` // the slice's number: its start divided by the slice width
	USD float64 `json:"usd"`
}

func (b *Budget) width() time.Duration { return b.Window / ledgerSlices }

func (b *Budget) sliceAt(t time.Time) int64 { return t.UnixNano() / int64(b.width()) }

// prune drops the slices that ended before the window, seen at t, after
// cutting them anew if the window changed since they were written.
func (l *ledger) prune(b *Budget, t time.Time) {
	if w := int64(b.width()); l.Width != w {
		old := l.Slices
		l.Slices = nil
		for _, s := range old {
			if l.Width > 0 {
				s.N = s.N * l.Width / w
			}
			l.add(s.N, s.USD)
		}
		l.Width = w
	}
	first := b.sliceAt(t.Add(-b.Window))
	kept := l.Slices[:0]
	for _, s := range l.Slices {
		if s.N >= first {
			kept = append(kept, s)
		}
	}
	l.Slices = kept
}

func (l *ledger) spent() float64 {
	usd := 0.0
	for _, s := range l.Slices {
		usd += s.USD
	}
	return usd
}

// add puts usd in slice n, if it is still kept or is new.
func (l *ledger) add(n int64, usd float64) {
	for i := range l.Slices {
		if l.Slices[i].N == n {
			l.Slices[i].USD = max(l.Slices[i].USD+usd, 0)
			return
		}
	}
	if len(l.Slices) > 0 && n < l.Slices[0].N {
		return // out of the window already
	}
	l.Slices = append(l.Slices, ledgerSlice{N: n, USD: max(usd, 0)})
	sort.Slice(l.Slices, func(i, j int) bool { return l.Slices[i].N < l.Slices[j].N })
}

// ledgerKey names a budget's ledger for a metadata value; the value is
// hashed, as any string may be one.
func ledgerKey(b *Budget, value string) string {
	if b.MetadataKey == "" {
		return b.Name + ".all"
	}
	sum := sha256.Sum256([]byte(value))
	return b.Name + ".v" + hex.EncodeToString(sum[:12])
}

// casAttempts bounds how often a reservation retries a ledger written
// meanwhile by another run; each retry means another run progressed.
const casAttempts = 1000

// update applies change to a ledger by compare-and-set, retrying when
// another writer got there first. It starts from the ledger as this node
// last wrote it, if it did: uncontended, an update is one write.
func (e *Engine) update(ctx context.Context, key, value string, change func(l *ledger) error) error {
	var data []byte
	var rev uint64
	if c, ok := e.ledgers.Load(key); ok {
		data, rev = c.(cachedLedger).data, c.(cachedLedger).rev
	}
	for range casAttempts {
		if rev == 0 {
			var err error
			if data, rev, err = e.st.Ledger(ctx, key); err != nil {
				return err
			}
		}
		l := ledger{Value: value}
		if data != nil {
			if err := json.Unmarshal(data, &l); err != nil {
				return fmt.Errorf("budget ledger %s: %w", key, err)
			}
		}
		if err := change(&l); err != nil {
			return err
		}
		next, err := json.Marshal(l)
		if err != nil {
			return err
		}
		written, err := e.st.PutLedger(ctx, key, next, rev)
		if err == nil {
			e.ledgers.Store(key, cachedLedger{data: next, rev: written})
			return nil
		}
		if !errors.Is(err, store.ErrChanged) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		data, rev = nil, 0 // read it again
	}
	return fmt.Errorf("budget ledger %s: still contended after %d attempts", key, casAttempts)
}

// cachedLedger is a ledger entry as this node last wrote it.
type cachedLedger struct {
	data []byte
	rev  uint64
}

// runBudget is agent.Budget for one run: the budgets that keep it.
type runBudget struct {
	e    *Engine
	meta map[string]string
}

var _ agent.Budget = runBudget{}

// budgetFor returns the run's shared budgets, nil when none is configured.
func (e *Engine) budgetFor(meta map[string]string) agent.Budget {
	if len(e.opts.Budgets) == 0 {
		return nil
	}
	return runBudget{e: e, meta: meta}
}

// carried are the metadata keys budgets are kept by: child runs carry them.
func carried(budgets []Budget) []string {
	var keys []string
	for _, b := range budgets {
		if b.MetadataKey != "" && !slices.Contains(keys, b.MetadataKey) {
			keys = append(keys, b.MetadataKey)
		}
	}
	return keys
}

// Reserve implements agent.Budget.
func (rb runBudget) Reserve(ctx context.Context, agentName string, usd float64) (agent.Reservation, error) {
	var held holds
	for i := range rb.e.opts.Budgets {
		b := &rb.e.opts.Budgets[i]
		if b.Agent != "" && b.Agent != agentName {
			continue
		}
		value, ok := rb.meta[b.MetadataKey]
		if b.MetadataKey != "" && !ok {
			continue
		}
		h, err := rb.e.reserve(ctx, b, value, usd)
		if err != nil {
			held.Settle(ctx, 0)
			return nil, err
		}
		held = append(held, h)
	}
	return held, nil
}

func (e *Engine) reserve(ctx context.Context, b *Budget, value string, usd float64) (*hold, error) {
	now := time.Now()
	h := &hold{e: e, b: b, value: value, key: ledgerKey(b, value), n: b.sliceAt(now), usd: usd}
	err := e.update(ctx, h.key, value, func(l *ledger) error {
		l.prune(b, now)
		if spent := l.spent(); spent+usd > b.USD*(1+1e-9) {
			return fmt.Errorf("%w: budget %s%s has spent $%.4f of $%.2f in the last %s, and the next call may cost up to $%.4f (raise budgets.%s.usd, or wait for the window to move on)",
				agent.ErrBudgetExceeded, b.Name, b.forValue(value), spent, b.USD, b.Window, usd, b.Name)
		}
		l.add(h.n, usd)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (b *Budget) forValue(v string) string {
	if b.MetadataKey == "" {
		return ""
	}
	return fmt.Sprintf(" (%s %q)", b.MetadataKey, v)
}

// hold is a reservation in one budget.
type hold struct {
	e     *Engine
	b     *Budget
	key   string
	value string
	n     int64 // the slice it was made in
	usd   float64
}

// Settle replaces the reservation with the call's cost, in the slice it
// was made in (or the current one, if that has left the window and the
// call cost more). A ledger that cannot be written now keeps the
// reservation: spend is overcounted, never undercounted.
func (h *hold) Settle(ctx context.Context, usd float64) {
	delta := usd - h.usd
	if delta == 0 {
		return
	}
	now := time.Now()
	err := h.e.update(context.WithoutCancel(ctx), h.key, h.value, func(l *ledger) error {
		l.prune(h.b, now)
		if len(l.Slices) > 0 && h.n >= l.Slices[0].N {
			l.add(h.n, delta)
		} else if delta > 0 {
			l.add(h.b.sliceAt(now), delta)
		}
		return nil
	})
	if err != nil {
		h.e.log.Warn("budget not settled: its reservation stands", "budget", h.b.Name, "reserved_usd", h.usd, "cost_usd", usd, "err", err)
	}
}

// holds are a call's reservations in every budget that keeps its run.
type holds []*hold

// Settle implements agent.Reservation.
func (hs holds) Settle(ctx context.Context, usd float64) {
	for _, h := range hs {
		h.Settle(ctx, usd)
	}
}

// BudgetSpend is what a budget's runs spent in its current window, per
// metadata value.
type BudgetSpend struct {
	Budget
	// Spent is by metadata value ("" for a budget without a key), most first.
	Spent []ValueSpend
}

// ValueSpend is a budget's spend for one metadata value.
type ValueSpend struct {
	Value string
	USD   float64
}

// Budgets reports the configured budgets with their spend now, including
// reservations of calls in flight.
func (e *Engine) Budgets(ctx context.Context) ([]BudgetSpend, error) {
	now := time.Now()
	out := make([]BudgetSpend, 0, len(e.opts.Budgets))
	for i := range e.opts.Budgets {
		b := &e.opts.Budgets[i]
		keys, err := e.st.LedgerKeys(ctx, b.Name+".")
		if err != nil {
			return nil, err
		}
		bs := BudgetSpend{Budget: *b}
		for _, k := range keys {
			data, _, err := e.st.Ledger(ctx, k)
			if err != nil {
				return nil, err
			}
			var l ledger
			if data == nil || json.Unmarshal(data, &l) != nil {
				continue
			}
			l.prune(b, now)
			bs.Spent = append(bs.Spent, ValueSpend{Value: l.Value, USD: l.spent()})
		}
		sort.Slice(bs.Spent, func(i, j int) bool { return bs.Spent[i].USD > bs.Spent[j].USD })
		out = append(out, bs)
	}
	return out, nil
}
