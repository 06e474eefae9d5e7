package scripted

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/myriad-ai/myriad/model"
)

// ModelName is the model id the scripted model reports in responses.
const ModelName = "scripted"

// Stop reasons of a scripted response, named as in OpenAI's finish_reason
// so the mock server can pass them through unchanged.
const (
	StopReasonStop      = "stop"
	StopReasonToolCalls = "tool_calls"
)

// Model is the deterministic model: it answers each call with the first rule
// that matches the conversation. Apart from when.times counters it has no
// state, so the same request always gets the same response, which is what
// makes replays and benchmarks stable. It is safe for concurrent use.
type Model struct {
	rules []*rule
}

var _ model.Provider = (*Model)(nil)

// ReplyError is the failure a rule's reply.error asks for. It is a distinct
// type so callers (the mock server, tests) can tell an intended fault from a
// broken rule file. With a status it unwraps to a *model.StatusError, which
// is how retry logic classifies it.
type ReplyError struct {
	// Rule names the rule, as rules[i] ("name").
	Rule string
	// Message is the rendered reply.error.
	Message string
	// Status is the reply's error_status, or zero.
	Status int
}

// Error includes the rule, so a failing test points at the script.
func (e *ReplyError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("scripted: HTTP %d: %s (%s)", e.Status, e.Message, e.Rule)
	}
	return fmt.Sprintf("scripted: %s (%s)", e.Message, e.Rule)
}

// Unwrap exposes the status as a *model.StatusError, the form real
// providers use for a rejected request.
func (e *ReplyError) Unwrap() error {
	if e.Status == 0 {
		return nil
	}
	return &model.StatusError{Provider: ModelName, StatusCode: e.Status, Message: e.Message}
}

// rule is a compiled Rule. Unset integer conditions are -1 so matching is a
// few integer comparisons.
type rule struct {
	label string

	lastUser, lastToolResult, system, hasTool *regexp.Regexp
	lastTool                                  string
	lastToolError                             int8 // -1 unset, 0 false, 1 true
	lastRole                                  model.Role
	turn, toolResults, minToolResults         int
	times                                     int64 // 0: unlimited
	hits                                      atomic.Int64

	text      *tmpl
	calls     []compiledCall
	errTmpl   *tmpl
	errStatus int
	usageIn   int // -1: estimate
	usageOut  int // -1: estimate
	cached    int
	// templated is set when any template needs Data, so literal rules skip
	// building it (and capturing groups) entirely.
	templated bool
}

type compiledCall struct {
	name *tmpl
	args *compiledArgs
}

// New compiles rules (regexps, templates, constant arguments) once, so that
// Generate does no parsing. Errors name the rule and field, as
// rules[i].when.last_user, and say how to fix it.
func New(rules []Rule) (*Model, error) {
	rs, err := compile(rules)
	if err != nil {
		return nil, err
	}
	return &Model{rules: rs}, nil
}

