package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/model"
)

// Instance is the persistent state of one agent instance (agent/key): its
// conversation, and the counters that keep its runs one at a time, in order.
type Instance struct {
	Agent string `json:"agent"`
	Key   string `json:"key"`
	// Submitted is the number of runs ever submitted to the instance; a new
	// run takes turn Submitted+1.
	Submitted uint64 `json:"submitted"`
	// Done is the last turn that ended; turn Done+1 may run next.
	Done uint64 `json:"done"`
	// Pending maps each reserved turn that has not ended ("7") to its run,
	// so a turn whose submission died before writing its run can be skipped.
	Pending  map[string]PendingTurn `json:"pending,omitempty"`
	Messages []model.Message        `json:"messages,omitempty"`
	// Active is the agent holding the conversation after a handoff, when
	// it is not the instance's own agent.
	Active    string    `json:"active,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

func instanceKV(agentName, key string) string { return agentName + "." + key }

func (r *Runtime) getInstance(ctx context.Context, agentName, key string) (*Instance, uint64, error) {
	e, err := r.bus.Insts.Get(ctx, instanceKV(agentName, key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &Instance{Agent: agentName, Key: key}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var in Instance
	if err := json.Unmarshal(e.Value(), &in); err != nil {
		return nil, 0, err
	}
	return &in, e.Revision(), nil
}

// updateInstance applies fn with compare-and-set, retrying on races.
func (r *Runtime) updateInstance(ctx context.Context, agentName, key string, fn func(*Instance) error) (*Instance, error) {
	for {
		in, rev, err := r.getInstance(ctx, agentName, key)
		if err != nil {
			return nil, err
		}
		if err := fn(in); err != nil {
			if errors.Is(err, errSkip) {
				return in, nil
			}
			return nil, err
		}
		in.UpdatedAt = time.Now().UTC()
		data, _ := json.Marshal(in)
		if rev == 0 {
			_, err = r.bus.Insts.Create(ctx, instanceKV(agentName, key), data)
		} else {
			_, err = r.bus.Insts.Update(ctx, instanceKV(agentName, key), data, rev)
		}
		if err == nil {
			return in, nil
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		return nil, err
	}
}

// PendingTurn is a reserved turn of an instance.
type PendingTurn struct {
	RunID      string    `json:"run_id"`
	ReservedAt time.Time `json:"reserved_at"`
}

// orphanAfter is how long a reserved turn may lack its run record before
// the turns behind it skip it. Submit writes the record right after the
// reservation, so this only passes when that submission died.
const orphanAfter = 30 * time.Second

func turnKey(turn uint64) string { return strconv.FormatUint(turn, 10) }

func (r *Runtime) reserveTurn(ctx context.Context, agentName, key, runID string) (uint64, error) {
	rejectBusy := r.agents[agentName] != nil && r.agents[agentName].RejectBusy
	in, err := r.updateInstance(ctx, agentName, key, func(in *Instance) error {
		if rejectBusy && in.Submitted > in.Done {
			return fmt.Errorf("%w: instance %s/%s is busy with turn %d (this agent rejects concurrent input; retry when it is done)", ErrConflict, agentName, key, in.Done+1)
		}
		in.Submitted++
		if in.Pending == nil {
			in.Pending = map[string]PendingTurn{}
		}
		in.Pending[turnKey(in.Submitted)] = PendingTurn{RunID: runID, ReservedAt: time.Now().UTC()}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return in.Submitted, nil
}

// GetInstance returns an instance's state.
func (r *Runtime) GetInstance(ctx context.Context, agentName, key string) (*Instance, error) {
	in, _, err := r.getInstance(ctx, agentName, key)
	return in, err
}

// DefaultHistoryLimit is how many messages of an instance's conversation are
// kept when an agent sets no limit: enough for long chats, small enough that
// the instance record and each run's start entry stay well under NATS's
// message size limit.
const DefaultHistoryLimit = 200

// TrimHistory keeps at most the last limit messages, starting at a user
// message so that no tool result or tool call is left without its pair.
func TrimHistory(msgs []model.Message, limit int) []model.Message {
	if limit <= 0 || len(msgs) <= limit {
		return msgs
	}
	start := len(msgs) - limit
	for i := start; i < len(msgs); i++ {
		if msgs[i].Role == model.RoleUser {
			return msgs[i:]
		}
	}
	// The kept part holds no user message (one long tool-heavy turn): keep
	// from the last user message instead, over the limit, rather than lose
	// the whole conversation.
	for i := start - 1; i >= 0; i-- {
		if msgs[i].Role == model.RoleUser {
			return msgs[i:]
		}
	}
	return msgs[start:]
}

// skipOrphanTurn moves an instance past turn `turn` when that turn was
// reserved long ago and its run record was never written: otherwise every
// later turn would wait for it forever. It reports whether it did.
func (r *Runtime) skipOrphanTurn(ctx context.Context, in *Instance, turn uint64) bool {
	p, ok := in.Pending[turnKey(turn)]
	if !ok || time.Since(p.ReservedAt) < orphanAfter {
		return false
	}
	if _, _, err := r.get(ctx, p.RunID); !errors.Is(err, ErrNotFound) {
		return false
	}
	_, err := r.updateInstance(ctx, in.Agent, in.Key, func(cur *Instance) error {
		if cur.Done+1 != turn || cur.Pending[turnKey(turn)].RunID != p.RunID {
			return errSkip
		}
		cur.Done = turn
		delete(cur.Pending, turnKey(turn))
		return nil
	})
	if err == nil {
		r.log.Warn("skipped an instance turn whose submission never completed", "agent", in.Agent, "instance", in.Key, "turn", turn, "run_id", p.RunID)
	}
	return err == nil
}

// interruptTurns cancels the unfinished turns of an instance and returns the
// input for the new turn: theirs, in order, then the new one, so the agent
// answers everything the user said.
func (r *Runtime) interruptTurns(ctx context.Context, agentName, key, input string) (string, error) {
	in, _, err := r.getInstance(ctx, agentName, key)
	if err != nil {
		return "", err
	}
	var inputs []string
	for t := in.Done + 1; t <= in.Submitted; t++ {
		p, ok := in.Pending[turnKey(t)]
		if !ok {
			continue
		}
		rec, err := r.Cancel(ctx, p.RunID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if rec.Status != StatusCompleted && rec.Status != StatusFailed {
			inputs = append(inputs, rec.Input)
		}
	}
	if len(inputs) == 0 {
		return input, nil
	}
	return strings.Join(append(inputs, input), "\n\n"), nil
}
