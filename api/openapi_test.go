package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/console"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/model/scripted/scriptedtest"
	"github.com/myriad-ai/myriad/store/storetest"
	"github.com/myriad-ai/myriad/tool"
)

// protocols stands for the MCP, A2A and OpenAI handlers: only their routes
// matter here.
type protocols struct{}

func (protocols) ServeHTTP(w http.ResponseWriter, _ *http.Request)   { w.WriteHeader(204) }
func (protocols) ServeCard(w http.ResponseWriter, _ *http.Request)   { w.WriteHeader(204) }
func (protocols) ServeRPC(w http.ResponseWriter, _ *http.Request)    { w.WriteHeader(204) }
func (protocols) ServeREST(w http.ResponseWriter, _ *http.Request)   { w.WriteHeader(204) }
func (protocols) ServeChat(w http.ResponseWriter, _ *http.Request)   { w.WriteHeader(204) }
func (protocols) ServeModels(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }
func (protocols) ServeModel(w http.ResponseWriter, _ *http.Request)  { w.WriteHeader(204) }

// describedServer is an API with every route on, over an engine with an
// agent that answers and one whose tool needs approval.
func describedServer(t *testing.T) (*httptest.Server, *api.Server) {
	t.Helper()
	b, _ := storetest.Open(t)
	send, err := tool.NewFunc("send", "Sends.", func(context.Context, *tool.Call, struct{}) (string, error) { return "sent", nil })
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.New(b, engine.Options{Agents: map[string]*agent.Agent{
		"greeter": {Model: scriptedtest.Model(t, `- reply: {text: "hello"}`), ModelName: "local", Prices: model.Prices{{Input: 1, Output: 1}}},
		"mailer": {Model: scriptedtest.Model(t, "- when: {last_tool: send}\n  reply: {text: done}\n- reply: {tool_calls: [{name: send, arguments: {}}]}"),
			Tools: []tool.Tool{send.RequireApproval()}},
	}, Budgets: []engine.Budget{{Name: "teams", MetadataKey: "team", USD: 5, Window: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Stop)
	a := api.New(rt, api.Options{Version: "test", MCP: protocols{}, A2A: protocols{}, OpenAI: protocols{}, Console: console.Handler(),
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "# metrics") })})
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv, a
}

// description reads /openapi.json.
func description(t *testing.T, base string) map[string]any {
	t.Helper()
	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&doc) != nil || doc["openapi"] != "3.1.0" {
		t.Fatalf("/openapi.json: %s", resp.Status)
	}
	return doc
}

// specPath is a registered pattern's method and path as OpenAPI writes them.
func specPath(pattern string) (method, path string) {
	method, path, found := strings.Cut(pattern, " ")
	if !found {
		method, path = "GET", pattern
	}
	return strings.ToLower(method), strings.ReplaceAll(strings.ReplaceAll(path, "{rest...}", "{rest}"), "{$}", "")
}

