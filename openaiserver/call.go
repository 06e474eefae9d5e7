package openaiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// Completion is the answer to a call without stream, and (with Object
// "chat.completion.chunk") each chunk of a streamed one.
type Completion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
	// Myriad says which run answered and where it stands.
	Myriad *RunInfo `json:"myriad,omitempty"`
}

// Choice is the one answer of a completion: Message whole, or a chunk's
// Delta.
type Choice struct {
	Index        int         `json:"index"`
	Message      *OutMessage `json:"message,omitempty"`
	Delta        *OutMessage `json:"delta,omitempty"`
	FinishReason *string     `json:"finish_reason"`
	Logprobs     *struct{}   `json:"logprobs"`
}

// OutMessage is the assistant's message, or a piece of it.
type OutMessage struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
	Refusal *string `json:"refusal"`
}

// Usage counts a run's tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// RunInfo is Myriad's word on the run behind an answer.
type RunInfo struct {
	RunID    string     `json:"run_id"`
	Status   run.Status `json:"status"`
	Instance string     `json:"instance,omitempty"`
	// Waiting says what a run that waits for a person waits for.
	Waiting string `json:"waiting,omitempty"`
}

// call is one request being answered.
type call struct {
	s   *Server
	w   http.ResponseWriter
	r   *http.Request
	req *ChatRequest
}

// start follows the run's tree from before the run exists, so that none
// of its streamed text is missed, and submits it. Close f.
func (c *call) start(ctx context.Context, sub engine.SubmitRequest) (*run.Record, *engine.Following, *Error) {
	if e := c.s.instanceBusy(ctx, sub); e != nil {
		return nil, nil, e
	}
	sub.ID = engine.NewRunID()
	f, err := c.s.rt.Follow(ctx, sub.ID, true, c.req.Stream)
	if err != nil {
		return nil, nil, c.s.submitError(c.r, err)
	}
	rec, _, err := c.s.rt.Submit(ctx, sub)
	if err != nil {
		f.Close()
		return nil, nil, c.s.submitError(c.r, err)
	}
	if rec.ID != sub.ID { // an earlier run with the same idempotency key
		f.Close()
		if f, err = c.s.rt.Follow(ctx, rec.ID, true, c.req.Stream); err != nil {
			return nil, nil, c.s.submitError(c.r, err)
		}
	}
	return rec, f, nil
}

// outcome is how a followed run stands when the call answers.
type outcome struct {
	rec *run.Record
	// asks is what the tree waits for a person for, in words, if it does.
	asks string
}

