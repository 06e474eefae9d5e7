package a2atool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2asrv"
	"github.com/a2aproject/a2a-go/a2asrv/eventqueue"

	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/a2atool"
)

// echo is an agent built with the SDK's own server: it answers "echo:
// <text>", asks back for "ask", fails for "fail", and replies with a bare
// message for "hi".
type echo struct {
	mu       sync.Mutex
	messages []*a2a.Message
	working  chan struct{}   // "hold" is working
	canceled chan a2a.TaskID // a tasks/cancel request arrived
}

func (e *echo) Execute(ctx context.Context, rc *a2asrv.RequestContext, q eventqueue.Queue) error {
	e.mu.Lock()
	e.messages = append(e.messages, rc.Message)
	e.mu.Unlock()
	in := ""
	for _, p := range rc.Message.Parts {
		if tp, ok := p.(a2a.TextPart); ok {
			in += tp.Text
		}
	}
	if in == "hi" {
		return q.Write(ctx, a2a.NewMessage(a2a.MessageRoleAgent, a2a.TextPart{Text: "hello"}))
	}
	if rc.StoredTask == nil {
		if err := q.Write(ctx, a2a.NewStatusUpdateEvent(rc, a2a.TaskStateSubmitted, nil)); err != nil {
			return err
		}
	}
	if err := q.Write(ctx, a2a.NewStatusUpdateEvent(rc, a2a.TaskStateWorking,
		a2a.NewMessageForTask(a2a.MessageRoleAgent, rc, a2a.TextPart{Text: "thinking about " + in}))); err != nil {
		return err
	}
	final := func(state a2a.TaskState, text string) error {
		ev := a2a.NewStatusUpdateEvent(rc, state, a2a.NewMessageForTask(a2a.MessageRoleAgent, rc, a2a.TextPart{Text: text}))
		ev.Final = true
		return q.Write(ctx, ev)
	}
	switch in {
	case "hold":
		e.working <- struct{}{}
		<-ctx.Done()
		return nil
	case "ask":
		return final(a2a.TaskStateInputRequired, "which order?")
	case "fail":
		return final(a2a.TaskStateFailed, "out of paper")
	}
	if err := q.Write(ctx, a2a.NewArtifactEvent(rc, a2a.TextPart{Text: "echo: " + in})); err != nil {
		return err
	}
	return final(a2a.TaskStateCompleted, "")
}

func (e *echo) Cancel(ctx context.Context, rc *a2asrv.RequestContext, q eventqueue.Queue) error {
	ev := a2a.NewStatusUpdateEvent(rc, a2a.TaskStateCanceled, nil)
	ev.Final = true
	return q.Write(ctx, ev)
}

func serve(t *testing.T, streaming bool) (*echo, string) {
	t.Helper()
	e := &echo{working: make(chan struct{}, 8), canceled: make(chan a2a.TaskID, 8)}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	rpc := a2asrv.NewJSONRPCHandler(a2asrv.NewHandler(e))
	mux.HandleFunc("/rpc", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Method string `json:"method"`
		}
		if json.Unmarshal(body, &req) == nil && req.Method == "tasks/cancel" {
			e.canceled <- ""
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rpc.ServeHTTP(w, r)
	})
	mux.Handle("/.well-known/agent-card.json", a2asrv.NewStaticAgentCardHandler(&a2a.AgentCard{
		Name: "echo", URL: srv.URL + "/rpc", PreferredTransport: a2a.TransportProtocolJSONRPC, ProtocolVersion: "0.3.0",
		Capabilities: a2a.AgentCapabilities{Streaming: streaming}, DefaultInputModes: []string{"text/plain"},
		DefaultOutputModes: []string{"text/plain"}, Skills: []a2a.AgentSkill{{ID: "echo", Name: "echo", Description: "echoes"}}}))
	return e, srv.URL
}

