package run

import (
	"time"

	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/tool"
)

// Info is who a run is, as its telemetry labels what it does: its agent or
// flow, its place in its tree, its instance and metadata.
type Info struct {
	ID         string
	Agent      string
	Flow       string
	Instance   string
	Parent     string
	ParentCall string
	Path       string
	Depth      int
	Metadata   map[string]string
	Submitted  time.Time
	// Started is when the run started (its run.started entry), once it has.
	Started time.Time
	// Trace is TraceID's answer, kept by InfoOf.
	Trace string
	// Acting is the agent that holds the run's conversation after a
	// handoff ("" until one): its model and tool calls are its own.
	Acting string
}

// Actor is the agent whose calls these are: the one a handoff gave the
// conversation to, else the run's agent.
func (i *Info) Actor() string {
	if i.Acting != "" {
		return i.Acting
	}
	return i.Agent
}

// InfoOf reads a run's Info from its run.started entry.
func InfoOf(id string, s *journal.RunStarted) Info {
	return Info{ID: id, Agent: s.Agent, Flow: s.Flow, Instance: s.Instance, Parent: s.Parent, ParentCall: s.ParentCall,
		Path: s.Path, Depth: s.Depth, Metadata: s.Metadata, Submitted: s.Submitted, Trace: traceOf(id, s.Metadata)}
}

// Name is the run's agent, or its flow.
func (i *Info) Name() string {
	if i.Flow != "" {
		return i.Flow
	}
	return i.Agent
}

// TraceID is the trace the run's tree belongs to: the caller's, when it
// sent a W3C traceparent (a child run is given its parent's), else one
// derived from the root run's id, the same that its tool calls carry
// (tool.TraceParent).
func (i *Info) TraceID() string {
	if i.Trace != "" {
		return i.Trace
	}
	return traceOf(i.ID, i.Metadata)
}

func traceOf(id string, metadata map[string]string) string {
	return tool.TraceParent(metadata["traceparent"], id, "")[3:35]
}
