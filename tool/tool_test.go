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
	a := tool.TraceParent("", "run_1", "run_1/3")
	caller := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name     string
		tp       string
		trace    string // the trace id it must carry ("" : a's)
		flags    string
		sameSpan bool // the span of a
	}{
		{"another attempt of the call", tool.TraceParent("", "run_1", "run_1/3"), "", "00", true},
		{"another call of the run", tool.TraceParent("", "run_1", "run_1/5"), "", "00", false},
		{"another run", tool.TraceParent("", "run_2", "run_1/3"), "other", "00", true},
		{"a run started in a caller's trace", tool.TraceParent(caller, "run_1", "run_1/3"), caller[3:35], "01", true},
		{"a caller's junk is ignored", tool.TraceParent("00-zz", "run_1", "run_1/3"), "", "00", true},
	}
	if !tool.ValidTraceParent(a) {
		t.Fatalf("%q is not a W3C traceparent", a)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tool.ValidTraceParent(tc.tp) {
				t.Fatalf("%q is not a W3C traceparent", tc.tp)
			}
			switch tc.trace {
			case "":
				if tc.tp[3:35] != a[3:35] {
					t.Fatalf("%s: not the trace of %s", tc.tp, a)
				}
			case "other":
				if tc.tp[3:35] == a[3:35] {
					t.Fatalf("%s: the trace of %s", tc.tp, a)
				}
			default:
				if tc.tp[3:35] != tc.trace {
					t.Fatalf("%s: not trace %s", tc.tp, tc.trace)
				}
			}
			if tc.tp[53:] != tc.flags || (tc.tp[36:52] == a[36:52]) != tc.sameSpan {
				t.Fatalf("%s vs %s: flags %s, same span %v", tc.tp, a, tc.flags, tc.sameSpan)
			}
		})
	}
	for _, bad := range []string{"", "00-abc", "00-" + strings.Repeat("A", 32) + "-" + strings.Repeat("1", 16) + "-01", a + "x",
		"ff-" + caller[3:], "00-" + strings.Repeat("0", 32) + caller[35:], caller[:36] + strings.Repeat("0", 16) + "-01"} {
		if tool.ValidTraceParent(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