func compile(rules []Rule) ([]*rule, error) {
	if len(rules) == 0 {
		return nil, errors.New("rules: no rules; add at least one rule (a rule with only a reply matches every call)")
	}
	out := make([]*rule, len(rules))
	for i := range rules {
		r, err := compileRule(&rules[i], fmt.Sprintf("rules[%d]", i))
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

func compileRegexp(path, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		msg := err.Error()
		var se *syntax.Error
		if errors.As(err, &se) {
			msg = se.Code.String()
			if se.Expr != "" && se.Expr != expr {
				msg += " at " + strconv.Quote(se.Expr)
			}
		}
		return nil, fmt.Errorf("%s: invalid regexp %q: %s; fix the pattern (Go RE2 syntax: no lookaround or backreferences; escape literal ( [ . * + ? with \\)", path, expr, msg)
	}
	return re, nil
}

func compileCount(path string, v *int, min int) (int, error) {
	if v == nil {
		return -1, nil
	}
	if *v < min {
		return 0, fmt.Errorf("%s: must be at least %d, got %d", path, min, *v)
	}
	return *v, nil
}

func compileRule(src *Rule, path string) (*rule, error) {
	r := &rule{label: path, lastToolError: -1, usageIn: -1, usageOut: -1}
	if src.Name != "" {
		r.label = fmt.Sprintf("%s (%q)", path, src.Name)
	}
	w := &src.When
	wp := path + ".when."
	var err error
	if r.lastUser, err = compileRegexp(wp+"last_user", w.LastUser); err != nil {
		return nil, err
	}
	if r.lastToolResult, err = compileRegexp(wp+"last_tool_result", w.LastToolResult); err != nil {
		return nil, err
	}
	if r.system, err = compileRegexp(wp+"system", w.System); err != nil {
		return nil, err
	}
	if r.hasTool, err = compileRegexp(wp+"has_tool", w.HasTool); err != nil {
		return nil, err
	}
	r.lastTool = w.LastTool
	if w.LastToolError != nil {
		r.lastToolError = 0
		if *w.LastToolError {
			r.lastToolError = 1
		}
	}
	switch model.Role(w.LastRole) {
	case "", model.RoleUser, model.RoleTool, model.RoleAssistant:
		r.lastRole = model.Role(w.LastRole)
	default:
		return nil, fmt.Errorf("%slast_role: unknown role %q; use user, tool or assistant", wp, w.LastRole)
	}
	if r.turn, err = compileCount(wp+"turn", w.Turn, 1); err != nil {
		return nil, err
	}
	if r.toolResults, err = compileCount(wp+"tool_results", w.ToolResults, 0); err != nil {
		return nil, err
	}
	if r.minToolResults, err = compileCount(wp+"min_tool_results", w.MinToolResults, 0); err != nil {
		return nil, err
	}
	times, err := compileCount(wp+"times", w.Times, 1)
	if err != nil {
		return nil, err
	}
	if times > 0 {
		r.times = int64(times)
	}

	rep := &src.Reply
	rp := path + ".reply."
	if rep.Error != "" {
		if rep.Text != "" || len(rep.ToolCalls) > 0 {
			return nil, fmt.Errorf("%serror: a reply with an error cannot also have text or tool_calls; split it into two rules", rp)
		}
		if r.errTmpl, err = compileTemplate(rp+"error", rep.Error); err != nil {
			return nil, err
		}
		r.templated = !r.errTmpl.isLiteral()
	} else if rep.Text == "" && len(rep.ToolCalls) == 0 {
		return nil, fmt.Errorf("%s.reply: empty; set text, tool_calls or error", path)
	}
	if rep.ErrorStatus != 0 {
		if rep.Error == "" {
			return nil, fmt.Errorf("%serror_status: needs an error message; set reply.error too", rp)
		}
		if rep.ErrorStatus < 400 || rep.ErrorStatus > 599 {
			return nil, fmt.Errorf("%serror_status: %d is not an HTTP error status; use 400 to 599 (429 and 5xx are retried)", rp, rep.ErrorStatus)
		}
		r.errStatus = rep.ErrorStatus
	}
	if r.text, err = compileTemplate(rp+"text", rep.Text); err != nil {
		return nil, err
	}
	if !r.text.isLiteral() {
		r.templated = true
	}
	for i := range rep.ToolCalls {
		tc := &rep.ToolCalls[i]
		cp := fmt.Sprintf("%stool_calls[%d]", rp, i)
		if strings.TrimSpace(tc.Name) == "" {
			return nil, fmt.Errorf("%s.name: missing; name the tool to call", cp)
		}
		name, err := compileTemplate(cp+".name", tc.Name)
		if err != nil {
			return nil, err
		}
		args, err := compileArgs(cp+".arguments", tc.Arguments)
		if err != nil {
			return nil, err
		}
		if !name.isLiteral() || args.jsonTmpl != nil || args.tree.raw == nil {
			r.templated = true
		}
		r.calls = append(r.calls, compiledCall{name: name, args: args})
	}
	if u := rep.Usage; u != nil {
		if r.usageIn, err = compileCount(rp+"usage.input_tokens", u.InputTokens, 0); err != nil {
			return nil, err
		}
		if r.usageOut, err = compileCount(rp+"usage.output_tokens", u.OutputTokens, 0); err != nil {
			return nil, err
		}
		if r.cached, err = compileCount(rp+"usage.cached_input_tokens", u.CachedInputTokens, 0); err != nil {
			return nil, err
		}
		r.cached = max(r.cached, 0)
	}
	return r, nil
}

// convo is what matching needs to know about a conversation, gathered in
// one pass so each rule costs only comparisons and its own regexps.
type convo struct {
	msgs                         []model.Message
	lastUser, firstUser, lastMsg int // indices, -1 when absent
	lastToolMsg                  int
	lastRole                     model.Role
	assistants, tools            int
	system                       string
	hasSystem                    bool
	lastToolName                 string
}

func scan(msgs []model.Message) convo {
	c := convo{msgs: msgs, lastUser: -1, firstUser: -1, lastMsg: -1, lastToolMsg: -1}
	nsys := 0
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case model.RoleSystem:
			nsys++
			if nsys == 1 {
				c.system = m.Content
			}
			c.hasSystem = true
			continue
		case model.RoleUser:
			c.lastUser = i
			if c.firstUser < 0 {
				c.firstUser = i
			}
		case model.RoleAssistant:
			c.assistants++
		case model.RoleTool:
			c.tools++
			c.lastToolMsg = i
		}
		c.lastRole = m.Role
	}
	if nsys > 1 {
		var parts []string
		for i := range msgs {
			if msgs[i].Role == model.RoleSystem {
				parts = append(parts, msgs[i].Content)
			}
		}
		c.system = strings.Join(parts, "\n")
	}
	if c.lastToolMsg >= 0 {
		t := &msgs[c.lastToolMsg]
		c.lastToolName = t.Name
		if c.lastToolName == "" && t.ToolCallID != "" {
			// Not every caller copies the tool name onto the result; the
			// assistant message that asked for the call still has it.
			for i := c.lastToolMsg - 1; i >= 0 && c.lastToolName == ""; i-- {
				for _, tc := range msgs[i].ToolCalls {
					if tc.ID == t.ToolCallID {
						c.lastToolName = tc.Name
						break
					}
				}
			}
		}
	}
	return c
}

