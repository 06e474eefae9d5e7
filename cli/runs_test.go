package cli_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/flow"
	"github.com/myriad-ai/myriad/model/scripted"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

func TestRunsCommandsAgainstAServer(t *testing.T) {
	b, _ := storetest.Open(t)
	rules, _ := scripted.ParseRules([]byte(`- reply: {text: "hello {{.LastUser}}"}`))
	m, err := scripted.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"greeter": {Model: m}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	srv := httptest.NewServer(api.New(rt, api.Options{Token: "tok"}))
	t.Cleanup(srv.Close)
	t.Setenv("MYRIAD_API_TOKEN", "tok")
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "greeter", Input: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Wait(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "runs", "events", "--server", srv.URL, rec.ID)
	if code != 0 || !strings.Contains(out, "run completed") {
		t.Fatalf("events: %d %q %q", code, out, errs)
	}
	code, out, _ = runCLI(t, "runs", "show", "--server", srv.URL, rec.ID)
	if code != 0 || !strings.Contains(out, "status   completed") || !strings.Contains(out, "output:\n  hello bob") {
		t.Fatalf("show: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "runs", "show", "--server", srv.URL, "--json", rec.ID)
	if code != 0 || !strings.Contains(out, `"output": "hello bob"`) {
		t.Fatalf("show --json: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "runs", "list", "--server", srv.URL, "--status", "completed")
	if code != 0 || !strings.Contains(out, rec.ID) || !strings.Contains(out, "greeter") {
		t.Fatalf("list: %d %q", code, out)
	}
	code, _, errs = runCLI(t, "runs", "resolve", "--server", srv.URL, "--action", "skip", rec.ID)
	if code != 1 || !strings.Contains(errs, "not in_doubt") {
		t.Fatalf("resolve of a completed run: %d %q", code, errs)
	}
	code, _, errs = runCLI(t, "runs", "show", "--server", srv.URL, "--token-env", "NO_SUCH_TOKEN_VAR", rec.ID)
	if code != 1 || !strings.Contains(errs, "unauthorized") || !strings.Contains(errs, "NO_SUCH_TOKEN_VAR") || !strings.Contains(errs, "empty or unset") {
		t.Fatalf("without a token: %d %q", code, errs)
	}
	t.Setenv("WRONG_TOKEN", "nope")
	code, _, errs = runCLI(t, "runs", "show", "--server", srv.URL, "--token-env", "WRONG_TOKEN", rec.ID)
	if code != 1 || !strings.Contains(errs, "refused the API token in the environment variable WRONG_TOKEN") {
		t.Fatalf("a wrong token: %d %q", code, errs)
	}
	code, out, _ = runCLI(t, "storage", "--server", srv.URL)
	if code != 0 || !strings.Contains(out, "MYRIAD_JOURNAL") || !strings.Contains(out, "1 runs") {
		t.Fatalf("storage: %d %q", code, out)
	}
	code, out, errs = runCLI(t, "runs", "delete", "--server", srv.URL, rec.ID)
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %d %q %q", code, out, errs)
	}
	code, _, errs = runCLI(t, "runs", "show", "--server", srv.URL, rec.ID)
	if code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("show after delete: %d %q", code, errs)
	}
}

func TestApprovalCommands(t *testing.T) {
	b, _ := storetest.Open(t)
	rules, _ := scripted.ParseRules([]byte(`
- when: {last_tool: deploy}
  reply: {text: "deploy said: {{.LastToolResult}}"}
- reply: {tool_calls: [{name: deploy, arguments: {env: prod}}]}
`))
	m, _ := scripted.New(rules)
	deploy, err := tool.NewFunc("deploy", "Deploys.", func(_ context.Context, _ *tool.Call, in struct {
		Env string `json:"env"`
	}) (string, error) {
		return "deployed to " + in.Env, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{"ops": {Model: m, Tools: []tool.Tool{deploy.RequireApproval()}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	srv := httptest.NewServer(api.New(rt, api.Options{}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Agent: "ops", Input: "ship it"})
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ = rt.Wait(ctx, rec.ID); rec.Status != run.StatusWaiting {
		t.Fatalf("status %s", rec.Status)
	}
	code, out, errs := runCLI(t, "runs", "approvals", "--server", srv.URL)
	if code != 0 || !strings.Contains(out, rec.ID) || !strings.Contains(out, "deploy") || !strings.Contains(out, "1-0") {
		t.Fatalf("approvals: %d %q %q", code, out, errs)
	}
	code, out, errs = runCLI(t, "runs", "decide", "--server", srv.URL, "--decision", "approve", "--arguments", `{"env":"staging"}`, rec.ID, "1-0")
	if code != 0 || !strings.Contains(out, rec.ID) {
		t.Fatalf("decide: %d %q %q", code, out, errs)
	}
	if rec, _ = rt.Wait(ctx, rec.ID); rec.Output != "deploy said: deployed to staging" {
		t.Fatalf("output %q", rec.Output)
	}
	code, out, _ = runCLI(t, "runs", "events", "--server", srv.URL, rec.ID)
	if code != 0 || !strings.Contains(out, "approval 1-0 asked") || !strings.Contains(out, "approval 1-0: approve with arguments") {
		t.Fatalf("events: %d %q", code, out)
	}
}

func TestRunsAnswerAFlow(t *testing.T) {
	b, _ := storetest.Open(t)
	flows := map[string]*flow.Flow{"f": {Start: []string{"ask"}, Output: "answer",
		Nodes: map[string]*flow.Node{"ask": {Ask: &flow.Ask{Prompt: "name?"}, Output: "answer"}}}}
	rt, err := engine.New(b, engine.Options{Flows: flows})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	srv := httptest.NewServer(api.New(rt, api.Options{}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	rec, _, err := rt.Submit(ctx, engine.SubmitRequest{Flow: "f", Input: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ = rt.Wait(ctx, rec.ID); rec.Status != run.StatusWaiting {
		t.Fatalf("status %s", rec.Status)
	}
	code, out, _ := runCLI(t, "runs", "list", "--server", srv.URL)
	if code != 0 || !strings.Contains(out, "flow f") || !strings.Contains(out, "waiting (input)") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, "runs", "answer", "--server", srv.URL, rec.ID, "ask#1", "Ada"); code != 2 || !strings.Contains(errs, "not JSON") {
		t.Fatalf("unquoted text: %d %q", code, errs)
	}
	if code, out, errs := runCLI(t, "runs", "answer", "--server", srv.URL, rec.ID, "ask#1", `"Ada"`); code != 0 || !strings.Contains(out, rec.ID) {
		t.Fatalf("answer: %d %q %q", code, out, errs)
	}
	if rec, _ = rt.Wait(ctx, rec.ID); rec.Status != run.StatusCompleted || rec.Output != "Ada" {
		t.Fatalf("%s %q", rec.Status, rec.Output)
	}
}
