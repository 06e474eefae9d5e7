package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/journal"
)

// Journal headers: what readers need without decoding an entry.
const (
	hdrType     = "Myriad-Type"
	hdrInputSeq = "Myriad-Input-Seq"
)

// Journal appends to one entity's journal. It is the entity's single
// writer: every append expects the sequence of the last entry it saw, so
// a second writer's append fails with journal.ErrConflict. Not safe for
// concurrent use; the engine serialises appends.
type Journal struct {
	s       *Store
	id      string
	subject string
	last    uint64 // stream sequence of the last entry, 0 for an empty journal
	step    int
	input   uint64 // the input position stamped on the next entries
	events  []journal.Event
}

// OpenJournal loads an entity's journal and returns its writer, positioned
// after the last entry.
func (s *Store) OpenJournal(ctx context.Context, id string) (*Journal, error) {
	events, err := s.LoadJournal(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.JournalFrom(id, events), nil
}

// JournalFrom returns the writer of a journal whose entries so far are
// events (nil: known to be empty). If the journal has more, the first
// append fails with journal.ErrConflict.
func (s *Store) JournalFrom(id string, events []journal.Event) *Journal {
	j := &Journal{s: s, id: id, subject: journalSubject(id), events: events}
	if n := len(events); n > 0 {
		j.last, j.step = events[n-1].Seq, events[n-1].Step
		j.input = journal.InputSeq(events)
	}
	return j
}

// JournalAt returns the writer of a journal whose last entry is at stream
// sequence last and step step, with inputs taken up to inputSeq: a writer
// resumed from a snapshot, without reading the entries before.
func (s *Store) JournalAt(id string, last uint64, step int, inputSeq uint64) *Journal {
	return &Journal{s: s, id: id, subject: journalSubject(id), last: last, step: step, input: inputSeq}
}

// ID is the journal's entity.
func (j *Journal) ID() string { return j.id }

// Last is the stream sequence of the journal's last entry (0: empty).
func (j *Journal) Last() uint64 { return j.last }

// Steps is the number of entries in the journal.
func (j *Journal) Steps() int { return j.step }

// Events returns every entry: those loaded and those appended since.
func (j *Journal) Events() []journal.Event { return j.events }

// InputSeq is the position of the last input the journal records as taken.
func (j *Journal) InputSeq() uint64 { return j.input }

// Pass takes an input that needs no entry of its own (a submission the
// run began with, met again in order): the next entry carries its
// position. Until then, a crash leaves it to be read, and passed, again.
func (j *Journal) Pass(seq uint64) {
	j.input = max(j.input, seq)
}

// Append writes one entry and returns it.
func (j *Journal) Append(ctx context.Context, typ string, data any) (journal.Event, error) {
	return j.AppendFor(ctx, 0, typ, data)
}

// AppendFor writes the entry that takes the input at position inputSeq
// (0: none): the entry, and every later one, carries the position. If the
// append fails, the input is not taken.
func (j *Journal) AppendFor(ctx context.Context, inputSeq uint64, typ string, data any) (journal.Event, error) {
	taken := max(j.input, inputSeq)
	raw, err := json.Marshal(data)
	if err != nil {
		return journal.Event{}, fmt.Errorf("journal: encode %s: %w", typ, err)
	}
	ev := journal.Event{Step: j.step + 1, RunID: j.id, Type: typ, Time: time.Now().UTC(), Data: raw, InputSeq: taken}
	msg := &nats.Msg{Subject: j.subject, Data: encodeEntry(&ev), Header: nats.Header{hdrType: []string{typ}}}
	if taken > 0 {
		msg.Header[hdrInputSeq] = []string{strconv.FormatUint(taken, 10)}
	}
	msg.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(j.last, 10)}
	seq, err := j.s.publish(ctx, msg)
	if wrongLastSequence(err) {
		// On a cluster, an attempt that timed out may have been stored by
		// a leader that lost its leadership before the stream could tell
		// a second attempt it had the id: the entry after ours is then
		// our own.
		seq, err = j.s.ownedLast(ctx, j.subject, msg.Header.Get(jetstream.MsgIDHeader), err)
	}
	if err != nil {
		if wrongLastSequence(err) {
			return journal.Event{}, journal.ErrConflict
		}
		return journal.Event{}, fmt.Errorf("journal: append %s to %s: %w", typ, j.id, tooLarge(err))
	}
	ev.Seq = seq
	j.last, j.step, j.input = seq, ev.Step, taken
	j.events = append(j.events, ev)
	return ev, nil
}

// LoadJournal reads an entity's whole journal. An entity with no journal
// has no events.
func (s *Store) LoadJournal(ctx context.Context, id string) ([]journal.Event, error) {
	msgs, err := s.read(ctx, s.journal, JournalStream, journalSubject(id), 1, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("journal: read %s: %w", id, err)
	}
	events, err := decodeEntries(msgs)
	if err != nil {
		return nil, err
	}
	// A journal's steps are 1, 2, 3...: a read that skipped one (a
	// stream leader of a cluster still catching up) must not be taken for
	// the journal, or a resumed run would redo what it skipped.
	for i, ev := range events {
		if ev.Step != i+1 {
			s.log.Warn("journal read skipped an entry: reading again later", "journal", id, "step", i+1, "got", ev.Step)
			return nil, fmt.Errorf("%w: journal %s read without its step %d", ErrIncomplete, id, i+1)
		}
	}
	return events, nil
}

