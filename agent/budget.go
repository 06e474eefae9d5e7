package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/myriad-ai/myriad/model"
)

// Budget holds the cost of each call against budgets that runs share (an
// agent's spend per day, a tenant's per month) before the call is made,
// so that runs at once on any node never spend more than a budget
// together. The engine implements it from the configured budgets.
type Budget interface {
	// Reserve holds usd for a call that agent is about to make. It fails
	// with an error wrapping ErrBudgetExceeded when a budget cannot hold
	// it; any other error means the reservation could not be checked.
	Reserve(ctx context.Context, agent string, usd float64) (Reservation, error)
}

// Reservation is money held for one call.
type Reservation interface {
	// Settle replaces what was held with what the call cost (0 when it
	// was not made).
	Settle(ctx context.Context, usd float64)
}

// ErrBudgetExceeded marks a call refused because a budget shared by runs
// cannot hold its cost.
var ErrBudgetExceeded = errors.New("budget exceeded")

// DefaultMaxOutputTokens is what a model call's answer is assumed to cost
// at most, in output tokens, when the model has no max_tokens.
const DefaultMaxOutputTokens = 4096

// bytesPerToken underestimates how many bytes a token takes, so that
// the input of a request, estimated from its size, is overestimated.
const bytesPerToken = 3

// estimate is the most a model request should cost: its input counted
// generously from its size, and a full answer.
func (m ModelChoice) estimate(req *model.Request, at time.Time) float64 {
	if len(m.Prices) == 0 {
		return 0
	}
	size := 0
	for _, m := range req.Messages {
		size += len(m.Content)
		for _, c := range m.ToolCalls {
			size += len(c.Name) + len(c.Arguments)
		}
	}
	for _, t := range req.Tools {
		size += len(t.Name) + len(t.Description) + len(t.Parameters)
	}
	size += len(req.OutputSchema)
	out := m.MaxOutputTokens
	if out <= 0 {
		out = DefaultMaxOutputTokens
	}
	return m.Prices.Cost(model.Usage{InputTokens: size/bytesPerToken + 1, OutputTokens: out}, at)
}

// reserve holds usd against the run's shared budgets. A refusal is a
// budgetError; failing to check is a journalError (the worker stops and
// the run is resumed later), as a store that cannot be read cannot be
// written either.
func (r *runner) reserve(ctx context.Context, usd float64) (Reservation, error) {
	if r.env.Budget == nil || usd <= 0 {
		return noReservation{}, nil
	}
	hold, err := r.env.Budget.Reserve(ctx, r.a.Name, usd)
	switch {
	case errors.Is(err, ErrBudgetExceeded):
		return nil, budgetError{err}
	case err != nil:
		return nil, journalError{fmt.Errorf("reserve $%.4f against the shared budgets: %w", usd, err)}
	}
	return hold, nil
}

// budgetError is a call a shared budget refused: the run fails with
// CodeBudget and the budget's message.
type budgetError struct{ err error }

func (e budgetError) Error() string { return e.err.Error() }
func (e budgetError) Unwrap() error { return e.err }

type noReservation struct{}

func (noReservation) Settle(context.Context, float64) {}
