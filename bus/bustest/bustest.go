// Package bustest opens real embedded NATS JetStream servers for tests.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

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

// StartServer starts a standalone NATS server with JetStream on a loopback
// port, as an external cluster node would be, and returns its client URL.
func StartServer(t testing.TB) string {
	return StartServerWith(t, server.Options{})
}

// StartServerWith is StartServer with some options set (MaxPayload, ...).
func StartServerWith(t testing.TB, o server.Options) string {
	t.Helper()
	o.Host, o.Port, o.JetStream, o.StoreDir, o.NoSigs, o.NoLog = "127.0.0.1", -1, true, t.TempDir(), true, true
	s, err := server.NewServer(&o)
	if err != nil {
		t.Fatalf("start NATS: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready within 10s")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// Connect opens a bus on an external server, as `myriad serve --nats URL` does.
func Connect(t testing.TB, url string) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{URL: url})
	if err != nil {
		t.Fatalf("connect bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}
