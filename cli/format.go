package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// printEvent writes one event for a person to read, or as a JSON line.
// Events of runs below root are indented under their path.
func printEvent(w io.Writer, ev run.TreeEvent, root string, asJSON bool) {
	if asJSON {
		data, _ := json.Marshal(ev)
		fmt.Fprintf(w, "%s\n", data)
		return
	}
	var line string
	switch ev.Type {
	case journal.TypeRunStarted:
		var d journal.RunStarted
		_ = json.Unmarshal(ev.Data, &d)
		who := d.Agent
		if d.Flow != "" {
			who = "flow " + d.Flow
		}
		if d.Instance != "" {
			who += "/" + d.Instance
		}
		line = fmt.Sprintf("run started: %s ← %s", who, clip(d.Input, 200))
	case journal.TypeModelResponse:
		var d journal.ModelResponse
		_ = json.Unmarshal(ev.Data, &d)
		var parts []string
		if d.Message.Content != "" {
			parts = append(parts, clip(d.Message.Content, 300))
		}
		for _, c := range d.Message.ToolCalls {
			parts = append(parts, fmt.Sprintf("call %s(%s)", c.Name, clip(string(c.Arguments), 200)))
		}
		line = fmt.Sprintf("model turn %d (%d+%d tokens, %.0f ms): %s", d.Turn, d.Usage.InputTokens, d.Usage.OutputTokens, d.DurationMS, strings.Join(parts, " · "))
	case journal.TypeToolStarted:
		var d journal.ToolStarted
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("tool %s started (key %s, attempt %d)", d.Name, d.IdempotencyKey, d.Attempt)
	case journal.TypeToolFinished:
		var d journal.ToolFinished
		_ = json.Unmarshal(ev.Data, &d)
		status := "→"
		if d.IsError {
			status = "→ error:"
		}
		line = fmt.Sprintf("tool %s %s %s (%.0f ms)", d.Name, status, clip(d.Content, 300), d.DurationMS)
	case journal.TypeRunCompleted:
		var d journal.RunCompleted
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("run completed (%d tokens)", d.Usage.Total())
	case journal.TypeRunFailed:
		var d journal.RunFailed
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("run failed: %s: %s", d.Code, d.Message)
	case journal.TypeRunInDoubt:
		var d journal.RunInDoubt
		_ = json.Unmarshal(ev.Data, &d)
		line = "run in doubt: " + d.Reason
	case journal.TypeToolResolved:
		var d journal.ToolResolved
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("call %s resolved by an operator: %s", d.CallID, d.Action)
		if d.Reason != "" {
			line += " (" + clip(d.Reason, 200) + ")"
		}
	case journal.TypeRunCanceled:
		var d journal.RunCanceled
		_ = json.Unmarshal(ev.Data, &d)
		line = "run canceled"
		if d.Reason != "" {
			line += ": " + d.Reason
		}
	case journal.TypeApprovalRequested:
		var d journal.ApprovalRequested
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("approval %s asked: %s(%s)", d.ApprovalID, d.Name, clip(string(d.Arguments), 200))
	case journal.TypeApprovalDecided:
		var d journal.ApprovalDecided
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("approval %s: %s", d.ApprovalID, d.Decision)
		if len(d.Arguments) > 0 {
			line += " with arguments " + clip(string(d.Arguments), 200)
		}
		if d.Reason != "" {
			line += " (" + clip(d.Reason, 200) + ")"
		}
	case journal.TypeOutputRejected:
		var d journal.OutputRejected
		_ = json.Unmarshal(ev.Data, &d)
		line = "answer rejected, asking again: " + clip(d.Reason, 300)
	case journal.TypeHandoff:
		var d journal.Handoff
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("handoff %s → %s", d.From, d.To)
		if d.Reason != "" {
			line += " (" + clip(d.Reason, 200) + ")"
		}
	case journal.TypeRunWaiting:
		var d journal.RunWaiting
		_ = json.Unmarshal(ev.Data, &d)
		var parts []string
		if len(d.Children) > 0 {
			parts = append(parts, fmt.Sprintf("for %d child runs", len(d.Children)))
		}
		if len(d.Approvals) > 0 {
			parts = append(parts, "for approval of "+strings.Join(d.Approvals, ", "))
		}
		if len(d.Inputs) > 0 {
			parts = append(parts, "for input at "+strings.Join(d.Inputs, ", "))
		}
		if d.Until != nil {
			parts = append(parts, "until "+d.Until.Format("2006-01-02 15:04:05Z07:00"))
		}
		line = "waiting " + strings.Join(parts, ", ")
	case journal.TypeNodeStarted:
		var d journal.NodeStarted
		_ = json.Unmarshal(ev.Data, &d)
		line = "node " + d.Key + " started"
		if d.Items > 0 {
			line += fmt.Sprintf(" over %d items", d.Items)
		}
	case journal.TypeNodeFinished:
		var d journal.NodeFinished
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("node %s → %s", d.Key, clip(string(d.Output), 200))
		if len(d.Output) == 0 {
			line = fmt.Sprintf("node %s done", d.Key)
		}
		if d.Error != "" {
			line = fmt.Sprintf("node %s → error: %s", d.Key, clip(d.Error, 300))
		}
		if len(d.Next) > 0 {
			line += " ⇒ " + strings.Join(d.Next, ", ")
		}
	case journal.TypeChildrenReported:
		var d journal.ChildrenReported
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("%d child runs reported", len(d.Reports))
		if len(d.Reports) == 1 {
			line = fmt.Sprintf("child run %s %s", d.Reports[0].RunID, d.Reports[0].Status)
		}
	case journal.TypeInputRequested:
		var d journal.InputRequested
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("waiting for input at %s: %s", d.Key, clip(d.Prompt, 300))
		if d.Call != "" {
			line = fmt.Sprintf("tool %s asks at %s: %s", d.Node, d.Key, clip(d.Prompt, 300))
		}
	case journal.TypeInputWithdrawn:
		var d journal.InputWithdrawn
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("question %s withdrawn: %s", d.Key, d.Reason)
	case journal.TypeInputRefused:
		var d journal.InputRefused
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("%s refused: %s", d.Kind, clip(d.Reason, 300))
	case journal.TypeCancelRequested:
		line = "cancel requested"
	case journal.TypeTimerFired:
		line = "timer fired"
	case journal.TypeInputReceived:
		var d journal.InputReceived
		_ = json.Unmarshal(ev.Data, &d)
		line = fmt.Sprintf("input at %s: %s", d.Key, clip(string(d.Value), 200))
	default:
		line = fmt.Sprintf("%s %s", ev.Type, clip(string(ev.Data), 300))
	}
	if ev.RunID != root && ev.Path != "" {
		fmt.Fprintf(w, "  %s [%d] %s\n", ev.Path, ev.Step, line)
		return
	}
	fmt.Fprintf(w, "[%d] %s\n", ev.Step, line)
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
