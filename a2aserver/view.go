package a2aserver

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// ask is one thing a run of a task's tree waits for a person to give.
type ask struct {
	RunID    string                     `json:"run_id"`
	Path     string                     `json:"path"`
	Approval *journal.ApprovalRequested `json:"approval,omitempty"`
	Input    *journal.InputRequested    `json:"input,omitempty"`
}

// asks lists what runs ask that this endpoint lets its clients give: flow
// questions always, approvals only when clients may decide them (by
// default an operator does, through the API or the console).
func (e *endpoint) asks(runs []*run.Record) []ask {
	var out []ask
	for _, w := range runs {
		if e.s.opts.ClientApprovals {
			for _, a := range w.PendingApprovals() {
				out = append(out, ask{RunID: w.ID, Path: w.PathOrAgent(), Approval: &a})
			}
		}
		for _, q := range w.PendingInputs() {
			out = append(out, ask{RunID: w.ID, Path: w.PathOrAgent(), Input: &q})
		}
	}
	return out
}

// operatorWait says what, in runs, waits for an operator rather than the
// client ("" for nothing).
func (e *endpoint) operatorWait(runs []*run.Record) string {
	for _, w := range runs {
		if w.Status == run.StatusInDoubt && w.InDoubt != nil {
			return fmt.Sprintf("%s stopped in doubt about a call of %s: an operator resolves it (POST /v1/runs/%s/resolve).", w.PathOrAgent(), w.InDoubt.Name, w.ID)
		}
		if a := w.PendingApprovals(); len(a) > 0 && !e.s.opts.ClientApprovals {
			return fmt.Sprintf("%s waits for an operator to approve a call of %s (GET /v1/approvals).", w.PathOrAgent(), a[0].Name)
		}
	}
	return ""
}

// task is the A2A view of a run.
func (e *endpoint) task(ctx context.Context, rec *run.Record) (*a2a.Task, error) {
	t := &a2a.Task{ID: a2a.TaskID(rec.ID), ContextID: rec.Metadata[metaContext],
		Metadata: map[string]any{"run_id": rec.ID}}
	user := &a2a.Message{ID: rec.Metadata[metaMessage], Role: a2a.MessageRoleUser, ContextID: t.ContextID, TaskID: t.ID,
		Parts: a2a.ContentParts{a2a.TextPart{Text: rec.Input}}}
	t.History = []*a2a.Message{user}
	at := rec.CreatedAt
	switch rec.Status {
	case run.StatusQueued:
		t.Status.State = a2a.TaskStateSubmitted
	case run.StatusRunning, run.StatusWaiting, run.StatusInDoubt:
		t.Status.State = a2a.TaskStateWorking
		asking, err := e.s.rt.Asking(ctx, rec)
		if err != nil {
			return nil, internal(err)
		}
		if asks := e.asks(asking); len(asks) > 0 {
			t.Status = inputRequired(t, asks)
		} else if why := e.operatorWait(asking); why != "" {
			t.Status.Message = agentMessage(t, why)
		}
	case run.StatusCompleted:
		t.Status.State = a2a.TaskStateCompleted
		t.Artifacts = []*a2a.Artifact{result(rec.Output, rec.OutputJSON)}
		t.History = append(t.History, agentMessage(t, rec.Output))
	case run.StatusFailed:
		t.Status.State = a2a.TaskStateFailed
		if rec.Error != nil {
			t.Status.Message = agentMessage(t, rec.Error.Code+": "+rec.Error.Message)
		}
	case run.StatusCanceled:
		t.Status.State = a2a.TaskStateCanceled
	}
	if rec.EndedAt != nil {
		at = *rec.EndedAt
	} else if rec.StartedAt != nil {
		at = *rec.StartedAt
	}
	t.Status.Timestamp = &at
	return t, nil
}

func agentMessage(t a2a.TaskInfoProvider, text string) *a2a.Message {
	return a2a.NewMessageForTask(a2a.MessageRoleAgent, t, a2a.TextPart{Text: text})
}

// result is a run's output as the task's artifact: the text, and the
// structured output as a data part when the agent has an output schema.
func result(output string, structured json.RawMessage) *a2a.Artifact {
	art := &a2a.Artifact{ID: "result", Name: "result", Parts: a2a.ContentParts{a2a.TextPart{Text: output}}}
	var obj map[string]any
	if len(structured) > 0 && json.Unmarshal(structured, &obj) == nil && obj != nil {
		art.Parts = append(art.Parts, a2a.DataPart{Data: obj})
	}
	return art
}

// chunkBytes bounds the text of one streamed event: the SDK's SSE reader
// takes lines of at most 64 KiB.
const chunkBytes = 32 << 10

