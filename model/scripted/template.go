package scripted

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
)

// Data is what reply templates see as dot. It is a struct rather than a map
// so that a misspelt field (.Lastuser) is caught by [New] instead of quietly
// rendering nothing.
type Data struct {
	// Match holds the regexp groups of the rule: named groups by name, and
	// numbered groups as "0" (the whole match), "1", … . Numbered groups come
	// from when.last_user if set, else when.last_tool_result, else
	// when.system; named groups are collected from all three. A missing key
	// renders as the empty string.
	Match map[string]string
	// LastUser is the text of the last user message.
	LastUser string
	// LastToolResult is the content of the most recent tool message.
	LastToolResult string
	// LastTool is the name of the tool that produced LastToolResult.
	LastTool string
	// Turn is the 1-based number of this model call (assistant messages + 1).
	Turn int
	// ToolResults is the number of tool messages in the conversation.
	ToolResults int
	// Input is the first user message: the task the agent was given.
	Input string
	// Results are the contents of the tool messages after the last user
	// message, in order: what a supervisor's workers answered this turn.
	Results []string
}

var dataFields = []string{"Match", "LastUser", "LastToolResult", "LastTool", "Turn", "ToolResults", "Input", "Results"}

// funcs are kept few on purpose; json is the one that matters, because
// string-template arguments must render to valid JSON.
var funcs = template.FuncMap{
	"json":  jsonQuote,
	"trim":  strings.TrimSpace,
	"join":  func(list []string, sep string) string { return strings.Join(list, sep) },
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
}

func jsonQuote(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// tmpl is a compiled template. Text without "{{" is kept as a literal so
// the common case costs nothing per call.
type tmpl struct {
	lit  string
	t    *template.Template
	path string
}

func (t *tmpl) isLiteral() bool { return t.t == nil }

func compileTemplate(path, src string) (*tmpl, error) {
	if !strings.Contains(src, "{{") {
		return &tmpl{lit: src, path: path}, nil
	}
	t, err := template.New(path).Funcs(funcs).Option("missingkey=zero").Parse(src)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "template: ")
		return nil, fmt.Errorf("%s: invalid template: %s; fix the {{ }} syntax (Go text/template)", path, msg)
	}
	if err := checkFields(t.Tree.Root, true); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &tmpl{t: t, path: path}, nil
}

func (t *tmpl) render(d *Data) (string, error) {
	if t.t == nil {
		return t.lit, nil
	}
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	defer bufPool.Put(b)
	if err := t.t.Execute(b, d); err != nil {
		return "", fmt.Errorf("%s: %w", t.path, err)
	}
	return b.String(), nil
}

// checkFields walks a parsed template and rejects references to fields Data
// does not have. It only checks where dot is known to be Data (outside
// range and with) and $-rooted references everywhere, so it never rejects a
// valid template.
func checkFields(n parse.Node, dotIsData bool) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkFields(c, dotIsData); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkFields(n.Pipe, dotIsData)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, dotIsData, dotIsData)
	case *parse.RangeNode:
		return checkBranch(&n.BranchNode, dotIsData, false)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, dotIsData, false)
	case *parse.TemplateNode:
		return checkFields(n.Pipe, dotIsData)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := checkFields(c, dotIsData); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := checkFields(a, dotIsData); err != nil {
				return err
			}
		}
	case *parse.ChainNode:
		return checkFields(n.Node, dotIsData)
	case *parse.FieldNode:
		if dotIsData {
			return checkIdent(n.Ident, ".")
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			return checkIdent(n.Ident[1:], "$.")
		}
	}
	return nil
}

func checkBranch(b *parse.BranchNode, dotIsData, bodyDotIsData bool) error {
	if err := checkFields(b.Pipe, dotIsData); err != nil {
		return err
	}
	if err := checkFields(b.List, bodyDotIsData); err != nil {
		return err
	}
	return checkFields(b.ElseList, dotIsData)
}

func checkIdent(ident []string, prefix string) error {
	if len(ident) == 0 {
		return nil
	}
	if !contains(dataFields, ident[0]) {
		fields := make([]string, len(dataFields))
		for i, f := range dataFields {
			fields[i] = "." + f
		}
		sort.Strings(fields)
		return fmt.Errorf("unknown field %s%s; templates can use %s", prefix, ident[0], strings.Join(fields, ", "))
	}
	if len(ident) > 1 && ident[0] != "Match" {
		return fmt.Errorf("%s%s is a %s and has no field .%s", prefix, ident[0], fieldKind(ident[0]), ident[1])
	}
	return nil
}

func fieldKind(f string) string {
	if f == "Turn" || f == "ToolResults" {
		return "number"
	}
	return "string"
}
