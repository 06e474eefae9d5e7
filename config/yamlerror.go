package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// explainYAML turns a decoding error into the file's terms: each wrong
// value or unknown key named by its field path with what it should be
// (agents.worker.max_turns: "six" is not an integer), or the line that
// breaks the YAML and what was expected there.
func explainYAML(data []byte, err error) error {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) == nil {
		idx := indexNodes(&root)
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var errs Errors
			for _, msg := range te.Errors {
				errs = append(errs, idx.explain(msg))
			}
			return errs
		}
		// A value's own check (a duration, an approval) names its line.
		if m := ownLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			for _, at := range idx[line] {
				if at.value != nil && at.value.Line == line {
					return Errors{{Path: at.path, Msg: fmt.Sprintf("%s (line %d)", m[2], line)}}
				}
			}
		}
	}
	if line, msg, ok := misIndented(data); ok {
		return fmt.Errorf("invalid YAML: line %d: %s", line, msg)
	}
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	n, _ := strconv.Atoi(m[1])
	return fmt.Errorf("invalid YAML: line %d: %s%s: check that each key ends with \": \", that a list item starts with \"- \", that text with ': ' or '#' in it is quoted, and that lines are indented with spaces",
		n, m[2], quoteLine(data, n))
}

var (
	yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	ownLine  = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// quoteLine is ` (line text)` for line n (1-based) of data, or "".
func quoteLine(data []byte, n int) string {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) || strings.TrimSpace(lines[n-1]) == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", strings.TrimRight(cut(lines[n-1], 120), "\r"))
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// nodeAt is a key and its value, where the file has them.
type nodeAt struct {
	path  string
	key   string
	value *yaml.Node
}

// nodeIndex finds the key or value on a line.
type nodeIndex map[int][]nodeAt

func indexNodes(root *yaml.Node) nodeIndex {
	idx := nodeIndex{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				idx[k.Line] = append(idx[k.Line], nodeAt{path: p, key: k.Value, value: v})
				if v.Line != k.Line {
					idx[v.Line] = append(idx[v.Line], nodeAt{path: p, key: k.Value, value: v})
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				idx[c.Line] = append(idx[c.Line], nodeAt{path: p, value: c})
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return idx
}

var (
	typeProblem  = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
	unknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type (.+)$`)
)

// explain names the field of one of yaml's error messages.
func (idx nodeIndex) explain(msg string) *FieldError {
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		path := m[2]
		for _, at := range idx[line] {
			if at.key == m[2] {
				path = at.path
			}
		}
		return &FieldError{Path: path, Msg: fmt.Sprintf("unknown field (line %d)%s", line, knownFieldsHint(m[3], m[2]))}
	}
	if m := typeProblem.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		path, text := fmt.Sprintf("line %d", line), m[3]
		for _, at := range idx[line] {
			if at.value != nil && at.value.Line == line && tagged(at.value, m[2], m[3]) {
				path, text = at.path, at.value.Value // the last is the deepest
			}
		}
		return &FieldError{Path: path, Msg: fmt.Sprintf("%s %s (line %d)", given(m[2], text), wanted(m[4]), line)}
	}
	return &FieldError{Path: "yaml", Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// tagged reports whether n is the node yaml's message describes.
func tagged(n *yaml.Node, tag, text string) bool {
	switch tag {
	case "!!map":
		return n.Kind == yaml.MappingNode
	case "!!seq":
		return n.Kind == yaml.SequenceNode
	}
	// yaml shortens a long value in its messages: "current...".
	if prefix, cut := strings.CutSuffix(text, "..."); cut {
		return n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Value, prefix)
	}
	return n.Kind == yaml.ScalarNode && n.Value == text
}

// given says what the file has, from its YAML tag and text.
func given(tag, text string) string {
	switch tag {
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!str":
		return strconv.Quote(cut(text, 80))
	}
	return cut(text, 80)
}

// wanted says what a Go type is in YAML's words.
func wanted(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "is not an integer"
	case strings.HasPrefix(goType, "float"):
		return "is not a number"
	case goType == "bool":
		return "is not true or false"
	case goType == "string":
		return "is not text: quote it, or give a single value"
	case strings.HasPrefix(goType, "[]"):
		return "is not a list: write [a, b] or one \"- item\" per line"
	}
	return "is not a mapping: write \"key: value\" lines indented under it"
}

// knownFieldsHint lists the fields a config type takes, with the one a
// misspelt key most likely meant.
func knownFieldsHint(goType, key string) string {
	fields := fieldsByType()[strings.TrimPrefix(goType, "config.")]
	if len(fields) == 0 {
		return ""
	}
	hint := didYouMean(key, fields)
	return fmt.Sprintf(" (known: %s)%s", strings.Join(fields, ", "), hint)
}

// didYouMean is "; did you mean x?" for the known name closest to a
// misspelt one, or "".
func didYouMean(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %s?", best)
}

// fieldsByType are the YAML keys of every struct type of a Config, by
// type name, sorted.
func fieldsByType() map[string][]string {
	out := map[string][]string{}
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[Config]().PkgPath() {
			return
		}
		if _, seen := out[t.Name()]; seen {
			return
		}
		names := yamlFields(reflect.New(t).Elem().Interface())
		slices.Sort(names)
		out[t.Name()] = names
		for f := range t.Fields() {
			visit(f.Type)
		}
	}
	visit(reflect.TypeFor[Config]())
	return out
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// misIndented finds the first line whose indentation lines up with no
// enclosing key, or that is indented under a line holding a value (YAML
// nests by indentation, and its own message names the start of the
// enclosing block, not the line at fault). It reads the file's lines
// alone, so it is only asked after the YAML failed to parse.
func misIndented(data []byte) (line int, msg string, ok bool) {
	type level struct{ indent, line int }
	var popped []level
	stack := []level{{0, 0}}
	opens := true     // the previous line opens a block under it
	scalarUnder := -1 // inside a block scalar (|, >) under this indentation
	prevLine, prevIndent := 0, 0
	for i, text := range strings.Split(string(data), "\n") {
		n := i + 1
		text = strings.TrimRight(text, "\r")
		trimmed := strings.TrimLeft(text, " ")
		indent := len(text) - len(trimmed)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if scalarUnder >= 0 {
			if indent > scalarUnder {
				continue
			}
			scalarUnder = -1
		}
		if strings.HasPrefix(trimmed, "\t") {
			return n, fmt.Sprintf("%q is indented with a tab: YAML indents with spaces", cut(strings.TrimSpace(trimmed), 60)), true
		}
		top := stack[len(stack)-1]
		switch {
		case indent > top.indent && !opens:
			return n, fmt.Sprintf("%q is indented more than line %d, which holds a value, not a block: indent it like line %d (%d spaces), or end line %d's key with \":\" alone",
				cut(trimmed, 60), prevLine, prevLine, prevIndent, prevLine), true
		case indent > top.indent:
			stack = append(stack, level{indent, n})
		case indent < top.indent:
			popped = popped[:0]
			for len(stack) > 1 && stack[len(stack)-1].indent > indent {
				popped = append(popped, stack[len(stack)-1])
				stack = stack[:len(stack)-1]
			}
			if top := stack[len(stack)-1]; top.indent != indent {
				cols := []string{}
				for _, l := range append(popped, top) {
					if l.line > 0 {
						cols = append(cols, fmt.Sprintf("line %d is indented %d", l.line, l.indent))
					}
				}
				return n, fmt.Sprintf("%q is indented %d spaces, which lines up with no key above it (%s): indent it like the key it belongs beside",
					cut(trimmed, 60), indent, strings.Join(cols, ", ")), true
			}
		}
		body := trimmed
		for strings.HasPrefix(body, "- ") || body == "-" {
			// A list item: its own keys line up after the dash.
			indent += 2
			stack = append(stack, level{indent, n})
			body = strings.TrimPrefix(strings.TrimPrefix(body, "-"), " ")
		}
		value := strings.TrimSpace(stripComment(body))
		opens = strings.HasSuffix(value, ":") || value == ""
		if blockScalar.MatchString(value) {
			scalarUnder = indent
			opens = false
		}
		prevLine, prevIndent = n, len(text)-len(trimmed)
	}
	return 0, "", false
}

// blockScalar is a key whose value is a block scalar's header (| or >).
var blockScalar = regexp.MustCompile(`(^|:\s)[|>][-+0-9]*$`)

// stripComment drops a trailing comment (" #") outside quotes.
func stripComment(s string) string {
	inSingle, inDouble := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' && !inDouble:
			inSingle = !inSingle
		case c == '"' && !inSingle:
			inDouble = !inDouble
		case c == '#' && !inSingle && !inDouble && i > 0 && s[i-1] == ' ':
			return s[:i]
		}
	}
	return s
}