// ErrIncomplete is a read that came back with a gap: try again.
var ErrIncomplete = errors.New("store: incomplete read")

// JournalFilter selects journals to read: one entity's, or (Tree) those of
// every run of a tree.
type JournalFilter struct {
	ID   string
	Tree string
}

func (f JournalFilter) subject() string {
	if f.Tree != "" {
		return treeJournals(f.Tree)
	}
	return journalSubject(f.ID)
}

// ReadJournals reads the entries a filter selects with stream sequences
// after after and (when upTo is not 0) up to upTo, at most limit of them
// (0: all).
func (s *Store) ReadJournals(ctx context.Context, f JournalFilter, after, upTo uint64, limit int) ([]journal.Event, error) {
	msgs, err := s.read(ctx, s.journal, JournalStream, f.subject(), after+1, upTo, limit)
	if err != nil {
		return nil, fmt.Errorf("journal: read %s: %w", f.subject(), err)
	}
	return decodeEntries(msgs)
}

func decodeEntries(msgs []storedMsg) ([]journal.Event, error) {
	events := make([]journal.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := journal.Decode(m.Seq, m.Data)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	return events, nil
}

// JournalHead is what the last entry of a journal says without decoding
// it.
type JournalHead struct {
	Seq      uint64
	Type     string
	InputSeq uint64
}

// LastJournal returns the head of an entity's journal; ok is false when
// the journal is empty.
func (s *Store) LastJournal(ctx context.Context, id string) (head JournalHead, ok bool, err error) {
	m, err := s.journal.GetLastMsgForSubject(ctx, journalSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return JournalHead{}, false, nil
	}
	if err != nil {
		return JournalHead{}, false, fmt.Errorf("journal: last entry of %s: %w", id, err)
	}
	head = JournalHead{Seq: m.Sequence, Type: m.Header.Get(hdrType), InputSeq: headerUint(m.Header, hdrInputSeq)}
	if head.Type == "" {
		ev, err := journal.Decode(m.Sequence, m.Data)
		if err != nil {
			return JournalHead{}, false, err
		}
		head.Type, head.InputSeq = ev.Type, ev.InputSeq
	}
	return head, true, nil
}

// LastEntry returns an entity's last journal entry; ok is false when the
// journal is empty.
func (s *Store) LastEntry(ctx context.Context, id string) (journal.Event, bool, error) {
	m, err := s.journal.GetLastMsgForSubject(ctx, journalSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return journal.Event{}, false, nil
	}
	if err != nil {
		return journal.Event{}, false, fmt.Errorf("journal: last entry of %s: %w", id, err)
	}
	ev, err := journal.Decode(m.Sequence, m.Data)
	return ev, err == nil, err
}

// LastJournalSeq is the stream sequence of the newest entry a filter
// selects (0: none).
func (s *Store) LastJournalSeq(ctx context.Context, f JournalFilter) (uint64, error) {
	m, err := s.journal.GetLastMsgForSubject(ctx, f.subject())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("journal: last entry of %s: %w", f.subject(), err)
	}
	return m.Sequence, nil
}

// JournalsSeq is the stream sequence of the newest journal entry of all
// (0 when there is none): what follows it is news.
func (s *Store) JournalsSeq(ctx context.Context) (uint64, error) {
	info, err := s.journal.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("journal: stream state: %w", err)
	}
	return info.State.LastSeq, nil
}

// encodeEntry writes an entry as journal.Decode reads it, without
// encoding/json's second pass over data (already valid JSON, and up to a
// tool result's size).
func encodeEntry(ev *journal.Event) []byte {
	b := make([]byte, 0, len(ev.Data)+160)
	b = append(b, `{"seq":0,"step":`...)
	b = strconv.AppendInt(b, int64(ev.Step), 10)
	b = append(b, `,"run_id":`...)
	b = strconv.AppendQuote(b, ev.RunID) // ids and types are ASCII letters, digits and punctuation
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, ev.Type)
	b = append(b, `,"time":"`...)
	b = ev.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	b = append(b, ev.Data...)
	if ev.InputSeq > 0 {
		b = append(b, `,"input_seq":`...)
		b = strconv.AppendUint(b, ev.InputSeq, 10)
	}
	return append(b, '}')
}

// ownedLast returns the position of the last message on subject when it
// carries msgID (a write this writer sent twice), or refused, the
// refusal of the write.
func (s *Store) ownedLast(ctx context.Context, subject, msgID string, refused error) (uint64, error) {
	if msgID == "" {
		return 0, refused
	}
	ctx, cancel := context.WithTimeout(ctx, WriteTimeout)
	defer cancel()
	m, err := s.journal.GetLastMsgForSubject(ctx, subject)
	if err != nil || m.Header.Get(jetstream.MsgIDHeader) != msgID {
		return 0, refused
	}
	return m.Sequence, nil
}
