// Package bustest opens real embedded NATS JetStream servers for tests.
package bustest

import (
	"context"
	"testing"

	"github.com/myriad-ai/myriad/bus"
)

// Open starts an embedded server with file storage in a temporary directory
// that is removed when the test ends, and returns the bus and the directory.
func Open(t testing.TB) (*bus.Bus, string) {
	t.Helper()
	dir := t.TempDir()
	return Reopen(t, dir), dir
}

// Reopen starts an embedded server on an existing data directory, as a
// restarted process would.
func Reopen(t testing.TB, dir string) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}
