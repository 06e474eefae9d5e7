package run_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/run"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// journalOf builds a journal from (type, data) pairs, a second apart.
func journalOf(pairs ...any) []journal.Event {
	var out []journal.Event
	for i := 0; i < len(pairs); i += 2 {
		data, _ := json.Marshal(pairs[i+1])
		n := i/2 + 1
		out = append(out, journal.Event{Seq: uint64(10 * n), Step: n, Type: pairs[i].(string), Data: data, Time: t0.Add(time.Duration(n) * time.Second)})
	}
	return out
}

func TestProject(t *testing.T) {
	started := journal.RunStarted{Agent: "triage", Input: "hi", Submitted: t0, Parent: "run_p", Path: "sup/triage#1", Depth: 1}
	usage := model.Usage{InputTokens: 3, OutputTokens: 4}
	later := t0.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		queued *run.Record
		events []journal.Event
		check  func(*run.Record) string
	}{
		{"queued", &run.Record{ID: "run_x", Agent: "triage", Input: "hi", Status: run.StatusQueued}, nil, func(r *run.Record) string {
			if r.Status != run.StatusQueued || r.Agent != "triage" || r.Steps != 0 {
				return "not queued"
			}
			return ""
		}},
		{"running", nil, journalOf(journal.TypeRunStarted, started, journal.TypeModelResponse, journal.ModelResponse{Usage: usage}), func(r *run.Record) string {
			if r.Status != run.StatusRunning || r.Agent != "triage" || r.Parent != "run_p" || r.Depth != 1 || r.Steps != 2 || r.Position != 20 ||
				!r.CreatedAt.Equal(t0) || r.StartedAt == nil || r.Usage != usage {
				return "not running as started"
			}
			return ""
		}},
		{"completed", nil, journalOf(journal.TypeRunStarted, started, journal.TypeRunCompleted, journal.RunCompleted{Output: "done", Usage: usage}), func(r *run.Record) string {
			if r.Status != run.StatusCompleted || r.Output != "done" || r.EndedAt == nil || r.Usage != usage {
				return "not completed"
			}
			return ""
		}},
		{"a long output is cut", nil, journalOf(journal.TypeRunStarted, started, journal.TypeRunCompleted, journal.RunCompleted{Output: strings.Repeat("x", run.MaxRecordOutput+1)}), func(r *run.Record) string {
			if len(r.Output) != run.MaxRecordOutput || !r.OutputTruncated {
				return "not cut"
			}
			return ""
		}},
		{"failed", nil, journalOf(journal.TypeRunStarted, started, journal.TypeRunFailed, journal.RunFailed{Code: "max_turns", Message: "too many"}), func(r *run.Record) string {
			if r.Status != run.StatusFailed || r.Error == nil || r.Error.Code != "max_turns" {
				return "not failed"
			}
			return ""
		}},
		{"canceled, and a refused input after changes nothing", nil, journalOf(journal.TypeRunStarted, started, journal.TypeRunCanceled, journal.RunCanceled{},
			journal.TypeInputRefused, journal.InputRefused{Seq: 9, Kind: "decide"}), func(r *run.Record) string {
			if r.Status != run.StatusCanceled || r.Steps != 3 {
				return "not canceled"
			}
			return ""
		}},
		{"ended without a readable run.started", nil, []journal.Event{{Seq: 1, Step: 1, Type: journal.TypeRunStarted, Data: json.RawMessage(`"?"`)},
			{Seq: 2, Step: 2, Type: journal.TypeRunFailed, Data: json.RawMessage(`{"code":"x","message":"y"}`)}}, func(r *run.Record) string {
			if r.Status != run.StatusFailed {
				return "not failed"
			}
			return ""
		}},
		{"waiting for approvals, woken at the first deadline", nil, journalOf(journal.TypeRunStarted, started, journal.TypeModelResponse, journal.ModelResponse{},
			journal.TypeApprovalRequested, journal.ApprovalRequested{ApprovalID: "a1", CallID: "c1", Deadline: &later},
			journal.TypeApprovalRequested, journal.ApprovalRequested{ApprovalID: "a2", CallID: "c2"},
			journal.TypeRunWaiting, journal.RunWaiting{Approvals: []string{"a1", "a2"}}), func(r *run.Record) string {
			if r.Status != run.StatusWaiting || r.WaitingFor != run.WaitApproval || len(r.Approvals) != 2 || r.WakeAt == nil || !r.WakeAt.Equal(later) {
				return "not waiting for two approvals"
			}
			return ""
		}},
		{"one approval decided of two", nil, journalOf(journal.TypeRunStarted, started, journal.TypeModelResponse, journal.ModelResponse{},
			journal.TypeApprovalRequested, journal.ApprovalRequested{ApprovalID: "a1"}, journal.TypeApprovalRequested, journal.ApprovalRequested{ApprovalID: "a2"},
			journal.TypeRunWaiting, journal.RunWaiting{Approvals: []string{"a1", "a2"}},
			journal.TypeApprovalDecided, journal.ApprovalDecided{ApprovalID: "a1", Decision: journal.Approve}), func(r *run.Record) string {
			if r.Status != run.StatusWaiting || len(r.Approvals) != 1 || r.Approvals[0].ApprovalID != "a2" {
				return "not waiting for the other"
			}
			return ""
		}},
		{"waiting for children", nil, journalOf(journal.TypeRunStarted, started, journal.TypeRunWaiting, journal.RunWaiting{Children: []string{"run_c"}}), func(r *run.Record) string {
			if r.Status != run.StatusWaiting || r.WaitingFor != run.WaitChildren {
				return "not waiting for children"
			}
			return ""
		}},
		{"sleeping, a timer that fired leaves it so", nil, journalOf(journal.TypeRunStarted, started, journal.TypeRunWaiting, journal.RunWaiting{Until: &later},
			journal.TypeTimerFired, journal.TimerFired{}), func(r *run.Record) string {
			if r.Status != run.StatusWaiting || r.WaitingFor != run.WaitTimer || r.WakeAt == nil {
				return "not sleeping"
			}
			return ""
		}},
		{"in doubt", nil, journalOf(journal.TypeRunStarted, started, journal.TypeRunInDoubt, journal.RunInDoubt{CallID: "c", Name: "pay"}), func(r *run.Record) string {
			if r.Status != run.StatusInDoubt || r.InDoubt == nil || r.InDoubt.Name != "pay" {
				return "not in doubt"
			}
			return ""
		}},
		{"resolved", nil, journalOf(journal.TypeRunStarted, started, journal.TypeRunInDoubt, journal.RunInDoubt{CallID: "c"},
			journal.TypeToolResolved, journal.ToolResolved{CallID: "c", Action: journal.ResolveSkip}), func(r *run.Record) string {
			if r.Status != run.StatusRunning || r.InDoubt != nil {
				return "still in doubt"
			}
			return ""
		}},
		{"asking", nil, journalOf(journal.TypeRunStarted, started, journal.TypeInputRequested, journal.InputRequested{Key: "k", Call: "c1"}), func(r *run.Record) string {
			if len(r.InputRequests) != 1 || !r.Asking() {
				return "not asking"
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := run.Project("run_x", tc.queued, tc.events)
			if why := tc.check(rec); why != "" {
				b, _ := json.Marshal(rec)
				t.Fatalf("%s: %s", why, b)
			}
		})
	}
}

