package main_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// followersConfig has an agent whose call waits for a person (so its run
// stays open while followers come) and one that answers at once.
const followersConfig = `
models:
  fast:
    provider: scripted
    rules:
      - when: {last_role: tool}
        reply: {text: "done"}
      - when: {last_user: "^pay"}
        reply: {tool_calls: [{name: pay, arguments: {amount: 5}}]}
      - reply: {text: "hello"}
agents:
  payer: {model: fast, tools: [pay]}
  greeter: {model: fast}
tools:
  pay:
    type: http
    url: http://127.0.0.1:9/pay
    description: Pays.
    parameters: {type: object, properties: {amount: {type: integer}}}
    approval: required
`

// 5,000 followers of one run all see its end; another run streams
// meanwhile; the server grows by at most 100 MB for them (20 KB each).
// MYRIAD_FOLLOWERS sets another number (docs/benchmarks.md measures
// 10,000).
func TestThousandsOfFollowersOfOneRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	followers := 5000
	if v := os.Getenv("MYRIAD_FOLLOWERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("MYRIAD_FOLLOWERS=%q: want a number", v)
		}
		followers = n
	}
	raiseFileLimit(t, uint64(followers+1000))
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, config: filepath.Join(dir, "myriad.yaml")}
	if err := os.WriteFile(f.config, []byte(followersConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, err := plainBin()
	if err != nil {
		t.Fatal(err)
	}
	p := f.serveWith(bin)
	c := p.client()
	ctx := context.Background()
	ref, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "payer", Input: "pay the bill"}, "")
	if err != nil {
		t.Fatal(err)
	}
	follow(t, c, ref.ID, func(ev journal.Event) bool { return ev.Type == journal.TypeApprovalRequested })
	before := rssMB(t, p.cmd.Process.Pid)

	connected, ended := make(chan struct{}, followers), make(chan struct{}, followers)
	errs := make(chan error, followers)
	var wg sync.WaitGroup
	for range followers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			first := true
			err := c.Events(ctx, ref.ID, 0, func(ev run.TreeEvent) bool {
				if first {
					connected <- struct{}{}
					first = false
				}
				if ev.Event.Type == journal.TypeRunCompleted {
					ended <- struct{}{}
					return false
				}
				return true
			})
			if err != nil {
				errs <- err
			}
		})
	}
	for i := range followers {
		select {
		case <-connected:
		case err := <-errs:
			t.Fatalf("follower %d: %v", i, err)
		case <-time.After(2 * time.Minute):
			t.Fatalf("only %d of %d followers connected", i, followers)
		}
	}
	during := rssMB(t, p.cmd.Process.Pid)

	// Another run streams to its end meanwhile.
	other, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "greeter", Input: "hi"}, "")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	follow(t, c, other.ID, func(ev journal.Event) bool { return journal.Terminal(ev.Type) })
	t.Logf("another run streamed to its end in %s with %d followers on the first", time.Since(began).Round(time.Millisecond), followers)

	// The first run ends: everyone sees it.
	approvals, err := c.Approvals(ctx, "")
	if err != nil || len(approvals.Approvals) != 1 {
		t.Fatalf("approvals: %+v %v", approvals, err)
	}
	if _, err := c.Decide(ctx, ref.ID, approvals.Approvals[0].ApprovalID, run.Decision{Decision: journal.Deny, Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	for i := range followers {
		select {
		case <-ended:
		case err := <-errs:
			t.Fatalf("follower %d: %v", i, err)
		case <-time.After(2 * time.Minute):
			t.Fatalf("only %d of %d followers saw the end", i, followers)
		}
	}
	after := rssMB(t, p.cmd.Process.Pid)
	wg.Wait()
	grew := max(during, after) - before
	t.Logf("server RSS: %.0f MB before, %.0f MB with %d followers, %.0f MB at the end: %.1f KB per follower", before, during, followers, after, grew*1024/float64(followers))
	if limit := float64(followers) * 20 / 1000; grew > limit {
		t.Errorf("the server grew by %.0f MB for %d followers (at most %.0f)", grew, followers, limit)
	}
}

// rssMB reads a process's resident set size.
func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// raiseFileLimit lifts the open-file limit to n (the server inherits it),
// or skips the test if the hard limit is lower.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("file limit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("the open-file limit is %d; this test needs %d", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("raise the file limit: %v", err)
	}
}
