package store

import (
	"errors"
	"fmt"
	"syscall"
	"time"

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
}

// noteWrite records whether a write worked.
func (s *Store) noteWrite(err error) {
	if err == nil {
		if s.failing.Load() != nil {
			s.failing.Store(nil)
		}
		return
	}
	if apiError(err, codeInsufficientResources, jetstream.JSErrCodeJetStreamNotEnabled,
		jetstream.JSErrCodeJetStreamNotEnabledForAccount) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		s.failing.Store(&writeFailure{err: err, when: time.Now()})
	}
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
		if s.server.JetStreamEnabled() {
			continue
		}
		if s.jsCfg.StoreDir != "" && freeBytes(s.jsCfg.StoreDir) < minFree {
			continue
		}
		s.heal()
	}
}

func (s *Store) heal() {
	s.healMu.Lock()
	defer s.healMu.Unlock()
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