func TestCutText(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short stays", "abc", 10, "abc"},
		{"exact stays", "abcdef", 6, "abcdef"},
		{"cut on a character boundary", long, 60, strings.Repeat("é", 16) + "… (cut: 200 bytes in all)"},
		{"no room but the note", long, 5, "… (cut: 200 bytes in all)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := run.CutText(tc.in, tc.n)
			if got != tc.want || !utf8.ValidString(got) {
				t.Errorf("CutText(%d bytes, %d) = %q, want %q", len(tc.in), tc.n, got, tc.want)
			}
		})
	}
}

func TestCutWords(t *testing.T) {
	name := strings.Repeat("x", 5000)
	cut := run.CutText(name, 200)
	tests := []struct{ name, in, want string }{
		{"short stays", "unknown tool \"a\"", "unknown tool \"a\""},
		{"a long message of short words stays", strings.Repeat("word ", 100), strings.Repeat("word ", 100)},
		{"a long name is cut", "unknown tool \"" + name + "\": see tools/list", "unknown tool " + run.CutText(`"`+name+`":`, 200) + " see tools/list"},
		{"at the end", "part kind " + name, "part kind " + cut},
		{"newlines kept", "a\n" + name + "\tb", "a\n" + cut + "\tb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := run.CutWords(tc.in); got != tc.want {
				t.Errorf("CutWords(%d bytes) = %q, want %q", len(tc.in), got, tc.want)
			}
		})
	}
}

func TestShrunkRecord(t *testing.T) {
	rec := &run.Record{Input: strings.Repeat("i", 100), Output: strings.Repeat("o", 100), OutputJSON: json.RawMessage(`"` + strings.Repeat("j", 100) + `"`)}
	small := rec.Shrunk(50)
	if len(small.Input) > 50 || len(small.Output) > 50 || small.OutputJSON != nil || !small.InputTruncated || !small.OutputTruncated {
		t.Fatalf("shrunk: %+v", small)
	}
	if len(rec.Input) != 100 || rec.InputTruncated {
		t.Fatal("Shrunk changed the record it copies")
	}
	if same := rec.Shrunk(1000); same.InputTruncated || same.OutputTruncated || same.Input != rec.Input {
		t.Fatalf("a record that fits: %+v", same)
	}
}
