package builtin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/myriad-ai/myriad/tool"
)

// The messaging tools let agent instances message each other as virtual
// actors: send (durable, asynchronous), ask (request and reply, with a
// timeout) and broadcast (to every instance under a part of the
// hierarchy). Each message is a turn of its recipient instance. The key of
// each message is derived from the call's idempotency key, so a call made
// again after a crash sends nothing twice: the tools are idempotent.

// SendArgs are the arguments of send_message.
type SendArgs struct {
	To      string `json:"to" jsonschema:"the recipient instance: agent/key, such as support/eu/customer-42"`
	Message string `json:"message" jsonschema:"what to tell it, with everything it needs to know"`
}

// AskArgs are the arguments of ask_agent.
type AskArgs struct {
	To       string `json:"to" jsonschema:"the instance to ask: agent/key, such as research/lab-1/alice"`
	Question string `json:"question" jsonschema:"the question, with everything needed to answer it"`
	// TimeoutSeconds bounds the wait (default and maximum: the agent's
	// messaging.ask_timeout).
	TimeoutSeconds int `json:"timeout_seconds,omitempty" jsonschema:"how long to wait for the answer, in seconds"`
}

// BroadcastArgs are the arguments of broadcast_message.
type BroadcastArgs struct {
	To      string `json:"to" jsonschema:"which instances: agent/team/* for one agent's instances under team, */team/* for every agent's"`
	Message string `json:"message" jsonschema:"what to tell them"`
}

// errNoMessenger says the runtime running the call offers no messaging.
var errNoMessenger = errors.New("messaging is not available here: this runtime delivers no messages between instances")

// SendMessage sends a message to another instance and goes on without
// waiting for it.
func SendMessage() tool.Tool {
	return mustIdempotent(tool.NewFunc("send_message",
		"Send a message to another agent instance (agent/key). It is delivered durably and handled in turn; do not wait for an answer.",
		func(ctx context.Context, c *tool.Call, in SendArgs) (string, error) {
			if c.Messenger == nil {
				return "", errNoMessenger
			}
			id, err := c.Messenger.Send(ctx, tool.Message{To: in.To, Text: in.Message, Key: c.IdempotencyKey})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("sent to %s (run %s)", in.To, id), nil
		}))
}

// AskAgent asks another instance and waits for its answer.
func AskAgent() tool.Tool {
	return mustIdempotent(tool.NewFunc("ask_agent",
		"Ask another agent instance (agent/key) a question and wait for its answer.",
		func(ctx context.Context, c *tool.Call, in AskArgs) (string, error) {
			if c.Messenger == nil {
				return "", errNoMessenger
			}
			if in.TimeoutSeconds < 0 {
				return "", errors.New("timeout_seconds must not be negative")
			}
			r, err := c.Messenger.Ask(ctx, tool.Message{To: in.To, Text: in.Question, Key: c.IdempotencyKey},
				time.Duration(in.TimeoutSeconds)*time.Second)
			if err != nil {
				return "", err
			}
			if r.Status == tool.ReplyTimedOut {
				return "", errors.New(r.Text)
			}
			if r.Status != "completed" {
				return "", fmt.Errorf("%s did not answer (run %s %s): %s", in.To, r.RunID, r.Status, r.Text)
			}
			return r.Text, nil
		}))
}

// BroadcastMessage sends a message to every instance under a part of the
// hierarchy.
func BroadcastMessage() tool.Tool {
	return mustIdempotent(tool.NewFunc("broadcast_message",
		"Send a message to every agent instance a pattern matches (agent/team/*, or */team/* for every agent's); do not wait for answers.",
		func(ctx context.Context, c *tool.Call, in BroadcastArgs) (string, error) {
			if c.Messenger == nil {
				return "", errNoMessenger
			}
			n, err := c.Messenger.Broadcast(ctx, tool.Message{To: in.To, Text: in.Message, Key: c.IdempotencyKey})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("sent to %d instances under %s", n, in.To), nil
		}))
}

func mustIdempotent[In any](t *tool.Func[In], err error) tool.Tool {
	if err != nil {
		panic(err) // the names and types are fixed: this cannot fail at run time
	}
	return t.Idempotent()
}