// follow reads the run's tree until the run ends or a run of the tree
// waits for a person, passing the run's own streamed text to text.
func (c *call) follow(ctx context.Context, f *engine.Following, root *run.Record, text func(run.Delta)) (outcome, error) {
	var asks string
	for u, err := range f.Watch(ctx, 0, false) {
		if err != nil {
			return outcome{}, err
		}
		if u.Live != nil {
			var d run.Delta
			if u.Live.Type == run.LiveDelta && u.Live.RunID == root.ID && json.Unmarshal(u.Live.Data, &d) == nil {
				text(d)
			}
			continue
		}
		ev := u.Event
		if c.s.rt.WaitsForPerson(ctx, ev) {
			asks = describeAsk(ev)
			break
		}
		if ev.RunID == root.ID && journal.Terminal(ev.Type) {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return outcome{}, err
	}
	var rec *run.Record
	var err error
	if asks != "" {
		rec, err = c.s.rt.Get(ctx, root.ID)
	} else {
		rec, err = c.s.rt.Wait(ctx, root.ID) // whole, even if its stored copy is cut
	}
	if err != nil {
		return outcome{}, err
	}
	if asks != "" {
		asks = fmt.Sprintf("Run %s is waiting for a person: %s Its answer will be at GET /v1/runs/%s.", root.ID, asks, root.ID)
	}
	return outcome{rec: rec, asks: asks}, nil
}

// describeAsk says what an entry asks a person, and how to answer.
func describeAsk(ev *run.TreeEvent) string {
	where := ""
	if ev.Path != "" {
		where = " in " + ev.Path
	}
	switch ev.Type {
	case journal.TypeApprovalRequested:
		var a journal.ApprovalRequested
		_ = json.Unmarshal(ev.Data, &a)
		return fmt.Sprintf("an approval of the call to %s%s. Decide with POST /v1/runs/%s/approvals/%s and a body like {\"decision\":\"approve\"}.",
			a.Name, where, ev.RunID, a.ApprovalID)
	case journal.TypeInputRequested:
		var q journal.InputRequested
		_ = json.Unmarshal(ev.Data, &q)
		return fmt.Sprintf("an answer%s to %q. Answer with POST /v1/runs/%s/input and a body like {\"key\":%q,\"value\":…}.",
			where, q.Prompt, ev.RunID, q.Key)
	case journal.TypeRunInDoubt:
		var d journal.RunInDoubt
		_ = json.Unmarshal(ev.Data, &d)
		return fmt.Sprintf("a decision on the call to %s%s, which may or may not have happened. Resolve it with POST /v1/runs/%s/resolve.",
			d.Name, where, ev.RunID)
	}
	return ev.Type + where + "."
}

// answer serves a call without stream: the run's answer, whole.
func (c *call) answer(sub engine.SubmitRequest) {
	ctx := c.r.Context()
	rec, f, oerr := c.start(ctx, sub)
	if oerr != nil {
		WriteError(c.w, oerr)
		return
	}
	defer f.Close()
	c.w.Header().Set(HeaderRunID, rec.ID)
	out, err := c.follow(ctx, f, rec, func(run.Delta) {})
	if err != nil {
		c.gone(rec.ID, err)
		return
	}
	text, oerr := c.result(out)
	if oerr != nil {
		WriteError(c.w, oerr)
		return
	}
	done := "stop"
	resp := c.completion(out.rec, "chat.completion")
	resp.Choices = []Choice{{Message: &OutMessage{Role: "assistant", Content: &text}, FinishReason: &done}}
	resp.Usage = usage(out)
	writeJSON(c.w, http.StatusOK, resp)
}

// gone handles a call that ended before its run did. A caller that left
// cancels the run — unless it sent an idempotency key, which says it may
// come back for the run (an SDK retrying after its timeout): the run goes
// on, and the retry follows it. An engine that failed is reported.
func (c *call) gone(id string, err error) {
	if c.r.Context().Err() != nil {
		if c.r.Header.Get("Idempotency-Key") == "" {
			_, _ = c.s.rt.Cancel(context.WithoutCancel(c.r.Context()), id)
		}
		return
	}
	if !c.req.Stream {
		WriteError(c.w, c.s.submitError(c.r, fmt.Errorf("follow run %s: %w", id, err)))
	}
}

// result is the text a run answers with, or the error it ended with.
func (c *call) result(out outcome) (string, *Error) {
	rec := out.rec
	switch {
	case out.asks != "":
		return out.asks, nil
	case rec.Status == run.StatusCompleted:
		if rec.Output == "" && len(rec.OutputJSON) > 0 {
			return string(rec.OutputJSON), nil
		}
		return rec.Output, nil
	case rec.Status == run.StatusFailed:
		code, msg := "run_failed", "failed"
		if rec.Error != nil {
			code, msg = rec.Error.Code, rec.Error.Code+": "+rec.Error.Message
		}
		return "", &Error{Status: http.StatusInternalServerError, Type: "server_error", Code: code,
			Message: fmt.Sprintf("run %s failed: %s (GET /v1/runs/%s/events has its journal)", rec.ID, msg, rec.ID)}
	case rec.Status == run.StatusCanceled:
		return "", &Error{Status: http.StatusConflict, Type: "invalid_request_error", Code: "run_canceled",
			Message: fmt.Sprintf("run %s was canceled", rec.ID)}
	}
	return "", &Error{Status: http.StatusInternalServerError, Type: "server_error", Code: "internal",
		Message: fmt.Sprintf("run %s stands %s", rec.ID, rec.Status)}
}

func (c *call) completion(rec *run.Record, object string) *Completion {
	info := &RunInfo{RunID: rec.ID, Status: rec.Status, Instance: rec.Instance}
	if rec.Asking() || !rec.Status.Terminal() {
		info.Waiting = waitingFor(rec)
	}
	name := rec.Agent // the run's, which a retry's key may have found
	if rec.Flow != "" {
		name = rec.Flow
	}
	return &Completion{ID: "chatcmpl-" + rec.ID, Object: object, Created: rec.CreatedAt.Unix(), Model: name, Myriad: info}
}

func usage(out outcome) *Usage {
	u := out.rec.Usage
	return &Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.Total()}
}

