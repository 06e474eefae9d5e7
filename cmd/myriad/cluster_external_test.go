package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/run"
)

// The kill test in external mode: three nats-server processes form a
// JetStream cluster of their own (the official server, built from the
// module Myriad embeds), and three myriad serve --nats connect to it, each
// to a different server first. The kill takes a machine down: node 0's
// myriad and its NATS server together.
func TestExternalClusterSurvivesAKill(t *testing.T) {
	clusterKill(t, startExternalCluster, 1000, false)
}

// natsServerBin builds the official nats-server, once.
var natsServerBin = sync.OnceValues(func() (string, error) {
	path := binPath + "-nats-server"
	out, err := exec.Command("go", "build", "-o", path, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build nats-server: %v\n%s", err, out)
	}
	return path, nil
})

// natsServer is one nats-server process of an external cluster.
type natsServer struct {
	bin, name, dir, client, route string
	routes                        []string
	cmd                           *exec.Cmd
	exited                        chan struct{}
}

// start runs the server, unless it runs, and waits until it is ready for
// connections.
func (s *natsServer) start(t *testing.T) {
	t.Helper()
	if s.cmd != nil {
		select {
		case <-s.exited:
		default:
			return // running
		}
	}
	var routes []string
	for _, r := range s.routes {
		routes = append(routes, "nats://"+r)
	}
	host, port, _ := strings.Cut(s.client, ":")
	_, routePort, _ := strings.Cut(s.route, ":")
	cmd := exec.Command(s.bin, "-a", host, "-p", port, "-n", s.name, "-js", "-sd", s.dir,
		"--cluster_name", "ext", "--cluster", "nats://127.0.0.1:"+routePort, "--routes", strings.Join(routes, ","))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-s.exited })
	s.cmd, s.exited = cmd, make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(s.exited)
		defer func() { _ = cmd.Wait() }()
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Server is ready") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-s.exited:
		t.Fatalf("nats-server %s exited before it was ready", s.name)
	case <-time.After(30 * time.Second):
		t.Fatalf("nats-server %s was not ready within 30 s", s.name)
	}
}

// kill kills the server with SIGKILL.
func (s *natsServer) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.exited
}

// startExternalCluster starts three nats-servers routed to each other and
// a myriad serve --nats beside each, and waits for them all to serve.
func startExternalCluster(t *testing.T, config string) []*clusterNode {
	t.Helper()
	bin, err := plainBin()
	if err != nil {
		t.Fatal(err)
	}
	natsBin, err := natsServerBin()
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 6)
	clients, routes := ports[:3], ports[3:]
	dir := t.TempDir()
	servers := make([]*natsServer, 3)
	for i := range servers {
		servers[i] = &natsServer{bin: natsBin, name: "ext" + strconv.Itoa(i), dir: filepath.Join(dir, "nats"+strconv.Itoa(i)),
			client: clients[i], route: routes[i], routes: routes}
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { s.start(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	nodes := make([]*clusterNode, 3)
	for i := range nodes {
		// Each node lists its own server first.
		var urls []string
		for k := range 3 {
			urls = append(urls, "nats://"+clients[(i+k)%3])
		}
		nodes[i] = &clusterNode{bin: bin, config: config, route: clients[i], nats: servers[i], natsURLs: strings.Join(urls, ",")}
		wg.Go(func() { nodes[i].start(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

// A paused owner is fenced. Node 0's myriad is stopped (SIGSTOP) while it
// holds runs in the middle of slow tool calls, as a long GC pause or a
// network partition would stop it; the NATS cluster stays whole. Its
// claims lapse and the other nodes resume its runs from their journals.
// When it comes back (SIGCONT) it goes on from where it was, and every
// append it tries is refused by the store (each names the position it
// follows): no run gets an entry from it after the others took over, every
// run completes once, and tool calls are made again only with their keys.
func TestPausedOwnerIsFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster load test")
	}
	release := make(chan struct{})
	var calls sync.Map // idempotency key → *atomic.Int32
	var entered atomic.Int32
	tools := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n, _ := calls.LoadOrStore(r.Header.Get("Idempotency-Key"), new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		entered.Add(1)
		select { // the first calls wait for the pause
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, `"noted"`)
	}))
	defer tools.Close()
	nodes := startExternalCluster(t, clusterConfig(t, tools.URL))
	// Runs through every node; node 0 takes some of them into their tool
	// calls, which hold.
	var ids []string
	for i := range 60 {
		ref, err := nodes[i%3].p.client().Submit(context.Background(), apitype.CreateRunRequest{Agent: "chat", Input: fmt.Sprint(i)}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ref.ID)
	}
	for entered.Load() < 20 {
		<-time.After(10 * time.Millisecond) // the calls arrive
	}
	if err := nodes[0].p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	close(release) // the other nodes' calls, and the retries of node 0's, answer now
	// The others take node 0's runs once its claims lapse and finish
	// them; node 0 is still stopped.
	c := nodes[1].p.client()
	for _, id := range ids {
		if rec, err := waitSettled(c, id, 90*time.Second); err != nil || rec.Status != run.StatusCompleted {
			t.Fatalf("run %s with node 0 paused: %v %v", id, statusOf(rec), err)
		}
	}
	t.Logf("every run completed %.1f s after node 0 was paused", time.Since(paused).Seconds())
	if err := nodes[0].p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Node 0 goes on with what it held: its tool calls answer, and each
	// of its appends is refused.
	deadline := time.Now().Add(60 * time.Second)
	for nodes[0].count("another worker advanced this run; stopping") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("node 0, resumed, never found its runs taken over: the test did not pause an owner")
		}
		<-time.After(100 * time.Millisecond) // its log
	}
	// Let it settle, then read every journal: one run.started, one end,
	// one tool.finished per call, in order.
	if _, err := nodes[0].p.client().Submit(context.Background(), apitype.CreateRunRequest{Agent: "chat", Input: "after"}, ""); err != nil {
		t.Fatalf("node 0 after the pause: %v", err)
	}
	for _, id := range ids {
		counts := map[string]int{}
		var entries []string
		err := c.Events(context.Background(), id, 0, func(ev run.TreeEvent) bool {
			counts[ev.Event.Type]++
			entries = append(entries, ev.Event.Type)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if counts["run.started"] != 1 || counts["run.completed"] != 1 || counts["tool.finished"] != 1 {
			t.Errorf("run %s's journal: %v", id, entries)
		}
		rec, err := c.Get(context.Background(), id)
		if err != nil || rec.Status != run.StatusCompleted {
			t.Errorf("run %s after node 0 came back: %v %v", id, statusOf(rec), err)
		}
	}
	again := 0
	calls.Range(func(_, n any) bool {
		if n.(*atomic.Int32).Load() > 1 {
			again++
		}
		return true
	})
	t.Logf("node 0 was fenced %d times; %d tool calls were made again with their keys", nodes[0].count("another worker advanced this run; stopping"), again)
}
