package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/nats-io/nats-server/v2/server"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/api/client"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model/scripted"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

func newServer(t *testing.T, token string, workers bool) (*httptest.Server, *engine.Engine) {
	t.Helper()
	return newServerWith(t, token, workers, api.Options{})
}

func newServerWith(t *testing.T, token string, workers bool, opts api.Options) (*httptest.Server, *engine.Engine) {
	t.Helper()
	b, _ := storetest.Open(t)
	rules, err := scripted.ParseRules([]byte(`
- when: {last_user: "^echo (?P<x>.*)"}
  reply: {text: "{{.Match.x}}"}
- reply: {text: "hello"}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := scripted.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"greeter": {Model: m, ModelName: "local", Description: "says hello"}},
		CommandWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if workers {
		if err := rt.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rt.Stop)
	}
	opts.Token, opts.MaxBodyBytes, opts.Version = token, 4096, "test"
	srv := httptest.NewServer(api.New(rt, opts))
	t.Cleanup(srv.Close)
	return srv, rt
}

func call(t *testing.T, method, url, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", method, url, err)
	}
	return resp.StatusCode, out
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestRunLifecycleOverHTTP(t *testing.T) {
	srv, _ := newServer(t, "", true)
	c := client.New(srv.URL, "")
	ctx := context.Background()
	ref, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "greeter", Input: "echo hi there"}, "")
	if err != nil || ref.Status != run.StatusQueued {
		t.Fatalf("submit: %+v %v", ref, err)
	}
	var types []string
	var ids []uint64
	err = c.Events(ctx, ref.ID, 0, func(ev run.TreeEvent) bool {
		types = append(types, ev.Type)
		ids = append(ids, ev.Seq)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(types, " "); got != "run.started model.response run.completed" {
		t.Fatalf("events %q (the stream must end after the terminal event)", got)
	}
	// Last-Event-ID resumes after the given event.
	var resumed []string
	if err := c.Events(ctx, ref.ID, ids[0], func(ev run.TreeEvent) bool { resumed = append(resumed, ev.Type); return true }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(resumed, " "); got != "model.response run.completed" {
		t.Fatalf("resumed events %q", got)
	}
	// Resuming after the last event of a finished run ends at once.
	var none []string
	if err := c.Events(ctx, ref.ID, ids[len(ids)-1], func(ev run.TreeEvent) bool { none = append(none, ev.Type); return true }); err != nil || len(none) != 0 {
		t.Fatalf("resume after the end: %v %v", none, err)
	}
	rec, err := c.Wait(ctx, ref.ID, 10*time.Second)
	if err != nil || rec.Status != run.StatusCompleted || rec.Output != "hi there" || rec.EndedAt == nil {
		t.Fatalf("get: %+v %v", rec, err)
	}
	list, err := c.List(ctx, run.Filter{Agent: "greeter", Status: "completed", Limit: 10})
	if err != nil || len(list.Runs) != 1 || list.Runs[0].ID != ref.ID {
		t.Fatalf("list: %+v %v", list, err)
	}
	if list, _ := c.List(ctx, run.Filter{Status: "failed", Limit: 10}); len(list.Runs) != 0 {
		t.Fatalf("status filter ignored: %+v", list)
	}
	code, out := call(t, "GET", srv.URL+"/v1/agents", "", nil)
	if code != 200 || !strings.Contains(mustJSON(out), `"name":"greeter"`) {
		t.Fatalf("agents: %d %v", code, out)
	}
}

func TestListPages(t *testing.T) {
	srv, _ := newServer(t, "", false)
	c := client.New(srv.URL, "")
	ctx := context.Background()
	for range 5 {
		if _, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "greeter", Input: "x"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	cursor := ""
	pages := 0
	for {
		l, err := c.List(ctx, run.Filter{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range l.Runs {
			seen[r.ID] = true
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if len(seen) != 5 || pages != 3 {
		t.Fatalf("saw %d runs in %d pages", len(seen), pages)
	}
	// A wait of nothing reads the run as it is.
	for id := range seen {
		if rec, err := c.Wait(ctx, id, 0); err != nil || rec.ID != id || rec.Status != run.StatusQueued {
			t.Fatalf("wait=0s: %+v %v", rec, err)
		}
		break
	}
	// An instance's turns, by its key.
	for _, key := range []string{"c-1", "c-1", "c-2"} {
		if _, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "greeter", Input: "x", Instance: key}, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, instance := range []string{"c-1", "greeter/c-1"} {
		l, err := c.List(ctx, run.Filter{Instance: instance})
		if err != nil || len(l.Runs) != 2 || l.Runs[0].Instance != "c-1" || l.Runs[1].Instance != "c-1" {
			t.Fatalf("instance %s: %+v %v", instance, l, err)
		}
	}
}

func TestErrorsAreJSONWithStableCodes(t *testing.T) {
	srv, _ := newServer(t, "", false)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown agent", "POST", "/v1/runs", `{"agent":"nope","input":"x"}`, 404, api.CodeUnknownAgent},
		{"missing input", "POST", "/v1/runs", `{"agent":"greeter"}`, 400, api.CodeBadRequest},
		{"unknown field", "POST", "/v1/runs", `{"agent":"greeter","input":"x","colour":1}`, 400, api.CodeBadRequest},
		{"not json", "POST", "/v1/runs", `{"agent":`, 400, api.CodeBadRequest},
		{"too large", "POST", "/v1/runs", `{"agent":"greeter","input":"` + strings.Repeat("x", 5000) + `"}`, 413, api.CodeTooLarge},
		{"bad instance", "POST", "/v1/runs", `{"agent":"greeter","input":"x","instance":"a b"}`, 400, api.CodeBadRequest},
		{"no such run", "GET", "/v1/runs/run_00000000000000000000000000aa", "", 404, api.CodeNotFound},
		{"malformed id", "GET", "/v1/runs/../../etc", "", 404, api.CodeNotFound},
		{"bad status filter", "GET", "/v1/runs?status=done", "", 400, api.CodeBadRequest},
		{"bad limit", "GET", "/v1/runs?limit=0", "", 400, api.CodeBadRequest},
		{"bad cursor", "GET", "/v1/runs?cursor=garbage", "", 400, api.CodeBadRequest},
		{"unknown list parameter", "GET", "/v1/runs?statuss=done", "", 400, api.CodeBadRequest},
		{"bad instance filter", "GET", "/v1/runs?instance=greeter/", "", 400, api.CodeBadRequest},
		{"bad time filter", "GET", "/v1/runs?from=yesterday", "", 400, api.CodeBadRequest},
		{"empty time range", "GET", "/v1/runs?from=2026-02-01&to=2026-01-01", "", 400, api.CodeBadRequest},
		{"metadata without a key", "GET", "/v1/runs?metadata=x", "", 400, api.CodeBadRequest},
		{"metadata key twice", "GET", "/v1/runs?metadata[t]=a&metadata[t]=b", "", 400, api.CodeBadRequest},
		{"unknown approvals parameter", "GET", "/v1/approvals?agentt=x", "", 400, api.CodeBadRequest},
		{"misspelt wait", "GET", "/v1/runs/run_00000000000000000000000000aa?wiat=5s", "", 400, api.CodeBadRequest},
		{"no wait for no run", "GET", "/v1/runs/run_00000000000000000000000000aa?wait=0s", "", 404, api.CodeNotFound},
		{"a parameter where none is taken", "GET", "/v1/agents?x=1", "", 400, api.CodeBadRequest},
		{"resolve without action", "POST", "/v1/runs/run_00000000000000000000000000aa/resolve", `{}`, 400, api.CodeBadRequest},
		{"unknown route", "GET", "/v2/nothing", "", 404, api.CodeNotFound},
		{"resolve bad action", "POST", "/v1/runs/run_00000000000000000000000000aa/resolve", `{"action":"maybe"}`, 400, api.CodeBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, tc.method, srv.URL+tc.path, tc.body, nil)
			if status != tc.status || errCode(out) != tc.code {
				t.Fatalf("got %d %v, want %d %s", status, out, tc.status, tc.code)
			}
		})
	}
}

func TestAuthAndIdempotency(t *testing.T) {
	srv, _ := newServer(t, "s3cret", false)
	status, out := call(t, "GET", srv.URL+"/v1/agents", "", nil)
	if status != 401 || errCode(out) != api.CodeUnauthorized {
		t.Fatalf("no token: %d %v", status, out)
	}
	for header, want := range map[string]int{"Bearer wrong": 401, "Basic s3cret": 401, "s3cret": 401, "Bearer  s3cret": 200,
		"bearer s3cret": 200, "BEARER s3cret": 200, "Bearers3cret": 401} {
		if status, _ := call(t, "GET", srv.URL+"/v1/agents", "", map[string]string{"Authorization": header}); status != want {
			t.Errorf("Authorization %q: %d, want %d", header, status, want)
		}
	}
	if status, _ := call(t, "GET", srv.URL+"/healthz", "", nil); status != 200 {
		t.Fatalf("healthz needs no token: %d", status)
	}
	h := map[string]string{"Authorization": "Bearer s3cret", "Idempotency-Key": "k-1"}
	s1, a := call(t, "POST", srv.URL+"/v1/runs", `{"agent":"greeter","input":"x"}`, h)
	s2, b := call(t, "POST", srv.URL+"/v1/runs", `{"agent":"greeter","input":"x"}`, h)
	if s1 != 201 || s2 != 200 || a["id"] != b["id"] {
		t.Fatalf("idempotent submit: %d %v / %d %v", s1, a, s2, b)
	}
	if status, out := call(t, "GET", srv.URL+"/v1/runs", "", nil); status != 401 || !strings.Contains(out["error"].(map[string]any)["message"].(string), "MYRIAD_API_TOKEN") {
		t.Fatalf("the 401 should name the variable the CLI reads: %d %v", status, out)
	}
	// A caller's trace context, sent as a header, goes with the run.
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	_, c := call(t, "POST", srv.URL+"/v1/runs", `{"agent":"greeter","input":"traced"}`, map[string]string{"Authorization": "Bearer s3cret", "traceparent": tp})
	_, c = call(t, "GET", srv.URL+"/v1/runs/"+c["id"].(string), "", map[string]string{"Authorization": "Bearer s3cret"})
	if md, _ := c["metadata"].(map[string]any); md["traceparent"] != tp {
		t.Fatalf("traceparent not kept: %v", c)
	}
}

// A cancel sent while no worker runs is accepted and taken by the first
// worker: the run never runs.
func TestCancelOverHTTP(t *testing.T) {
	srv, rt := newServer(t, "", false)
	c := client.New(srv.URL, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ref, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "greeter", Input: "x"}, "")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.Cancel(ctx, ref.ID)
	if err != nil || rec.Status != run.StatusQueued {
		t.Fatalf("cancel: %+v %v", rec, err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	var types []string
	if err := c.Events(ctx, ref.ID, 0, func(ev run.TreeEvent) bool { types = append(types, ev.Type); return true }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(types, " ") != "run.started run.canceled" {
		t.Fatalf("events %v", types)
	}
	if _, err := c.Resolve(ctx, ref.ID, run.Resolution{Action: "skip"}); err == nil || !strings.Contains(err.Error(), "conflict") {
		t.Fatalf("resolve of a canceled run: %v", err)
	}
}

func mustJSON(v any) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(v)
	return b.String()
}

func FuzzCreateRunBody(f *testing.F) {
	f.Add([]byte(`{"agent":"greeter","input":"hi"}`))
	f.Add([]byte(`{"agent":"greeter","input":"hi","instance":"a/b","metadata":{"k":"v"}}`))
	f.Add([]byte(`{"agent":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"agent":"a","input":"b"} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := api.ParseCreateRun(data)
		if err != nil {
			return
		}
		if req.Agent == "" || strings.TrimSpace(req.Input) == "" {
			t.Fatalf("accepted an empty agent or input: %+v", req)
		}
	})
}

func TestBodyErrorsSpeakJSON(t *testing.T) {
	tests := map[string]string{
		`[]`:                      "the body must be a JSON object, not array",
		`{"agent":1,"input":"x"}`: "agent: must be a string, not number",
		`{"agent":"a","input":"x","metadata":{"k":1}}`: "metadata: must be a string, not number",
		`{"agent":"a","input":"x","colour":1}`:         `unknown field "colour"`,
		`{"agent":`:                                    "invalid JSON body",
	}
	for body, want := range tests {
		_, err := api.ParseCreateRun([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Go ") {
			t.Errorf("%s: %v, want %q and no Go type names", body, err, want)
		}
	}
}

func TestStreamedTextReachesTheEventStream(t *testing.T) {
	b, _ := storetest.Open(t)
	rules, _ := scripted.ParseRules([]byte(`- reply: {text: "a streamed answer in several pieces"}`))
	m, err := scripted.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"talker": {Model: m, Stream: true}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(rt, api.Options{}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "talker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/runs/"+rec.ID+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The stream is subscribed once its headers are here: only now may the run start.
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	var text strings.Builder
	var types []string
	err = client.ReadSSE(resp.Body, func(typ string, data []byte) (bool, error) {
		types = append(types, typ)
		if typ == "model.delta" {
			var d run.Delta
			if err := json.Unmarshal(data, &d); err != nil || d.Turn != 1 || d.RunID != rec.ID {
				t.Fatalf("delta %s: %v", data, err)
			}
			text.WriteString(d.Text)
		}
		return !journal.Terminal(typ), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if text.String() != "a streamed answer in several pieces" || !strings.Contains(strings.Join(types, " "), "model.delta model.delta") {
		t.Fatalf("streamed %q through events %v", text.String(), types)
	}
}

func TestApprovalsOverHTTP(t *testing.T) {
	b, _ := storetest.Open(t)
	rules, _ := scripted.ParseRules([]byte(`
- when: {last_tool: send_email}
  reply: {text: "done: {{.LastToolResult}}"}
- reply: {tool_calls: [{name: send_email, arguments: {to: "a@example.com"}}]}
`))
	m, _ := scripted.New(rules)
	send, err := tool.NewFunc("send_email", "Sends an email.", func(_ context.Context, _ *tool.Call, in struct {
		To string `json:"to"`
	}) (string, error) {
		return "sent to " + in.To, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"mailer": {Model: m, Tools: []tool.Tool{send.RequireApproval()}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	srv := httptest.NewServer(api.New(rt, api.Options{}))
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, "")
	ctx := context.Background()
	ref, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "mailer", Input: "mail them"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := c.Wait(ctx, ref.ID, 10*time.Second); err != nil || rec.Status != run.StatusWaiting {
		t.Fatalf("want waiting: %+v %v", rec, err)
	}
	status, out := call(t, "GET", srv.URL+"/v1/approvals", "", nil)
	list, _ := out["approvals"].([]any)
	if status != 200 || len(list) != 1 {
		t.Fatalf("approvals: %d %v", status, out)
	}
	id, _ := list[0].(map[string]any)["approval_id"].(string)
	status, out = call(t, "POST", srv.URL+"/v1/runs/"+ref.ID+"/approvals/"+id, `{"decision":"maybe"}`, nil)
	if status != 400 || errCode(out) != api.CodeBadRequest {
		t.Fatalf("bad decision: %d %v", status, out)
	}
	status, out = call(t, "POST", srv.URL+"/v1/runs/"+ref.ID+"/approvals/"+id, `{"decision":"approve","arguments":{"to":"b@example.com"}}`, nil)
	if status != 202 {
		t.Fatalf("approve: %d %v", status, out)
	}
	rec, err := c.Wait(ctx, ref.ID, 10*time.Second)
	if err != nil || rec.Status != run.StatusCompleted || rec.Output != "done: sent to b@example.com" {
		t.Fatalf("after approval: %+v %v", rec, err)
	}
	status, out = call(t, "POST", srv.URL+"/v1/runs/"+ref.ID+"/approvals/"+id, `{"decision":"approve"}`, nil)
	if status != 409 || errCode(out) != api.CodeConflict {
		t.Fatalf("deciding twice: %d %v", status, out)
	}
}

// A parent's stream carries its children's events and streamed text, each
// with its path, and ends with the parent's own end.
func TestNestedEventStream(t *testing.T) {
	b, _ := storetest.Open(t)
	parse := func(s string) *scripted.Model {
		rules, err := scripted.ParseRules([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		m, err := scripted.New(rules)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{
		"lead": {Model: parse(`
- when: {last_role: tool}
  reply: {text: "all done"}
- reply: {tool_calls: [{name: helper, arguments: {task: "one"}}, {name: helper, arguments: {task: "two"}}]}
`), SubAgents: []agent.SubAgent{{Agent: "helper"}}},
		"helper": {Model: parse(`- reply: {text: "helped with {{.Input}}"}`), Stream: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(rt, api.Options{}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "lead", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	read := func(lastID string, fn func(typ string, data []byte)) {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/runs/"+rec.ID+"/events", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if lastID == "" {
			if err := rt.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(rt.Stop)
		}
		err = client.ReadSSE(resp.Body, func(typ string, data []byte) (bool, error) {
			fn(typ, data)
			if typ == "model.delta" {
				return true, nil
			}
			var ev run.TreeEvent
			if err := json.Unmarshal(data, &ev); err != nil {
				t.Fatal(err)
			}
			return ev.RunID != rec.ID || !journal.Terminal(typ), nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	text := map[string]string{}
	var childStart string
	read("", func(typ string, data []byte) {
		if typ == "model.delta" {
			var d run.Delta
			_ = json.Unmarshal(data, &d)
			text[d.Path] += d.Text
			return
		}
		var ev run.TreeEvent
		_ = json.Unmarshal(data, &ev)
		lines = append(lines, ev.Path+" "+typ)
		if typ == journal.TypeRunStarted && ev.Path == "lead/helper#2" {
			childStart = strconv.FormatUint(ev.Seq, 10)
		}
	})
	got := strings.Join(lines, "\n")
	for _, want := range []string{"lead run.started", "lead/helper#1 run.started", "lead/helper#2 run.completed", "lead run.completed"} {
		if !strings.Contains(got, want) {
			t.Errorf("stream lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasSuffix(got, "lead run.completed") {
		t.Errorf("the stream did not end with the parent's end:\n%s", got)
	}
	if text["lead/helper#1"] != "helped with one" || text["lead/helper#2"] != "helped with two" {
		t.Errorf("streamed text by path: %q", text)
	}
	// Resuming after the second child's start still places its events (and
	// the first child's) by reading their records.
	var resumed []string
	read(childStart, func(typ string, data []byte) {
		if typ != "model.delta" {
			var ev run.TreeEvent
			_ = json.Unmarshal(data, &ev)
			resumed = append(resumed, ev.Path+" "+typ)
		}
	})
	if len(resumed) == 0 || !strings.Contains(strings.Join(resumed, "\n"), "lead/helper#2 run.completed") {
		t.Errorf("resumed stream:\n%s", strings.Join(resumed, "\n"))
	}
}

// Progress a tool reports while it runs reaches the event stream live.
func TestToolProgressReachesTheEventStream(t *testing.T) {
	b, _ := storetest.Open(t)
	rules, _ := scripted.ParseRules([]byte(`
- when: {last_role: tool}
  reply: {text: "done"}
- reply: {tool_calls: [{name: work}]}
`))
	m, err := scripted.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	work, err := tool.NewFunc("work", "works", func(_ context.Context, c *tool.Call, _ struct{}) (string, error) {
		c.Progress(tool.Progress{Progress: 1, Total: 2, Message: "half way"})
		return "worked", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"worker": {Model: m, Tools: []tool.Tool{work}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(rt, api.Options{}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "worker", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/runs/"+rec.ID+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	var progress *run.ToolProgress
	err = client.ReadSSE(resp.Body, func(typ string, data []byte) (bool, error) {
		if typ == run.LiveProgress {
			progress = &run.ToolProgress{}
			_ = json.Unmarshal(data, progress)
		}
		return !journal.Terminal(typ), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if progress == nil || progress.Message != "half way" || progress.Tool != "work" || progress.Path != "worker" {
		t.Fatalf("progress %+v", progress)
	}
}

// A quiet event stream sends keep-alive comments, and a stream the engine
// stops ends with an error event.
func TestQuietStreamKeepsAliveAndEndsWhenTheEngineStops(t *testing.T) {
	srv, rt := newServerWith(t, "", false, api.Options{KeepAlive: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "greeter", Input: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/runs/"+rec.ID+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != ": keep-alive" {
	}
	if sc.Err() != nil {
		t.Fatal(sc.Err())
	}
	rt.Stop()
	var errEvent bool
	for sc.Scan() {
		if sc.Text() == "event: error" {
			errEvent = true
		}
	}
	if !errEvent {
		t.Fatal("the stream ended without an error event")
	}
}

// TestSubmissionTooLargeForTheNATSServer: a body the API takes but the NATS
// server cannot hold in one message (an external server's small
// max_payload) is refused with 413 and the fix, and leaves nothing behind:
// the same idempotency key works once the input is shorter.
func TestSubmissionTooLargeForTheNATSServer(t *testing.T) {
	b := storetest.Connect(t, storetest.StartServerWith(t, server.Options{MaxPayload: 64 << 10}))
	srv := httptest.NewServer(api.New(greeterEngine(t, b, engine.Options{}), api.Options{MaxBodyBytes: 1 << 20}))
	t.Cleanup(srv.Close)
	long := strings.Repeat("x", 100_000)
	for _, tc := range []struct{ name, body, key string }{
		{"a run", `{"agent":"greeter","input":"` + long + `"}`, ""},
		{"a keyed run", `{"agent":"greeter","input":"` + long + `"}`, "k-long"},
		{"an instance's turn", `{"agent":"greeter","instance":"c-1","input":"` + long + `"}`, ""},
	} {
		h := map[string]string{}
		if tc.key != "" {
			h["Idempotency-Key"] = tc.key
		}
		status, body := call(t, "POST", srv.URL+"/v1/runs", tc.body, h)
		e, _ := body["error"].(map[string]any)
		if status != http.StatusRequestEntityTooLarge || e["code"] != api.CodeTooLarge || !strings.Contains(e["message"].(string), "raise max_payload") {
			t.Errorf("%s: %d %v", tc.name, status, body)
		}
	}
	status, body := call(t, "POST", srv.URL+"/v1/runs", `{"agent":"greeter","input":"short"}`, map[string]string{"Idempotency-Key": "k-long"})
	if status != http.StatusCreated {
		t.Fatalf("the key again with a short input: %d %v", status, body)
	}
	// A page of runs carries a part of long inputs; the run has all.
	status, body = call(t, "POST", srv.URL+"/v1/runs", `{"agent":"greeter","input":"`+strings.Repeat("y", 40_000)+`"}`, nil)
	if status != http.StatusCreated {
		t.Fatalf("a 40 KB input: %d %v", status, body)
	}
	c := client.New(srv.URL, "")
	page, err := c.List(context.Background(), run.Filter{})
	if err != nil || len(page.Runs) != 2 || len(page.Runs[0].Input) > api.ListTextBytes || !page.Runs[0].InputTruncated || page.Runs[1].InputTruncated {
		t.Fatalf("the page: %v %v", page, err)
	}
	whole, err := c.Get(context.Background(), body["id"].(string))
	if err != nil || len(whole.Input) != 40_000 || whole.InputTruncated {
		t.Fatalf("the run: %d bytes of input (cut %v), %v", len(whole.Input), whole.InputTruncated, err)
	}
}

// Past server.max_backlog, POST /v1/runs answers 429 with Retry-After and
// the code "overloaded".
func TestOverloadedSubmissionsGet429(t *testing.T) {
	b, _ := storetest.Open(t)
	srv := httptest.NewServer(api.New(greeterEngine(t, b, engine.Options{MaxBacklog: 1}), api.Options{MaxBodyBytes: 4096}))
	t.Cleanup(srv.Close)
	// No workers: the runs wait, and the backlog, read anew every
	// quarter second, soon passes the limit.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Post(srv.URL+"/v1/runs", "application/json", strings.NewReader(`{"agent":"greeter","input":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			if time.Now().After(deadline) {
				t.Fatal("never refused past max_backlog 1")
			}
			continue
		}
		retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusTooManyRequests || errCode(body) != api.CodeOverloaded || err != nil || retry < 1 || retry > 60 {
			t.Fatalf("past the backlog: %d Retry-After %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		return
	}
}

// DELETE /v1/runs/{id} deletes a root run that ended, with its tree; a run
// at work is refused until it is canceled.
func TestDeleteRun(t *testing.T) {
	srv, rt := newServer(t, "", true)
	c := client.New(srv.URL, "")
	ctx := context.Background()
	ref, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "greeter", Input: "hi"}, "del-1")
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := c.Wait(ctx, ref.ID, 20*time.Second); err != nil || rec.Status != run.StatusCompleted {
		t.Fatalf("the run: %v %v", rec, err)
	}
	req, _ := http.NewRequest("DELETE", srv.URL+"/v1/runs/"+ref.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if status, body := call(t, "GET", srv.URL+"/v1/runs/"+ref.ID, "", nil); status != http.StatusNotFound {
		t.Fatalf("a deleted run: %d %v", status, body)
	}
	if evs, err := rt.Events(ctx, ref.ID); err == nil && len(evs) > 0 {
		t.Fatalf("a deleted run's journal holds %d entries", len(evs))
	}
	if page, err := c.List(ctx, run.Filter{}); err != nil || len(page.Runs) != 0 {
		t.Fatalf("listed after the delete: %v %v", page, err)
	}
	if status, _ := call(t, "DELETE", srv.URL+"/v1/runs/"+ref.ID, "", nil); status != http.StatusNotFound {
		t.Fatalf("deleted twice: %d", status)
	}
	// A retry of the submission that made it does not make it again.
	status, body := call(t, "POST", srv.URL+"/v1/runs", `{"agent":"greeter","input":"hi"}`, map[string]string{"Idempotency-Key": "del-1"})
	if status != http.StatusConflict || !strings.Contains(fmt.Sprint(body), "was deleted") {
		t.Fatalf("a retry of a deleted run's key: %d %v", status, body)
	}
	if evs, err := rt.Events(ctx, ref.ID); err == nil && len(evs) > 0 {
		t.Fatalf("the deleted run ran again: %d entries", len(evs))
	}
	rt.Stop() // the next run stays queued
	ref, err = c.Submit(ctx, apitype.CreateRunRequest{Agent: "greeter", Input: "hi"}, "")
	if err != nil {
		t.Fatal(err)
	}
	status, body = call(t, "DELETE", srv.URL+"/v1/runs/"+ref.ID, "", nil)
	if status != http.StatusConflict || !strings.Contains(fmt.Sprint(body), "cancel it first") {
		t.Fatalf("deleting a queued run: %d %v", status, body)
	}
}

// greeterEngine is an engine, not started, whose agent "greeter" answers
// "hello".
func greeterEngine(t *testing.T, b *store.Store, opts engine.Options) *engine.Engine {
	t.Helper()
	rules, err := scripted.ParseRules([]byte(`- reply: {text: "hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := scripted.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	opts.Agents = map[string]*agent.Agent{"greeter": {Model: m}}
	rt, err := engine.New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestInstancesAndBroadcasts(t *testing.T) {
	srv, _ := newServer(t, "", true)
	c := client.New(srv.URL, "")
	ctx := context.Background()
	for _, key := range []string{"eu/team.a/alice", "eu/team.a/bob", "us/carol"} {
		ref, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "greeter", Instance: key, Input: "hi"}, "")
		if err != nil {
			t.Fatal(err)
		}
		if rec, err := c.Wait(ctx, ref.ID, 20*time.Second); err != nil || rec.Status != run.StatusCompleted {
			t.Fatalf("%s: %v %v", key, rec, err)
		}
	}
	page, err := c.Instances(ctx, "greeter", "eu", 1, "")
	if err != nil || len(page.Instances) != 1 || page.Instances[0].Address != "greeter/eu/team.a/alice" || page.NextCursor == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	page, err = c.Instances(ctx, "greeter", "eu", 1, page.NextCursor)
	if err != nil || len(page.Instances) != 1 || page.Instances[0].Key != "eu/team.a/bob" || page.NextCursor != "" {
		t.Fatalf("second page: %+v %v", page, err)
	}
	in, err := c.Instance(ctx, "greeter", "eu/team.a/bob")
	if err != nil || in.Done != 1 || in.Messages != 2 || in.Address != "greeter/eu/team.a/bob" {
		t.Fatalf("instance: %+v %v", in, err)
	}
	res, err := c.Broadcast(ctx, apitype.BroadcastRequest{To: "greeter/eu/*", Input: "news", From: "ops"}, "b-1")
	if err != nil || res.Sent != 2 || len(res.Runs) != 2 {
		t.Fatalf("broadcast: %+v %v", res, err)
	}
	again, err := c.Broadcast(ctx, apitype.BroadcastRequest{To: "greeter/eu/*", Input: "news", From: "ops"}, "b-1")
	if err != nil || !slices.Equal(slices.Sorted(slices.Values(again.Runs)), slices.Sorted(slices.Values(res.Runs))) {
		t.Fatalf("the broadcast again with its key: %+v %v, first %v", again, err, res.Runs)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/v1/instances?limit=0", "", 400, api.CodeBadRequest},
		{"GET", "/v1/instances?under=eu//x", "", 400, api.CodeBadRequest},
		{"GET", "/v1/instances?cursor=x", "", 400, api.CodeBadRequest},
		{"GET", "/v1/instances?sort=x", "", 400, api.CodeBadRequest},
		{"GET", "/v1/instances/greeter/nobody", "", 404, api.CodeNotFound},
		{"GET", "/v1/instances/nosuch/x", "", 404, api.CodeUnknownAgent},
		{"GET", "/v1/instances/greeter/a/.b", "", 400, api.CodeBadRequest},
		{"POST", "/v1/broadcasts", `{"to":"greeter/eu/*"}`, 400, api.CodeBadRequest},
		{"POST", "/v1/broadcasts", `{"to":"greeter","input":"x"}`, 400, api.CodeBadRequest},
		{"POST", "/v1/broadcasts", `{"to":"nosuch/x","input":"x"}`, 404, api.CodeUnknownAgent},
		{"POST", "/v1/broadcasts", `{"to":"nosuch/team/*","input":"x"}`, 404, api.CodeUnknownAgent},
		{"POST", "/v1/broadcasts", `{"to":"greeter/*","input":"x","extra":1}`, 400, api.CodeBadRequest},
	} {
		status, body := call(t, tc.method, srv.URL+tc.path, tc.body, nil)
		if e, _ := body["error"].(map[string]any); status != tc.status || e["code"] != tc.code {
			t.Errorf("%s %s %s: %d %v, want %d %s", tc.method, tc.path, tc.body, status, body, tc.status, tc.code)
		}
	}
}
