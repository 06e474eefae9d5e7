package store

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Health. A write the server refuses for lack of resources (a full disk)
// makes the store unready until a write succeeds again. The embedded
// server turns JetStream off when its disk fills; the store turns it back
// on, and restores the streams, once the disk has room again, so a node
// recovers without a restart.

// codeInsufficientResources is JetStream's error for a write it has no
// room for.
const codeInsufficientResources jetstream.ErrorCode = 10023

type writeFailure struct {
	err  error
	when time.Time
	// disk says the embedded server's disk was full: its streams need a
	// reset once it has room (a file store keeps a write error).
	disk bool
}

// ErrUnavailable refuses a write while the store cannot take writes (the
// embedded server's disk is full): retry later.
var ErrUnavailable = errors.New("the store cannot take writes now")

// noteWrite records whether a write worked.
func (s *Store) noteWrite(err error) {
	if err == nil {
		if s.failing.Load() != nil {
			s.failing.Store(nil)
		}
		return
	}
	resources := apiError(err, codeInsufficientResources, jetstream.JSErrCodeJetStreamNotEnabled,
		jetstream.JSErrCodeJetStreamNotEnabledForAccount) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount)
	// An embedded server whose disk is full does not answer writes at all.
	timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
	disk := s.lowDisk()
	if resources || timedOut && disk {
		s.failing.Store(&writeFailure{err: err, when: time.Now(), disk: disk})
	}
}

// lowDisk reports an embedded server's disk with less room than minFree.
func (s *Store) lowDisk() bool {
	return s.server != nil && s.jsCfg != nil && s.jsCfg.StoreDir != "" && freeBytes(s.jsCfg.StoreDir) < minFree
}

// refuseWrite fails a write at once while the disk is still full, rather
// than after a timeout.
func (s *Store) refuseWrite() error {
	if f := s.failing.Load(); f != nil && f.disk && s.lowDisk() {
		return fmt.Errorf("%w: the data directory's disk is full (%s free; %d MiB needed); writes resume by themselves once it has room",
			ErrUnavailable, humanBytes(freeBytes(s.jsCfg.StoreDir)), minFree>>20)
	}
	return nil
}

func humanBytes(n uint64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// Ready reports whether the store can take writes: connected, with
// JetStream on, and the last write not refused for lack of resources.
func (s *Store) Ready() error {
	if !s.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if s.server != nil && !s.server.JetStreamEnabled() {
		return errors.New("JetStream is off (the disk was full); it comes back on by itself once the disk has room")
	}
	if f := s.failing.Load(); f != nil {
		return fmt.Errorf("writes fail since %s: %v", f.when.Format(time.RFC3339), f.err)
	}
	return nil
}

// minFree is the free space the data directory needs before JetStream is
// turned back on after the disk filled.
const minFree = 64 << 20

// watchHealth turns the embedded server's JetStream back on when its disk
// has room again.
func (s *Store) watchHealth() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		f := s.failing.Load()
		switch {
		case s.lowDisk():
		case !s.server.JetStreamEnabled():
			s.heal(false)
		case f != nil && f.disk:
			s.heal(true)
		case f != nil:
			// The last write was refused, and the disk has room now: ready
			// again (a write that still fails says so).
			s.failing.Store(nil)
		}
	}
}

// heal turns the embedded server's JetStream back on; reset turns it off
// first, which reloads every stream from its files (a file store that
// met a full disk refuses writes until then).
func (s *Store) heal(reset bool) {
	s.healMu.Lock()
	defer s.healMu.Unlock()
	if reset && s.server.JetStreamEnabled() {
		if err := s.server.DisableJetStream(); err != nil {
			s.log.Warn("reset JetStream", "err", err)
			return
		}
	}
	if s.server.JetStreamEnabled() {
		return
	}
	cfg := *s.jsCfg
	if err := s.server.EnableJetStream(&cfg); err != nil {
		s.log.Warn("JetStream is still off", "err", err)
		return
	}
	s.log.Info("the disk has room again: JetStream is back on")
	s.failing.Store(nil)
}

func freeBytes(dir string) uint64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0
	}
	return st.Bavail * uint64(st.Bsize)
}

// Temporary reports an error a retry a moment later may not meet: a
// request that timed out, or that found no one to answer or the cluster
// without a leader for the stream, as while a node of a cluster is down
// and its streams elect new leaders (NATS answers 503 then).
func Temporary(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 503 {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}