// stream serves a call with stream: the run's streamed text as chunks,
// then the rest of its answer, a last chunk saying it stopped, the usage
// when asked, and [DONE]. An error after the head is an error event.
func (c *call) stream(sub engine.SubmitRequest) {
	ctx, cancel := context.WithCancel(c.r.Context())
	defer cancel()
	rec, f, oerr := c.start(ctx, sub)
	if oerr != nil {
		WriteError(c.w, oerr)
		return
	}
	defer f.Close()
	h := c.w.Header()
	h.Set(HeaderRunID, rec.ID)
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.w.WriteHeader(http.StatusOK)
	sse := newSSE(c.w, c.s.opts.KeepAlive)
	defer sse.stop()

	chunk := func(content *string, finish *string, role string) *Completion {
		ch := c.completion(rec, "chat.completion.chunk")
		ch.Myriad = nil
		ch.Choices = []Choice{{Delta: &OutMessage{Role: role, Content: content}, FinishReason: finish}}
		return ch
	}
	empty := ""
	sse.send(chunk(&empty, nil, "assistant"))
	var t textSoFar
	out, err := c.follow(ctx, f, rec, func(d run.Delta) {
		if piece := t.add(d); piece != "" {
			sse.send(chunk(&piece, nil, ""))
		}
	})
	if err != nil {
		c.gone(rec.ID, err)
		if c.r.Context().Err() == nil {
			sse.send(errorJSON(c.s.submitError(c.r, err)))
		}
		return
	}
	text, oerr := c.result(out)
	if oerr != nil {
		sse.send(errorJSON(oerr))
		return
	}
	if rest := t.rest(text, out.asks != ""); rest != "" {
		sse.send(chunk(&rest, nil, ""))
	}
	done := "stop"
	last := chunk(nil, &done, "")
	last.Myriad = c.completion(out.rec, "").Myriad
	sse.send(last)
	if c.req.StreamOptions != nil && c.req.StreamOptions.IncludeUsage {
		u := c.completion(out.rec, "chat.completion.chunk")
		u.Choices, u.Usage, u.Myriad = []Choice{}, usage(out), nil
		sse.send(u)
	}
	sse.done()
}

// textSoFar is the text a stream has sent, by model turn: the answer is
// the last turn's text, and earlier turns' (said before a tool call) are
// set apart from it.
type textSoFar struct {
	turn int
	any  bool
	cur  strings.Builder // the current turn's text
}

func (t *textSoFar) add(d run.Delta) string {
	piece := d.Text
	if t.any && d.Turn != t.turn {
		piece = "\n\n" + piece
		t.cur.Reset()
	}
	t.turn, t.any = d.Turn, true
	t.cur.WriteString(d.Text)
	return piece
}

// rest is what remains to send of the answer: all of it when nothing was
// streamed, what the last turn's text lacks of it, or (a notice, or an
// answer that is not the streamed text) all of it set apart.
func (t *textSoFar) rest(answer string, notice bool) string {
	switch {
	case !t.any:
		return answer
	case !notice && strings.HasPrefix(answer, t.cur.String()):
		return answer[t.cur.Len():]
	}
	return "\n\n" + answer
}

// sseWriter writes a stream's events, one at a time, and keeps a quiet
// stream open with comments.
type sseWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	mu     sync.Mutex
	closed bool
	timer  *time.Timer
}

func newSSE(w http.ResponseWriter, keepAlive time.Duration) *sseWriter {
	s := &sseWriter{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.Flush()
	s.timer = time.AfterFunc(keepAlive, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		fmt.Fprint(s.w, ": keep-alive\n\n")
		_ = s.rc.Flush()
		s.timer.Reset(keepAlive)
	})
	return s
}

func (s *sseWriter) send(v any) {
	data, _ := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	fmt.Fprintf(s.w, "data: %s\n\n", data)
	_ = s.rc.Flush()
}

func (s *sseWriter) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprint(s.w, "data: [DONE]\n\n")
	_ = s.rc.Flush()
	s.closed = true
}

func (s *sseWriter) stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.timer.Stop()
}
