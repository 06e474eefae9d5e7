package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestConditions(t *testing.T) {
	tests := []struct {
		expr, tool, args string
		want             bool
		wantErr          bool
	}{
		{"args.amount > 100", "refund", `{"amount": 250}`, true, false},
		{"args.amount > 100", "refund", `{"amount": 99.5}`, false, false},
		{`args.amount > 100 && args.currency == "EUR"`, "refund", `{"amount": 250, "currency": "USD"}`, false, false},
		{`tool == "delete_user" || has(args.force) && args.force`, "delete_user", `{}`, true, false},
		{`has(args.force) && args.force`, "x", `{"force": true}`, true, false},
		{"args.amount > 100", "refund", `{}`, false, true}, // missing argument: undecided
		{"args.amount > 100", "refund", `[1]`, false, true},
	}
	for _, tc := range tests {
		c, err := Compile(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		got, err := c.Holds(tc.tool, json.RawMessage(tc.args))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s on %s: %v %v, want %v (error %v)", tc.expr, tc.args, got, err, tc.want, tc.wantErr)
		}
	}
	for _, bad := range []string{"args.amount >", `"yes"`, "1 + 2"} {
		if _, err := Compile(bad); err == nil || !strings.Contains(err.Error(), strings.Trim(bad, `"`)) {
			t.Errorf("Compile(%q) = %v, want an error quoting it", bad, err)
		}
	}
}

func FuzzCompile(f *testing.F) {
	f.Add("args.amount > 100")
	f.Add(`tool == "x" || has(args.y)`)
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := Compile(expr)
		if err != nil {
			return
		}
		_, _ = c.Holds("t", json.RawMessage(`{"amount": 1, "y": "z"}`))
	})
}
