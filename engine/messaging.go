package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
)

// Agents as virtual actors. An instance (agent/key) is activated by its
// first message and holds nothing in memory between messages: its state is
// its journal and snapshot in the store. A message is a turn of its
// instance, so messages to one instance are handled one at a time, in the
// order they were stored. Send returns once the message is stored; Ask
// waits for the turn's answer; Broadcast sends to every instance the
// directory lists under a part of the hierarchy.

// Message is a message to an agent instance.
type Message struct {
	To   Address
	Text string
	// From names the sender (an address, a run, a service), told to the
	// recipient with the text; "" sends the text alone.
	From string
	// Key, when set, makes the message idempotent: the same key sends once
	// (for a day).
	Key      string
	Metadata map[string]string
}

// MetadataFrom is the metadata key of a message's sender.
const MetadataFrom = "from"

// DefaultAskTimeout bounds an ask_agent call when its agent sets no
// messaging.ask_timeout.
const DefaultAskTimeout = time.Minute

// DefaultMaxBroadcast caps the recipients of one broadcast_message call
// when its agent sets no messaging.max_broadcast.
const DefaultMaxBroadcast = 100

// Send stores a message for an instance, activating it if it is new, and
// returns the record of the turn it makes (queued until the instance takes
// it).
func (e *Engine) Send(ctx context.Context, m Message) (*run.Record, error) {
	if strings.TrimSpace(m.Text) == "" {
		return nil, fmt.Errorf("%w: message: must not be empty", ErrInvalid)
	}
	input := m.Text
	md := m.Metadata
	if m.From != "" {
		input = "Message from " + m.From + ":\n\n" + m.Text
		md = make(map[string]string, len(m.Metadata)+1)
		for k, v := range m.Metadata {
			md[k] = v
		}
		md[MetadataFrom] = m.From
	}
	rec, _, err := e.Submit(ctx, SubmitRequest{Agent: m.To.Agent, Instance: m.To.Key, Input: input, Metadata: md, IdempotencyKey: m.Key})
	return rec, err
}

// Ask sends a message and waits for the turn to end, or for ctx: the
// record then says how far it got.
func (e *Engine) Ask(ctx context.Context, m Message) (*run.Record, error) {
	rec, err := e.Send(ctx, m)
	if err != nil {
		return nil, err
	}
	return e.Wait(ctx, rec.ID)
}

// Broadcast sends a message to every instance a pattern matches
// (ParsePattern), in parallel, and returns the runs of the turns it made;
// with a key, each recipient's message is idempotent. skip, when set,
// leaves an instance out (the sender).
func (e *Engine) Broadcast(ctx context.Context, pattern string, m Message, skip func(Address) bool) ([]string, error) {
	f, one, err := ParsePattern(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil, fmt.Errorf("%w: message: must not be empty", ErrInvalid)
	}
	if f.Agent != "" && !e.HasAgent(f.Agent) {
		return nil, fmt.Errorf("%w %s (known: %s)", ErrUnknownAgent, run.Quote(f.Agent), strings.Join(e.agentNames(), ", "))
	}
	if one != nil {
		m.To = *one
		rec, err := e.Send(ctx, m)
		if err != nil {
			return nil, err
		}
		return []string{rec.ID}, nil
	}
	var runs []string
	f.Limit = 256
	for {
		page, err := e.ListInstances(ctx, f)
		if err != nil {
			return runs, err
		}
		ids, err := e.sendAll(ctx, page.Instances, m, skip)
		runs = append(runs, ids...)
		if err != nil || page.NextCursor == "" {
			return runs, err
		}
		f.Cursor = page.NextCursor
	}
}

// sendAll sends m to each instance, eight at a time.
func (e *Engine) sendAll(ctx context.Context, to []InstanceEntry, m Message, skip func(Address) bool) ([]string, error) {
	var (
		mu    sync.Mutex
		runs  []string
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, 8)
	for _, ie := range to {
		a := ie.Address()
		if skip != nil && skip(a) {
			continue
		}
		one := m
		one.To = a
		if m.Key != "" {
			one.Key = recipientKey(m.Key, a)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rec, err := e.Send(ctx, one)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("broadcast to %s: %w", a, err)
				}
				return
			}
			runs = append(runs, rec.ID)
		})
	}
	wg.Wait()
	return runs, first
}

// recipientKey is the idempotency key of one recipient's copy of a keyed
// message.
func recipientKey(key string, a Address) string {
	sum := sha256.Sum256([]byte(key + "\x00" + a.String()))
	return "bcast/" + hex.EncodeToString(sum[:16])
}

// callKey is the idempotency key of a message a tool call sends: the
// call's own key, which every attempt of the call shares.
func callKey(kind, key string) string {
	sum := sha256.Sum256([]byte(key))
	return kind + "/" + hex.EncodeToString(sum[:16])
}

// runMessenger is what one run's tool calls message instances through:
// as its agent, within its agent's messaging bounds.
type runMessenger struct {
	e     *Engine
	runID string
	// from is the run's instance, or its run id when it has none.
	from  string
	self  Address
	rules agent.Messaging
	// allowed are the rules' patterns, read.
	allowed []pattern
}

var _ tool.Messenger = (*runMessenger)(nil)

// pattern is a part of the hierarchy: one address, or the instances
// under a path of one agent or of every agent.
type pattern struct {
	one *Address
	f   InstanceFilter
}

func (p pattern) matches(a Address) bool {
	if p.one != nil {
		return *p.one == a
	}
	return (p.f.Agent == "" || p.f.Agent == a.Agent) && under(a.Key, p.f.Under)
}

