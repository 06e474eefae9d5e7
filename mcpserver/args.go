package mcpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/myriad-ai/myriad/run"
)

// agentArgs are an agent tool's arguments; flowArgs a flow tool's.
type agentArgs struct {
	Input    *string `json:"input"`
	Instance string  `json:"instance"`
}

type flowArgs struct {
	Input *string         `json:"input"`
	State json.RawMessage `json:"state"`
}

// decodeArgs reads a tool call's arguments as the tool's schema says
// (the SDK does not check them for tools added without a Go type): a
// misspelt argument or a wrong type is named, with the fix, rather than
// ignored or reported in Go's terms.
func decodeArgs(args json.RawMessage, v any, known string) error {
	if len(bytes.TrimSpace(args)) == 0 || string(args) == "null" {
		args = json.RawMessage(`{}`)
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return fmt.Errorf("the arguments must be an object (%s), not %s", known, article(typeErr.Value))
	case errors.As(err, &typeErr):
		return fmt.Errorf("%s must be %s, not %s", typeErr.Field, article(kindOf(typeErr.Type.Kind().String())), article(typeErr.Value))
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown argument %s (known: %s)", run.CutWords(field), known)
	}
	return fmt.Errorf("invalid arguments: %v", err)
}

// kindOf names a Go kind as JSON does (the arguments are strings, or
// the flow's state, which takes any JSON).
func kindOf(kind string) string {
	if kind == "bool" {
		return "boolean"
	}
	return kind
}

// article names a JSON value's kind with its article: "number -5" is "a
// number".
func article(value string) string {
	kind, _, _ := strings.Cut(value, " ")
	switch kind {
	case "object", "array":
		return "an " + kind
	case "bool":
		return "a boolean"
	}
	return "a " + kind
}

// check checks what decodeArgs cannot: required arguments, and the
// state's shape.
func (a agentArgs) check() error {
	if a.Input == nil {
		return errors.New("input: missing (the message or task for the agent)")
	}
	return nil
}

// check checks what decodeArgs cannot.
func (f flowArgs) check() error {
	if f.Input == nil {
		return errors.New("input: missing (the flow's input)")
	}
	if len(f.State) > 0 && string(f.State) != "null" && bytes.TrimSpace(f.State)[0] != '{' {
		return errors.New("state must be an object (the flow's initial state)")
	}
	return nil
}
