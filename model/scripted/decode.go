package scripted

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// The rule format is decoded by hand from yaml.Node rather than with struct
// tags so that every error carries the full path of the offending field
// (rules[2].when.last_user) and unknown fields are always rejected, whatever
// options the caller's decoder uses.

var (
	ruleFields     = []string{"name", "when", "reply"}
	matchFields    = []string{"last_user", "last_tool", "last_tool_result", "last_tool_error", "last_role", "turn", "tool_results", "min_tool_results", "has_tool", "system", "times"}
	replyFields    = []string{"text", "tool_calls", "error", "error_status", "usage"}
	toolCallFields = []string{"name", "arguments"}
	usageFields    = []string{"input_tokens", "output_tokens", "cached_input_tokens"}
)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func pathErr(path string, n *yaml.Node, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		if path == "" {
			path = fmt.Sprintf("line %d", n.Line)
		} else {
			path = fmt.Sprintf("%s (line %d)", path, n.Line)
		}
	}
	if path == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", path, msg)
}

// resolve follows aliases. The YAML parser rejects self-containing anchors,
// but the loop is bounded anyway so a hostile document cannot spin.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	case yaml.DocumentNode:
		return "a document"
	}
	return "an unsupported YAML node"
}

// eachField walks a mapping, rejecting unknown and repeated keys. A null
// value (an empty "when:") counts as an empty mapping.
func eachField(n *yaml.Node, path string, known []string, fn func(key string, v *yaml.Node) error) error {
	orig := n
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return pathErr(path, orig, "expected a mapping, got %s", kindName(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return pathErr(path, k, "keys must be plain names, got %s", kindName(k))
		}
		if k.ShortTag() == "!!merge" {
			return pathErr(join(path, k.Value), k, "merge keys (<<) are not supported; repeat the fields instead")
		}
		if !contains(known, k.Value) {
			return pathErr(join(path, k.Value), k, "unknown field; valid fields are %s", strings.Join(known, ", "))
		}
		for j := 0; j < i; j += 2 {
			if n.Content[j].Value == k.Value {
				return pathErr(join(path, k.Value), k, "field given twice")
			}
		}
		if err := fn(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func decodeString(n *yaml.Node, path string) (string, error) {
	orig := n
	n = resolve(n)
	if isNull(n) {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", pathErr(path, orig, "expected a string, got %s", kindName(n))
	}
	return n.Value, nil
}

func decodeInt(n *yaml.Node, path string) (*int, error) {
	orig := n
	n = resolve(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return nil, pathErr(path, orig, "expected an integer, got %s", kindName(n))
	}
	var v int
	if err := n.Decode(&v); err != nil {
		return nil, pathErr(path, orig, "expected an integer, got %q", n.Value)
	}
	return &v, nil
}

func decodeBool(n *yaml.Node, path string) (*bool, error) {
	orig := n
	n = resolve(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return nil, pathErr(path, orig, "expected true or false, got %s", kindName(n))
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		return nil, pathErr(path, orig, "expected true or false, got %q", n.Value)
	}
	return &v, nil
}

func decodeRules(n *yaml.Node, path string) ([]Rule, error) {
	orig := n
	n = resolve(n)
	if isNull(n) {
		return nil, pathErr(path, orig, "no rules; add at least one rule")
	}
	if n.Kind != yaml.SequenceNode {
		return nil, pathErr(path, orig, "expected a list of rules, got %s", kindName(n))
	}
	rules := make([]Rule, len(n.Content))
	for i, item := range n.Content {
		if err := decodeRule(item, fmt.Sprintf("%s[%d]", path, i), &rules[i]); err != nil {
			return nil, err
		}
	}
	return rules, nil
}

func decodeRule(n *yaml.Node, path string, r *Rule) error {
	if isNull(resolve(n)) {
		return pathErr(path, n, "empty rule; give it at least a reply")
	}
	return eachField(n, path, ruleFields, func(key string, v *yaml.Node) error {
		p := join(path, key)
		var err error
		switch key {
		case "name":
			r.Name, err = decodeString(v, p)
		case "when":
			err = decodeMatch(v, p, &r.When)
		case "reply":
			err = decodeReply(v, p, &r.Reply)
		}
		return err
	})
}

func decodeMatch(n *yaml.Node, path string, m *Match) error {
	return eachField(n, path, matchFields, func(key string, v *yaml.Node) error {
		p := join(path, key)
		var err error
		switch key {
		case "last_user":
			m.LastUser, err = decodeString(v, p)
		case "last_tool":
			m.LastTool, err = decodeString(v, p)
		case "last_tool_result":
			m.LastToolResult, err = decodeString(v, p)
		case "last_tool_error":
			m.LastToolError, err = decodeBool(v, p)
		case "last_role":
			m.LastRole, err = decodeString(v, p)
		case "turn":
			m.Turn, err = decodeInt(v, p)
		case "tool_results":
			m.ToolResults, err = decodeInt(v, p)
		case "min_tool_results":
			m.MinToolResults, err = decodeInt(v, p)
		case "has_tool":
			m.HasTool, err = decodeString(v, p)
		case "system":
			m.System, err = decodeString(v, p)
		case "times":
			m.Times, err = decodeInt(v, p)
		}
		return err
	})
}

func decodeReply(n *yaml.Node, path string, r *Reply) error {
	return eachField(n, path, replyFields, func(key string, v *yaml.Node) error {
		p := join(path, key)
		var err error
		switch key {
		case "text":
			r.Text, err = decodeString(v, p)
		case "error":
			r.Error, err = decodeString(v, p)
		case "error_status":
			var s *int
			s, err = decodeInt(v, p)
			if s != nil {
				r.ErrorStatus = *s
			}
		case "usage":
			if isNull(resolve(v)) {
				return nil
			}
			u := &Usage{}
			err = eachField(v, p, usageFields, func(key string, v *yaml.Node) error {
				var err error
				switch key {
				case "input_tokens":
					u.InputTokens, err = decodeInt(v, join(p, key))
				case "output_tokens":
					u.OutputTokens, err = decodeInt(v, join(p, key))
				case "cached_input_tokens":
					u.CachedInputTokens, err = decodeInt(v, join(p, key))
				}
				return err
			})
			r.Usage = u
		case "tool_calls":
			r.ToolCalls, err = decodeToolCalls(v, p)
		}
		return err
	})
}

func decodeToolCalls(n *yaml.Node, path string) ([]ToolCallTemplate, error) {
	orig := n
	n = resolve(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, pathErr(path, orig, "expected a list of tool calls, got %s", kindName(n))
	}
	calls := make([]ToolCallTemplate, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		c := &calls[i]
		if isNull(resolve(item)) {
			return nil, pathErr(p, item, "empty tool call; give it a name")
		}
		err := eachField(item, p, toolCallFields, func(key string, v *yaml.Node) error {
			switch key {
			case "name":
				var err error
				c.Name, err = decodeString(v, join(p, key))
				return err
			case "arguments":
				if isNull(resolve(v)) {
					return nil
				}
				// yaml.v3 guards Decode against alias bombs, which matters
				// here because arguments are the one free-form value.
				var a any
				if err := v.Decode(&a); err != nil {
					return pathErr(join(p, key), v, "%v", err)
				}
				c.Arguments = a
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return calls, nil
}
