package tool_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/tool"
	"github.com/myriad-ai/myriad/tool/builtin"
)

type addArgs struct {
	A int `json:"a"`
	B int `json:"b"`
}

func TestFuncToolSchemaAndValidation(t *testing.T) {
	add, err := tool.NewFunc("add", "Adds.", func(_ context.Context, _ *tool.Call, in addArgs) (string, error) {
		return strings.Repeat("x", in.A+in.B), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tool.CompileSchema(add.Info().Schema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args string
		ok   bool
	}{
		{`{"a":1,"b":2}`, true},
		{`{"a":"one","b":2}`, false},
		{`not json`, false},
		{`{"a":1,"b":2,"c":3}`, false},
	}
	for _, tc := range tests {
		if err := s.Validate(json.RawMessage(tc.args)); (err == nil) != tc.ok {
			t.Errorf("Validate(%s) = %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
	res, err := add.Call(context.Background(), &tool.Call{Arguments: json.RawMessage(`{"a":1,"b":2}`)})
	if err != nil || res.Content != "xxx" {
		t.Fatalf("call: %+v %v", res, err)
	}
	if _, err := tool.NewFunc("bad name", "", func(context.Context, *tool.Call, addArgs) (string, error) { return "", nil }); err == nil {
		t.Error("a name with a space was accepted")
	}
}

func TestCurrentTime(t *testing.T) {
	ct, ok := builtin.Lookup("current_time")
	if !ok || !ct.Info().Idempotent {
		t.Fatal("current_time missing or not idempotent")
	}
	res, err := ct.Call(context.Background(), &tool.Call{Arguments: json.RawMessage(`{"timezone":"Asia/Tokyo"}`)})
	if err != nil || !strings.HasSuffix(res.Content, "+09:00") {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := ct.Call(context.Background(), &tool.Call{Arguments: json.RawMessage(`{"timezone":"Mars/Olympus"}`)}); err == nil || !strings.Contains(err.Error(), "IANA") {
		t.Fatalf("unknown zone: %v", err)
	}
}

func TestTraceParent(t *testing.T) {
	a := tool.TraceParent("run_1", "run_1/3")
	tests := []struct {
		name string
		tp   string
		same bool // the same trace as a
	}{
		{"another attempt of the call", tool.TraceParent("run_1", "run_1/3"), true},
		{"another call of the run", tool.TraceParent("run_1", "run_1/5"), true},
		{"another run", tool.TraceParent("run_2", "run_1/3"), false},
	}
	if !tool.ValidTraceParent(a) {
		t.Fatalf("%q is not a W3C traceparent", a)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tool.ValidTraceParent(tc.tp) {
				t.Fatalf("%q is not a W3C traceparent", tc.tp)
			}
			if (tc.tp[3:35] == a[3:35]) != tc.same {
				t.Fatalf("%s vs %s: same trace should be %v", tc.tp, a, tc.same)
			}
		})
	}
	if tool.TraceParent("run_1", "run_1/5") == a {
		t.Fatal("two calls share a span")
	}
	for _, bad := range []string{"", "00-abc", "00-" + strings.Repeat("A", 32) + "-" + strings.Repeat("0", 16) + "-01", a + "x"} {
		if tool.ValidTraceParent(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
