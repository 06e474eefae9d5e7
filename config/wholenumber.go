package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// fraction finds a number with a fraction where the file wants a whole
// one (max_turns: 2.5): yaml.v3 would cut it to 2 without a word. It
// walks the document beside the Go type it decodes into.
func fraction(n *yaml.Node, t reflect.Type, path string) *FieldError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return fraction(n.Content[0], t, path)
	}
	if n.Kind == yaml.AliasNode || reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		return nil // decoded by its own rules
	}
	join := func(key string) string {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!float" && t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64 && !whole(n.Value):
		return &FieldError{Path: path, Msg: fmt.Sprintf("%s is not a whole number (line %d)", n.Value, n.Line)}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if fe := fraction(n.Content[i+1], t.Elem(), join(n.Content[i].Value)); fe != nil {
				return fe
			}
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if f, ok := fieldNamed(t, n.Content[i].Value); ok {
				if fe := fraction(n.Content[i+1], f.Type, join(n.Content[i].Value)); fe != nil {
					return fe
				}
			}
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, item := range n.Content {
			if fe := fraction(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); fe != nil {
				return fe
			}
		}
	}
	return nil
}

// whole reports whether a YAML float is a whole number (1e3 is).
func whole(v string) bool {
	f, err := strconv.ParseFloat(strings.ReplaceAll(v, "_", ""), 64)
	return err == nil && f == math.Trunc(f)
}

// fieldNamed is the field of struct t that the YAML key names.
func fieldNamed(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || strings.Contains(opts, "inline") {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
