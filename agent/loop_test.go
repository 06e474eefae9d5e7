package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/tool"
)

func ev(step int, typ string, data any) journal.Event {
	raw, _ := json.Marshal(data)
	return journal.Event{Step: step, Type: typ, Time: time.Unix(int64(step), 0), Data: raw}
}

// Tool results go back to the model in the order of its calls, whatever
// order they finished in, so a replayed run sends the model the same request.
func TestMessagesOrderToolResultsByCall(t *testing.T) {
	calls := []model.ToolCall{{ID: "a", Name: "x"}, {ID: "b", Name: "y"}}
	events := []journal.Event{
		ev(1, journal.TypeRunStarted, journal.RunStarted{Input: "hi", History: []model.Message{{Role: model.RoleUser, Content: "before"}}}),
		ev(2, journal.TypeModelResponse, journal.ModelResponse{Message: model.Message{Role: model.RoleAssistant, ToolCalls: calls}}),
		ev(3, journal.TypeToolStarted, journal.ToolStarted{CallID: "a"}),
		ev(4, journal.TypeToolStarted, journal.ToolStarted{CallID: "b"}),
		ev(5, journal.TypeToolFinished, journal.ToolFinished{CallID: "b", Name: "y", Content: "B"}),
		ev(6, journal.TypeToolFinished, journal.ToolFinished{CallID: "a", Name: "x", Content: "A", IsError: true}),
	}
	msgs, err := Messages(events)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Role)+":"+m.Content+m.ToolCallID)
	}
	want := []string{"user:before", "user:hi", "assistant:", "tool:Aa", "tool:Bb"}
	if len(got) != len(want) {
		t.Fatalf("messages %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("messages %v, want %v", got, want)
		}
	}
	if !msgs[3].IsError {
		t.Error("the error flag of a tool result was lost")
	}
}

func TestFoldTracksResolutionsAndClock(t *testing.T) {
	call := []model.ToolCall{{ID: "a", Name: "x"}}
	events := []journal.Event{
		ev(1, journal.TypeRunStarted, journal.RunStarted{Input: "hi"}),
		ev(2, journal.TypeModelResponse, journal.ModelResponse{Message: model.Message{ToolCalls: call}, Usage: model.Usage{InputTokens: 3, OutputTokens: 4}}),
		ev(3, journal.TypeToolStarted, journal.ToolStarted{CallID: "a", Attempt: 1}),
		ev(4, journal.TypeRunInDoubt, journal.RunInDoubt{CallID: "a"}),
	}
	s, err := fold(events)
	if err != nil || !s.inDoubt || s.usage.Total() != 7 {
		t.Fatalf("in doubt: %+v %v", s, err)
	}
	events = append(events, ev(9, journal.TypeToolResolved, journal.ToolResolved{CallID: "a", Action: journal.ResolveRetry}))
	s, _ = fold(events)
	if s.inDoubt || s.turns[0].resolved["a"].Action != journal.ResolveRetry || !s.clockFrom.Equal(time.Unix(6, 0)) {
		// Started at 1, in doubt from 4 to 9: those 5 s do not count.
		t.Fatalf("resolved: inDoubt=%v resolved=%v clock=%v", s.inDoubt, s.turns[0].resolved, s.clockFrom)
	}
	events = append(events, ev(10, journal.TypeToolStarted, journal.ToolStarted{CallID: "a", Attempt: 2}))
	if s, _ = fold(events); len(s.turns[0].resolved) != 0 {
		t.Fatal("a resolution must cover one attempt only")
	}
}

// The timeout's clock stops while the run waits for a decision, and only
// then: time before it parks and after counts.
func TestFoldStopsTheClockWhileParked(t *testing.T) {
	call := []model.ToolCall{{ID: "a", Name: "x"}, {ID: "b", Name: "x"}}
	events := []journal.Event{
		ev(1, journal.TypeRunStarted, journal.RunStarted{Input: "hi"}),
		ev(2, journal.TypeModelResponse, journal.ModelResponse{Message: model.Message{ToolCalls: call}}),
		ev(3, journal.TypeApprovalRequested, journal.ApprovalRequested{ApprovalID: "1-0", CallID: "a"}),
		ev(3, journal.TypeApprovalRequested, journal.ApprovalRequested{ApprovalID: "1-1", CallID: "b"}),
		ev(4, journal.TypeRunWaiting, journal.RunWaiting{Approvals: []string{"1-0", "1-1"}}),
		ev(10, journal.TypeApprovalDecided, journal.ApprovalDecided{ApprovalID: "1-0", CallID: "a", Decision: journal.Approve}),
		ev(11, journal.TypeRunWaiting, journal.RunWaiting{Approvals: []string{"1-1"}}),
		ev(20, journal.TypeApprovalDecided, journal.ApprovalDecided{ApprovalID: "1-1", CallID: "b", Decision: journal.Approve}),
	}
	for _, tc := range []struct {
		upTo int
		want int64
	}{{3, 1}, {5, 1}, {6, 7}, {7, 7}, {8, 16}} {
		s, err := fold(events[:tc.upTo])
		if err != nil || !s.clockFrom.Equal(time.Unix(tc.want, 0)) {
			t.Errorf("after %d entries: clock from %v, want %v (%v)", tc.upTo, s.clockFrom.Unix(), tc.want, err)
		}
	}
	// Resumed while parked: the time parked so far does not count.
	s, _ := fold(events[:5])
	if got := s.deadline(time.Minute, time.Unix(100, 0)); !got.Equal(time.Unix(1+96+60, 0)) {
		t.Errorf("deadline while parked: %v", got.Unix())
	}
}

