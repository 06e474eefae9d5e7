package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

var idCounter atomic.Uint32

func init() {
	// Two nodes starting at the same counter would give runs created in the
	// same microsecond the same tree (store.Tree).
	var b [4]byte
	_, _ = rand.Read(b[:])
	idCounter.Store(binary.BigEndian.Uint32(b[:]))
}

// NewRunID returns a unique id that sorts by creation time. Its first
// store.TreeLen hex digits (time and a counter) name the tree of runs it
// roots.
func NewRunID() string {
	var b [14]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMicro()))
	binary.BigEndian.PutUint16(b[8:10], uint16(idCounter.Add(1)))
	_, _ = rand.Read(b[10:])
	return "run_" + hex.EncodeToString(b[:])
}

// runIDTime is when the run with this id was created (its first 16 hex
// digits, in microseconds); ok is false when id is not a run id.
func runIDTime(id string) (time.Time, bool) {
	if !runIDPattern.MatchString(id) {
		return time.Time{}, false
	}
	b, err := hex.DecodeString(id[4:20])
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(int64(binary.BigEndian.Uint64(b))), true
}

// ChildRunID is the id of the child run a parent starts for one of its
// calls: derived, so a parent resumed after a crash finds the child it
// started instead of starting another. It begins with the parent's tree
// and so sorts beside it.
func ChildRunID(parentID, callID string) string {
	sum := sha256.Sum256([]byte(parentID + "/" + callID))
	return "run_" + store.Tree(parentID) + hex.EncodeToString(sum[:10])
}

// instanceID names an agent instance as an entity of the store: a hash,
// since keys may hold characters subjects may not.
func instanceID(agentName, key string) string {
	sum := sha256.Sum256([]byte(agentName + "/" + key))
	return "ins_" + hex.EncodeToString(sum[:16])
}

// Root runs have 28 hex digits; child runs 40 (see ChildRunID).
var runIDPattern = regexp.MustCompile(`^run_[0-9a-f]{28}(?:[0-9a-f]{12})?$`)

// ValidRunID reports whether id has the shape of a run id.
func ValidRunID(id string) bool { return runIDPattern.MatchString(id) }

// ValidInstanceKey reports whether key can name an agent instance
// ("customer-42", "eu/team-a/alice").
func ValidInstanceKey(key string) bool { return CheckInstanceKey(key) == nil }

// Instance keys are paths: segments separated by '/', so a swarm can be
// organised into teams and sub-teams and addressed a part at a time.
const (
	// MaxInstanceKey bounds a key's length in bytes.
	MaxInstanceKey = 256
	// MaxInstanceDepth bounds a key's segments.
	MaxInstanceDepth = 16
)

var keySegment = regexp.MustCompile(`^[A-Za-z0-9_=-][A-Za-z0-9_=.-]*$`)

// CheckInstanceKey says what is wrong with an instance key, if anything.
func CheckInstanceKey(key string) error {
	const rule = "an instance key is 1-256 letters, digits, '_', '-', '=' or '.', in up to 16 segments separated by '/', none empty or starting with '.'"
	if key == "" || len(key) > MaxInstanceKey {
		return fmt.Errorf("%s is not an instance key: %s", run.Quote(run.CutText(key, 300)), rule)
	}
	n := 0
	for seg := range strings.SplitSeq(key, "/") {
		n++
		if n > MaxInstanceDepth || !keySegment.MatchString(seg) {
			return fmt.Errorf("%s is not an instance key: %s", run.Quote(key), rule)
		}
	}
	return nil
}

// Address names an agent instance: its agent and its key, written
// "agent/key" ("support/eu/customer-42").
type Address struct {
	Agent string
	Key   string
}

// String writes the address as "agent/key".
func (a Address) String() string { return a.Agent + "/" + a.Key }

// ParseAddress reads "agent/key"; the key may have segments of its own.
func ParseAddress(s string) (Address, error) {
	agentName, key, ok := strings.Cut(s, "/")
	if !ok || agentName == "" {
		return Address{}, fmt.Errorf("%s is not an address: write agent/key, such as support/customer-42", run.Quote(run.CutText(s, 300)))
	}
	if err := CheckInstanceKey(key); err != nil {
		return Address{}, err
	}
	return Address{Agent: agentName, Key: key}, nil
}

func isInstance(id string) bool { return len(id) > 4 && id[:4] == "ins_" }

// SameTree reports whether two runs belong to one tree of runs (a root and
// its descendants share a tree token).
func SameTree(a, b string) bool { return store.Tree(a) == store.Tree(b) }
