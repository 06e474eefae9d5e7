package a2aserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
)

// A2A 1.0 is served beside 0.3 on the same runs: no Go SDK for 1.0 is
// available, so its bindings (JSON-RPC and HTTP+JSON) are written here
// against the specification, as a translation of the 1.0 wire onto the
// endpoint's handlers, which speak the 0.3 SDK's types. These are the 1.0
// wire types (ProtoJSON of the specification's a2a.proto): no "kind"
// fields, roles and states as enum names, parts as a flat one-of.

// ProtocolVersion1 is the A2A 1.0 revision, as cards and the A2A-Version
// header name it (major.minor).
const ProtocolVersion1 = "1.0"

// v1Message is a 1.0 Message.
type v1Message struct {
	MessageID        string         `json:"messageId"`
	ContextID        string         `json:"contextId,omitempty"`
	TaskID           string         `json:"taskId,omitempty"`
	Role             string         `json:"role"`
	Parts            []v1Part       `json:"parts"`
	Metadata         map[string]any `json:"metadata,omitempty"`
	Extensions       []string       `json:"extensions,omitempty"`
	ReferenceTaskIDs []string       `json:"referenceTaskIds,omitempty"`
}

// v1Part is a 1.0 Part: exactly one of text, data, url or raw.
type v1Part struct {
	Text      *string         `json:"text,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	URL       string          `json:"url,omitempty"`
	Raw       string          `json:"raw,omitempty"`
	Filename  string          `json:"filename,omitempty"`
	MediaType string          `json:"mediaType,omitempty"`
	Metadata  map[string]any  `json:"metadata,omitempty"`
}

type v1Task struct {
	ID        string         `json:"id"`
	ContextID string         `json:"contextId"`
	Status    v1Status       `json:"status"`
	Artifacts []v1Artifact   `json:"artifacts,omitempty"`
	History   []v1Message    `json:"history,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

type v1Status struct {
	State     string     `json:"state"`
	Message   *v1Message `json:"message,omitempty"`
	Timestamp string     `json:"timestamp,omitempty"`
}

type v1Artifact struct {
	ArtifactID  string         `json:"artifactId"`
	Name        string         `json:"name,omitempty"`
	Description string         `json:"description,omitempty"`
	Parts       []v1Part       `json:"parts"`
	Metadata    map[string]any `json:"metadata,omitempty"`
}

type v1StatusUpdate struct {
	TaskID    string         `json:"taskId"`
	ContextID string         `json:"contextId"`
	Status    v1Status       `json:"status"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

type v1ArtifactUpdate struct {
	TaskID    string         `json:"taskId"`
	ContextID string         `json:"contextId"`
	Artifact  v1Artifact     `json:"artifact"`
	Append    bool           `json:"append,omitempty"`
	LastChunk bool           `json:"lastChunk,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// v1Response is a SendMessage result and a stream's event
// (StreamResponse): exactly one field is set.
type v1Response struct {
	Task           *v1Task           `json:"task,omitempty"`
	Message        *v1Message        `json:"message,omitempty"`
	StatusUpdate   *v1StatusUpdate   `json:"statusUpdate,omitempty"`
	ArtifactUpdate *v1ArtifactUpdate `json:"artifactUpdate,omitempty"`
}

// v1SendRequest is SendMessage's and SendStreamingMessage's params.
type v1SendRequest struct {
	Tenant        string     `json:"tenant,omitempty"`
	Message       *v1Message `json:"message"`
	Configuration *struct {
		AcceptedOutputModes []string        `json:"acceptedOutputModes,omitempty"`
		HistoryLength       *int            `json:"historyLength,omitempty"`
		ReturnImmediately   bool            `json:"returnImmediately,omitempty"`
		PushConfig          json.RawMessage `json:"taskPushNotificationConfig,omitempty"`
	} `json:"configuration,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// v1TaskRequest is GetTask's, CancelTask's and SubscribeToTask's params.
type v1TaskRequest struct {
	Tenant        string         `json:"tenant,omitempty"`
	ID            string         `json:"id"`
	HistoryLength *int           `json:"historyLength,omitempty"`
	Metadata      map[string]any `json:"metadata,omitempty"`
}

// sendParams translates a 1.0 send request into the SDK's.
func (req *v1SendRequest) sendParams() (*a2a.MessageSendParams, error) {
	if req.Message == nil {
		return nil, fmt.Errorf("%w: message: missing", a2a.ErrInvalidParams)
	}
	msg, err := req.Message.sdk()
	if err != nil {
		return nil, err
	}
	p := &a2a.MessageSendParams{Message: msg, Metadata: req.Metadata}
	if c := req.Configuration; c != nil {
		blocking := !c.ReturnImmediately
		p.Config = &a2a.MessageSendConfig{AcceptedOutputModes: c.AcceptedOutputModes, HistoryLength: c.HistoryLength, Blocking: &blocking}
		if len(c.PushConfig) > 0 && string(c.PushConfig) != "null" {
			return nil, a2a.ErrPushNotificationNotSupported
		}
	}
	return p, nil
}

// sdk translates a 1.0 message into the SDK's.
func (m *v1Message) sdk() (*a2a.Message, error) {
	var role a2a.MessageRole
	switch m.Role {
	case "ROLE_USER":
		role = a2a.MessageRoleUser
	case "ROLE_AGENT":
		role = a2a.MessageRoleAgent
	default:
		return nil, fmt.Errorf("%w: message.role: %s is not a role (ROLE_USER or ROLE_AGENT)", a2a.ErrInvalidParams, quote(m.Role))
	}
	msg := &a2a.Message{ID: m.MessageID, ContextID: m.ContextID, TaskID: a2a.TaskID(m.TaskID), Role: role,
		Metadata: m.Metadata, Extensions: m.Extensions}
	for i, p := range m.Parts {
		part, err := p.sdk()
		if err != nil {
			return nil, fmt.Errorf("%w: message.parts[%d]: %v", a2a.ErrInvalidParams, i, err)
		}
		msg.Parts = append(msg.Parts, part)
	}
	return msg, nil
}

func (p *v1Part) sdk() (a2a.Part, error) {
	set := 0
	for _, has := range []bool{p.Text != nil, len(p.Data) > 0, p.URL != "", p.Raw != ""} {
		if has {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("a part has exactly one of text, data, url or raw")
	}
	meta := a2a.FileMeta{Name: p.Filename, MimeType: p.MediaType}
	switch {
	case p.Text != nil:
		return a2a.TextPart{Text: *p.Text, Metadata: p.Metadata}, nil
	case p.URL != "":
		return a2a.FilePart{File: a2a.FileURI{FileMeta: meta, URI: p.URL}, Metadata: p.Metadata}, nil
	case p.Raw != "":
		return a2a.FilePart{File: a2a.FileBytes{FileMeta: meta, Bytes: p.Raw}, Metadata: p.Metadata}, nil
	}
	var obj map[string]any
	if json.Unmarshal(p.Data, &obj) == nil && obj != nil {
		return a2a.DataPart{Data: obj, Metadata: p.Metadata}, nil
	}
	// Data that is not an object (a list, a number) goes on as JSON text.
	return a2a.TextPart{Text: string(p.Data), Metadata: p.Metadata}, nil
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// v1State names a task state as 1.0 does: TASK_STATE_INPUT_REQUIRED.
func v1State(s a2a.TaskState) string {
	if s == a2a.TaskStateUnspecified || s == a2a.TaskStateUnknown {
		return "TASK_STATE_UNSPECIFIED"
	}
	return "TASK_STATE_" + strings.ToUpper(strings.ReplaceAll(string(s), "-", "_"))
}

func fromMessage(m *a2a.Message) *v1Message {
	if m == nil {
		return nil
	}
	role := "ROLE_AGENT"
	if m.Role == a2a.MessageRoleUser {
		role = "ROLE_USER"
	}
	out := &v1Message{MessageID: m.ID, ContextID: m.ContextID, TaskID: string(m.TaskID), Role: role,
		Parts: fromParts(m.Parts), Metadata: m.Metadata, Extensions: m.Extensions}
	for _, t := range m.ReferenceTasks {
		out.ReferenceTaskIDs = append(out.ReferenceTaskIDs, string(t))
	}
	return out
}

func fromParts(parts a2a.ContentParts) []v1Part {
	out := make([]v1Part, 0, len(parts))
	for _, p := range parts {
		switch p := p.(type) {
		case a2a.TextPart:
			out = append(out, v1Part{Text: &p.Text, Metadata: p.Metadata})
		case a2a.DataPart:
			data, _ := json.Marshal(p.Data)
			out = append(out, v1Part{Data: data, MediaType: "application/json", Metadata: p.Metadata})
		case a2a.FilePart:
			switch f := p.File.(type) {
			case a2a.FileURI:
				out = append(out, v1Part{URL: f.URI, Filename: f.Name, MediaType: f.MimeType, Metadata: p.Metadata})
			case a2a.FileBytes:
				out = append(out, v1Part{Raw: f.Bytes, Filename: f.Name, MediaType: f.MimeType, Metadata: p.Metadata})
			}
		}
	}
	return out
}

func fromStatus(s a2a.TaskStatus) v1Status {
	out := v1Status{State: v1State(s.State), Message: fromMessage(s.Message)}
	if s.Timestamp != nil {
		out.Timestamp = s.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return out
}

func fromArtifact(a *a2a.Artifact) v1Artifact {
	return v1Artifact{ArtifactID: string(a.ID), Name: a.Name, Description: a.Description, Parts: fromParts(a.Parts), Metadata: a.Metadata}
}

func fromTask(t *a2a.Task) *v1Task {
	out := &v1Task{ID: string(t.ID), ContextID: t.ContextID, Status: fromStatus(t.Status), Metadata: t.Metadata}
	for _, a := range t.Artifacts {
		out.Artifacts = append(out.Artifacts, fromArtifact(a))
	}
	for _, m := range t.History {
		out.History = append(out.History, *fromMessage(m))
	}
	return out
}

// fromEvent translates one of the SDK's events into a 1.0 StreamResponse.
func fromEvent(ev a2a.Event) v1Response {
	switch ev := ev.(type) {
	case *a2a.Task:
		return v1Response{Task: fromTask(ev)}
	case *a2a.Message:
		return v1Response{Message: fromMessage(ev)}
	case *a2a.TaskStatusUpdateEvent:
		return v1Response{StatusUpdate: &v1StatusUpdate{TaskID: string(ev.TaskID), ContextID: ev.ContextID,
			Status: fromStatus(ev.Status), Metadata: ev.Metadata}}
	case *a2a.TaskArtifactUpdateEvent:
		return v1Response{ArtifactUpdate: &v1ArtifactUpdate{TaskID: string(ev.TaskID), ContextID: ev.ContextID,
			Artifact: fromArtifact(ev.Artifact), Append: ev.Append, LastChunk: ev.LastChunk, Metadata: ev.Metadata}}
	}
	return v1Response{}
}

// v1Error is how the 1.0 bindings name an error: its JSON-RPC code, its
// HTTP status and gRPC status name, and the ErrorInfo reason.
type v1Error struct {
	code   int
	http   int
	status string
	reason string
}

var v1Errors = []struct {
	err error
	v1Error
}{
	{a2a.ErrTaskNotFound, v1Error{-32001, 404, "NOT_FOUND", "TASK_NOT_FOUND"}},
	{a2a.ErrTaskNotCancelable, v1Error{-32002, 400, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE"}},
	{a2a.ErrPushNotificationNotSupported, v1Error{-32003, 400, "FAILED_PRECONDITION", "PUSH_NOTIFICATION_NOT_SUPPORTED"}},
	{a2a.ErrUnsupportedOperation, v1Error{-32004, 400, "FAILED_PRECONDITION", "UNSUPPORTED_OPERATION"}},
	{a2a.ErrUnsupportedContentType, v1Error{-32005, 400, "INVALID_ARGUMENT", "CONTENT_TYPE_NOT_SUPPORTED"}},
	{a2a.ErrInvalidAgentResponse, v1Error{-32006, 500, "INTERNAL", "INVALID_AGENT_RESPONSE"}},
	{a2a.ErrAuthenticatedExtendedCardNotConfigured, v1Error{-32007, 400, "FAILED_PRECONDITION", "EXTENDED_AGENT_CARD_NOT_CONFIGURED"}},
	{errVersionNotSupported, v1Error{-32009, 400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED"}},
	{a2a.ErrParseError, v1Error{-32700, 400, "INVALID_ARGUMENT", "PARSE_ERROR"}},
	{a2a.ErrInvalidRequest, v1Error{-32600, 400, "INVALID_ARGUMENT", "INVALID_REQUEST"}},
	{a2a.ErrMethodNotFound, v1Error{-32601, 404, "NOT_FOUND", "METHOD_NOT_FOUND"}},
	{a2a.ErrInvalidParams, v1Error{-32602, 400, "INVALID_ARGUMENT", "INVALID_PARAMS"}},
}

var errVersionNotSupported = errors.New("A2A protocol version not supported")

func classify(err error) v1Error {
	for _, e := range v1Errors {
		if errors.Is(err, e.err) {
			return e.v1Error
		}
	}
	return v1Error{-32603, 500, "INTERNAL", "INTERNAL"}
}

// errorInfo is the google.rpc.ErrorInfo every 1.0 error carries.
func errorInfo(reason string) []map[string]any {
	return []map[string]any{{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "a2a-protocol.org"}}
}
