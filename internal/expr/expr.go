// Package expr compiles CEL expressions the way every part of Myriad that
// takes them does: type-checked once, with errors that quote the
// expression on one line, and a cost limit on every evaluation.
package expr

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
)

// CostLimit bounds one evaluation, so a runaway expression cannot stall a
// worker.
const CostLimit = 1_000_000

// Compile checks expr in env and returns its program and checked AST.
func Compile(env *cel.Env, expr string) (cel.Program, *cel.Ast, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, nil, fmt.Errorf("invalid CEL %q: %s", expr, strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	prg, err := env.Program(ast, cel.CostLimit(CostLimit))
	if err != nil {
		return nil, nil, fmt.Errorf("CEL %q: %w", expr, err)
	}
	return prg, ast, nil
}