// Every route the server registers is described, and nothing else is.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	srv, a := describedServer(t)
	paths := description(t, srv.URL)["paths"].(map[string]any)
	described := map[string]bool{}
	for path, ops := range paths {
		for method := range ops.(map[string]any) {
			described[method+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, pattern := range a.Routes() { // those for one method first
		if method, path := specPath(pattern); strings.Contains(pattern, " ") {
			served[method+" "+path] = true
		}
	}
	for _, pattern := range a.Routes() {
		if _, path := specPath(pattern); !strings.Contains(pattern, " ") {
			for _, m := range []string{"get", "post", "delete"} {
				if !served[m+" "+path] {
					served[m+" "+path] = true
				}
			}
		}
	}
	for op := range served {
		if !described[op] {
			t.Errorf("%s is served but not described", op)
		}
	}
	for op := range described {
		if !served[op] {
			t.Errorf("%s is described but not served", op)
		}
	}
}

// The bodies the handlers answer are the ones the description gives, for
// each route a client can call with JSON.
func TestOpenAPIMatchesTheHandlers(t *testing.T) {
	srv, _ := describedServer(t)
	paths := description(t, srv.URL)["paths"].(map[string]any)
	// do calls a route and checks its answer against its description.
	do := func(pattern, target, body string) map[string]any {
		t.Helper()
		method, path := specPath(pattern)
		req, _ := http.NewRequest(strings.ToUpper(method), srv.URL+target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		op, _ := paths[path].(map[string]any)[method].(map[string]any)
		answer, _ := op["responses"].(map[string]any)[strconv.Itoa(resp.StatusCode)].(map[string]any)
		if answer == nil {
			t.Fatalf("%s %s answered %s, which its description does not list: %s", method, target, resp.Status, data)
		}
		content := answer["content"].(map[string]any)
		media := strings.Split(resp.Header.Get("Content-Type"), ";")[0]
		described, _ := content[media].(map[string]any)
		if described == nil {
			t.Fatalf("%s %s answered %s, described as %v", method, target, media, slices.Collect(maps.Keys(content)))
		}
		if media != "application/json" {
			return nil
		}
		schemaJSON, _ := json.Marshal(described["schema"])
		var schema jsonschema.Schema
		if err := json.Unmarshal(schemaJSON, &schema); err != nil {
			t.Fatal(err)
		}
		resolved, err := schema.Resolve(nil)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		var instance any
		if err := json.Unmarshal(data, &instance); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, target, data)
		}
		if err := resolved.Validate(instance); err != nil {
			t.Errorf("%s %s %d: the answer does not match its description: %v\n%s", method, target, resp.StatusCode, err, data)
		}
		out, _ := instance.(map[string]any)
		return out
	}
	do("GET /healthz", "/healthz", "")
	do("GET /readyz", "/readyz", "")
	do("GET /metrics", "/metrics", "")
	ref := do("POST /v1/runs", "/v1/runs", `{"agent":"greeter","input":"hi","metadata":{"team":"a"}}`)
	id := ref["id"].(string)
	do("POST /v1/runs", "/v1/runs", `{"agent":"nobody","input":"hi"}`)
	do("GET /v1/runs/{id}", "/v1/runs/"+id+"?wait=10s", "")
	do("GET /v1/runs/{id}", "/v1/runs/run_00000000000000000000000000aa", "")
	do("GET /v1/runs", "/v1/runs?limit=5", "")
	do("GET /v1/runs", "/v1/runs?limit=many", "")
	for query, want := range map[string]int{"metadata[team]=a&from=2020-01-01": 1, "metadata[team]=b": 0, "to=2020-01-01": 0} {
		if runs := do("GET /v1/runs", "/v1/runs?"+query, "")["runs"].([]any); len(runs) != want {
			t.Errorf("%s: %d runs, want %d", query, len(runs), want)
		}
	}
	do("GET /v1/runs/{id}/events", "/v1/runs/"+id+"/events", "")
	do("POST /v1/runs/{id}/cancel", "/v1/runs/"+id+"/cancel", "")
	do("POST /v1/runs/{id}/resolve", "/v1/runs/"+id+"/resolve", `{"action":"skip"}`)
	do("POST /v1/runs/{id}/fork", "/v1/runs/"+id+"/fork", `{"step":2}`)
	do("POST /v1/runs/{id}/fork", "/v1/runs/"+id+"/fork", `{"step":99}`)
	do("POST /v1/runs/{id}/input", "/v1/runs/"+id+"/input", `{"key":"ask#1","value":"yes"}`)
	mailer := do("POST /v1/runs", "/v1/runs", `{"agent":"mailer","input":"go"}`)["id"].(string)
	waiting := do("GET /v1/runs/{id}", "/v1/runs/"+mailer+"?wait=10s", "")
	approvals := do("GET /v1/approvals", "/v1/approvals", "")["approvals"].([]any)
	if len(approvals) != 1 || waiting["status"] != "waiting" {
		t.Fatalf("approvals %v, run %v", approvals, waiting)
	}
	approval := approvals[0].(map[string]any)["approval_id"].(string)
	do("POST /v1/runs/{id}/approvals/{approval_id}", "/v1/runs/"+mailer+"/approvals/"+approval, `{"decision":"approve"}`)
	do("GET /v1/runs/{id}", "/v1/runs/"+mailer+"?wait=10s", "")
	do("GET /v1/agents", "/v1/agents", "")
	do("GET /v1/flows", "/v1/flows", "")
	do("GET /v1/usage", "/v1/usage?group_by=metadata.team", "")
	do("GET /v1/usage", "/v1/usage?group_by=color", "")
	budgets := do("GET /v1/budgets", "/v1/budgets", "")["budgets"].([]any)
	if spent := budgets[0].(map[string]any)["spent"].([]any); len(spent) != 1 || spent[0].(map[string]any)["value"] != "a" {
		t.Fatalf("budgets %v, want team a's spend", budgets)
	}
}
