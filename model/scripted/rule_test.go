package scripted

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/myriad-ai/myriad/model"
)

func TestParseRulesForms(t *testing.T) {
	docs := map[string]string{
		"list":    "- name: a\n  reply: {text: hi}\n",
		"mapping": "rules:\n  - name: a\n    reply:\n      text: hi\n",
		"json":    `{"rules": [{"name": "a", "when": {}, "reply": {"text": "hi"}}]}`,
		"anchors": "- {name: a, reply: &r {text: hi}}\n- {name: b, reply: *r}\n",
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			rules, err := ParseRules([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if rules[0].Name != "a" || rules[0].Reply.Text != "hi" {
				t.Errorf("rules = %+v", rules)
			}
		})
	}
}

func TestParseRulesFullRule(t *testing.T) {
	rules, err := ParseRules([]byte(`
- name: everything
  when:
    last_user: a
    last_tool: t
    last_tool_result: b
    last_tool_error: false
    last_role: tool
    turn: 2
    tool_results: 1
    min_tool_results: 0x1
    has_tool: c
    system: d
    times: 3
  reply:
    text: x
    tool_calls:
      - name: t
        arguments: {a: [1, "two", {b: null}]}
    usage: {input_tokens: 1, output_tokens: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	w := rules[0].When
	if w.LastUser != "a" || w.LastTool != "t" || w.LastToolResult != "b" || w.LastToolError == nil || *w.LastToolError ||
		w.LastRole != "tool" || *w.Turn != 2 || *w.ToolResults != 1 || *w.MinToolResults != 1 || w.HasTool != "c" ||
		w.System != "d" || *w.Times != 3 {
		t.Errorf("when = %+v", w)
	}
	r := rules[0].Reply
	if r.Text != "x" || len(r.ToolCalls) != 1 || *r.Usage.InputTokens != 1 || *r.Usage.OutputTokens != 2 {
		t.Errorf("reply = %+v", r)
	}
}

var lineRE = regexp.MustCompile(` \(line \d+\)`)

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"empty document", "", "rules: the document is empty"},
		{"comment only", "# nothing\n", "rules: the document is empty"},
		{"scalar document", "hello", `expected a list of rules or a mapping with a "rules:" key, got the value "hello"`},
		{"invalid yaml", "- [", "rules: invalid YAML"},
		{"unknown top-level key", "rulez: []", "rulez (line 1): unknown field; valid fields are rules"},
		{"missing rules key", "{}", `missing "rules:" key`},
		{"empty rules", "rules:", "rules: no rules"},
		{"empty list", "[]", "rules: no rules; add at least one rule"},
		{"rules not a list", "rules: {a: 1}", "rules: expected a list of rules, got a mapping"},
		{"invalid regexp", `
- reply: {text: a}
- reply: {text: b}
- when: {last_user: "("}
  reply: {text: c}
`, `rules[2].when.last_user: invalid regexp "(": missing closing ); fix the pattern`},
		{"unknown when field", "- when: {lst_user: x}\n  reply: {text: a}", "rules[0].when.lst_user (line 1): unknown field; valid fields are last_user, last_tool"},
		{"unknown reply field", "- reply: {txt: a}", "rules[0].reply.txt: unknown field"},
		{"unknown rule field", "- reply: {text: a}\n  then: x", "rules[0].then (line 2): unknown field"},
		{"duplicate field", "- reply: {text: a, text: b}", "rules[0].reply.text: field given twice"},
		{"turn not int", "- when: {turn: two}\n  reply: {text: a}", `rules[0].when.turn: expected an integer, got the value "two"`},
		{"turn zero", "- when: {turn: 0}\n  reply: {text: a}", "rules[0].when.turn: must be at least 1, got 0"},
		{"times zero", "- when: {times: 0}\n  reply: {text: a}", "rules[0].when.times: must be at least 1"},
		{"negative tool results", "- when: {tool_results: -1}\n  reply: {text: a}", "rules[0].when.tool_results: must be at least 0"},
		{"bool expected", "- when: {last_tool_error: maybe}\n  reply: {text: a}", "rules[0].when.last_tool_error: expected true or false"},
		{"string expected", "- when: {last_user: [a]}\n  reply: {text: a}", "rules[0].when.last_user: expected a string, got a list"},
		{"when not a mapping", "- when: x\n  reply: {text: a}", "rules[0].when: expected a mapping"},
		{"null rule", "- \n", "rules[0]: empty rule"},
		{"empty reply", "- name: a\n  when: {turn: 1}", "rules[0].reply: empty; set text, tool_calls or error"},
		{"bad last_role", "- when: {last_role: bot}\n  reply: {text: a}", `rules[0].when.last_role: unknown role "bot"; use user, tool or assistant`},
		{"error with text", "- reply: {text: a, error: b}", "rules[0].reply.error: a reply with an error cannot also have text or tool_calls"},
		{"status without error", "- reply: {text: a, error_status: 503}", "rules[0].reply.error_status: needs an error message"},
		{"status out of range", "- reply: {error: a, error_status: 200}", "rules[0].reply.error_status: 200 is not an HTTP error status"},
		{"bad template", "- reply: {text: '{{.LastUser'}", "rules[0].reply.text: invalid template"},
		{"unknown template field", "- reply: {text: '{{.Lastuser}}'}", "rules[0].reply.text: unknown field .Lastuser; templates can use .Input, .LastTool"},
		{"unknown dollar field", "- reply: {text: '{{range .Match}}{{$.Nope}}{{end}}'}", "unknown field $.Nope"},
		{"field of a string", "- reply: {text: '{{.LastUser.Foo}}'}", ".LastUser is a string and has no field .Foo"},
		{"unknown func", "- reply: {text: '{{shout .LastUser}}'}", `rules[0].reply.text: invalid template: rules[0].reply.text:1: function "shout" not defined`},
		{"tool call without name", "- reply: {tool_calls: [{arguments: {a: 1}}]}", "rules[0].reply.tool_calls[0].name: missing"},
		{"tool call null", "- reply: {tool_calls: [~]}", "rules[0].reply.tool_calls[0]: empty tool call"},
		{"tool call unknown field", "- reply: {tool_calls: [{name: a, args: {}}]}", "rules[0].reply.tool_calls[0].args: unknown field"},
		{"literal arguments not json", "- reply: {tool_calls: [{name: a, arguments: 'q=1'}]}", `rules[0].reply.tool_calls[0].arguments: "q=1" is not valid JSON`},
		{"template in argument leaf", "- reply: {tool_calls: [{name: a, arguments: {q: '{{.Nope}}'}}]}", "rules[0].reply.tool_calls[0].arguments.q: unknown field .Nope"},
		{"non-string key", "- reply: {tool_calls: [{name: a, arguments: {1: x}}]}", "rules[0].reply.tool_calls[0].arguments: object keys must be strings"},
		{"NaN argument", "- reply: {tool_calls: [{name: a, arguments: {x: .nan}}]}", "rules[0].reply.tool_calls[0].arguments.x: json: unsupported value: NaN"},
		{"merge key", "- reply: {<<: {text: a}}", "merge keys (<<) are not supported"},
		{"usage not int", "- reply: {text: a, usage: {input_tokens: x}}", "rules[0].reply.usage.input_tokens: expected an integer"},
		{"negative usage", "- reply: {text: a, usage: {output_tokens: -2}}", "rules[0].reply.usage.output_tokens: must be at least 0"},
		{"has_tool regexp", "- when: {has_tool: '*x'}\n  reply: {text: a}", `rules[0].when.has_tool: invalid regexp "*x": missing argument to repetition operator`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tt.doc))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			got := err.Error()
			if !strings.Contains(tt.want, "(line") {
				got = lineRE.ReplaceAllString(got, "")
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	one := 1
	tests := []struct {
		name  string
		rules []Rule
		want  string
	}{
		{"no rules", nil, "no rules; add at least one rule"},
		{"regexp", []Rule{{Reply: Reply{Text: "a"}}, {When: Match{System: "a(?=b)"}, Reply: Reply{Text: "b"}}},
			`rules[1].when.system: invalid regexp "a(?=b)": invalid or unsupported Perl syntax at "(?="`},
		{"named rule", []Rule{{Name: "greet", When: Match{Turn: &one}}}, "rules[0].reply: empty"},
		{"json string arguments", []Rule{{Reply: Reply{ToolCalls: []ToolCallTemplate{{Name: "a", Arguments: `{"a":`}}}}}, "is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.rules)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// Rules decoded from JSON (as an API might send them) behave like YAML ones.
func TestRulesFromJSONValues(t *testing.T) {
	m, err := New([]Rule{{
		When: Match{LastUser: "(?P<x>\\d+)"},
		Reply: Reply{ToolCalls: []ToolCallTemplate{
			{Name: "a", Arguments: map[string]any{"x": "{{.Match.x}}", "n": float64(2), "l": []any{true, nil}}},
			{Name: "b", Arguments: `{"k": "v"}`},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := m.Generate(context.Background(), &model.Request{Messages: []model.Message{user("7")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Message.ToolCalls[0].Arguments); got != `{"l":[true,null],"n":2,"x":"7"}` {
		t.Errorf("args = %s", got)
	}
	if got := string(resp.Message.ToolCalls[1].Arguments); got != `{"k":"v"}` {
		t.Errorf("args = %s", got)
	}
}

// Rules embedded in myriad.yaml go through Rule.UnmarshalYAML, which must be
// as strict as ParseRules even though the config decoder knows nothing of it.
func TestUnmarshalYAMLEmbedded(t *testing.T) {
	type cfg struct {
		Models map[string]struct {
			Provider string `yaml:"provider"`
			Rules    []Rule `yaml:"rules"`
		} `yaml:"models"`
	}
	good := `
models:
  fake:
    provider: scripted
    rules:
      - name: hi
        when: {last_user: hi, turn: 1}
        reply:
          text: hello
          tool_calls: [{name: t, arguments: {a: b}}]
`
	var c cfg
	dec := yaml.NewDecoder(strings.NewReader(good))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	rules := c.Models["fake"].Rules
	if len(rules) != 1 || rules[0].Name != "hi" || *rules[0].When.Turn != 1 || rules[0].Reply.ToolCalls[0].Name != "t" {
		t.Fatalf("rules = %+v", rules)
	}
	if _, err := New(rules); err != nil {
		t.Fatal(err)
	}

	bad := strings.Replace(good, "last_user:", "lastuser:", 1)
	err := yaml.Unmarshal([]byte(bad), &c)
	if err == nil || !strings.Contains(err.Error(), "when.lastuser (line 7): unknown field") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadRules(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(p, []byte("- {when: {last_user: '['}, reply: {text: a}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRules(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+": rules[0].when.last_user: invalid regexp") {
		t.Errorf("err = %v", err)
	}
	if _, err := LoadRules(filepath.Join(dir, "missing.yaml")); !os.IsNotExist(err) {
		t.Errorf("err = %v", err)
	}
	rules, err := LoadRules(filepath.Join("testdata", "weather.yaml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("testdata: %v", err)
	}
}

// The examples in the package doc and in docs/scripted-model.md must stay
// valid; a broken example in the reference is worse than none.
func TestDocExamplesParse(t *testing.T) {
	var blocks []string
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var cur []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			cur = append(cur, rest)
			continue
		}
		if len(cur) > 0 {
			blocks = append(blocks, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	md, err := os.ReadFile(filepath.Join("..", "..", "docs", "scripted-model.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(md, -1) {
		if bytes.Contains(m[1], []byte("# not a rule file")) {
			continue
		}
		blocks = append(blocks, string(m[1]))
	}
	if len(blocks) < 5 {
		t.Fatalf("found only %d examples", len(blocks))
	}
	for i, b := range blocks {
		if !strings.Contains(b, "reply") {
			continue
		}
		if _, err := ParseRules([]byte(b)); err != nil {
			t.Errorf("example %d: %v\n%s", i, err, b)
		}
	}
}
