package main_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/run"
)

// A node whose disk fills refuses writes and says it is not ready; once
// the disk has room again it is ready and runs again, without a restart.
// (It needs a small file system of its own: a tmpfs, mounted as root.)
func TestRecoversWhenTheDiskHasRoomAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a disk")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", data).Run() })
	f := &fixture{t: t, dir: dir, config: filepath.Join(dir, "myriad.yaml")}
	if err := os.WriteFile(f.config, []byte(`
models:
  fast: {provider: scripted, rules: [{reply: {text: "ok"}}]}
agents:
  chat: {model: fast}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := f.serve()
	c := p.client()
	ctx := context.Background()
	if code := readyz(t, p); code != http.StatusOK {
		t.Fatalf("readyz %d before", code)
	}
	// Fill the disk.
	filler := filepath.Join(data, "filler")
	fillDisk(t, filler)
	var refused error
	for i := 0; i < 200 && refused == nil; i++ {
		ref, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: "chat", Input: "hello"}, "")
		if err != nil {
			refused = err
			break
		}
		if _, err := c.Wait(ctx, ref.ID, 10*time.Second); err != nil {
			refused = err
		}
	}
	if refused == nil {
		t.Fatal("the node took every write on a full disk")
	}
	t.Logf("on a full disk: %v", refused)
	waitReady(t, p, http.StatusServiceUnavailable, 20*time.Second)
	// Make room: ready again, and running.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitReady(t, p, http.StatusOK, 30*time.Second)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ref, err := c.Submit(wctx, apitype.CreateRunRequest{Agent: "chat", Input: "again"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := c.Wait(wctx, ref.ID, 25*time.Second); err != nil || rec.Status != run.StatusCompleted {
		t.Fatalf("after the disk had room: %v %v", statusOf(rec), err)
	}
}

// fillDisk writes to path until its file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := fh.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

func readyz(t *testing.T, p *proc) int {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReady polls /readyz (what a load balancer does) until it answers
// want.
func waitReady(t *testing.T, p *proc, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for readyz(t, p) != want {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer %d within %s", want, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
