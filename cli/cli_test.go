package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/cli"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestQuickstartRunsOffline(t *testing.T) {
	t.Setenv("MYRIAD_MODEL", "")
	code, out, errs := runCLI(t, "run", "--config", "../examples/quickstart/myriad.yaml", "assistant", "What time is it in Tokyo?")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"run started: assistant", "call current_time", "tool current_time →", "+09:00", "run completed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunJSONLinesAndExitStatus(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "myriad.yaml")
	os.WriteFile(cfg, []byte(`
models:
  local: {provider: scripted, rules: [{when: {last_user: fail}, reply: {error: "scripted failure", error_status: 400}}, {reply: {text: fine}}]}
agents:
  a: {model: local}
`), 0o600)
	code, out, _ := runCLI(t, "run", "--config", cfg, "--json", "a", "hello")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last struct{ Type string }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Type != "run.completed" {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	code, _, errs := runCLI(t, "run", "--config", cfg, "a", "please fail")
	if code != 1 || !strings.Contains(errs, "scripted failure") {
		t.Fatalf("failing run: exit %d, stderr %q", code, errs)
	}
}

func TestValidate(t *testing.T) {
	code, out, _ := runCLI(t, "validate", "--config", "../examples/quickstart/myriad.yaml")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("exit %d %q", code, out)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("models: {fast: {provider: scripted, rules: [{reply: {text: x}}]}}\nagents: {triage: {model: fats}}\n"), 0o600)
	code, _, errs := runCLI(t, "validate", "--config", bad)
	if code != 1 || !strings.Contains(errs, `agents.triage.model: unknown model "fats" (known: fast)`) {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage: myriad"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"run", "--config", "x.yaml"}, 2, "need AGENT (or FLOW) and INPUT"},
		{[]string{"mock-llm"}, 2, "--rules is required"},
		{[]string{"runs"}, 2, "missing subcommand"},
		{[]string{"bench", "--config", "x.yaml"}, 2, "need --agent"},
		{[]string{"serve", "--config", "/nonexistent/myriad.yaml"}, 1, "--config"},
		{[]string{"serve", "--log-format", "yaml"}, 2, `--log-format: unknown format "yaml" (known: text, json)`},
		{[]string{"run", "--log-level", "loud", "a", "b"}, 2, `--log-level: unknown level "loud"`},
		{[]string{"runs", "cancel", "run_x", "--reason", "why"}, 2, "runs cancel does not take --reason"},
		{[]string{"serve", "--config", "../examples/quickstart/myriad.yaml", "--workers", "-3"}, 2, "--workers: -3"},
		{[]string{"serve", "--config", "../examples/quickstart/myriad.yaml", "--listen", "nonsense"}, 2, `--listen "nonsense": not an address`},
	}
	for _, tc := range tests {
		code, _, errs := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "myriad ") {
		t.Errorf("version: %d %q", code, out)
	}
}

