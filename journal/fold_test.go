package journal_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
)

// entries builds a journal from (type, data) pairs, one step each.
func entries(pairs ...any) []journal.Event {
	var out []journal.Event
	for i := 0; i < len(pairs); i += 2 {
		data, err := json.Marshal(pairs[i+1])
		if err != nil {
			panic(err)
		}
		out = append(out, journal.Event{Seq: uint64(i/2 + 1), Step: i/2 + 1, Type: pairs[i].(string), Data: data})
	}
	return out
}

func TestPendingApprovals(t *testing.T) {
	ask := func(id string) journal.ApprovalRequested {
		return journal.ApprovalRequested{ApprovalID: id, CallID: "c" + id}
	}
	for _, tc := range []struct {
		name   string
		events []journal.Event
		want   []string
	}{
		{"none", entries(journal.TypeRunStarted, journal.RunStarted{}), nil},
		{"two undecided", entries(journal.TypeModelResponse, journal.ModelResponse{},
			journal.TypeApprovalRequested, ask("a"), journal.TypeApprovalRequested, ask("b")), []string{"a", "b"}},
		{"one decided", entries(journal.TypeModelResponse, journal.ModelResponse{},
			journal.TypeApprovalRequested, ask("a"), journal.TypeApprovalRequested, ask("b"),
			journal.TypeApprovalDecided, journal.ApprovalDecided{ApprovalID: "a", Decision: journal.Approve}), []string{"b"}},
		{"an earlier turn's are not pending", entries(journal.TypeApprovalRequested, ask("old"),
			journal.TypeModelResponse, journal.ModelResponse{}, journal.TypeApprovalRequested, ask("new")), []string{"new"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range journal.PendingApprovals(tc.events) {
				got = append(got, a.ApprovalID)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOpenQuestions(t *testing.T) {
	q := func(key string) journal.InputRequested { return journal.InputRequested{Key: key, Prompt: "?"} }
	for _, tc := range []struct {
		name   string
		events []journal.Event
		want   []string
	}{
		{"asked", entries(journal.TypeInputRequested, q("a"), journal.TypeInputRequested, q("b")), []string{"a", "b"}},
		{"answered", entries(journal.TypeInputRequested, q("a"), journal.TypeInputReceived, journal.InputReceived{Key: "a"}), nil},
		{"withdrawn", entries(journal.TypeInputRequested, q("a"), journal.TypeInputRequested, q("b"),
			journal.TypeInputWithdrawn, journal.InputWithdrawn{Key: "b"}), []string{"a"}},
		{"ended", entries(journal.TypeInputRequested, q("a"), journal.TypeRunCanceled, journal.RunCanceled{}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, q := range journal.OpenQuestions(tc.events) {
				got = append(got, q.Key)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUsageCountsModelsSummariesAndChildren(t *testing.T) {
	u := func(in, out int) model.Usage { return model.Usage{InputTokens: in, OutputTokens: out} }
	events := entries(
		journal.TypeModelResponse, journal.ModelResponse{Usage: u(10, 1)},
		journal.TypeContextSummarized, journal.ContextSummarized{Usage: u(5, 2)},
		journal.TypeChildrenReported, journal.ChildrenReported{Reports: []journal.ChildReport{{RunID: "r1", Usage: u(100, 10)}, {RunID: "r2", Usage: u(1, 1)}}},
		journal.TypeToolFinished, journal.ToolFinished{},
	)
	if got := journal.Usage(events); got != u(116, 14) {
		t.Fatalf("usage %+v", got)
	}
}

func TestOpenChildren(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []journal.Event
		want   []string
	}{
		{"plain tools open none", entries(journal.TypeToolStarted, journal.ToolStarted{CallID: "c1", Name: "search"}), nil},
		{"started, in order", entries(
			journal.TypeToolStarted, journal.ToolStarted{CallID: "c1", ChildRunID: "run_b"},
			journal.TypeToolStarted, journal.ToolStarted{CallID: "c2", ChildRunID: "run_a"},
			journal.TypeNodeStarted, journal.NodeStarted{Node: "n", Children: []string{"run_c", "run_a"}}), []string{"run_b", "run_a", "run_c"}},
		{"reported or finished are closed", entries(
			journal.TypeToolStarted, journal.ToolStarted{CallID: "c1", ChildRunID: "run_a"},
			journal.TypeToolStarted, journal.ToolStarted{CallID: "c2", ChildRunID: "run_b"},
			journal.TypeNodeStarted, journal.NodeStarted{Children: []string{"run_c"}},
			journal.TypeToolFinished, journal.ToolFinished{CallID: "c1", ChildRunID: "run_a"},
			journal.TypeChildrenReported, journal.ChildrenReported{Reports: []journal.ChildReport{{RunID: "run_c"}}}), []string{"run_b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := journal.OpenChildren(tc.events); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInputSeqIsTheHighestTaken(t *testing.T) {
	events := []journal.Event{{InputSeq: 3}, {}, {InputSeq: 9}, {InputSeq: 9}, {}}
	if got := journal.InputSeq(events); got != 9 {
		t.Fatalf("got %d", got)
	}
	if got := journal.InputSeq(nil); got != 0 {
		t.Fatalf("empty: %d", got)
	}
}

func TestTerminal(t *testing.T) {
	for typ, want := range map[string]bool{journal.TypeRunCompleted: true, journal.TypeRunFailed: true, journal.TypeRunCanceled: true,
		journal.TypeRunWaiting: false, journal.TypeRunInDoubt: false, journal.TypeCancelRequested: false, "": false} {
		if journal.Terminal(typ) != want {
			t.Errorf("Terminal(%q) = %v", typ, !want)
		}
	}
}

// FuzzDecode: whatever is stored, decoding returns an entry or an error,
// and an entry encodes and decodes to itself.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"seq":0,"step":1,"run_id":"run_a","type":"run.started","time":"2026-12-02T10:00:00Z","data":{"input":"hi"},"input_seq":4}`))
	f.Add([]byte(`{"step":-1,"data":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := journal.Decode(7, data)
		if err != nil {
			return
		}
		if ev.Seq != 7 {
			t.Fatalf("seq %d", ev.Seq)
		}
		again, err := json.Marshal(ev)
		if err != nil {
			return // data that is not valid JSON on its own (RawMessage keeps what it was given)
		}
		ev2, err := journal.Decode(7, again)
		if err != nil || ev2.Step != ev.Step || ev2.Type != ev.Type || ev2.RunID != ev.RunID || ev2.InputSeq != ev.InputSeq || !ev2.Time.Equal(ev.Time) {
			t.Fatalf("%+v -> %s -> %+v %v", ev, again, ev2, err)
		}
	})
}
