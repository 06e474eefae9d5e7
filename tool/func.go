package tool

import (
	"context"
	"encoding/json"
	"fmt"
)

// Func is a tool backed by a Go function. Its argument schema is derived from
// the type In, so the model sees the same shape the function decodes.
type Func[In any] struct {
	info Info
	fn   func(ctx context.Context, call *Call, in In) (string, error)
}

// NewFunc makes a Go function a tool. The function's error becomes a tool
// error the model sees; it does not fail the run.
func NewFunc[In any](name, description string, fn func(ctx context.Context, call *Call, in In) (string, error)) (*Func[In], error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	schema, err := SchemaFor[In]()
	if err != nil {
		return nil, fmt.Errorf("tool %s: derive schema: %w", name, err)
	}
	return &Func[In]{info: Info{Name: name, Description: description, Schema: schema}, fn: fn}, nil
}

// Idempotent marks the function safe to call again with the same key.
func (f *Func[In]) Idempotent() *Func[In] {
	f.info.Idempotent = true
	return f
}

// RequireApproval makes every call of the function wait for a person.
func (f *Func[In]) RequireApproval() *Func[In] {
	f.info.NeedsApproval = true
	return f
}

// Info describes the tool.
func (f *Func[In]) Info() Info { return f.info }

// Call decodes the arguments into In and calls the function.
func (f *Func[In]) Call(ctx context.Context, call *Call) (Result, error) {
	var in In
	if len(call.Arguments) > 0 {
		if err := json.Unmarshal(call.Arguments, &in); err != nil {
			return Result{}, fmt.Errorf("decode arguments: %w", err)
		}
	}
	out, err := f.fn(ctx, call, in)
	if err != nil {
		return Result{}, err
	}
	return Result{Content: out}, nil
}
