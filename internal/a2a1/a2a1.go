// Package a2a1 is the wire of A2A 1.0 (ProtoJSON of the specification's
// a2a.proto): no "kind" fields, roles and states as enum names, parts as a
// flat one-of — and its translation to and from the types of the A2A Go
// SDK (a2a-go v0.3), which Myriad's A2A server and client speak inside.
// No Go SDK for 1.0 is available, so the 1.0 bindings are written against
// the specification: a2aserver serves them, tool/a2atool calls them.
package a2a1

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
)

// Version is the A2A 1.0 revision, as cards and the A2A-Version
// header name it (major.minor).
const Version = "1.0"

// Message is a 1.0 Message.
type Message struct {
	MessageID        string         `json:"messageId"`
	ContextID        string         `json:"contextId,omitempty"`
	TaskID           string         `json:"taskId,omitempty"`
	Role             string         `json:"role"`
	Parts            []Part         `json:"parts"`
	Metadata         map[string]any `json:"metadata,omitempty"`
	Extensions       []string       `json:"extensions,omitempty"`
	ReferenceTaskIDs []string       `json:"referenceTaskIds,omitempty"`
}

// Part is a 1.0 Part: exactly one of text, data, url or raw.
type Part struct {
	Text      *string         `json:"text,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	URL       string          `json:"url,omitempty"`
	Raw       string          `json:"raw,omitempty"`
	Filename  string          `json:"filename,omitempty"`
	MediaType string          `json:"mediaType,omitempty"`
	Metadata  map[string]any  `json:"metadata,omitempty"`
}

// Task is a 1.0 Task.
type Task struct {
	ID        string         `json:"id"`
	ContextID string         `json:"contextId"`
	Status    Status         `json:"status"`
	Artifacts []Artifact     `json:"artifacts,omitempty"`
	History   []Message      `json:"history,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// Status is a 1.0 TaskStatus.
type Status struct {
	State     string   `json:"state"`
	Message   *Message `json:"message,omitempty"`
	Timestamp string   `json:"timestamp,omitempty"`
}

// Artifact is a 1.0 Artifact.
type Artifact struct {
	ArtifactID  string         `json:"artifactId"`
	Name        string         `json:"name,omitempty"`
	Description string         `json:"description,omitempty"`
	Parts       []Part         `json:"parts"`
	Metadata    map[string]any `json:"metadata,omitempty"`
}

// StatusUpdate is a 1.0 TaskStatusUpdateEvent: it has no "final"; a
// stream ends after a terminal or interrupted state.
type StatusUpdate struct {
	TaskID    string         `json:"taskId"`
	ContextID string         `json:"contextId"`
	Status    Status         `json:"status"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// ArtifactUpdate is a 1.0 TaskArtifactUpdateEvent.
type ArtifactUpdate struct {
	TaskID    string         `json:"taskId"`
	ContextID string         `json:"contextId"`
	Artifact  Artifact       `json:"artifact"`
	Append    bool           `json:"append,omitempty"`
	LastChunk bool           `json:"lastChunk,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// Response is a SendMessage result and a stream's event
// (StreamResponse): exactly one field is set.
type Response struct {
	Task           *Task           `json:"task,omitempty"`
	Message        *Message        `json:"message,omitempty"`
	StatusUpdate   *StatusUpdate   `json:"statusUpdate,omitempty"`
	ArtifactUpdate *ArtifactUpdate `json:"artifactUpdate,omitempty"`
}

// SendRequest is SendMessage's and SendStreamingMessage's params.
type SendRequest struct {
	Tenant        string         `json:"tenant,omitempty"`
	Message       *Message       `json:"message"`
	Configuration *Configuration `json:"configuration,omitempty"`
	Metadata      map[string]any `json:"metadata,omitempty"`
}

// Configuration is a send request's configuration.
type Configuration struct {
	AcceptedOutputModes []string        `json:"acceptedOutputModes,omitempty"`
	HistoryLength       *int            `json:"historyLength,omitempty"`
	ReturnImmediately   bool            `json:"returnImmediately,omitempty"`
	PushConfig          json.RawMessage `json:"taskPushNotificationConfig,omitempty"`
}

// TaskRequest is GetTask's, CancelTask's and SubscribeToTask's params.
type TaskRequest struct {
	Tenant        string         `json:"tenant,omitempty"`
	ID            string         `json:"id"`
	HistoryLength *int           `json:"historyLength,omitempty"`
	Metadata      map[string]any `json:"metadata,omitempty"`
}

// SendParams translates a 1.0 send request into the SDK's.
func (req *SendRequest) SendParams() (*a2a.MessageSendParams, error) {
	if req.Message == nil {
		return nil, fmt.Errorf("%w: message: missing", a2a.ErrInvalidParams)
	}
	msg, err := req.Message.SDK()
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

// SDK translates a 1.0 message into the SDK's.
func (m *Message) SDK() (*a2a.Message, error) {
	var role a2a.MessageRole
	switch m.Role {
	case "ROLE_USER":
		role = a2a.MessageRoleUser
	case "ROLE_AGENT":
		role = a2a.MessageRoleAgent
	default:
		return nil, fmt.Errorf("%w: message.role: %s is not a role (ROLE_USER or ROLE_AGENT)", a2a.ErrInvalidParams, Quote(m.Role))
	}
	msg := &a2a.Message{ID: m.MessageID, ContextID: m.ContextID, TaskID: a2a.TaskID(m.TaskID), Role: role,
		Metadata: m.Metadata, Extensions: m.Extensions}
	for i, p := range m.Parts {
		part, err := p.SDK()
		if err != nil {
			return nil, fmt.Errorf("%w: message.parts[%d]: %v", a2a.ErrInvalidParams, i, err)
		}
		msg.Parts = append(msg.Parts, part)
	}
	return msg, nil
}

// SDK translates a 1.0 part into the SDK's.
func (p *Part) SDK() (a2a.Part, error) {
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

// Quote quotes a name for an error message, cut to 200 bytes.
func Quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// State names a task state as 1.0 does: TASK_STATE_INPUT_REQUIRED.
func State(s a2a.TaskState) string {
	if s == a2a.TaskStateUnspecified || s == a2a.TaskStateUnknown {
		return "TASK_STATE_UNSPECIFIED"
	}
	return "TASK_STATE_" + strings.ToUpper(strings.ReplaceAll(string(s), "-", "_"))
}

// FromMessage translates the SDK's message into 1.0's.
func FromMessage(m *a2a.Message) *Message {
	if m == nil {
		return nil
	}
	role := "ROLE_AGENT"
	if m.Role == a2a.MessageRoleUser {
		role = "ROLE_USER"
	}
	out := &Message{MessageID: m.ID, ContextID: m.ContextID, TaskID: string(m.TaskID), Role: role,
		Parts: FromParts(m.Parts), Metadata: m.Metadata, Extensions: m.Extensions}
	for _, t := range m.ReferenceTasks {
		out.ReferenceTaskIDs = append(out.ReferenceTaskIDs, string(t))
	}
	return out
}

// FromParts translates the SDK's parts into 1.0's.
func FromParts(parts a2a.ContentParts) []Part {
	out := make([]Part, 0, len(parts))
	for _, p := range parts {
		switch p := p.(type) {
		case a2a.TextPart:
			out = append(out, Part{Text: &p.Text, Metadata: p.Metadata})
		case a2a.DataPart:
			data, _ := json.Marshal(p.Data)
			out = append(out, Part{Data: data, MediaType: "application/json", Metadata: p.Metadata})
		case a2a.FilePart:
			switch f := p.File.(type) {
			case a2a.FileURI:
				out = append(out, Part{URL: f.URI, Filename: f.Name, MediaType: f.MimeType, Metadata: p.Metadata})
			case a2a.FileBytes:
				out = append(out, Part{Raw: f.Bytes, Filename: f.Name, MediaType: f.MimeType, Metadata: p.Metadata})
			}
		}
	}
	return out
}

// FromStatus translates the SDK's task status into 1.0's.
func FromStatus(s a2a.TaskStatus) Status {
	out := Status{State: State(s.State), Message: FromMessage(s.Message)}
	if s.Timestamp != nil {
		out.Timestamp = s.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return out
}

// FromArtifact translates the SDK's artifact into 1.0's.
func FromArtifact(a *a2a.Artifact) Artifact {
	return Artifact{ArtifactID: string(a.ID), Name: a.Name, Description: a.Description, Parts: FromParts(a.Parts), Metadata: a.Metadata}
}

// FromTask translates the SDK's task into 1.0's.
func FromTask(t *a2a.Task) *Task {
	out := &Task{ID: string(t.ID), ContextID: t.ContextID, Status: FromStatus(t.Status), Metadata: t.Metadata}
	for _, a := range t.Artifacts {
		out.Artifacts = append(out.Artifacts, FromArtifact(a))
	}
	for _, m := range t.History {
		out.History = append(out.History, *FromMessage(m))
	}
	return out
}

// FromEvent translates one of the SDK's events into a 1.0 StreamResponse.
func FromEvent(ev a2a.Event) Response {
	switch ev := ev.(type) {
	case *a2a.Task:
		return Response{Task: FromTask(ev)}
	case *a2a.Message:
		return Response{Message: FromMessage(ev)}
	case *a2a.TaskStatusUpdateEvent:
		return Response{StatusUpdate: &StatusUpdate{TaskID: string(ev.TaskID), ContextID: ev.ContextID,
			Status: FromStatus(ev.Status), Metadata: ev.Metadata}}
	case *a2a.TaskArtifactUpdateEvent:
		return Response{ArtifactUpdate: &ArtifactUpdate{TaskID: string(ev.TaskID), ContextID: ev.ContextID,
			Artifact: FromArtifact(ev.Artifact), Append: ev.Append, LastChunk: ev.LastChunk, Metadata: ev.Metadata}}
	}
	return Response{}
}

// Error is how the 1.0 bindings name an error: its JSON-RPC code, its
// HTTP status and gRPC status name, and the ErrorInfo reason.
type Error struct {
	Code   int    // JSON-RPC error code
	HTTP   int    // HTTP status (HTTP+JSON binding)
	Status string // google.rpc status name
	Reason string // ErrorInfo reason
}

var errorsByKind = []struct {
	err error
	Error
}{
	{a2a.ErrTaskNotFound, Error{-32001, 404, "NOT_FOUND", "TASK_NOT_FOUND"}},
	{a2a.ErrTaskNotCancelable, Error{-32002, 400, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE"}},
	{a2a.ErrPushNotificationNotSupported, Error{-32003, 400, "FAILED_PRECONDITION", "PUSH_NOTIFICATION_NOT_SUPPORTED"}},
	{a2a.ErrUnsupportedOperation, Error{-32004, 400, "FAILED_PRECONDITION", "UNSUPPORTED_OPERATION"}},
	{a2a.ErrUnsupportedContentType, Error{-32005, 400, "INVALID_ARGUMENT", "CONTENT_TYPE_NOT_SUPPORTED"}},
	{a2a.ErrInvalidAgentResponse, Error{-32006, 500, "INTERNAL", "INVALID_AGENT_RESPONSE"}},
	{a2a.ErrAuthenticatedExtendedCardNotConfigured, Error{-32007, 400, "FAILED_PRECONDITION", "EXTENDED_AGENT_CARD_NOT_CONFIGURED"}},
	{ErrVersionNotSupported, Error{-32009, 400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED"}},
	{a2a.ErrParseError, Error{-32700, 400, "INVALID_ARGUMENT", "PARSE_ERROR"}},
	{a2a.ErrInvalidRequest, Error{-32600, 400, "INVALID_ARGUMENT", "INVALID_REQUEST"}},
	{a2a.ErrMethodNotFound, Error{-32601, 404, "NOT_FOUND", "METHOD_NOT_FOUND"}},
	{a2a.ErrInvalidParams, Error{-32602, 400, "INVALID_ARGUMENT", "INVALID_PARAMS"}},
}

// ErrVersionNotSupported is VersionNotSupportedError: the A2A-Version
// asked for is not served.
var ErrVersionNotSupported = errors.New("A2A protocol version not supported")

// Classify names an error as the 1.0 bindings do; an error of no known
// kind is internal.
func Classify(err error) Error {
	for _, e := range errorsByKind {
		if errors.Is(err, e.err) {
			return e.Error
		}
	}
	return Error{-32603, 500, "INTERNAL", "INTERNAL"}
}

// ErrorInfo is the google.rpc.ErrorInfo every 1.0 error carries.
func ErrorInfo(reason string) []map[string]any {
	return []map[string]any{{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "a2a-protocol.org"}}
}

// FromSendParams translates the SDK's send params into a 1.0 request.
func FromSendParams(p *a2a.MessageSendParams) *SendRequest {
	req := &SendRequest{Message: FromMessage(p.Message), Metadata: p.Metadata}
	if c := p.Config; c != nil {
		req.Configuration = &Configuration{AcceptedOutputModes: c.AcceptedOutputModes, HistoryLength: c.HistoryLength,
			ReturnImmediately: c.Blocking != nil && !*c.Blocking}
	}
	return req
}

// ParseState reads a 1.0 task state name (TASK_STATE_INPUT_REQUIRED).
func ParseState(s string) a2a.TaskState {
	name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(s, "TASK_STATE_"), "_", "-"))
	switch st := a2a.TaskState(name); st {
	case a2a.TaskStateSubmitted, a2a.TaskStateWorking, a2a.TaskStateInputRequired, a2a.TaskStateAuthRequired,
		a2a.TaskStateCompleted, a2a.TaskStateCanceled, a2a.TaskStateFailed, a2a.TaskStateRejected:
		return st
	}
	return a2a.TaskStateUnknown
}

// SDK translates a 1.0 status into the SDK's.
func (s *Status) SDK() (a2a.TaskStatus, error) {
	out := a2a.TaskStatus{State: ParseState(s.State)}
	if s.Message != nil {
		m, err := s.Message.SDK()
		if err != nil {
			return out, err
		}
		out.Message = m
	}
	if t, err := time.Parse(time.RFC3339Nano, s.Timestamp); err == nil {
		out.Timestamp = &t
	}
	return out, nil
}

// SDK translates a 1.0 artifact into the SDK's.
func (a *Artifact) SDK() (*a2a.Artifact, error) {
	out := &a2a.Artifact{ID: a2a.ArtifactID(a.ArtifactID), Name: a.Name, Description: a.Description, Metadata: a.Metadata}
	for i, p := range a.Parts {
		part, err := p.SDK()
		if err != nil {
			return nil, fmt.Errorf("artifact %s part %d: %w", a.ArtifactID, i, err)
		}
		out.Parts = append(out.Parts, part)
	}
	return out, nil
}

// SDK translates a 1.0 task into the SDK's.
func (t *Task) SDK() (*a2a.Task, error) {
	status, err := t.Status.SDK()
	if err != nil {
		return nil, err
	}
	out := &a2a.Task{ID: a2a.TaskID(t.ID), ContextID: t.ContextID, Status: status, Metadata: t.Metadata}
	for i := range t.Artifacts {
		a, err := t.Artifacts[i].SDK()
		if err != nil {
			return nil, err
		}
		out.Artifacts = append(out.Artifacts, a)
	}
	for i := range t.History {
		m, err := t.History[i].SDK()
		if err != nil {
			return nil, err
		}
		out.History = append(out.History, m)
	}
	return out, nil
}

// SDK translates a 1.0 result or stream event into the SDK's event. A
// status update is final, as 0.3 says it, when its state ends the stream:
// terminal, or waiting for the client.
func (r *Response) SDK() (a2a.Event, error) {
	switch {
	case r.Task != nil:
		return r.Task.SDK()
	case r.Message != nil:
		return r.Message.SDK()
	case r.StatusUpdate != nil:
		u := r.StatusUpdate
		status, err := u.Status.SDK()
		if err != nil {
			return nil, err
		}
		st := status.State
		return &a2a.TaskStatusUpdateEvent{TaskID: a2a.TaskID(u.TaskID), ContextID: u.ContextID, Status: status, Metadata: u.Metadata,
			Final: st.Terminal() || st == a2a.TaskStateInputRequired || st == a2a.TaskStateAuthRequired}, nil
	case r.ArtifactUpdate != nil:
		u := r.ArtifactUpdate
		a, err := u.Artifact.SDK()
		if err != nil {
			return nil, err
		}
		return &a2a.TaskArtifactUpdateEvent{TaskID: a2a.TaskID(u.TaskID), ContextID: u.ContextID, Artifact: a,
			Append: u.Append, LastChunk: u.LastChunk, Metadata: u.Metadata}, nil
	}
	return nil, fmt.Errorf("%w: an answer with none of task, message, statusUpdate or artifactUpdate", a2a.ErrInvalidAgentResponse)
}

// FromCode is the SDK's error for a JSON-RPC error code, carrying the
// remote's message.
func FromCode(code int, message string) error {
	for _, e := range errorsByKind {
		if e.Code == code {
			return fmt.Errorf("%w: %s", e.err, message)
		}
	}
	return fmt.Errorf("%w: %d %s", a2a.ErrServerError, code, message)
}

// ListTasksRequest is ListTasks' params (on HTTP+JSON, the query of GET
// /tasks).
type ListTasksRequest struct {
	Tenant               string `json:"tenant,omitempty"`
	ContextID            string `json:"contextId,omitempty"`
	Status               string `json:"status,omitempty"`
	PageSize             *int   `json:"pageSize,omitempty"`
	PageToken            string `json:"pageToken,omitempty"`
	HistoryLength        *int   `json:"historyLength,omitempty"`
	StatusTimestampAfter string `json:"statusTimestampAfter,omitempty"`
	IncludeArtifacts     bool   `json:"includeArtifacts,omitempty"`
}

// ListTasksResponse is ListTasks' result.
type ListTasksResponse struct {
	Tasks         []*Task `json:"tasks"`
	NextPageToken string  `json:"nextPageToken"`
	PageSize      int     `json:"pageSize"`
	TotalSize     int     `json:"totalSize"`
}