// resultEvents streams a result artifact in chunks small enough for any
// SSE reader: the text in pieces appended to the first, the structured
// output with the last.
func resultEvents(t a2a.TaskInfoProvider, output string, structured json.RawMessage) []a2a.Event {
	whole := result(output, structured)
	var out []a2a.Event
	for first := true; first || output != ""; first = false {
		n := min(len(output), chunkBytes)
		for n < len(output) && !utf8.RuneStart(output[n]) {
			n--
		}
		ev := a2a.NewArtifactUpdateEvent(t, whole.ID, a2a.TextPart{Text: output[:n]})
		ev.Artifact.Name, ev.Append = whole.Name, !first
		out = append(out, ev)
		output = output[n:]
	}
	last := out[len(out)-1].(*a2a.TaskArtifactUpdateEvent)
	last.Artifact.Parts = append(last.Artifact.Parts, whole.Parts[1:]...)
	last.LastChunk = true
	return out
}

// clip shortens text shown in status messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// inputRequired is the status of a task whose runs wait for the client:
// the first question in words, and every open one in a data part, with
// what to reply to.
func inputRequired(t a2a.TaskInfoProvider, asks []ask) a2a.TaskStatus {
	var text string
	if a := asks[0]; a.Approval != nil {
		text = fmt.Sprintf("%s wants to call %s with %s. Reply approve or deny.", a.Path, a.Approval.Name, clip(string(a.Approval.Arguments), 2000))
	} else {
		text = a.Input.Prompt
	}
	if len(asks) > 1 {
		text += fmt.Sprintf(" (%d questions are open: see the data part)", len(asks))
	}
	list := make([]any, len(asks))
	for i, a := range asks {
		if a.Approval != nil && len(a.Approval.Arguments) > chunkBytes/4 {
			cp := *a.Approval
			cp.Arguments = json.RawMessage(`"(too long to show here: GET /v1/runs/` + a.RunID + `)"`)
			a.Approval = &cp
		}
		raw, _ := json.Marshal(a)
		_ = json.Unmarshal(raw, &list[i])
	}
	now := time.Now().UTC()
	return a2a.TaskStatus{State: a2a.TaskStateInputRequired, Timestamp: &now,
		Message: a2a.NewMessageForTask(a2a.MessageRoleAgent, t, a2a.TextPart{Text: text}, a2a.DataPart{Data: map[string]any{"asks": list}})}
}

// apply folds a streamed event into a task, so a blocking send answers
// with what the stream would have ended on.
func apply(t *a2a.Task, ev a2a.Event) {
	switch ev := ev.(type) {
	case *a2a.TaskStatusUpdateEvent:
		if ev.Final || ev.Status.State != a2a.TaskStateWorking || t.Status.State == a2a.TaskStateSubmitted {
			t.Status = ev.Status
		}
	case *a2a.TaskArtifactUpdateEvent:
		if !ev.Append || len(t.Artifacts) == 0 {
			t.Artifacts = []*a2a.Artifact{{ID: ev.Artifact.ID, Name: ev.Artifact.Name, Parts: append(a2a.ContentParts{}, ev.Artifact.Parts...)}}
		} else {
			art := t.Artifacts[0]
			for _, p := range ev.Artifact.Parts {
				prev, isText := art.Parts[len(art.Parts)-1].(a2a.TextPart)
				if next, ok := p.(a2a.TextPart); ok && isText {
					art.Parts[len(art.Parts)-1] = a2a.TextPart{Text: prev.Text + next.Text}
				} else {
					art.Parts = append(art.Parts, p)
				}
			}
		}
		if ev.LastChunk {
			for _, p := range t.Artifacts[0].Parts {
				if text, ok := p.(a2a.TextPart); ok {
					t.History = append(t.History, a2a.NewMessageForTask(a2a.MessageRoleAgent, t, text))
				}
			}
		}
	}
}

// describe says in a few words what a journal entry records.
func describe(path string, ev journal.Event) string {
	switch ev.Type {
	case journal.TypeToolStarted:
		var t journal.ToolStarted
		if json.Unmarshal(ev.Data, &t) == nil {
			return path + ": calling " + t.Name
		}
	case journal.TypeToolFinished:
		var t journal.ToolFinished
		if json.Unmarshal(ev.Data, &t) == nil {
			return path + ": " + t.Name + " answered"
		}
	case journal.TypeModelResponse:
		var m journal.ModelResponse
		if json.Unmarshal(ev.Data, &m) == nil && m.Message.Content != "" && len(m.Message.ToolCalls) == 0 {
			return path + ": " + clip(m.Message.Content, 2000)
		}
	}
	return path + ": " + ev.Type
}
