package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Budget ledgers: what runs spent together against a budget over its
// window, one entry per budget and metadata value. The engine reads an
// entry, adds a reservation and writes it back only if nobody wrote it
// meanwhile (compare-and-set on the entry's revision), so concurrent runs
// on any node see each other's reservations.

// ErrChanged is a compare-and-set write that lost: the entry changed
// since it was read. Read it again and retry.
var ErrChanged = errors.New("store: changed since it was read")

// Ledger returns a budget ledger entry and its revision; a missing entry
// is nil at revision 0.
func (s *Store) Ledger(ctx context.Context, key string) ([]byte, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, WriteTimeout)
	defer cancel()
	e, err := s.budgets.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read budget ledger %s: %w", key, err)
	}
	return e.Value(), e.Revision(), nil
}

// PutLedger writes a budget ledger entry if it is still at revision rev
// (0: if it does not exist), and returns its new revision, or ErrChanged.
func (s *Store) PutLedger(ctx context.Context, key string, data []byte, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, WriteTimeout)
	defer cancel()
	var err error
	if rev == 0 {
		rev, err = s.budgets.Create(ctx, key, data)
	} else {
		rev, err = s.budgets.Update(ctx, key, data, rev)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return 0, ErrChanged
	case err != nil:
		return 0, fmt.Errorf("write budget ledger %s: %w", key, err)
	}
	return rev, nil
}

// LedgerKeys lists the ledger entries whose keys start with prefix.
func (s *Store) LedgerKeys(ctx context.Context, prefix string) ([]string, error) {
	lister, err := s.budgets.ListKeysFiltered(ctx, prefix+">")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list budget ledgers: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}
