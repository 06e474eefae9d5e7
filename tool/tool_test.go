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
