// Package apitype holds the bodies of Myriad's HTTP API: what the server
// (package api) answers and what its Go client (package client) sends and
// reads. Pure data, so a client links nothing of the server.
package apitype

import (
	"encoding/json"
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// CreateRunRequest is the body of POST /v1/runs: an agent or a flow to run.
type CreateRunRequest struct {
	Agent    string            `json:"agent,omitempty"`
	Flow     string            `json:"flow,omitempty"`
	Input    string            `json:"input"`
	Instance string            `json:"instance,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// State is a flow run's initial state (a JSON object).
	State json.RawMessage `json:"state,omitempty"`
}

// RunRef is the answer to POST /v1/runs.
type RunRef struct {
	ID     string     `json:"id"`
	Status run.Status `json:"status"`
}

// RunList is the answer to GET /v1/runs.
type RunList struct {
	Runs       []*run.Record `json:"runs"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// ApprovalList is the answer to GET /v1/approvals.
type ApprovalList struct {
	Approvals []run.PendingApproval `json:"approvals"`
}

// AgentInfo describes an agent in GET /v1/agents.
type AgentInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Model       string   `json:"model"`
	Tools       []string `json:"tools"`
	// SubAgents are the agents it calls like tools, each call a child run;
	// Handoffs those it may hand the conversation to.
	SubAgents []string `json:"sub_agents,omitempty"`
	Handoffs  []string `json:"handoffs,omitempty"`
}

// FlowInfo describes a flow in GET /v1/flows.
type FlowInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Start       []string `json:"start"`
	Nodes       []string `json:"nodes"`
	// Edges are the flow's graph: next edges, and route edges with their
	// condition ("" for a route's default).
	Edges []FlowEdge `json:"edges"`
	// Kinds says what each node does: agent NAME, tool NAME, ask, sleep,
	// or route (a node that only routes).
	Kinds map[string]string `json:"kinds,omitempty"`
}

// FlowEdge is one edge of a flow's graph.
type FlowEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	When string `json:"when,omitempty"`
	// Route marks a conditional edge (the first that holds is taken).
	Route bool `json:"route,omitempty"`
}

// InputRequest is the body of POST /v1/runs/{id}/input: the answer to a
// question a run asks (its key is in the run's input_requests).
type InputRequest struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// Usage is the answer to GET /v1/usage: what runs used and cost, grouped.
type Usage struct {
	GroupBy string       `json:"group_by"`
	From    *time.Time   `json:"from,omitempty"`
	To      *time.Time   `json:"to,omitempty"`
	Groups  []UsageGroup `json:"groups"`
	Total   UsageGroup   `json:"total"`
}

// UsageGroup is one group of GET /v1/usage. Tokens are counted when
// grouping by agent or metadata (a run's tokens are not split by model or
// tool).
type UsageGroup struct {
	Key               string  `json:"key"`
	Runs              int     `json:"runs"`
	USD               float64 `json:"usd"`
	InputTokens       int     `json:"input_tokens,omitempty"`
	OutputTokens      int     `json:"output_tokens,omitempty"`
	CachedInputTokens int     `json:"cached_input_tokens,omitempty"`
	// Calls, Errors and DurationMS count a tool's calls, those that
	// failed and their total time, when grouping by tool (ended runs).
	Calls      int     `json:"calls,omitempty"`
	Errors     int     `json:"errors,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
}

// BudgetList answers GET /v1/budgets.
type BudgetList struct {
	Budgets []Budget `json:"budgets"`
}

// Budget is a budget runs share, and what they spent in its window until
// now (calls in flight included at what they reserved).
type Budget struct {
	Name        string  `json:"name"`
	Agent       string  `json:"agent,omitempty"`
	MetadataKey string  `json:"metadata_key,omitempty"`
	USD         float64 `json:"usd"`
	// Window is how far back spend counts, in seconds.
	WindowSeconds float64 `json:"window_seconds"`
	// Spent is by metadata value, most first; a budget without a metadata
	// key has one entry, with no value.
	Spent []BudgetSpent `json:"spent"`
}

// BudgetSpent is what a budget's runs spent, for one metadata value.
type BudgetSpent struct {
	Value string  `json:"value,omitempty"`
	USD   float64 `json:"usd"`
}

// ForkRequest is the body of POST /v1/runs/{id}/fork: the step to go on
// from (the run's run.started is step 1), and optionally a tool result to
// change on the way, and instructions or a model (a configured model's
// name) for the agent to go on with.
type ForkRequest struct {
	Step         int                     `json:"step"`
	ToolResult   *journal.ForkToolResult `json:"tool_result,omitempty"`
	Instructions string                  `json:"instructions,omitempty"`
	Model        string                  `json:"model,omitempty"`
}

// Storage is what the store holds (GET /v1/storage).
type Storage struct {
	// Runs counts the runs stored (the runs index).
	Runs uint64 `json:"runs"`
	// Bytes sums the streams' bytes, one copy: a cluster keeps Replicas.
	Bytes    uint64          `json:"bytes"`
	Replicas int             `json:"replicas"`
	Streams  []StreamStorage `json:"streams"`
}

// StreamStorage is one stream's or bucket's share of the store.
type StreamStorage struct {
	Name     string `json:"name"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
}

// InstanceList is a page of GET /v1/instances, oldest first.
type InstanceList struct {
	Instances []InstanceEntry `json:"instances"`
	// NextCursor continues the listing; absent at its end.
	NextCursor string `json:"next_cursor,omitempty"`
}

// InstanceEntry is an agent instance as the directory lists it.
type InstanceEntry struct {
	Agent string `json:"agent"`
	Key   string `json:"key"`
	// Address is agent/key: what messages are sent to.
	Address string    `json:"address"`
	Created time.Time `json:"created"`
}

// Instance is an agent instance's state (GET /v1/instances/{agent}/{key}).
type Instance struct {
	Agent   string `json:"agent"`
	Key     string `json:"key"`
	Address string `json:"address"`
	// Turns counts the turns started, Done those that ended.
	Turns uint64 `json:"turns"`
	Done  uint64 `json:"done"`
	// Current is the run of the turn running now; Queued the runs of the
	// turns waiting, in order.
	Current string   `json:"current,omitempty"`
	Queued  []string `json:"queued,omitempty"`
	// Messages counts the conversation's messages the instance keeps.
	Messages int `json:"messages"`
	// Active is the agent holding the conversation after a handoff.
	Active    string    `json:"active,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// BroadcastRequest is the body of POST /v1/broadcasts.
type BroadcastRequest struct {
	// To is a pattern: agent/team/* (one agent's instances under team),
	// */team/* (every agent's), agent/* (all of an agent's), or one
	// address.
	To    string `json:"to"`
	Input string `json:"input"`
	// From names the sender, told to each recipient with the input.
	From     string            `json:"from,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// BroadcastResult says what a broadcast sent.
type BroadcastResult struct {
	// Sent counts the instances it reached; Runs are their turns.
	Sent int      `json:"sent"`
	Runs []string `json:"runs"`
}
