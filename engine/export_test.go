package engine

import (
	"context"
	"time"
)

// InstanceID is instanceID, for tests that write an instance's journal as
// a worker would have left it.
var InstanceID = instanceID

// SetCommandHook makes f run as each command passed its checks, before it
// is sent (nil: nothing), with the command's kind ("decide", "cancel"...).
func SetCommandHook(f func(kind string)) { testHookCommand = f }

// ForgetBacklog makes the next submission read the backlog afresh, not
// the reading admission shares for a moment.
func ForgetBacklog(e *Engine) {
	e.admission.mu.Lock()
	e.admission.read = time.Time{}
	e.admission.mu.Unlock()
}

// Sweep runs the retention sweep as if it were now.
func Sweep(e *Engine, now time.Time) error { return e.sweep(context.Background(), now) }

// CachedSnapshot returns the snapshot the node's cache holds for an
// instance; CacheSnapshot puts one there, as if this node had written it.
func CachedSnapshot(e *Engine, id string) ([]byte, bool) { return e.snapshots.get(id) }

// CacheSnapshot puts a snapshot in the node's cache.
func CacheSnapshot(e *Engine, id string, data []byte) { e.snapshots.put(id, data) }
