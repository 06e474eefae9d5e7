// Package scripted is Myriad's deterministic model. It answers each model
// call from a list of rules instead of a language model, so agents run
// offline, tests are exact, and benchmarks measure the runtime rather than a
// remote API. The same rules drive the OpenAI-compatible mock server in
// package mockllm.
//
// # Rules
//
// A rule says when it applies and what to reply. Rules are tried in order
// and the first match wins, so put specific rules first and a catch-all
// (a rule without "when") last. In myriad.yaml rules live under
// models.<name>.rules; a rule file holds either a list of rules or a
// mapping with a "rules:" key.
//
// A greeting, and a catch-all so no call is left unanswered:
//
//	rules:
//	  - name: greet
//	    when:
//	      last_user: "(?i)^(hi|hello)\\b"
//	    reply:
//	      text: "Hello! How can I help?"
//	  - name: fallback
//	    reply:
//	      text: "Sorry, I have no script for: {{.LastUser}}"
//
// # Tool calls
//
// An agent turn with a tool takes two model calls: one that asks for the
// tool, and one that answers once the tool result is in the conversation.
// Order matters: the rule for the second call comes first, because the user
// message still matches on the second call.
//
//	rules:
//	  - name: answer with the forecast
//	    when:
//	      last_tool: get_weather
//	    reply:
//	      text: "The forecast: {{.LastToolResult}}"
//	  - name: ask for the forecast
//	    when:
//	      last_user: "weather in (?P<city>[A-Z][a-z]+)"
//	      has_tool: "^get_weather$"
//	    reply:
//	      tool_calls:
//	        - name: get_weather
//	          arguments:
//	            city: "{{.Match.city}}"
//	            units: metric
//
// String leaves of structured arguments are templates and are quoted for
// JSON automatically; numbers, booleans and nested values are passed as
// written. Arguments may also be a string template that renders to JSON,
// where {{json .X}} quotes a value: arguments: '{"q": {{json .LastUser}}}'.
// Tool call IDs are call_<turn>_<index> (call_1_0, call_1_1, …), so a
// replayed run sees the same IDs.
//
// # Captures and template data
//
// Reply text, error messages, tool names and argument strings are Go
// text/template templates rendered with [Data]: .LastUser, .LastToolResult,
// .LastTool, .Turn, .ToolResults, .Input (the first user message) and
// .Match, the groups of the rule's regexps by name (?P<name>...) and by
// number ("0" is the whole match, read with {{index .Match "1"}}).
// Functions: json, trim, lower, upper.
//
//	rules:
//	  - when:
//	      last_user: "add (\\d+) and (\\d+)"
//	    reply:
//	      text: 'You asked me to add {{index .Match "1"}} and {{index .Match "2"}}.'
//	  - when:
//	      last_tool_result: "(?P<status>ok|failed)"
//	      last_tool_error: false
//	    reply:
//	      text: "The job {{.Match.status}} after {{.ToolResults}} tool call(s)."
//
// # Matching
//
// Every field set in "when" must match: last_user, last_tool_result and
// system are unanchored regexps (and require their text to exist),
// last_tool is an exact tool name, has_tool a regexp over the offered tool
// names, turn, tool_results and min_tool_results count model calls and tool
// results, last_role and last_tool_error inspect the latest messages, and
// times limits a rule to its first N matches (for "fail twice, then
// succeed" fault tests together with reply.error and reply.error_status).
//
// Usage is estimated as one token per four characters of the request
// messages (input) and of the reply (output) unless reply.usage fixes it.
// When no rule matches, Generate returns an error wrapping
// [model.ErrNoRule] that quotes the last user message.
//
// The complete reference is docs/scripted-model.md.
package scripted
