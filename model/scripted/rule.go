package scripted

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// Rule is one scripted behaviour: when the conversation matches When, the
// model answers with Reply. Rules are tried in order and the first match
// wins, so specific rules go before general ones and a catch-all (empty When)
// goes last.
type Rule struct {
	// Name appears in error messages and helps a reader of a long rule file;
	// it has no effect on matching.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// When selects the calls the rule answers; empty matches every call.
	When Match `yaml:"when,omitempty" json:"when,omitempty"`
	// Reply is the answer, or the error, the rule gives.
	Reply Reply `yaml:"reply" json:"reply"`
}

// Match selects conversations. Every set field must match; an empty Match
// matches every call, which makes a rule a catch-all. Regexp fields use Go
// (RE2) syntax and are unanchored: write ^...$ to match a whole text. A set
// regexp field also requires its text to exist, so last_tool_result: "^"
// means "there is a tool result"; an empty string leaves a field unset.
type Match struct {
	// LastUser is matched against the last user message. Its groups (named
	// and numbered) are offered to templates as .Match.
	LastUser string `yaml:"last_user,omitempty" json:"last_user,omitempty"`
	// LastTool is the exact name of the tool whose result is the most recent
	// tool message. It is the usual way to answer "after the tool ran".
	LastTool string `yaml:"last_tool,omitempty" json:"last_tool,omitempty"`
	// LastToolResult is matched against the content of the most recent tool
	// message; its named groups are offered to templates as well.
	LastToolResult string `yaml:"last_tool_result,omitempty" json:"last_tool_result,omitempty"`
	// LastToolError, when set, requires the most recent tool message to be
	// (true) or not to be (false) a failed call, so error handling paths of
	// an agent can be scripted.
	LastToolError *bool `yaml:"last_tool_error,omitempty" json:"last_tool_error,omitempty"`
	// LastRole is the role of the last non-system message ("user", "tool"
	// or "assistant"). It tells a fresh question from a tool result without
	// counting turns.
	LastRole string `yaml:"last_role,omitempty" json:"last_role,omitempty"`
	// Turn is the 1-based number of this model call in the conversation:
	// the number of assistant messages plus one.
	Turn *int `yaml:"turn,omitempty" json:"turn,omitempty"`
	// ToolResults is the exact number of tool messages in the conversation.
	ToolResults *int `yaml:"tool_results,omitempty" json:"tool_results,omitempty"`
	// MinToolResults is the least number of tool messages required.
	MinToolResults *int `yaml:"min_tool_results,omitempty" json:"min_tool_results,omitempty"`
	// HasTool matches when any tool offered in the request has a matching
	// name, so one rule file can serve agents with different tool sets.
	HasTool string `yaml:"has_tool,omitempty" json:"has_tool,omitempty"`
	// System is matched against the system prompt (all system messages,
	// joined by newlines); its named groups are offered to templates.
	System string `yaml:"system,omitempty" json:"system,omitempty"`
	// Times limits the rule to its first N matches in the life of a Model;
	// later calls skip it and fall through to the next rule. It is the one
	// piece of state in the scripted model and exists for fault tests:
	// fail twice, then answer.
	Times *int `yaml:"times,omitempty" json:"times,omitempty"`
}

// Reply is what a matching rule answers: text, tool calls, or both; or an
// error instead of either.
type Reply struct {
	// Text is a Go text/template rendered with [Data].
	Text string `yaml:"text,omitempty" json:"text,omitempty"`
	// ToolCalls are the calls the assistant asks for, in order.
	ToolCalls []ToolCallTemplate `yaml:"tool_calls,omitempty" json:"tool_calls,omitempty"`
	// Error, when set, makes the call fail with this message (a template)
	// instead of answering, for fault tests. It excludes Text and ToolCalls.
	Error string `yaml:"error,omitempty" json:"error,omitempty"`
	// ErrorStatus makes the error a *model.StatusError with this HTTP
	// status, so retry logic sees a 429 or 503 as it would from a real
	// endpoint. It requires Error.
	ErrorStatus int `yaml:"error_status,omitempty" json:"error_status,omitempty"`
	// Usage fixes the reported token counts; an unset count is estimated.
	Usage *Usage `yaml:"usage,omitempty" json:"usage,omitempty"`
}

// ToolCallTemplate is one tool call of a reply.
type ToolCallTemplate struct {
	// Name is the tool to call (a template, though usually a plain name).
	Name string `yaml:"name" json:"name"`
	// Arguments is either a structured value (mapping, list, scalar) whose
	// string leaves are templates, so values need no JSON quoting; or a
	// string template that must render to JSON, for arguments whose shape
	// depends on the conversation. Unset means {}.
	Arguments any `yaml:"arguments,omitempty" json:"arguments,omitempty"`
}

// Usage is a fixed token count for a reply. Counts are pointers so a rule
// can fix one and leave the other estimated.
type Usage struct {
	// InputTokens replaces the estimate for the request.
	InputTokens *int `yaml:"input_tokens,omitempty" json:"input_tokens,omitempty"`
	// OutputTokens replaces the estimate for the reply.
	OutputTokens *int `yaml:"output_tokens,omitempty" json:"output_tokens,omitempty"`
	// CachedInputTokens is the part of the input reported as read from a
	// prompt cache (default 0).
	CachedInputTokens *int `yaml:"cached_input_tokens,omitempty" json:"cached_input_tokens,omitempty"`
}

// ParseRules reads rules from a YAML (or JSON) document that is either a
// list of rules or a mapping with a single "rules" key. It checks the rules
// as [New] would, so a rule file is validated in full before anything runs;
// every error names the offending path, for example
// rules[2].when.last_user.
func ParseRules(data []byte) ([]Rule, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("rules: invalid YAML: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("rules: the document is empty; expected a list of rules or a mapping with a \"rules:\" key")
	}
	root := resolve(doc.Content[0])
	var list *yaml.Node
	switch {
	case root == nil:
		return nil, errors.New("rules: expected a list of rules or a mapping with a \"rules:\" key")
	case root.Kind == yaml.SequenceNode:
		list = root
	case root.Kind == yaml.MappingNode:
		err := eachField(root, "", []string{"rules"}, func(key string, v *yaml.Node) error {
			list = v
			return nil
		})
		if err != nil {
			return nil, err
		}
		if list == nil {
			return nil, fmt.Errorf("rules: missing \"rules:\" key (line %d)", root.Line)
		}
	default:
		return nil, fmt.Errorf("rules: expected a list of rules or a mapping with a \"rules:\" key, got %s (line %d)", kindName(root), root.Line)
	}
	rules, err := decodeRules(list, "rules")
	if err != nil {
		return nil, err
	}
	if _, err := compile(rules); err != nil {
		return nil, err
	}
	return rules, nil
}

// LoadRules reads and checks a rule file; errors start with the file name
// so they can be shown as they are.
func LoadRules(path string) ([]Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rules, err := ParseRules(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rules, nil
}

// UnmarshalYAML decodes a rule strictly (unknown fields are errors, with
// their path and line) when rules are embedded in a larger document such as
// myriad.yaml, where a misspelt key would otherwise be silently ignored.
// Regexps and templates are checked later, by [New].
func (r *Rule) UnmarshalYAML(n *yaml.Node) error {
	var out Rule
	if err := decodeRule(n, "", &out); err != nil {
		return err
	}
	*r = out
	return nil
}
