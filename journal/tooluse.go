package journal

import (
	"bytes"
	"encoding/json"
)

// ToolUse is how one tool served a run: its calls, how many failed, and
// the time they took together.
type ToolUse struct {
	Calls      int     `json:"calls"`
	Errors     int     `json:"errors,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// AddToolUse adds o's tool use to u's, by tool.
func AddToolUse(u map[string]ToolUse, o map[string]ToolUse) {
	for name, t := range o {
		sum := u[name]
		sum.Calls += t.Calls
		sum.Errors += t.Errors
		sum.DurationMS += t.DurationMS
		u[name] = sum
	}
}

// ToolUseOf counts a journal's tool calls by tool, with those its
// children reported; nil when there were none. Calls of sub-agents are
// child runs, not tools: the children's own tool calls count instead.
func ToolUseOf(events []Event) map[string]ToolUse {
	use := map[string]ToolUse{}
	for _, ev := range events {
		switch ev.Type {
		case TypeToolFinished:
			var d ToolFinished
			if json.Unmarshal(ev.Data, &d) != nil || d.ChildRunID != "" {
				continue
			}
			AddToolUse(use, map[string]ToolUse{d.Name: {Calls: 1, Errors: failures(d.IsError), DurationMS: d.DurationMS}})
		case TypeNodeFinished:
			if !bytes.Contains(ev.Data, []byte(`"tool"`)) {
				continue // an agent node: its child runs report
			}
			var d NodeFinished
			if json.Unmarshal(ev.Data, &d) == nil && d.Tool != "" {
				AddToolUse(use, map[string]ToolUse{d.Tool: {Calls: 1, Errors: failures(d.Error != ""), DurationMS: d.DurationMS}})
			}
		case TypeChildrenReported:
			var d ChildrenReported
			if json.Unmarshal(ev.Data, &d) == nil {
				for _, rep := range d.Reports {
					AddToolUse(use, rep.Tools)
				}
			}
		}
	}
	if len(use) == 0 {
		return nil
	}
	return use
}

// failures counts a call that failed.
func failures(failed bool) int {
	if failed {
		return 1
	}
	return 0
}
