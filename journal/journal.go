package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/bus"
)

// ErrConflict means another writer appended to the journal first: this
// worker no longer owns the run and must stop.
var ErrConflict = errors.New("journal: another worker advanced this run")

// Writer appends to one run's journal. It is the run's single writer.
type Writer struct {
	js      jetstream.JetStream
	runID   string
	subject string
	last    uint64 // stream sequence of the last entry, 0 for an empty journal
	step    int
	events  []Event
}

// Open loads a run's journal and returns a writer positioned after its last
// entry; Events returns the entries already there.
func Open(ctx context.Context, b *bus.Bus, runID string) (*Writer, error) {
	events, err := Load(ctx, b, runID)
	if err != nil {
		return nil, err
	}
	w := &Writer{js: b.JS, runID: runID, subject: bus.JournalSubject(runID), events: events}
	if n := len(events); n > 0 {
		w.last = events[n-1].Seq
		w.step = events[n-1].Step
	}
	return w, nil
}

// NewWriter returns a writer for a run whose journal is known to be empty;
// if it is not, the first Append fails with ErrConflict.
func NewWriter(b *bus.Bus, runID string) *Writer {
	return &Writer{js: b.JS, runID: runID, subject: bus.JournalSubject(runID)}
}

// Steps is the number of entries in the journal.
func (w *Writer) Steps() int { return w.step }

// Events returns every entry: those loaded by Open and those appended since.
// The writer is the run's single writer, so this is the whole journal.
func (w *Writer) Events() []Event { return w.events }

// Append writes one entry and returns it. It fails with ErrConflict when
// another writer appended since this writer's last append.
func (w *Writer) Append(ctx context.Context, typ string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("journal: encode %s: %w", typ, err)
	}
	ev := Event{Step: w.step + 1, RunID: w.runID, Type: typ, Time: time.Now().UTC(), Data: raw}
	body, err := json.Marshal(&ev)
	if err != nil {
		return Event{}, err
	}
	msg := &nats.Msg{Subject: w.subject, Data: body, Header: nats.Header{}}
	ack, err := w.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(w.last))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return Event{}, ErrConflict
		}
		return Event{}, fmt.Errorf("journal: append %s to run %s: %w", typ, w.runID, err)
	}
	w.last = ack.Sequence
	w.step = ev.Step
	ev.Seq = ack.Sequence
	w.events = append(w.events, ev)
	return ev, nil
}

// Load reads a run's whole journal. A run with no journal yet has no events.
func Load(ctx context.Context, b *bus.Bus, runID string) ([]Event, error) {
	subject := bus.JournalSubject(runID)
	last, err := b.Journal.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: read run %s: %w", runID, err)
	}
	var events []Event
	err = Follow(ctx, b, runID, 0, func(ev Event) bool {
		events = append(events, ev)
		return ev.Seq < last.Sequence
	})
	return events, err
}

// Decode parses a journal message.
func Decode(seq uint64, data []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return Event{}, fmt.Errorf("journal: corrupt entry %d: %w", seq, err)
	}
	ev.Seq = seq
	return ev, nil
}

// Follow calls fn with each entry of a run's journal after stream sequence
// afterSeq, waiting for new entries, until fn returns false or ctx ends.
func Follow(ctx context.Context, b *bus.Bus, runID string, afterSeq uint64, fn func(Event) bool) error {
	return follow(ctx, b, bus.JournalSubject(runID), "run "+runID, afterSeq, fn)
}

// FollowTree is Follow over the journals of every run in a tree (see
// bus.Tree), in the order they were written.
func FollowTree(ctx context.Context, b *bus.Bus, tree string, afterSeq uint64, fn func(Event) bool) error {
	return follow(ctx, b, bus.TreeSubjects(tree), "tree "+tree, afterSeq, fn)
}

// TreeSeq returns the stream sequence of the newest entry of a tree's
// journals (0 when it has none): following after it yields only what
// happens from now on.
func TreeSeq(ctx context.Context, b *bus.Bus, tree string) (uint64, error) {
	m, err := b.Journal.GetLastMsgForSubject(ctx, bus.TreeSubjects(tree))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("journal: last entry of tree %s: %w", tree, err)
	}
	return m.Sequence, nil
}

func follow(ctx context.Context, b *bus.Bus, subject, what string, afterSeq uint64, fn func(Event) bool) error {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second,
	}
	if afterSeq > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = afterSeq + 1
	}
	cons, err := b.JS.OrderedConsumer(ctx, bus.JournalStream, cfg)
	if err != nil {
		return fmt.Errorf("journal: follow %s: %w", what, err)
	}
	// Ordered consumers outlive Stop until their inactivity threshold; delete
	// this one when done so followers do not pile up on the server.
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = b.JS.DeleteConsumer(dctx, bus.JournalStream, info.Name)
			cancel()
		}
	}()
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("journal: follow %s: %w", what, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return err
		}
		ev, err := Decode(meta.Sequence.Stream, msg.Data())
		if err != nil {
			return err
		}
		if !fn(ev) {
			return nil
		}
	}
}
