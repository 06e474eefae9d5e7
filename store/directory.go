package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The instance directory: one small entry per agent instance, on a subject
// that spells its address (DirectoryStream, myriad.dir.<agent>.<key
// segment>...), so the instances under a part of the hierarchy
// ("support/eu/*") are one wildcard filter away, however many others are
// stored. An instance's writer adds its entry the first time it works; the
// directory is a read model for listing and broadcasts, read from any
// replica.

// DirectoryStream is the instance directory.
const DirectoryStream = "MYRIAD_DIRECTORY"

const directoryPrefix = "myriad.dir."

// dirToken makes one segment of an address a subject token: keys may hold
// '.', which subjects use as a separator ('=' is escaped so the mapping
// stays one to one).
func dirToken(seg string) string {
	if !strings.ContainsAny(seg, ".=") {
		return seg
	}
	return strings.NewReplacer("=", "=3D", ".", "=2E").Replace(seg)
}

// directorySubject is the subject of an instance's entry; its key's
// segments are separated by '/'.
func directorySubject(agentName, key string) string {
	var b strings.Builder
	b.WriteString(directoryPrefix)
	b.WriteString(dirToken(agentName))
	for seg := range strings.SplitSeq(key, "/") {
		b.WriteByte('.')
		b.WriteString(dirToken(seg))
	}
	return b.String()
}

// DirectoryFilter is the subject filter of the instances under prefix
// (key segments, "" for all) of one agent, or of every agent when
// agentName is "".
func DirectoryFilter(agentName, prefix string) string {
	var b strings.Builder
	b.WriteString(directoryPrefix)
	if agentName == "" {
		b.WriteByte('*')
	} else {
		b.WriteString(dirToken(agentName))
	}
	if prefix != "" {
		for seg := range strings.SplitSeq(prefix, "/") {
			b.WriteByte('.')
			b.WriteString(dirToken(seg))
		}
	}
	b.WriteString(".>")
	return b.String()
}

// AddToDirectory writes an instance's entry unless it has one.
func (s *Store) AddToDirectory(ctx context.Context, agentName, key string, data []byte) error {
	msg := &nats.Msg{Subject: directorySubject(agentName, key), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	if _, err := s.publish(ctx, msg); err != nil && !wrongLastSequence(err) {
		return fmt.Errorf("add %s/%s to the instance directory: %w", agentName, key, tooLarge(err))
	}
	return nil
}

// DirectoryEntry is an instance's entry in the directory.
type DirectoryEntry struct {
	// Seq is the entry's position: instances created later have higher
	// ones.
	Seq  uint64
	Data []byte
}

// ReadDirectory returns the entries on filter (DirectoryFilter) after
// position after, oldest first, at most limit of them, and whether more
// remain.
func (s *Store) ReadDirectory(ctx context.Context, filter string, after uint64, limit int) ([]DirectoryEntry, bool, error) {
	msgs, more, err := s.batches.readBatch(ctx, DirectoryStream, filter, after+1, limit)
	if err != nil {
		return nil, false, fmt.Errorf("read the instance directory: %w", err)
	}
	out := make([]DirectoryEntry, len(msgs))
	for i, m := range msgs {
		out[i] = DirectoryEntry{Seq: m.Seq, Data: m.Data}
	}
	return out, more, nil
}

// directoryConfig is the instance directory's stream.
func (s *Store) directoryConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DirectoryStream,
		Description: "Myriad's instance directory: an entry per agent instance, on a subject that spells its address",
		Subjects:    []string{directoryPrefix + ">"},
		Storage:     s.storage(),
		Replicas:    s.replicas(),
		AllowDirect: true,
		// One entry per instance.
		MaxMsgsPerSubject: 1,
	}
}
