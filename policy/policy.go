// Package policy decides, before a tool call runs, whether it needs a
// person's approval. Conditions are CEL expressions over the call:
//
//	args.amount > 100 && args.currency == "EUR"
//	tool == "delete_user" || args.force
//
// args is the call's arguments (a JSON object) and tool its name. An
// expression that fails on a call (a missing argument, a wrong type) asks
// for approval: a policy fails closed.
package policy

import (
	"encoding/json"
	"fmt"
	"sync"

	"cel.dev/cel-go/cel"

	celexpr "github.com/myriad-ai/myriad/internal/expr"
)

var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("args", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("tool", cel.StringType),
		cel.CrossTypeNumericComparisons(true),
	)
})

// Condition is a compiled CEL condition on a tool call.
type Condition struct {
	expr string
	prg  cel.Program
}

// Compile checks and compiles a condition. It must give a bool.
func Compile(expr string) (*Condition, error) {
	e, err := env()
	if err != nil {
		return nil, err
	}
	prg, ast, err := celexpr.Compile(e, expr)
	if err != nil {
		return nil, err
	}
	if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
		return nil, fmt.Errorf("%q gives %s; a condition must give true or false", expr, ast.OutputType())
	}
	return &Condition{expr: expr, prg: prg}, nil
}

// String returns the expression.
func (c *Condition) String() string { return c.expr }

// Holds reports whether the condition holds for a call. An error means it
// could not be decided (and callers should ask a person).
func (c *Condition) Holds(tool string, args json.RawMessage) (bool, error) {
	var a map[string]any
	if len(args) > 0 {
		if err := json.Unmarshal(args, &a); err != nil {
			return false, fmt.Errorf("arguments are not a JSON object: %w", err)
		}
	}
	if a == nil {
		a = map[string]any{}
	}
	out, _, err := c.prg.Eval(map[string]any{"args": a, "tool": tool})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%q gave %v, not true or false", c.expr, out.Value())
	}
	return b, nil
}
