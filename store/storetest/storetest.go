// Package storetest opens real NATS JetStream servers for tests: embedded
// stores in temporary directories, and standalone servers on loopback
// ports, as an external cluster node would be.
package storetest

import (
	"context"
	"fmt"
	"net"
	"strings"
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
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatal("NATS server not ready within 30s")
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

// StartCluster starts a cluster of n NATS servers with JetStream on
// loopback ports and returns their client URLs, once the cluster has a
// JetStream leader.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	var servers []*server.Server
	var urls []string
	for i, p := range ports {
		o := &server.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: store.MaxPayload}
		o.Cluster = server.ClusterOpts{Name: "myriad-test", Host: "127.0.0.1", Port: p}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("start NATS: %v", err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		servers = append(servers, s)
		urls = append(urls, s.ClientURL())
	}
	for _, s := range servers {
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatal("NATS server not ready within 30s")
		}
	}
	// Wait for a meta leader that knows every peer, and every server
	// current with it: streams are placed on peers it knows online.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := true
		leader := false
		for _, s := range servers {
			if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == n {
				leader = true
			}
			ready = ready && s.JetStreamIsCurrent()
		}
		if leader && ready {
			return urls
		}
		if time.Now().After(deadline) {
			t.Fatal("the cluster was not ready (a JetStream leader knowing every peer) within 30s")
		}
		time.Sleep(50 * time.Millisecond) // elections have no event to wait on
	}
}

// ConnectReplicated opens a store on a cluster with replicated streams.
func ConnectReplicated(t testing.TB, url string, replicas int) *store.Store {
	t.Helper()
	var s *store.Store
	var err error
	// A peer just elected may not be placeable for a moment yet.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		s, err = store.Open(context.Background(), store.Options{URL: url, Replicas: replicas})
		if err == nil || !strings.Contains(err.Error(), "no suitable peers") || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("connect store: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
