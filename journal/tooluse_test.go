package journal_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/myriad-ai/myriad/journal"
)

func TestToolUseOf(t *testing.T) {
	entry := func(typ string, data any) journal.Event {
		raw, _ := json.Marshal(data)
		return journal.Event{Type: typ, Data: raw}
	}
	tests := []struct {
		name   string
		events []journal.Event
		want   map[string]journal.ToolUse
	}{
		{"none", []journal.Event{entry(journal.TypeRunStarted, journal.RunStarted{Agent: "a"})}, nil},
		{"calls and failures", []journal.Event{
			entry(journal.TypeToolFinished, journal.ToolFinished{Name: "get", DurationMS: 2}),
			entry(journal.TypeToolFinished, journal.ToolFinished{Name: "get", IsError: true, DurationMS: 3}),
			entry(journal.TypeToolFinished, journal.ToolFinished{Name: "put", DurationMS: 1}),
		}, map[string]journal.ToolUse{"get": {Calls: 2, Errors: 1, DurationMS: 5}, "put": {Calls: 1, DurationMS: 1}}},
		{"a sub-agent call is not a tool; its report is", []journal.Event{
			entry(journal.TypeToolFinished, journal.ToolFinished{Name: "helper", ChildRunID: "run_1", DurationMS: 9}),
			entry(journal.TypeChildrenReported, journal.ChildrenReported{Reports: []journal.ChildReport{
				{RunID: "run_1", Tools: map[string]journal.ToolUse{"get": {Calls: 4, Errors: 2, DurationMS: 8}}}}}),
		}, map[string]journal.ToolUse{"get": {Calls: 4, Errors: 2, DurationMS: 8}}},
		{"flow tool nodes", []journal.Event{
			entry(journal.TypeNodeFinished, journal.NodeFinished{Node: "fetch", Tool: "get", Error: "refused", DurationMS: 4}),
			entry(journal.TypeNodeFinished, journal.NodeFinished{Node: "think", DurationMS: 40}),
		}, map[string]journal.ToolUse{"get": {Calls: 1, Errors: 1, DurationMS: 4}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := journal.ToolUseOf(tc.events); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
