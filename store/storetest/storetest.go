// Package storetest opens real NATS JetStream servers for tests: embedded
// stores in temporary directories, and standalone servers on loopback
// ports, as an external cluster node would be.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/myriad-ai/myriad/store"
)

// Open starts an embedded store with file storage in a temporary directory
// that is removed when the test ends, and returns it and the directory.
func Open(t testing.TB) (*store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	return Reopen(t, dir), dir
}

// Reopen starts an embedded store on an existing data directory, as a
// restarted process would.
func Reopen(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartServer starts a standalone NATS server with JetStream on a loopback
// port and returns its client URL.
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

// Connect opens a store on an external server, as `myriad serve --nats
// URL` does.
func Connect(t testing.TB, url string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{URL: url})
	if err != nil {
		t.Fatalf("connect store: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