func TestExtractJSON(t *testing.T) {
	tests := map[string]string{
		`{"a":1}`:                 `{"a":1}`,
		"```json\n{\"a\":1}\n```": `{"a":1}`,
		"Here: [1,2] done":        `[1,2]`,
		"no json here":            "no json here",
	}
	for in, want := range tests {
		if got := extractJSON(in); got != want {
			t.Errorf("extractJSON(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUniqueCallIDs(t *testing.T) {
	calls := []model.ToolCall{{ID: "x"}, {ID: "x"}, {ID: ""}, {ID: "y"}}
	uniqueCallIDs(calls, 3)
	got := []string{calls[0].ID, calls[1].ID, calls[2].ID, calls[3].ID}
	want := []string{"x", "call_3_1", "call_3_2", "y"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ids %v, want %v", got, want)
		}
	}
}

// capturing answers "ok" and keeps the requests it was sent.
type capturing struct{ reqs []*model.Request }

func (c *capturing) Generate(_ context.Context, req *model.Request, _ func(model.Delta)) (*model.Response, error) {
	c.reqs = append(c.reqs, req)
	return &model.Response{Message: model.Message{Content: "ok"}}, nil
}

type memJournal struct{ n int }

func (j *memJournal) Append(_ context.Context, typ string, data any) (journal.Event, error) {
	j.n++
	return ev(j.n+1, typ, data), nil
}

// The model's cap on answers goes with every request: a budget reserves
// that much for the answer, so the provider must be held to it.
func TestRequestsCarryTheModelsCap(t *testing.T) {
	m := &capturing{}
	a := &Agent{Name: "a", Model: m, MaxOutputTokens: 300}
	if err := a.Init(); err != nil {
		t.Fatal(err)
	}
	start := []journal.Event{ev(1, journal.TypeRunStarted, journal.RunStarted{Agent: "a", Input: "hi"})}
	if out, err := a.Resume(context.Background(), "run_1", start, &memJournal{}, Env{}); err != nil || out != Completed {
		t.Fatalf("%v %v", out, err)
	}
	if len(m.reqs) != 1 || m.reqs[0].MaxTokens != 300 {
		t.Fatalf("requests %+v, want max_tokens 300", m.reqs)
	}
}

// failing is a journal whose appends of one type fail with err.
type failing struct {
	memJournal
	typ string
	err error
}

func (j *failing) Append(ctx context.Context, typ string, data any) (journal.Event, error) {
	if typ == j.typ {
		return journal.Event{}, j.err
	}
	return j.memJournal.Append(ctx, typ, data)
}

// A tool result the journal did not take (its write timed out, as when
// the stream's leader died) stops the run: the model is not called again
// without it, nor the tool called anew under another key.
func TestAResultNotJournaledStopsTheRun(t *testing.T) {
	m := &scriptedCalls{}
	echo := toolFunc(t, "echo")
	a := &Agent{Name: "a", Model: m, Tools: []tool.Tool{echo}}
	if err := a.Init(); err != nil {
		t.Fatal(err)
	}
	j := &failing{typ: journal.TypeToolFinished, err: fmt.Errorf("journal: append: %w", context.DeadlineExceeded)}
	start := []journal.Event{ev(1, journal.TypeRunStarted, journal.RunStarted{Agent: "a", Input: "hi"})}
	out, err := a.Resume(context.Background(), "run_1", start, j, Env{})
	if out != Stopped || !errors.Is(err, context.DeadlineExceeded) || m.n != 1 {
		t.Fatalf("outcome %v, err %v, %d model calls: want stopped after one", out, err, m.n)
	}
}

// scriptedCalls asks for the echo tool until it has its result.
type scriptedCalls struct{ n int }

func (s *scriptedCalls) Generate(_ context.Context, req *model.Request, _ func(model.Delta)) (*model.Response, error) {
	s.n++
	if last := req.Messages[len(req.Messages)-1]; last.Role == model.RoleTool {
		return &model.Response{Message: model.Message{Content: "done"}}, nil
	}
	return &model.Response{Message: model.Message{ToolCalls: []model.ToolCall{{ID: fmt.Sprintf("c%d", s.n), Name: "echo", Arguments: json.RawMessage(`{}`)}}}}, nil
}

func toolFunc(t *testing.T, name string) tool.Tool {
	t.Helper()
	f, err := tool.NewFunc(name, "Echoes.", func(context.Context, *tool.Call, struct{}) (string, error) { return "ok", nil })
	if err != nil {
		t.Fatal(err)
	}
	return f
}
