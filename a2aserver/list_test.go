package a2aserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/myriad-ai/myriad/engine"
)

// ListTasks (A2A 1.0) pages through the tasks sent to one agent, on both
// bindings, and filters them as the specification says.
func TestA2A1ListTasks(t *testing.T) {
	rt, base := newServer(t)
	url := base + "/a2a/greeter"
	var ids []string
	for i, ctx := range []string{"c1", "c1", "c2"} {
		_, _, data := v1(t, "POST", url, "1.0", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"list-%d","contextId":%q,"role":"ROLE_USER","parts":[{"text":"n%d"}]}}}`, i, ctx, i))
		var out map[string]any
		_ = json.Unmarshal(data, &out)
		id, _ := dig(out, "result", "task", "id").(string)
		if id == "" {
			t.Fatalf("send: %s", data)
		}
		ids = append([]string{id}, ids...) // newest first
	}
	// A run of the same agent started another way is not an A2A task.
	if _, _, err := rt.Submit(context.Background(), engine.SubmitRequest{Agent: "greeter", Input: "not a2a"}); err != nil {
		t.Fatal(err)
	}
	type page struct {
		Tasks []struct {
			ID        string `json:"id"`
			ContextID string `json:"contextId"`
			Artifacts []any  `json:"artifacts"`
			History   []any  `json:"history"`
		} `json:"tasks"`
		NextPageToken string `json:"nextPageToken"`
		PageSize      int    `json:"pageSize"`
		TotalSize     int    `json:"totalSize"`
	}
	rpc := func(params string) (page, map[string]any) {
		_, _, data := v1(t, "POST", url, "1.0", `{"jsonrpc":"2.0","id":1,"method":"ListTasks","params":`+params+`}`)
		var out struct {
			Result page           `json:"result"`
			Error  map[string]any `json:"error"`
		}
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s", data)
		}
		return out.Result, out.Error
	}
	taskIDs := func(p page) []string {
		var out []string
		for _, task := range p.Tasks {
			out = append(out, task.ID)
		}
		return out
	}
	first, _ := rpc(`{"pageSize":2}`)
	if fmt.Sprint(taskIDs(first)) != fmt.Sprint(ids[:2]) || first.NextPageToken != ids[1] || first.TotalSize != 3 || first.PageSize != 2 {
		t.Fatalf("first page %+v, want %v", first, ids)
	}
	if first.Tasks[0].Artifacts != nil {
		t.Fatalf("artifacts without includeArtifacts: %+v", first.Tasks[0])
	}
	second, _ := rpc(`{"pageSize":2,"pageToken":"` + first.NextPageToken + `"}`)
	if fmt.Sprint(taskIDs(second)) != fmt.Sprint(ids[2:]) || second.NextPageToken != "" || second.TotalSize != 3 {
		t.Fatalf("second page %+v", second)
	}
	cases := []struct {
		name, params string
		want         []string
	}{
		{"no params", `null`, ids},
		{"one context", `{"contextId":"c1"}`, ids[1:]},
		{"completed", `{"status":"TASK_STATE_COMPLETED"}`, ids},
		{"working", `{"status":"TASK_STATE_WORKING"}`, nil},
		{"updated after the future", `{"statusTimestampAfter":"2999-01-01T00:00:00Z"}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, e := rpc(tc.params)
			if e != nil || fmt.Sprint(taskIDs(got)) != fmt.Sprint(tc.want) || got.TotalSize != len(tc.want) {
				t.Fatalf("%+v %v, want %v", got, e, tc.want)
			}
		})
	}
	full, _ := rpc(`{"includeArtifacts":true,"historyLength":1,"pageSize":1}`)
	if len(full.Tasks) != 1 || len(full.Tasks[0].Artifacts) != 1 || len(full.Tasks[0].History) != 1 {
		t.Fatalf("includeArtifacts, historyLength: %+v", full)
	}
	for _, bad := range []string{`{"pageSize":0}`, `{"pageSize":101}`, `{"status":"DONE"}`, `{"pageToken":"x"}`, `{"statusTimestampAfter":"yesterday"}`} {
		if _, e := rpc(bad); e == nil || e["code"] != -32602.0 {
			t.Fatalf("%s: %v", bad, e)
		}
	}
	// HTTP+JSON: GET /tasks with the same params in the query.
	status, _, data := v1(t, "GET", url+"/tasks?pageSize=1&contextId=c2&includeArtifacts=true", "1.0", "")
	var rest page
	_ = json.Unmarshal(data, &rest)
	if status != 200 || fmt.Sprint(taskIDs(rest)) != fmt.Sprint(ids[:1]) || len(rest.Tasks[0].Artifacts) != 1 || rest.TotalSize != 1 {
		t.Fatalf("GET /tasks: %d %s", status, data)
	}
	if status, _, data := v1(t, "GET", url+"/tasks?pageSize=many", "1.0", ""); status != 400 {
		t.Fatalf("GET /tasks?pageSize=many: %d %s", status, data)
	}
}
