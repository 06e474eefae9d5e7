package a2atool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2aclient"

	"github.com/myriad-ai/myriad/internal/a2a1"
)

// transportJSONRPC1 names A2A 1.0's JSON-RPC binding among the SDK
// client's transports, which know 0.3's alone.
const transportJSONRPC1 a2a.TransportProtocol = "JSONRPC/1.0"

// jsonrpc1 is an a2aclient.Transport that speaks A2A 1.0's JSON-RPC
// binding (written against the specification: no Go SDK for 1.0 is
// available), translating to and from the SDK's types, so the tool's logic
// is the same for both revisions.
type jsonrpc1 struct {
	url string
	hc  *http.Client
	ids atomic.Int64
}

var _ a2aclient.Transport = (*jsonrpc1)(nil)

// maxEvent bounds one server-sent event of a stream.
const maxEvent = 16 << 20

type rpcAnswer struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (a *rpcAnswer) err() error {
	if a.Error != nil {
		return a2a1.FromCode(a.Error.Code, a.Error.Message)
	}
	if len(a.Result) == 0 {
		return fmt.Errorf("%w: an answer with neither result nor error", a2a.ErrInvalidAgentResponse)
	}
	return nil
}

// post sends one request; the caller closes the body.
func (t *jsonrpc1) post(ctx context.Context, method string, params any, accept string) (*http.Response, error) {
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": t.ids.Add(1), "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	req.Header.Set("A2A-Version", a2a1.Version)
	resp, err := t.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s: HTTP %s: %s", method, resp.Status, strings.TrimSpace(string(data)))
	}
	return resp, nil
}

// call sends a request and decodes its result into out.
func (t *jsonrpc1) call(ctx context.Context, method string, params, out any) error {
	resp, err := t.post(ctx, method, params, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var a rpcAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxEvent)).Decode(&a); err != nil {
		return fmt.Errorf("%w: %s: %v", a2a.ErrInvalidAgentResponse, method, err)
	}
	if err := a.err(); err != nil {
		return err
	}
	if err := json.Unmarshal(a.Result, out); err != nil {
		return fmt.Errorf("%w: %s: %v", a2a.ErrInvalidAgentResponse, method, err)
	}
	return nil
}

// stream sends a streaming request and yields its events.
func (t *jsonrpc1) stream(ctx context.Context, method string, params any) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		resp, err := t.post(ctx, method, params, "text/event-stream")
		if err != nil {
			yield(nil, err)
			return
		}
		defer resp.Body.Close()
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			// An error answered before the stream began.
			var a rpcAnswer
			if err := json.NewDecoder(io.LimitReader(resp.Body, maxEvent)).Decode(&a); err != nil {
				yield(nil, fmt.Errorf("%w: %s: %v", a2a.ErrInvalidAgentResponse, method, err))
			} else if err := a.err(); err != nil {
				yield(nil, err)
			} else {
				yield(event(a.Result))
			}
			return
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), maxEvent)
		var data []byte
		for sc.Scan() {
			line := sc.Bytes()
			if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				data = append(data, bytes.TrimPrefix(d, []byte(" "))...)
				continue
			}
			if len(line) != 0 || len(data) == 0 {
				continue // a comment, an event name, or nothing yet
			}
			var a rpcAnswer
			err := json.Unmarshal(data, &a)
			data = data[:0]
			if err == nil {
				err = a.err()
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(event(a.Result)) {
				return
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			yield(nil, fmt.Errorf("%s: %w", method, err))
		}
	}
}

// event decodes a 1.0 result (StreamResponse) into the SDK's event.
func event(result json.RawMessage) (a2a.Event, error) {
	var r a2a1.Response
	if err := json.Unmarshal(result, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", a2a.ErrInvalidAgentResponse, err)
	}
	return r.SDK()
}

func (t *jsonrpc1) task(ctx context.Context, method string, params any) (*a2a.Task, error) {
	var task a2a1.Task
	if err := t.call(ctx, method, params, &task); err != nil {
		return nil, err
	}
	return task.SDK()
}

// GetTask calls GetTask.
func (t *jsonrpc1) GetTask(ctx context.Context, q *a2a.TaskQueryParams) (*a2a.Task, error) {
	return t.task(ctx, "GetTask", a2a1.TaskRequest{ID: string(q.ID), HistoryLength: q.HistoryLength})
}

// CancelTask calls CancelTask.
func (t *jsonrpc1) CancelTask(ctx context.Context, p *a2a.TaskIDParams) (*a2a.Task, error) {
	return t.task(ctx, "CancelTask", a2a1.TaskRequest{ID: string(p.ID), Metadata: p.Metadata})
}

// SendMessage calls SendMessage.
func (t *jsonrpc1) SendMessage(ctx context.Context, p *a2a.MessageSendParams) (a2a.SendMessageResult, error) {
	var result json.RawMessage
	if err := t.call(ctx, "SendMessage", a2a1.FromSendParams(p), &result); err != nil {
		return nil, err
	}
	ev, err := event(result)
	if err != nil {
		return nil, err
	}
	res, ok := ev.(a2a.SendMessageResult)
	if !ok {
		return nil, fmt.Errorf("%w: SendMessage answered %T, not a task or a message", a2a.ErrInvalidAgentResponse, ev)
	}
	return res, nil
}

// SendStreamingMessage calls SendStreamingMessage.
func (t *jsonrpc1) SendStreamingMessage(ctx context.Context, p *a2a.MessageSendParams) iter.Seq2[a2a.Event, error] {
	return t.stream(ctx, "SendStreamingMessage", a2a1.FromSendParams(p))
}

// ResubscribeToTask calls SubscribeToTask.
func (t *jsonrpc1) ResubscribeToTask(ctx context.Context, p *a2a.TaskIDParams) iter.Seq2[a2a.Event, error] {
	return t.stream(ctx, "SubscribeToTask", a2a1.TaskRequest{ID: string(p.ID)})
}

// GetTaskPushConfig: the tool uses no push notifications.
func (t *jsonrpc1) GetTaskPushConfig(context.Context, *a2a.GetTaskPushConfigParams) (*a2a.TaskPushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

// ListTaskPushConfig: the tool uses no push notifications.
func (t *jsonrpc1) ListTaskPushConfig(context.Context, *a2a.ListTaskPushConfigParams) ([]*a2a.TaskPushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

// SetTaskPushConfig: the tool uses no push notifications.
func (t *jsonrpc1) SetTaskPushConfig(context.Context, *a2a.TaskPushConfig) (*a2a.TaskPushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

// DeleteTaskPushConfig: the tool uses no push notifications.
func (t *jsonrpc1) DeleteTaskPushConfig(context.Context, *a2a.DeleteTaskPushConfigParams) error {
	return a2a.ErrPushNotificationNotSupported
}

// GetAgentCard: the tool reads the card itself.
func (t *jsonrpc1) GetAgentCard(context.Context) (*a2a.AgentCard, error) {
	return nil, a2a.ErrUnsupportedOperation
}

// Destroy has nothing to release.
func (t *jsonrpc1) Destroy() error { return nil }
