package runtime

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model"
)

// Status is where a run stands.
type Status string

// Run statuses.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusWaiting   Status = "waiting"
	StatusInDoubt   Status = "in_doubt"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
)

// Terminal reports whether a run in this status is over for good.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCanceled
}

// Statuses lists every status, for validation and docs.
var Statuses = []Status{StatusQueued, StatusRunning, StatusWaiting, StatusInDoubt, StatusCompleted, StatusFailed, StatusCanceled}

// RunError is why a run failed.
type RunError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Record is the summary of a run that the API serves. The journal is the
// truth; the record is kept in step with it by the worker that owns the run.
type Record struct {
	ID       string            `json:"id"`
	Agent    string            `json:"agent,omitempty"`
	Instance string            `json:"instance,omitempty"`
	Input    string            `json:"input"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Status   Status            `json:"status"`
	Output   string            `json:"output,omitempty"`
	// OutputTruncated says Output was cut to MaxRecordOutput; the run's
	// run.completed event has all of it.
	OutputTruncated bool            `json:"output_truncated,omitempty"`
	OutputJSON      json.RawMessage `json:"output_json,omitempty"`
	Error           *RunError       `json:"error,omitempty"`
	Usage           model.Usage     `json:"usage"`
	Steps           int             `json:"steps"`
	CreatedAt       time.Time       `json:"created_at"`
	StartedAt       *time.Time      `json:"started_at,omitempty"`
	EndedAt         *time.Time      `json:"ended_at,omitempty"`
	// InDoubt names the tool call that stopped the run.
	InDoubt *journal.RunInDoubt `json:"in_doubt,omitempty"`
	// Resolution waits for the next worker to journal it.
	Resolution *journal.ToolResolved `json:"resolution,omitempty"`
	// Approvals are the calls a waiting run needs a person to decide on.
	Approvals []journal.ApprovalRequested `json:"approvals,omitempty"`
	// Decisions wait for the next worker to journal them.
	Decisions       []journal.ApprovalDecided `json:"decisions,omitempty"`
	CancelRequested bool                      `json:"cancel_requested,omitempty"`
	// Wake is the queue subject of the entry that currently owns the run:
	// entries on other subjects are leftovers (an entry that parked the run
	// and was never acked, say) and are dropped, so two entries can never
	// drive one run at once.
	Wake string `json:"wake,omitempty"`
	// Turn is the run's position among its instance's runs (1-based).
	Turn uint64 `json:"turn,omitempty"`
	// Parent, ParentCall, Path and Depth place a child run in its tree: the
	// run and call that started it, its path of agents
	// ("supervisor/researcher#2") and its depth (roots are 0).
	Parent     string `json:"parent,omitempty"`
	ParentCall string `json:"parent_call,omitempty"`
	Path       string `json:"path,omitempty"`
	Depth      int    `json:"depth,omitempty"`
	// History is the part of its parent's conversation a child run is
	// given; its worker copies it into run.started.
	History []model.Message `json:"history,omitempty"`
	// WaitingFor says what a waiting run waits for: WaitApproval or
	// WaitChildren.
	WaitingFor string `json:"waiting_for,omitempty"`
	// Nudged records that a child reported while the run was not parked:
	// if the run then parks, it is queued again at once.
	Nudged bool `json:"nudged,omitempty"`
	// Wakes counts the times children woke the run; each wake has its own
	// queue entry.
	Wakes int `json:"wakes,omitempty"`
	// WakeAt is when a sleeping flow node wakes the run.
	WakeAt *time.Time `json:"wake_at,omitempty"`
	// Flow names the flow a flow run executes (Agent is then empty), and
	// State is the initial state it was given until its worker journals it.
	Flow  string          `json:"flow,omitempty"`
	State json.RawMessage `json:"state,omitempty"`
	// InputRequests are the questions a waiting flow run asks; Inputs are
	// the answers waiting for the next worker to journal them.
	InputRequests []journal.InputRequested `json:"input_requests,omitempty"`
	Inputs        []journal.InputReceived  `json:"inputs,omitempty"`
}

// What a waiting run waits for.
const (
	WaitApproval = "approval"
	WaitChildren = "children"
	WaitTimer    = "timer"
	WaitInput    = "input"
)

// MaxRecordOutput caps the output kept in a record, so a record with a long
// input and a long output still fits one NATS message.
const MaxRecordOutput = 256 << 10

var idCounter atomic.Uint32

func init() {
	// Two nodes starting at the same counter would give runs created in the
	// same microsecond the same tree (bus.Tree).
	var b [4]byte
	_, _ = rand.Read(b[:])
	idCounter.Store(binary.BigEndian.Uint32(b[:]))
}

// NewRunID returns a unique id that sorts by creation time. Its first
// bus.TreeLen hex digits (time and a counter) name the tree of runs it roots.
func NewRunID() string {
	var b [14]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMicro()))
	binary.BigEndian.PutUint16(b[8:10], uint16(idCounter.Add(1)))
	_, _ = rand.Read(b[10:])
	return "run_" + hex.EncodeToString(b[:])
}

// ChildRunID is the id of the child run a parent starts for one of its tool
// calls: derived, so a parent resumed after a crash finds the child it
// started instead of starting another. It begins with the parent's tree and
// so sorts beside it.
func ChildRunID(parentID, callID string) string {
	sum := sha256.Sum256([]byte(parentID + "/" + callID))
	return "run_" + bus.Tree(parentID) + hex.EncodeToString(sum[:10])
}
