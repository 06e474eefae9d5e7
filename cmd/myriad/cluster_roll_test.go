package main_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/api/client"
	"github.com/myriad-ai/myriad/run"
)

// A rolling deploy under load: the three nodes of a cluster are restarted
// one at a time (SIGTERM, wait for the exit, start again, wait until it
// serves) while clients keep submitting, and then a fourth node joins. No
// run fails or is lost, no tool call is made twice but with its key, each
// restarted node takes work again, and the new node takes work within
// seconds of serving.
func TestClusterRollingRestartAndGrowth(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster load test")
	}
	tools := newToolCalls(t)
	config := clusterConfig(t, tools.srv.URL)
	nodes := startCluster(t, config)
	l := startLoad(nodes, 10)
	l.take(t, 100)

	for i, n := range nodes {
		l.serveOn(without(nodes, n))
		took := n.stop(t)
		t.Logf("node %d stopped %.1f s after SIGTERM", i, took.Seconds())
		n.start(t)
		l.serveOn(nodes)
		l.take(t, 100)
		waitEnded(t, n, fmt.Sprintf("restarted node %d", i))
	}

	// A fourth node, routed to the three, joins under load.
	port := freePorts(t, 1)[0]
	fourth := &clusterNode{bin: nodes[0].bin, config: config, data: filepath.Join(t.TempDir(), "node3"), route: port,
		routes: append(append([]string(nil), nodes[0].routes...), port)}
	fourth.start(t)
	joined := time.Now()
	grown := append(append([]*clusterNode(nil), nodes...), fourth)
	l.serveOn(grown)
	waitEnded(t, fourth, "the fourth node")
	t.Logf("the fourth node ended its first run %.1f s after it served", time.Since(joined).Seconds())
	l.take(t, 100)
	ids := l.stop(t)

	// Every run accepted completes.
	c := nodes[1].p.client()
	work := make(chan string, len(ids))
	for _, id := range ids {
		work <- id
	}
	close(work)
	var failed sync.Map
	var waits sync.WaitGroup
	for range 20 {
		waits.Go(func() {
			for id := range work {
				rec, err := waitSettled(c, id, 90*time.Second)
				if err != nil || rec.Status != run.StatusCompleted {
					failed.Store(id, fmt.Sprintf("%v %v", statusOf(rec), err))
				}
			}
		})
	}
	waits.Wait()
	bad := 0
	failed.Range(func(id, why any) bool {
		if bad++; bad <= 5 {
			t.Errorf("run %s: %s", id, why)
		}
		return true
	})
	if bad > 0 {
		t.Fatalf("%d of %d runs did not complete", bad, len(ids))
	}
	keys, again := tools.counts()
	t.Logf("%d runs through a rolling restart of three nodes and a fourth joining; %d tool calls made again with their key", len(ids), again)
	if keys != len(ids) {
		t.Errorf("%d runs made %d distinct tool calls, want one each", len(ids), keys)
	}
}

// without returns the nodes but one.
func without(nodes []*clusterNode, out *clusterNode) []*clusterNode {
	var rest []*clusterNode
	for _, n := range nodes {
		if n != out {
			rest = append(rest, n)
		}
	}
	return rest
}

// waitEnded waits until a node has ended a run (its metrics say so), the
// load going on.
func waitEnded(t *testing.T, n *clusterNode, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for endedOn(t, n) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s ran no run within 60 s", what)
		}
		<-time.After(100 * time.Millisecond) // the next scrape
	}
}

// load is clients submitting runs, one after another, through the nodes
// that serve; a submission that fails is tried again on the next node with
// its idempotency key, as a client of a cluster behind a load balancer
// would.
type load struct {
	mu       sync.Mutex
	nodes    []*clusterNode
	accepted chan string
	ids      []string
	done     chan struct{}
	wg       sync.WaitGroup
	errs     chan error
}

func startLoad(nodes []*clusterNode, clients int) *load {
	l := &load{nodes: nodes, accepted: make(chan string, 1<<16), done: make(chan struct{}), errs: make(chan error, clients)}
	for c := range clients {
		l.wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-l.done:
					return
				default:
				}
				key := "load-" + strconv.Itoa(c) + "-" + strconv.Itoa(k)
				if err := l.submit(c+k, key); err != nil {
					l.errs <- err
					return
				}
			}
		})
	}
	return l
}

func (l *load) submit(n int, key string) error {
	for attempt := 0; attempt < 100; attempt++ {
		l.mu.Lock()
		node := l.nodes[(n+attempt)%len(l.nodes)]
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ref, err := node.p.client().Submit(ctx, apitype.CreateRunRequest{Agent: "chat", Input: key}, key)
		cancel()
		if err == nil {
			l.accepted <- ref.ID
			return nil
		}
		var apiErr *client.Error
		if errors.As(err, &apiErr) && apiErr.Status < 500 {
			return fmt.Errorf("submission %s refused: %w", key, err)
		}
	}
	return fmt.Errorf("submission %s never accepted", key)
}

// serveOn sends the next submissions through these nodes.
func (l *load) serveOn(nodes []*clusterNode) {
	l.mu.Lock()
	l.nodes = nodes
	l.mu.Unlock()
}

// take waits for n more runs accepted.
func (l *load) take(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case id := <-l.accepted:
			l.ids = append(l.ids, id)
		case err := <-l.errs:
			t.Fatal(err)
		case <-time.After(60 * time.Second):
			t.Fatalf("no run accepted for 60 s (%d so far)", len(l.ids))
		}
	}
}

// stop ends the load and returns every run it had accepted.
func (l *load) stop(t *testing.T) []string {
	t.Helper()
	close(l.done)
	l.wg.Wait()
	close(l.accepted)
	for id := range l.accepted {
		l.ids = append(l.ids, id)
	}
	select {
	case err := <-l.errs:
		t.Fatal(err)
	default:
	}
	return l.ids
}