func (c *convo) text(i int) string {
	if i < 0 {
		return ""
	}
	return c.msgs[i].Content
}

// groups holds the submatch indexes of one rule's regexps.
type groups struct {
	user, tool, sys []int
}

func (r *rule) match(c *convo, req *model.Request, g *groups) bool {
	if r.turn >= 0 && c.assistants+1 != r.turn {
		return false
	}
	if r.toolResults >= 0 && c.tools != r.toolResults {
		return false
	}
	if r.minToolResults >= 0 && c.tools < r.minToolResults {
		return false
	}
	if r.lastRole != "" && c.lastRole != r.lastRole {
		return false
	}
	if r.lastTool != "" && (c.lastToolMsg < 0 || c.lastToolName != r.lastTool) {
		return false
	}
	if r.lastToolError >= 0 && (c.lastToolMsg < 0 || c.msgs[c.lastToolMsg].IsError != (r.lastToolError == 1)) {
		return false
	}
	if r.hasTool != nil {
		found := false
		for i := range req.Tools {
			if r.hasTool.MatchString(req.Tools[i].Name) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if r.lastUser != nil && !r.regexp(r.lastUser, c.lastUser >= 0, c.text(c.lastUser), &g.user) {
		return false
	}
	if r.lastToolResult != nil && !r.regexp(r.lastToolResult, c.lastToolMsg >= 0, c.text(c.lastToolMsg), &g.tool) {
		return false
	}
	if r.system != nil && !r.regexp(r.system, c.hasSystem, c.system, &g.sys) {
		return false
	}
	// Counted last, so only calls the rule would really answer use up its
	// allowance.
	if r.times > 0 && r.hits.Add(1) > r.times {
		return false
	}
	return true
}

// regexp matches re, keeping submatch indexes only when templates will need
// them: MatchString is cheaper than a submatch search.
func (r *rule) regexp(re *regexp.Regexp, present bool, s string, idx *[]int) bool {
	if !present {
		return false
	}
	if !r.templated {
		return re.MatchString(s)
	}
	*idx = re.FindStringSubmatchIndex(s)
	return *idx != nil
}

func (r *rule) data(c *convo, g *groups) *Data {
	d := &Data{
		LastUser:       c.text(c.lastUser),
		LastToolResult: c.text(c.lastToolMsg),
		LastTool:       c.lastToolName,
		Turn:           c.assistants + 1,
		ToolResults:    c.tools,
		Input:          c.text(c.firstUser),
	}
	for i := c.lastUser + 1; i < len(c.msgs); i++ {
		if c.msgs[i].Role == model.RoleTool {
			d.Results = append(d.Results, c.msgs[i].Content)
		}
	}
	type src struct {
		re  *regexp.Regexp
		s   string
		idx []int
	}
	srcs := [3]src{
		{r.lastUser, d.LastUser, g.user},
		{r.lastToolResult, d.LastToolResult, g.tool},
		{r.system, c.system, g.sys},
	}
	n := 0
	for _, s := range srcs {
		if s.idx != nil {
			n += len(s.idx) / 2
		}
	}
	d.Match = make(map[string]string, n)
	numbered := false
	for _, s := range srcs {
		if s.idx == nil {
			continue
		}
		names := s.re.SubexpNames()
		for i := 0; 2*i+1 < len(s.idx); i++ {
			var v string
			if s.idx[2*i] >= 0 {
				v = s.s[s.idx[2*i]:s.idx[2*i+1]]
			}
			if !numbered {
				d.Match[strconv.Itoa(i)] = v
			}
			if name := names[i]; name != "" {
				if _, ok := d.Match[name]; !ok {
					d.Match[name] = v
				}
			}
		}
		numbered = true
	}
	return d
}

// Generate answers req with the first matching rule. It returns an error
// wrapping [model.ErrNoRule] when none matches, and a [*ReplyError] when the
// rule asks for one.
func (m *Model) Generate(ctx context.Context, req *model.Request, sink func(model.Delta)) (*model.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req == nil {
		req = &model.Request{}
	}
	c := scan(req.Messages)
	var g groups
	var r *rule
	for _, cand := range m.rules {
		g = groups{}
		if cand.match(&c, req, &g) {
			r = cand
			break
		}
	}
	if r == nil {
		return nil, noRule(&c)
	}
	var d *Data
	if r.templated {
		d = r.data(&c, &g)
	}
	turn := c.assistants + 1
	if r.errTmpl != nil {
		msg, err := r.errTmpl.render(d)
		if err != nil {
			return nil, fmt.Errorf("scripted: %s: %w", r.label, err)
		}
		return nil, &ReplyError{Rule: r.label, Message: msg, Status: r.errStatus}
	}
	text, err := r.text.render(d)
	if err != nil {
		return nil, fmt.Errorf("scripted: %s: %w", r.label, err)
	}
	resp := &model.Response{
		Message:    model.Message{Role: model.RoleAssistant, Content: text},
		Model:      ModelName,
		StopReason: StopReasonStop,
	}
	outChars := utf8.RuneCountInString(text)
	if len(r.calls) > 0 {
		calls := make([]model.ToolCall, len(r.calls))
		prefix := "call_" + strconv.Itoa(turn) + "_"
		for i := range r.calls {
			cc := &r.calls[i]
			name, err := cc.name.render(d)
			if err != nil {
				return nil, fmt.Errorf("scripted: %s: %w", r.label, err)
			}
			args, err := cc.args.render(d)
			if err != nil {
				return nil, fmt.Errorf("scripted: %s: %w", r.label, err)
			}
			calls[i] = model.ToolCall{ID: prefix + strconv.Itoa(i), Name: name, Arguments: args}
			outChars += utf8.RuneCountInString(name) + utf8.RuneCount(args)
		}
		resp.Message.ToolCalls = calls
		resp.StopReason = StopReasonToolCalls
	}
	resp.Usage.InputTokens = r.usageIn
	if r.usageIn < 0 {
		resp.Usage.InputTokens = tokens(inputChars(req.Messages))
	}
	resp.Usage.OutputTokens = r.usageOut
	if r.usageOut < 0 {
		resp.Usage.OutputTokens = tokens(outChars)
	}
	resp.Usage.CachedInputTokens = min(r.cached, resp.Usage.InputTokens)
	if sink != nil && text != "" {
		stream(text, sink)
	}
	return resp, nil
}

// tokens is the usual rough estimate of four characters per token; it only
// has to be plausible and stable, so budgets and cost reports can be tested.
func tokens(chars int) int { return (chars + 3) / 4 }

func inputChars(msgs []model.Message) int {
	n := 0
	for i := range msgs {
		m := &msgs[i]
		n += utf8.RuneCountInString(m.Content)
		for _, tc := range m.ToolCalls {
			n += utf8.RuneCountInString(tc.Name) + utf8.RuneCount(tc.Arguments)
		}
	}
	return n
}

// stream cuts text into about four pieces at spaces, enough for consumers to
// exercise their delta handling without paying for one call per word.
func stream(s string, sink func(model.Delta)) {
	const pieces = 4
	if len(s) < 16 {
		sink(model.Delta{Text: s})
		return
	}
	target := (len(s) + pieces - 1) / pieces
	for len(s) > 0 {
		if len(s) <= target {
			sink(model.Delta{Text: s})
			return
		}
		cut := target
		if i := strings.IndexByte(s[cut:], ' '); i >= 0 && i < target {
			cut += i + 1
		} else {
			for cut < len(s) && !utf8.RuneStart(s[cut]) {
				cut++
			}
		}
		sink(model.Delta{Text: s[:cut]})
		s = s[cut:]
	}
}

func noRule(c *convo) error {
	var b strings.Builder
	fmt.Fprintf(&b, "turn %d", c.assistants+1)
	if c.lastUser >= 0 {
		fmt.Fprintf(&b, ", last user message %q", truncate(c.text(c.lastUser), 120))
	} else {
		b.WriteString(", no user message")
	}
	if c.lastToolMsg >= 0 {
		fmt.Fprintf(&b, ", last tool result from %q: %q", c.lastToolName, truncate(c.text(c.lastToolMsg), 80))
	}
	b.WriteString(`; add a rule whose "when" matches this call (for example when: {last_user: "some words of the message"}), or end the rule list with a catch-all rule that has no "when"`)
	return fmt.Errorf("%w: %s", model.ErrNoRule, b.String())
}

// truncate shortens s to n runes for error messages.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}
