package engine

import (
	"fmt"
	"testing"
)

func TestSnapshotCacheStaysWithinItsBytes(t *testing.T) {
	c := newSnapshotCache(100)
	for i := range 10 {
		c.put(fmt.Sprint(i), make([]byte, 30))
	}
	// The three most recent fit in 100 bytes.
	for i := range 10 {
		_, ok := c.get(fmt.Sprint(i))
		if want := i >= 7; ok != want {
			t.Errorf("%d cached: %v, want %v", i, ok, want)
		}
	}
	if c.size != 90 || len(c.items) != 3 || c.order.Len() != 3 {
		t.Fatalf("size %d, %d items, %d in order", c.size, len(c.items), c.order.Len())
	}
	// Using 7 makes 8 the least recent: the next put evicts it.
	c.get("7")
	c.put("new", make([]byte, 30))
	if _, ok := c.get("8"); ok {
		t.Error("8 was kept over more recent snapshots")
	}
	if _, ok := c.get("7"); !ok {
		t.Error("7, used last, was evicted")
	}
	// Replacing an entry counts its new size only; one larger than the
	// cache is not kept, and drops the old copy.
	c.put("7", make([]byte, 10))
	if c.size != 70 {
		t.Fatalf("size %d after replacing, want 70", c.size)
	}
	c.put("7", make([]byte, 101))
	if _, ok := c.get("7"); ok || c.size != 60 {
		t.Fatalf("a snapshot larger than the cache was kept (size %d)", c.size)
	}
	c.drop("new")
	if c.size != 30 || len(c.items) != 1 {
		t.Fatalf("size %d, %d items after drop", c.size, len(c.items))
	}
	var none *snapshotCache
	none.put("x", nil)
	if _, ok := none.get("x"); ok {
		t.Fatal("a nil cache holds something")
	}
}
