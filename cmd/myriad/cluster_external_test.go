package main_test

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
