package tool

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/jsonschema-go/jsonschema"
)

// Schema is a compiled JSON Schema that validates tool arguments and
// structured outputs.
type Schema struct {
	raw      json.RawMessage
	resolved *jsonschema.Resolved
}

// CompileSchema parses and resolves a JSON Schema document. An empty document
// accepts any JSON object.
func CompileSchema(raw json.RawMessage) (*Schema, error) {
	if len(raw) == 0 {
		raw = json.RawMessage(`{"type":"object"}`)
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("invalid JSON Schema: %w", err)
	}
	r, err := s.Resolve(nil)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON Schema: %w", err)
	}
	var doc any
	_ = json.Unmarshal(raw, &doc)
	if err := checkTypes(doc); err != nil {
		return nil, fmt.Errorf("invalid JSON Schema: %w", err)
	}
	return &Schema{raw: raw, resolved: r}, nil
}

var schemaTypes = map[string]bool{"null": true, "boolean": true, "object": true, "array": true, "number": true, "string": true, "integer": true}

// checkTypes rejects unknown "type" names, which the resolver accepts and
// which would then refuse every value.
func checkTypes(v any) error {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			switch k {
			case "const", "default", "enum", "examples":
				continue // values, not schemas
			case "type":
				names, _ := sub.([]any)
				if s, ok := sub.(string); ok {
					names = []any{s}
				}
				for _, n := range names {
					if s, ok := n.(string); ok && !schemaTypes[s] {
						return fmt.Errorf("type %q is not a JSON Schema type (object, array, string, number, integer, boolean, null)", s)
					}
				}
				continue
			}
			if err := checkTypes(sub); err != nil {
				return err
			}
		}
	case []any:
		for _, sub := range x {
			if err := checkTypes(sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// SchemaFor derives the JSON Schema of a Go type, for function tools.
func SchemaFor[T any]() (json.RawMessage, error) {
	s, err := jsonschema.For[T](nil)
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// Raw returns the schema document.
func (s *Schema) Raw() json.RawMessage { return s.raw }

// Validate checks a JSON document against the schema.
func (s *Schema) Validate(doc json.RawMessage) error {
	if len(doc) == 0 {
		doc = json.RawMessage(`{}`)
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if err := s.resolved.Validate(v); err != nil {
		return errors.New(err.Error())
	}
	return nil
}
