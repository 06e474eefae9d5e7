package openaiserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/model/scripted/scriptedtest"
	"github.com/myriad-ai/myriad/openaiserver"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// guarded is a tool whose calls need a person's approval.
type guarded struct{}

func (guarded) Info() tool.Info {
	return tool.Info{Name: "wire_money", Description: "moves money", Schema: json.RawMessage(`{"type":"object"}`), NeedsApproval: true}
}

func (guarded) Call(context.Context, *tool.Call) (tool.Result, error) {
	return tool.Result{Content: "sent"}, nil
}

// blocker waits until its run is canceled.
type blocker struct{ entered chan struct{} }

func (b blocker) Info() tool.Info {
	return tool.Info{Name: "block", Description: "waits", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (b blocker) Call(ctx context.Context, _ *tool.Call) (tool.Result, error) {
	b.entered <- struct{}{}
	<-ctx.Done()
	return tool.Result{}, ctx.Err()
}

// gate holds its calls until it opens.
type gate struct {
	entered chan struct{}
	open    chan struct{}
}

func (g gate) Info() tool.Info {
	return tool.Info{Name: "gate", Description: "waits for the gate", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (g gate) Call(ctx context.Context, _ *tool.Call) (tool.Result, error) {
	g.entered <- struct{}{}
	select {
	case <-g.open:
		return tool.Result{Content: "through"}, nil
	case <-ctx.Done():
		return tool.Result{}, ctx.Err()
	}
}

type fixture struct {
	rt     *engine.Engine
	url    string
	client openai.Client
	block  blocker
	gate   gate
	hits   atomic.Int64 // requests to /v1/chat/completions
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	b, _ := storetest.Open(t)
	fx := &fixture{block: blocker{entered: make(chan struct{}, 1)}, gate: gate{entered: make(chan struct{}, 1), open: make(chan struct{})}}
	rt, err := engine.New(b, engine.Options{
		Agents: map[string]*agent.Agent{
			"greeter": {Description: "says hello", Model: scriptedtest.Model(t, `- reply: {text: "hello {{.Input}}"}`)},
			"talker": {Stream: true, Model: scriptedtest.Model(t, `
- when: {last_tool: look}
  reply: {text: "the answer, in several streamed pieces"}
- reply: {text: "let me look", tool_calls: [{name: look}]}`), Tools: []tool.Tool{lookTool{}}},
			"banker":  {Model: scriptedtest.Model(t, `- reply: {tool_calls: [{name: wire_money}]}`), Tools: []tool.Tool{guarded{}}},
			"broken":  {MaxTurns: 1, Model: scriptedtest.Model(t, `- reply: {tool_calls: [{name: look}]}`), Tools: []tool.Tool{lookTool{}}},
			"waiter":  {Model: scriptedtest.Model(t, `- reply: {tool_calls: [{name: block}]}`), Tools: []tool.Tool{fx.block}},
			"counter": {Model: scriptedtest.Model(t, `- reply: {text: "turn {{.Turn}}: {{.LastUser}}"}`)},
			"boss": {Model: scriptedtest.Model(t, `
- when: {last_role: tool}
  reply: {text: "done"}
- reply: {tool_calls: [{name: banker, arguments: {task: pay}}]}`), SubAgents: []agent.SubAgent{{Agent: "banker"}}},
			"slow": {Model: scriptedtest.Model(t, `
- when: {last_tool: gate}
  reply: {text: "slow answer"}
- reply: {tool_calls: [{name: gate}]}`), Tools: []tool.Tool{fx.gate}},
		},
		Flows: map[string]*flow.Flow{
			"shout": {Start: []string{"up"}, Output: "out", Nodes: map[string]*flow.Node{
				"up": {Agent: "greeter", Input: "{{.state.input}}!", Output: "out"}}},
			"hail": {Start: []string{"up"}, Output: "out", Nodes: map[string]*flow.Node{
				"up": {Agent: "greeter", Input: "{{.state.title}} {{.state.input}}", Output: "out"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	fx.rt = rt
	h := api.New(rt, api.Options{Token: "secret", MaxBodyBytes: 64 << 10, OpenAI: openaiserver.New(rt, openaiserver.Options{})})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/chat/completions" {
			fx.hits.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	fx.url = srv.URL
	fx.client = openai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("secret"), option.WithMaxRetries(2))
	return fx
}

type lookTool struct{}

func (lookTool) Info() tool.Info {
	return tool.Info{Name: "look", Description: "looks", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (lookTool) Call(context.Context, *tool.Call) (tool.Result, error) {
	return tool.Result{Content: "seen"}, nil
}

func ask(model string, msgs ...openai.ChatCompletionMessageParamUnion) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: model, Messages: msgs}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestModelsAreAgentsAndFlows(t *testing.T) {
	fx := newFixture(t)
	ctx := testContext(t)
	page, err := fx.client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if got := strings.Join(ids, " "); got != "banker boss broken counter greeter hail shout slow talker waiter" {
		t.Fatalf("models %q", got)
	}
	m, err := fx.client.Models.Get(ctx, "shout")
	if err != nil || m.ID != "shout" || m.OwnedBy != "myriad" {
		t.Fatalf("get shout: %+v %v", m, err)
	}
	_, err = fx.client.Models.Get(ctx, "nope")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Fatalf("unknown model: %v", err)
	}
}

func TestCompletionRunsTheAgent(t *testing.T) {
	fx := newFixture(t)
	ctx := testContext(t)
	var resp *http.Response
	c, err := fx.client.Chat.Completions.New(ctx, ask("greeter", openai.UserMessage("Ada")), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Choices) != 1 || c.Choices[0].Message.Content != "hello Ada" || c.Choices[0].FinishReason != "stop" || c.Object != "chat.completion" {
		t.Fatalf("completion %+v", c)
	}
	id := resp.Header.Get(openaiserver.HeaderRunID)
	rec, err := fx.rt.Get(ctx, id)
	if err != nil || rec.Status != run.StatusCompleted || rec.Input != "Ada" {
		t.Fatalf("run %s: %+v %v", id, rec, err)
	}
	if c.ID != "chatcmpl-"+id || c.Usage.TotalTokens != int64(rec.Usage.Total()) || c.Usage.TotalTokens == 0 {
		t.Fatalf("id %s usage %+v, run usage %+v", c.ID, c.Usage, rec.Usage)
	}
	// A conversation is the run's input, as a transcript.
	c, err = fx.client.Chat.Completions.New(ctx, ask("greeter", openai.SystemMessage("be kind"), openai.UserMessage("hi"),
		openai.AssistantMessage("hello"), openai.UserMessage("again")))
	if err != nil || c.Choices[0].Message.Content != "hello system: be kind\n\nuser: hi\n\nassistant: hello\n\nuser: again" {
		t.Fatalf("transcript: %+v %v", c, err)
	}
	// A flow is a model too, and takes its state in Myriad's own field.
	c, err = fx.client.Chat.Completions.New(ctx, ask("shout", openai.UserMessage("Bo")))
	if err != nil || c.Choices[0].Message.Content != "hello Bo!" {
		t.Fatalf("flow: %+v %v", c, err)
	}
	c, err = fx.client.Chat.Completions.New(ctx, ask("hail", openai.UserMessage("Bo")), option.WithJSONSet("state", map[string]any{"title": "Dr"}))
	if err != nil || c.Choices[0].Message.Content != "hello Dr Bo" {
		t.Fatalf("flow with state: %+v %v", c, err)
	}
}

func TestStreamingSendsTheAnswerInChunks(t *testing.T) {
	fx := newFixture(t)
	ctx := testContext(t)
	params := ask("talker", openai.UserMessage("go"))
	params.StreamOptions.IncludeUsage = openai.Bool(true)
	stream := fx.client.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := "let me look\n\nthe answer, in several streamed pieces"
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != want || acc.Choices[0].FinishReason != "stop" {
		t.Fatalf("streamed %+v", acc.Choices)
	}
	if chunks < 5 || acc.Usage.TotalTokens == 0 {
		t.Fatalf("%d chunks, usage %+v", chunks, acc.Usage)
	}
	// Without streamed text (a flow), the answer comes as one chunk.
	stream = fx.client.Chat.Completions.NewStreaming(ctx, ask("shout", openai.UserMessage("Cy")))
	acc = openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil || acc.Choices[0].Message.Content != "hello Cy!" {
		t.Fatalf("flow stream: %+v %v", acc.Choices, err)
	}
}

func TestInstanceContinuesAConversation(t *testing.T) {
	fx := newFixture(t)
	ctx := testContext(t)
	first := ask("counter", openai.UserMessage("one"))
	first.User = openai.String("chat-7")
	c, err := fx.client.Chat.Completions.New(ctx, first)
	if err != nil || c.Choices[0].Message.Content != "turn 1: one" {
		t.Fatalf("first turn: %+v %v", c, err)
	}
	// The header names the instance too; only the last message is the
	// turn's input, the instance remembering the rest.
	c, err = fx.client.Chat.Completions.New(ctx, ask("counter", openai.UserMessage("one"), openai.AssistantMessage("…"), openai.UserMessage("two")),
		option.WithHeader(openaiserver.HeaderInstance, "chat-7"))
	if err != nil || c.Choices[0].Message.Content != "turn 2: two" {
		t.Fatalf("second turn: %+v %v", c, err)
	}
	var raw struct {
		Myriad openaiserver.RunInfo `json:"myriad"`
	}
	_ = json.Unmarshal([]byte(c.RawJSON()), &raw)
	if raw.Myriad.Instance != "chat-7" || raw.Myriad.Status != run.StatusCompleted {
		t.Fatalf("myriad field %+v", raw.Myriad)
	}
	// Continuing, the last message must be the user's.
	_, err = fx.client.Chat.Completions.New(ctx, ask("counter", openai.UserMessage("x"), openai.AssistantMessage("y")),
		option.WithHeader(openaiserver.HeaderInstance, "chat-7"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "messages[1].role" {
		t.Fatalf("last message not the user's: %v", err)
	}
	// A malformed key in the header is refused; a user field that is not a
	// key (an email) names an instance made from it.
	_, err = fx.client.Chat.Completions.New(ctx, ask("counter", openai.UserMessage("x")), option.WithHeader(openaiserver.HeaderInstance, "a b"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "header Myriad-Instance" {
		t.Fatalf("bad instance key: %v", err)
	}
	// A new instance's first turn takes the whole conversation: a client
	// may bring one from elsewhere.
	email := ask("counter", openai.UserMessage("hi"), openai.AssistantMessage("hello"), openai.UserMessage("ada here"))
	email.User = openai.String("ada@example.com")
	c, err = fx.client.Chat.Completions.New(ctx, email)
	if err != nil || c.Choices[0].Message.Content != "turn 1: user: hi\n\nassistant: hello\n\nuser: ada here" {
		t.Fatalf("email user: %+v %v", c, err)
	}
	_ = json.Unmarshal([]byte(c.RawJSON()), &raw)
	if raw.Myriad.Instance != openaiserver.UserInstance("ada@example.com") {
		t.Fatalf("instance %q", raw.Myriad.Instance)
	}
	email.Messages = append(email.Messages, openai.AssistantMessage("…"), openai.UserMessage("again"))
	c, err = fx.client.Chat.Completions.New(ctx, email)
	if err != nil || c.Choices[0].Message.Content != "turn 2: again" {
		t.Fatalf("email user, second turn: %+v %v", c, err)
	}
}

func TestARunWaitingForAPersonIsReported(t *testing.T) {
	fx := newFixture(t)
	ctx := testContext(t)
	for _, stream := range []bool{false, true} {
		params := ask("banker", openai.UserMessage("pay"))
		params.User = openai.String("acct-" + map[bool]string{false: "1", true: "2"}[stream])
		var text string
		if stream {
			s := fx.client.Chat.Completions.NewStreaming(ctx, params)
			var acc openai.ChatCompletionAccumulator
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			text = acc.Choices[0].Message.Content
		} else {
			c, err := fx.client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			text = c.Choices[0].Message.Content
		}
		if !strings.Contains(text, "waiting for a person: an approval of the call to wire_money") || !strings.Contains(text, "/approvals/") {
			t.Fatalf("stream=%v: %q", stream, text)
		}
		// The next message to the instance would wait behind that turn:
		// it is refused, and the SDK does not retry it.
		before := fx.hits.Load()
		_, err := fx.client.Chat.Completions.New(ctx, params)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 || apiErr.Code != "instance_waiting" {
			t.Fatalf("busy instance: %v", err)
		}
		if n := fx.hits.Load() - before; n != 1 {
			t.Fatalf("the SDK sent the refused request %d times", n)
		}
	}
}

// A turn whose child run waits for a person holds the instance too.
func TestAChildWaitingForAPersonHoldsTheInstance(t *testing.T) {
	fx := newFixture(t)
	ctx := testContext(t)
	params := ask("boss", openai.UserMessage("pay"))
	params.User = openai.String("acct-9")
	c, err := fx.client.Chat.Completions.New(ctx, params)
	if err != nil || !strings.Contains(c.Choices[0].Message.Content, "an approval of the call to wire_money in boss/banker") {
		t.Fatalf("%+v %v", c, err)
	}
	_, err = fx.client.Chat.Completions.New(ctx, params)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 || apiErr.Code != "instance_waiting" || !strings.Contains(apiErr.Message, "in boss/banker") {
		t.Fatalf("busy instance: %v", err)
	}
}

// A caller that sent an idempotency key and left (an SDK's timeout) does
// not cancel the run: its retry follows the same run to its answer.
func TestAKeyedCallerThatLeavesComesBackForTheRun(t *testing.T) {
	fx := newFixture(t)
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	key := option.WithHeader("Idempotency-Key", "k-1")
	go func() {
		_, err := fx.client.Chat.Completions.New(ctx, ask("slow", openai.UserMessage("x")), key, option.WithMaxRetries(0))
		done <- err
	}()
	<-fx.gate.entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("call: %v", err)
	}
	retry := make(chan *openai.ChatCompletion, 1)
	go func() {
		c, err := fx.client.Chat.Completions.New(testContext(t), ask("slow", openai.UserMessage("x")), key)
		if err != nil {
			t.Error(err)
		}
		retry <- c
	}()
	close(fx.gate.open)
	c := <-retry
	if c == nil || c.Choices[0].Message.Content != "slow answer" {
		t.Fatalf("retry: %+v", c)
	}
	runs, _, err := fx.rt.List(testContext(t), run.Filter{Agent: "slow"})
	if err != nil || len(runs) != 1 || runs[0].Status != run.StatusCompleted {
		t.Fatalf("want one completed run: %+v %v", runs, err)
	}
}

func TestAFailedRunIsAnErrorNotRetried(t *testing.T) {
	fx := newFixture(t)
	ctx := testContext(t)
	_, err := fx.client.Chat.Completions.New(ctx, ask("broken", openai.UserMessage("x")))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 || apiErr.Type != "server_error" || !strings.Contains(apiErr.Message, "failed") {
		t.Fatalf("failed run: %v", err)
	}
	runs, _, err := fx.rt.List(ctx, run.Filter{Agent: "broken"})
	if err != nil || len(runs) != 1 || fx.hits.Load() != 1 {
		t.Fatalf("want one run from one request, got %d runs, %d requests (%v)", len(runs), fx.hits.Load(), err)
	}
	s := fx.client.Chat.Completions.NewStreaming(ctx, ask("broken", openai.UserMessage("x")))
	for s.Next() {
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("failed run, streamed: %v", err)
	}
}

func TestACallerThatLeavesCancelsTheRun(t *testing.T) {
	fx := newFixture(t)
	ctx, cancel := context.WithCancel(testContext(t))
	var resp *http.Response
	done := make(chan error, 1)
	go func() {
		_, err := fx.client.Chat.Completions.New(ctx, ask("waiter", openai.UserMessage("x")), option.WithResponseInto(&resp), option.WithMaxRetries(0))
		done <- err
	}()
	<-fx.block.entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("call: %v", err)
	}
	runs, _, err := fx.rt.List(testContext(t), run.Filter{Agent: "waiter"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v %v", runs, err)
	}
	rec, err := fx.rt.Wait(testContext(t), runs[0].ID)
	if err != nil || rec.Status != run.StatusCanceled {
		t.Fatalf("run %+v %v", rec, err)
	}
}

// TestBadRequests are refused in OpenAI's shape, naming the parameter.
func TestBadRequests(t *testing.T) {
	fx := newFixture(t)
	cases := []struct {
		name, body string
		status     int
		code       string
		param      string
		says       string
	}{
		{"not json", `{`, 400, "invalid_request", "", "JSON object"},
		{"array", `[]`, 400, "invalid_request", "", "JSON object"},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, 400, "invalid_request", "model", "GET /v1/models"},
		{"no messages", `{"model":"greeter"}`, 400, "invalid_request", "messages", "at least one"},
		{"unknown field", `{"model":"greeter","messages":[{"role":"user","content":"x"}],"tempreature":1}`, 400, "invalid_request", "tempreature", "Unrecognized request argument"},
		{"wrong type", `{"model":"greeter","messages":[{"role":"user","content":"x"}],"stream":"yes"}`, 400, "invalid_request", "stream", "true or false"},
		{"n", `{"model":"greeter","messages":[{"role":"user","content":"x"}],"n":2}`, 400, "invalid_request", "n", "only 1"},
		{"tools", `{"model":"greeter","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}]}`, 400, "invalid_request", "tools", "its own tools"},
		{"bad role", `{"model":"greeter","messages":[{"role":"wizard","content":"x"}]}`, 400, "invalid_request", "messages[0].role", "not a role"},
		{"image part", `{"model":"greeter","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "invalid_request", "messages[0].content[0].type", "only text"},
		{"unknown model", `{"model":"gretter","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found", "model", "known: banker"},
		{"long model name", `{"model":"` + strings.Repeat("m", 5000) + `","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found", "model", "…"},
		{"flow with instance", `{"model":"shout","user":"u1","messages":[{"role":"user","content":"x"}]}`, 400, "invalid_request", "user", "flows have no instances"},
		{"message field type", `{"model":"greeter","messages":[{"role":"user","content":"x"},{"role":"user","content":"y","name":7}]}`, 400, "invalid_request", "messages[1].name", "must be a string"},
		{"n not an integer", `{"model":"greeter","messages":[{"role":"user","content":"x"}],"n":1.5}`, 400, "invalid_request", "n", "an integer"},
		{"state for an agent", `{"model":"greeter","state":{"a":1},"messages":[{"role":"user","content":"x"}]}`, 400, "invalid_request", "state", "only flows"},
		{"state not an object", `{"model":"shout","state":[1],"messages":[{"role":"user","content":"x"}]}`, 400, "invalid_request", "state", "JSON object"},
		{"too large", `{"model":"greeter","messages":[{"role":"user","content":"` + strings.Repeat("x", 70<<10) + `"}]}`, 413, "request_too_large", "", "server.max_body_bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", fx.url+"/v1/chat/completions", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer secret")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			var body struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    string  `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(data, &body); err != nil {
				t.Fatalf("%d %s", resp.StatusCode, data)
			}
			param := ""
			if body.Error.Param != nil {
				param = *body.Error.Param
			}
			if resp.StatusCode != tc.status || body.Error.Code != tc.code || param != tc.param || !strings.Contains(body.Error.Message, tc.says) || body.Error.Type == "" {
				t.Fatalf("got %d %s", resp.StatusCode, data)
			}
			if len(data) > 2000 {
				t.Fatalf("error of %d bytes echoes the request", len(data))
			}
		})
	}
	// Without the API token: 401.
	resp, err := http.Post(fx.url+"/v1/chat/completions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}
