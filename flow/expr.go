package flow

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"google.golang.org/protobuf/types/known/structpb"

	celexpr "github.com/myriad-ai/myriad/internal/expr"
)

// Expressions are CEL over four variables: state (the flow's state), input
// (the run's input text), output (the result of the node whose edges are
// being chosen) and item (the current item of a map node).
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("state", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("input", cel.StringType),
		cel.Variable("output", cel.DynType),
		cel.Variable("item", cel.DynType),
		cel.CrossTypeNumericComparisons(true),
	)
})

// CheckExpr compiles a CEL expression, for configuration checks.
func CheckExpr(expr string) error {
	_, err := compile(expr)
	return err
}

func compile(expr string) (cel.Program, error) {
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	prg, _, err := celexpr.Compile(env, expr)
	return prg, err
}

// vars are the variables an expression sees.
type vars struct {
	state  map[string]any
	input  string
	output any
	item   any
}

func (v vars) activation() map[string]any {
	state := v.state
	if state == nil {
		state = map[string]any{}
	}
	return map[string]any{"state": state, "input": v.input, "output": v.output, "item": v.item}
}

func eval(p cel.Program, v vars) (any, error) {
	out, _, err := p.Eval(v.activation())
	if err != nil {
		return nil, err
	}
	if out.Type() == types.TimestampType {
		return out.Value().(time.Time), nil
	}
	pb, err := out.ConvertToNative(reflect.TypeOf(&structpb.Value{}))
	if err != nil {
		return nil, fmt.Errorf("the result (%s) is not JSON-like: %w", out.Type().TypeName(), err)
	}
	return normalize(pb.(*structpb.Value).AsInterface()), nil
}

func evalBool(p cel.Program, v vars) (bool, error) {
	out, _, err := p.Eval(v.activation())
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("the condition gave %s, not a bool", out.Type().TypeName())
	}
	return b, nil
}

func evalList(p cel.Program, v vars) ([]any, error) {
	out, err := eval(p, v)
	if err != nil {
		return nil, err
	}
	list, ok := out.([]any)
	if !ok {
		return nil, fmt.Errorf("the expression gave %T, not a list", out)
	}
	return list, nil
}

func evalTime(p cel.Program, v vars) (time.Time, error) {
	out, err := eval(p, v)
	if err != nil {
		return time.Time{}, err
	}
	switch t := out.(type) {
	case time.Time:
		return t, nil
	case string:
		return time.Parse(time.RFC3339, t)
	}
	return time.Time{}, fmt.Errorf("the expression gave %T, not a timestamp or an RFC 3339 string", out)
}

// normalize turns whole floats into int64, so that state counters decoded
// from JSON add up with CEL integers (state.tries + 1).
func normalize(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normalize(x[k])
		}
	}
	return v
}

// decodeJSON decodes a JSON value into the state's native form.
func decodeJSON(raw []byte) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return normalize(v), nil
}
