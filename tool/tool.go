// Package tool defines what an agent can call.
//
// A [Tool] has a name, a description, a JSON Schema for its arguments and a
// Call method. The agent loop validates arguments against the schema before a
// call (see [Validator]); a violation goes back to the model as a tool error.
// Every call carries an idempotency key, "<run-id>/<step>", that stays the same
// when a resumed run repeats the call, so a tool that declares itself
// idempotent can be retried safely.
package tool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ErrRunCanceled is the cause of a call's context when the run the call
// belongs to was canceled (as opposed to its worker shutting down, after
// which the run resumes elsewhere): a tool that started remote work
// should cancel it too.
var ErrRunCanceled = errors.New("run canceled")

// Info describes a tool.
type Info struct {
	Name        string
	Description string
	// Schema is the JSON Schema of the arguments object.
	Schema json.RawMessage
	// Idempotent tools may be called again with the same idempotency key when a
	// run resumes after a crash during the call. Non-idempotent calls that were
	// started but not finished put the run in doubt instead.
	Idempotent bool
	// NeedsApproval parks the run before each call until a person approves,
	// edits or denies it.
	NeedsApproval bool
}

// Call is one invocation of a tool.
type Call struct {
	RunID string
	// ID is the model's id for the call.
	ID        string
	Arguments json.RawMessage
	// IdempotencyKey is "<run-id>/<step>", the step being the journal entry
	// that first started the call: the same for every attempt of one call, so
	// backends can drop repeats.
	IdempotencyKey string
	// Progress, when set, receives progress the tool reports while it runs
	// (an MCP server's notifications/progress). It is shown live, not
	// journaled.
	Progress func(Progress)
	// TraceParent is the W3C trace context of the call (TraceParent), which
	// tools pass on to the services they call.
	TraceParent string
	// Ask, when set, puts a question to a person while the call runs (an
	// MCP server's elicitation) and returns the answer: a JSON value, or
	// the JSON strings "decline" and "cancel". Without it a tool cannot
	// ask.
	Ask func(ctx context.Context, q Question) (json.RawMessage, error)
	// Messenger, when set, lets the call message agent instances as its
	// run's agent (the send_message, ask_agent and broadcast_message
	// tools); without it a tool cannot.
	Messenger Messenger
}

// Messenger sends messages to agent instances, addressed "agent/key"
// (keys are paths: "support/eu/customer-42"). Each message is a turn of
// its instance, stored before Send returns. Key makes a message
// idempotent: a call made again after a crash sends nothing new.
type Messenger interface {
	// Send stores a message for an instance and returns the run of its
	// turn.
	Send(ctx context.Context, m Message) (runID string, err error)
	// Ask sends a message and waits at most timeout for the turn's answer.
	Ask(ctx context.Context, m Message, timeout time.Duration) (Reply, error)
	// Broadcast sends a message to every instance a pattern matches
	// ("agent/team/*", "*/team/*") and returns how many it reached.
	Broadcast(ctx context.Context, m Message) (sent int, err error)
}

// Message is a message to an agent instance, or to a pattern of them.
type Message struct {
	To   string
	Text string
	// Key, when set, makes the message idempotent.
	Key string
}

// Reply is the answer to an Ask.
type Reply struct {
	RunID string
	// Status is the turn's run status, or ReplyTimedOut; Text its answer,
	// or why it has none.
	Status string
	Text   string
}

// ReplyTimedOut is the status of a Reply that did not come in time.
const ReplyTimedOut = "timed_out"

// Question is what a running call asks a person.
type Question struct {
	// Prompt says what is asked, in words.
	Prompt string `json:"prompt"`
	// Schema, when set, is the JSON Schema of the answer.
	Schema json.RawMessage `json:"schema,omitempty"`
}

// ValidTraceParent accepts a W3C traceparent ("00-<32 hex>-<16 hex>-<2
// hex>", not version ff, no all-zero id) and nothing else, so a caller's
// junk does not reach run metadata.
func ValidTraceParent(s string) bool {
	return traceParentPattern.MatchString(s) && s[:2] != "ff" &&
		s[3:35] != strings.Repeat("0", 32) && s[36:52] != strings.Repeat("0", 16)
}

var traceParentPattern = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// TraceParent returns the W3C traceparent of a call. Within a trace a
// caller started (parent, a traceparent the run was given), the call keeps
// that trace id and flags; otherwise the trace id is derived from the run,
// not sampled (Myriad records no spans yet). The span id is derived from
// the call's idempotency key, so every attempt of a call carries the same
// context and a service can tie the calls of one run together.
func TraceParent(parent, runID, idempotencyKey string) string {
	span := SpanID(idempotencyKey)
	if ValidTraceParent(parent) {
		return "00-" + parent[3:35] + "-" + hex.EncodeToString(span[:]) + "-" + parent[53:55]
	}
	trace := sha256.Sum256([]byte("myriad-trace\x00" + runID))
	return "00-" + hex.EncodeToString(trace[:16]) + "-" + hex.EncodeToString(span[:]) + "-00"
}

// SpanID is the span id TraceParent derives from a key.
func SpanID(key string) [8]byte {
	sum := sha256.Sum256([]byte("myriad-span\x00" + key))
	return [8]byte(sum[:8])
}

// Progress is how far a running call has got.
type Progress struct {
	Progress float64 `json:"progress"`
	Total    float64 `json:"total,omitempty"`
	Message  string  `json:"message,omitempty"`
}

// Result is what a call returns to the model.
type Result struct {
	Content string `json:"content"`
	// IsError reports a failure the model should see and may react to.
	IsError bool `json:"is_error,omitempty"`
}

// Tool is something an agent can call.
type Tool interface {
	Info() Info
	// Call runs the tool. An error is reported to the model as a tool error;
	// it does not fail the run.
	Call(ctx context.Context, call *Call) (Result, error)
}

// validName is what every model API accepts as a tool name.
var validName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// CheckName reports whether name can be sent to models as a tool name.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("tool name %q must be 1-64 letters, digits, '_' or '-'", name)
	}
	return nil
}

// Source is a set of tools that may change while the process runs: the
// tools an agent selects from an MCP server, which may announce a new list.
type Source interface {
	// Tools returns the current tools.
	Tools() []Tool
	// Version changes whenever Tools does.
	Version() uint64
}

// ContextSource is text an agent is given with its instructions, read when
// a run starts (an MCP server's resource or prompt).
type ContextSource interface {
	// Name says where the text comes from, for events and errors.
	Name() string
	Load(ctx context.Context) (string, error)
}