// covers reports whether every instance q matches, p matches too.
func (p pattern) covers(q pattern) bool {
	if q.one != nil {
		return p.matches(*q.one)
	}
	if p.one != nil {
		return false
	}
	return (p.f.Agent == "" || p.f.Agent == q.f.Agent) && under(q.f.Under, p.f.Under)
}

// under reports whether key is path or below it ("" is the root).
func under(key, path string) bool {
	return path == "" || key == path || strings.HasPrefix(key, path+"/")
}

func readPattern(s string) (pattern, error) {
	f, one, err := ParsePattern(s)
	return pattern{one: one, f: f}, err
}

// CheckMessaging reads an agent's messaging bounds, naming what is wrong.
func CheckMessaging(m agent.Messaging) error {
	for i, s := range m.To {
		if _, err := readPattern(s); err != nil {
			return fmt.Errorf("to[%d]: %w", i, err)
		}
	}
	return nil
}

// messenger is the messenger of a run of agent a.
func (e *Engine) messenger(rec *run.Record, a *agent.Agent) *runMessenger {
	m := &runMessenger{e: e, runID: rec.ID, from: rec.ID}
	if a != nil {
		m.rules = a.Messaging
		for _, s := range a.Messaging.To {
			if p, err := readPattern(s); err == nil {
				m.allowed = append(m.allowed, p)
			}
		}
	}
	if rec.Instance != "" {
		m.self = Address{Agent: rec.Agent, Key: rec.Instance}
		m.from = m.self.String()
	}
	return m
}

// permit says why the run's agent may not message p, if it may not.
func (m *runMessenger) permit(s string) (pattern, error) {
	p, err := readPattern(s)
	if err != nil {
		return p, err
	}
	if len(m.allowed) == 0 {
		return p, nil
	}
	for _, a := range m.allowed {
		if a.covers(p) {
			return p, nil
		}
	}
	return p, fmt.Errorf("this agent may not message %s (its messaging.to allows %s)", s, strings.Join(m.rules.To, ", "))
}

func (m *runMessenger) message(to Address, text, key string) Message {
	return Message{To: to, Text: text, From: m.from, Key: key, Metadata: map[string]string{"sent_by_run": m.runID}}
}

// Send implements tool.Messenger.
func (m *runMessenger) Send(ctx context.Context, msg tool.Message) (string, error) {
	p, err := m.permit(msg.To)
	if err != nil {
		return "", err
	}
	if p.one == nil {
		return "", fmt.Errorf("%s is a pattern: send to one instance (agent/key), or broadcast", msg.To)
	}
	rec, err := m.e.Send(ctx, m.message(*p.one, msg.Text, callKey("send", msg.Key)))
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

// Ask implements tool.Messenger. The call holds its worker while it
// waits; a cycle of asks (a asks b, which asks a) ends at the timeout.
func (m *runMessenger) Ask(ctx context.Context, msg tool.Message, timeout time.Duration) (tool.Reply, error) {
	p, err := m.permit(msg.To)
	if err != nil {
		return tool.Reply{}, err
	}
	if p.one == nil {
		return tool.Reply{}, fmt.Errorf("%s is a pattern: ask one instance (agent/key)", msg.To)
	}
	if *p.one == m.self {
		return tool.Reply{}, errors.New("an instance cannot ask itself: it handles one message at a time, so it would wait for its own answer")
	}
	limit := m.rules.AskTimeout
	if limit <= 0 {
		limit = DefaultAskTimeout
	}
	if timeout <= 0 || timeout > limit {
		timeout = limit
	}
	rec, err := m.e.Send(ctx, m.message(*p.one, msg.Text, callKey("ask", msg.Key)))
	if err != nil {
		return tool.Reply{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	end, err := m.e.Wait(wctx, rec.ID)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return tool.Reply{RunID: rec.ID, Status: tool.ReplyTimedOut, Text: fmt.Sprintf("no answer within %s; the message stays with %s, whose answer will be run %s's output", timeout, msg.To, rec.ID)}, nil
	}
	if err != nil {
		return tool.Reply{}, err
	}
	r := tool.Reply{RunID: end.ID, Status: string(end.Status), Text: end.Output}
	if end.Status != run.StatusCompleted {
		r.Text = "it stopped: " + string(end.Status)
		if end.Error != nil {
			r.Text = end.Error.Message
		}
	}
	return r, nil
}

// Broadcast implements tool.Messenger.
func (m *runMessenger) Broadcast(ctx context.Context, msg tool.Message) (int, error) {
	p, err := m.permit(msg.To)
	if err != nil {
		return 0, err
	}
	limit := m.rules.MaxBroadcast
	if limit <= 0 {
		limit = DefaultMaxBroadcast
	}
	if p.one == nil {
		// Count first: a broadcast past the cap sends nothing.
		f := p.f
		f.Limit = min(limit+1, 1000)
		n := 0
		for {
			page, err := m.e.ListInstances(ctx, f)
			if err != nil {
				return 0, err
			}
			for _, ie := range page.Instances {
				if ie.Address() != m.self {
					n++
				}
			}
			if n > limit {
				return 0, fmt.Errorf("%s matches more than %d instances (this agent's messaging.max_broadcast): narrow the pattern", msg.To, limit)
			}
			if page.NextCursor == "" {
				break
			}
			f.Cursor = page.NextCursor
		}
	}
	runs, err := m.e.Broadcast(ctx, msg.To, m.message(Address{}, msg.Text, callKey("bcast", msg.Key)), func(a Address) bool { return a == m.self })
	return len(runs), err
}
