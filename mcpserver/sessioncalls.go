package mcpserver

import (
	"context"
	"errors"
	"sync"
)

// errSessionClosed is why a call's run is canceled when its client closes
// the session (HTTP DELETE) with the call still going.
var errSessionClosed = errors.New("the client closed the MCP session")

// sessionCalls holds the calls in flight on each 2025-11-25 session, so
// that closing the session cancels them. The SDK's own close waits for
// in-flight handlers to return and cancels nothing: a run whose caller
// had gone would run on unwatched until it ended. Session ids are random,
// so one table serves every server in the process.
var sessionCalls = callTable{calls: map[string]map[*context.CancelCauseFunc]struct{}{}}

type callTable struct {
	mu    sync.Mutex
	calls map[string]map[*context.CancelCauseFunc]struct{}
}

// track returns a context canceled when session closes; release forgets it.
func (t *callTable) track(ctx context.Context, session string) (tracked context.Context, release func()) {
	if session == "" {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	key := &cancel
	t.mu.Lock()
	if t.calls[session] == nil {
		t.calls[session] = map[*context.CancelCauseFunc]struct{}{}
	}
	t.calls[session][key] = struct{}{}
	t.mu.Unlock()
	return ctx, func() {
		t.mu.Lock()
		delete(t.calls[session], key)
		if len(t.calls[session]) == 0 {
			delete(t.calls, session)
		}
		t.mu.Unlock()
		cancel(nil)
	}
}

// closed cancels the calls in flight on session.
func (t *callTable) closed(session string) {
	t.mu.Lock()
	calls := t.calls[session]
	delete(t.calls, session)
	t.mu.Unlock()
	for cancel := range calls {
		(*cancel)(errSessionClosed)
	}
}