// Asking for help is not an error: every command's -h exits 0 with its
// usage.
func TestHelpExitsZero(t *testing.T) {
	cmds := [][]string{{"-h"}, {"help"}, {"runs", "list"}, {"runs", "show"}, {"runs", "events"}, {"runs", "cancel"}, {"runs", "resolve"}, {"runs", "submit"}, {"runs", "fork"}}
	for _, c := range []string{"serve", "mcp", "run", "runs", "validate", "mock-llm", "bench", "version", "agents", "flows"} {
		cmds = append(cmds, []string{c})
	}
	for _, args := range cmds {
		if args[0] != "-h" && args[0] != "help" {
			args = append(args, "-h")
		}
		code, _, errs := runCLI(t, args...)
		if code != 0 || !strings.Contains(errs, "Usage") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

func TestServeRefusesPublicAddressWithoutToken(t *testing.T) {
	code, _, errs := runCLI(t, "serve", "--config", "../examples/quickstart/myriad.yaml", "--data", t.TempDir(), "--listen", "0.0.0.0:0")
	if code != 1 || !strings.Contains(errs, "refusing to listen on 0.0.0.0:0 without authentication") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

// Cluster flags are checked before anything starts, and routes on a
// public address need a secret.
func TestServeChecksClusterFlags(t *testing.T) {
	t.Setenv("MYRIAD_CLUSTER_SECRET", "")
	base := []string{"serve", "--config", "../examples/quickstart/myriad.yaml", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--cluster-name", "c", "--cluster-listen", "0.0.0.0:6222"}, 1, "refusing to open cluster routes on 0.0.0.0:6222 without a secret: set MYRIAD_CLUSTER_SECRET"},
		{[]string{"--cluster-name", "c", "--cluster-listen", "127.0.0.1"}, 2, "server.cluster.listen: write it HOST:PORT"},
		{[]string{"--cluster-listen", "127.0.0.1:6222"}, 2, "server.cluster.name: missing or invalid"},
		{[]string{"--cluster-name", "c", "--cluster-listen", "127.0.0.1:6222", "--routes", "a,127.0.0.1:6223"}, 2, "server.cluster.routes[0]: write it HOST:PORT"},
		{[]string{"--cluster-name", "c", "--cluster-listen", "127.0.0.1:6222", "--nats", "nats://127.0.0.1:4222"}, 2, "--nats joins an external NATS cluster"},
		{[]string{"--replicas", "7"}, 2, "--replicas 7: give 1 to 5 copies"},
	}
	for _, tc := range tests {
		code, _, errs := runCLI(t, append(append([]string{}, base...), tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}

// myriad run stops at an approval with exit status 3, keeps the waiting
// run in its data directory and says how to go on; serving that directory
// and deciding from the command line ends the run.
func TestRunStopsAtAnApproval(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "myriad.yaml")
	os.WriteFile(cfg, []byte(`
models:
  local: {provider: scripted, rules: [{when: {last_tool: ship}, reply: {text: "stopped: {{.LastToolResult}}"}}, {reply: {tool_calls: [{name: ship, arguments: {}}]}}]}
tools:
  ship: {type: http, url: "http://127.0.0.1:9/ship", description: Ships., approval: required}
agents:
  a: {model: local, tools: [ship]}
`), 0o600)
	code, out, errs := runCLI(t, "run", "--config", cfg, "a", "go")
	if code != 3 || !strings.Contains(out, "approval 1-0 asked: ship({})") || !strings.Contains(out, "waiting for approval of 1-0") || !strings.Contains(errs, "waits for approval: decide with") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	m := regexp.MustCompile(`(?m)myriad runs decide (\S+) (\S+) --decision approve\|deny[\s\S]*It is kept in (\S+): serve it with\n  myriad serve --config \S+ --data (\S+)`).FindStringSubmatch(errs)
	if m == nil {
		t.Fatalf("no way to go on in:\n%s", errs)
	}
	runID, approval, kept := m[1], m[2], m[3]
	t.Cleanup(func() { os.RemoveAll(kept) })
	srv := serving(t, cfg, kept)
	code, out, errs = runCLI(t, "runs", "show", "--server", srv.base, runID)
	if code != 0 || !strings.Contains(out, "status") || !strings.Contains(out, "waiting (for approval)") || !strings.Contains(out, "myriad runs decide "+runID) {
		t.Fatalf("runs show: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs = runCLI(t, "runs", "decide", "--server", srv.base, runID, approval, "--decision", "deny", "--reason", "not today"); code != 0 {
		t.Fatalf("runs decide: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "runs", "events", "--server", srv.base, runID)
	if code != 0 || !strings.Contains(out, "run completed") {
		t.Fatalf("runs events: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "runs", "show", "--server", srv.base, "--json", runID)
	var rec struct{ Status, Output string }
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil || rec.Status != "completed" || !strings.Contains(rec.Output, "stopped") {
		t.Fatalf("runs show --json: exit %d %s", code, out)
	}
}

// runs submit starts a run and, with --follow, prints it to its end with
// myriad run's exit status; agents and flows list what the server has.
func TestSubmitAndCatalogCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "myriad.yaml")
	os.WriteFile(cfg, []byte(`
models:
  local: {provider: scripted, rules: [{when: {last_user: fail}, reply: {error: "scripted failure", error_status: 400}}, {reply: {text: "fine: {{.Input}}"}}]}
agents:
  a: {model: local, description: Says fine.}
flows:
  twice: {start: [one], nodes: {one: {agent: a, output: out}}, output: out}
`), 0o600)
	srv := serving(t, cfg, filepath.Join(dir, "data"))
	code, out, errs := runCLI(t, "runs", "submit", "--server", srv.base, "--follow", "a", "hello", "there")
	if code != 0 || !strings.Contains(out, "run completed") || !strings.Contains(out, "fine: hello there") {
		t.Fatalf("submit --follow: exit %d\n%s\n%s", code, out, errs)
	}
	first := regexp.MustCompile(`run (run_\w+) accepted`).FindStringSubmatch(errs)
	if first == nil {
		t.Fatalf("submit --follow named no run: %s", errs)
	}
	code, out, errs = runCLI(t, "runs", "fork", "--server", srv.base, first[1], "--step", "2")
	forked := regexp.MustCompile(`^(run_\w+): forked from`).FindStringSubmatch(out)
	if code != 0 || forked == nil {
		t.Fatalf("runs fork: exit %d %s %s", code, out, errs)
	}
	if code, out, _ = runCLI(t, "runs", "events", "--server", srv.base, forked[1]); code != 0 || !strings.Contains(out, "run completed") {
		t.Fatalf("the fork: exit %d %s", code, out)
	}
	if code, _, errs = runCLI(t, "runs", "fork", "--server", srv.base, first[1], "--step", "3"); code != 1 || !strings.Contains(errs, "the run's end") {
		t.Fatalf("a fork at the end: exit %d %s", code, errs)
	}
	if code, _, errs = runCLI(t, "runs", "submit", "--server", srv.base, "--follow", "a", "fail"); code != 1 || !strings.Contains(errs, "scripted failure") {
		t.Fatalf("a failing run: exit %d %s", code, errs)
	}
	code, out, _ = runCLI(t, "runs", "submit", "--server", srv.base, "twice", "go")
	if code != 0 || !strings.Contains(out, "myriad runs events run_") {
		t.Fatalf("submit a flow: exit %d %s", code, out)
	}
	// Metadata on submit, and as a filter with days on list.
	if code, _, errs = runCLI(t, "runs", "submit", "--server", srv.base, "--metadata", "tenant=acme", "--follow", "a", "tagged"); code != 0 {
		t.Fatalf("submit --metadata: exit %d %s", code, errs)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	code, out, _ = runCLI(t, "runs", "list", "--server", srv.base, "--metadata", "tenant=acme", "--from", today, "--json")
	if code != 0 || strings.Count(out, `"tenant": "acme"`) != 1 {
		t.Fatalf("list --metadata: exit %d %s", code, out)
	}
	if code, out, _ = runCLI(t, "runs", "list", "--server", srv.base, "--to", today, "--json"); code != 0 || strings.Contains(out, "run_") {
		t.Fatalf("list --to today: exit %d %s", code, out)
	}
	for _, bad := range [][]string{{"--metadata", "tenant"}, {"--from", "yesterday"}, {"--metadata", "t=a", "--metadata", "t=b"}} {
		if code, _, errs = runCLI(t, append([]string{"runs", "list", "--server", srv.base}, bad...)...); code != 2 {
			t.Errorf("runs list %v: exit %d %s, want 2", bad, code, errs)
		}
	}
	if code, out, _ = runCLI(t, "agents", "--server", srv.base); code != 0 || !strings.Contains(out, "Says fine.") {
		t.Fatalf("agents: %d %s", code, out)
	}
	if code, out, _ = runCLI(t, "flows", "--server", srv.base); code != 0 || !strings.Contains(out, "twice") {
		t.Fatalf("flows: %d %s", code, out)
	}
}

// A question with a deadline answers itself: myriad run waits for it
// rather than stopping, and says so.
func TestRunWaitsForADeadline(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "myriad.yaml")
	os.WriteFile(cfg, []byte(`
models:
  local: {provider: scripted, rules: [{reply: {text: hi}}]}
agents:
  a: {model: local}
flows:
  f:
    start: ask
    nodes:
      ask: {ask: {prompt: "ok?", timeout: 1s, default: "no answer"}, output: answer}
    output: answer
`), 0o600)
	code, out, errs := runCLI(t, "run", "--config", cfg, "f", "go")
	if code != 0 || !strings.Contains(out, "no answer") || !strings.Contains(errs, "waiting for input until") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
}