// TestCallsAnSDKAgent runs the tool against an agent served by the A2A
// SDK's reference server, streaming and not. (Myriad's own server is the
// other backend: see cmd/myriad's TestA2ARoundTrip.)
func TestCallsAnSDKAgent(t *testing.T) {
	tests := []struct {
		input, want string
		isError     bool
	}{
		{"tea", "echo: tea", false},
		{"ask", "needs more input before it can finish", false},
		{"fail", "failed: out of paper", true},
		{"hi", "hello", false},
	}
	for _, streaming := range []bool{true, false} {
		e, url := serve(t, streaming)
		for _, cardURL := range []string{url, url + "/.well-known/agent-card.json"} {
			tl := a2atool.New(a2atool.Config{Name: "echo", URL: cardURL})
			for _, tc := range tests {
				t.Run(fmt.Sprintf("streaming=%v/%s/%s", streaming, cardURL[len(url):], tc.input), func(t *testing.T) {
					var progress []string
					res, err := tl.Call(context.Background(), &tool.Call{RunID: "run_1", ID: "c1", IdempotencyKey: "run_1/" + tc.input,
						Arguments: json.RawMessage(fmt.Sprintf(`{"input": %q}`, tc.input)),
						Progress:  func(p tool.Progress) { progress = append(progress, p.Message) }})
					if err != nil {
						t.Fatal(err)
					}
					if !strings.Contains(res.Content, tc.want) || res.IsError != tc.isError {
						t.Fatalf("result %+v, want %q (error %v)", res, tc.want, tc.isError)
					}
					if streaming && tc.input != "hi" && !strings.Contains(strings.Join(progress, "|"), "thinking about "+tc.input) {
						t.Fatalf("progress %q", progress)
					}
				})
			}
		}
		// Every attempt of one call (the same idempotency key: here, the
		// same input through either card URL) sends the same message, in
		// the run's context; another call sends another message.
		e.mu.Lock()
		tea, ask, teaAgain := e.messages[0], e.messages[1], e.messages[len(tests)]
		e.mu.Unlock()
		if tea.ID != teaAgain.ID || tea.ID == ask.ID || tea.ContextID != ask.ContextID || !strings.HasPrefix(tea.ID, "myriad-msg-") {
			t.Fatalf("message ids %s %s %s, contexts %s %s", tea.ID, teaAgain.ID, ask.ID, tea.ContextID, ask.ContextID)
		}
	}
}

func TestCallErrors(t *testing.T) {
	_, url := serve(t, true)
	tests := []struct {
		name, url, args, want string
		callErr               bool
	}{
		{"no input", url, `{}`, `want {"input": "..."}`, false},
		{"no card", url + "/nothing.json", `{"input": "x"}`, "read the agent card of echo", true},
		{"unknown task", url, `{"input": "x", "task_id": "nope"}`, "refused the message", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := a2atool.New(a2atool.Config{Name: "echo", URL: tc.url}).Call(context.Background(),
				&tool.Call{RunID: "run_1", ID: "c1", IdempotencyKey: "run_1/1", Arguments: json.RawMessage(tc.args)})
			got := res.Content
			if err != nil {
				got = err.Error()
			}
			if (err != nil) != tc.callErr || !strings.Contains(got, tc.want) {
				t.Fatalf("got %q (call error %v), want %q", got, err, tc.want)
			}
		})
	}
}

// TestRemoteTaskCanceledOnlyWithTheRun: a canceled run cancels its remote
// task; a worker shutting down does not (the run resumes elsewhere and its
// repeated call joins the same task).
func TestRemoteTaskCanceledOnlyWithTheRun(t *testing.T) {
	tests := []struct {
		cause      error
		wantCancel bool
	}{
		{tool.ErrRunCanceled, true},
		{errors.New("worker shutting down"), false},
	}
	for _, tc := range tests {
		t.Run(tc.cause.Error(), func(t *testing.T) {
			e, url := serve(t, true)
			tl := a2atool.New(a2atool.Config{Name: "echo", URL: url})
			ctx, cancel := context.WithCancelCause(context.Background())
			done := make(chan error, 1)
			heard := make(chan struct{}, 8)
			go func() {
				_, err := tl.Call(ctx, &tool.Call{RunID: "run_1", ID: "c1", IdempotencyKey: "run_1/9", Arguments: json.RawMessage(`{"input": "hold"}`),
					Progress: func(p tool.Progress) {
						if strings.Contains(p.Message, "thinking") {
							heard <- struct{}{}
						}
					}})
				done <- err
			}()
			<-e.working
			<-heard // the call knows its task
			cancel(tc.cause)
			if err := <-done; err == nil {
				t.Fatal("the call ended without an error")
			}
			select {
			case <-e.canceled:
				if !tc.wantCancel {
					t.Fatal("the remote task was canceled")
				}
			default:
				if tc.wantCancel {
					t.Fatal("the remote task was not canceled")
				}
			}
		})
	}
}
