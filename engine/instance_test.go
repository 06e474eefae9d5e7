package engine_test

import (
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/model"
)

func TestTrimHistory(t *testing.T) {
	u := model.Message{Role: model.RoleUser, Content: "u"}
	a := model.Message{Role: model.RoleAssistant, Content: "a"}
	tl := model.Message{Role: model.RoleTool, Content: "t"}
	roles := func(ms []model.Message) string {
		var b strings.Builder
		for _, m := range ms {
			b.WriteString(m.Content)
		}
		return b.String()
	}
	tests := []struct {
		in    []model.Message
		limit int
		want  string
	}{
		{[]model.Message{u, a, u, a}, 10, "uaua"},
		{[]model.Message{u, a, u, a}, 2, "ua"},
		{[]model.Message{u, a, tl, a, u, a}, 4, "ua"},
		{[]model.Message{u, a, tl, a, u, a}, 5, "ua"},
		{[]model.Message{u, a, tl, a, u, a}, 6, "uataua"},
		{[]model.Message{u, a, tl, a}, 3, "uata"},
		{[]model.Message{u, a}, 0, "ua"},
	}
	for _, tc := range tests {
		if got := roles(engine.TrimHistory(tc.in, tc.limit)); got != tc.want {
			t.Errorf("TrimHistory(%s, %d) = %q, want %q", roles(tc.in), tc.limit, got, tc.want)
		}
	}
}
