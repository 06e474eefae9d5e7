package engine

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Passivation. An instance holds no memory between its turns: its state
// is its snapshot and journal in the store, and any node's worker
// activates it by reading them. A node keeps the snapshots its workers
// wrote last in a cache bounded in bytes, evicting the least recently
// used, so an instance busy on this node skips the snapshot read. A cached
// snapshot may be older than the store's: the worker folds the journal's
// entries after it either way, and the journal is the truth.

// DefaultInstanceCache bounds the snapshot cache when Options set no bound.
const DefaultInstanceCache = 64 << 20

// snapshotCache is a byte-bounded LRU of encoded instance snapshots.
type snapshotCache struct {
	mu    sync.Mutex
	limit int
	size  int
	order *list.List // front: most recently used
	items map[string]*list.Element
	hits  atomic.Uint64
	miss  atomic.Uint64
}

type cachedSnapshot struct {
	id   string
	data []byte
}

func newSnapshotCache(limit int) *snapshotCache {
	return &snapshotCache{limit: limit, order: list.New(), items: map[string]*list.Element{}}
}

func (c *snapshotCache) get(id string) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[id]
	if !ok {
		c.miss.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	c.order.MoveToFront(el)
	return el.Value.(*cachedSnapshot).data, true
}

// put keeps data as id's snapshot; one larger than the whole cache is not
// kept.
func (c *snapshotCache) put(id string, data []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.size -= len(el.Value.(*cachedSnapshot).data)
		c.order.Remove(el)
		delete(c.items, id)
	}
	if len(data) > c.limit {
		return
	}
	c.items[id] = c.order.PushFront(&cachedSnapshot{id: id, data: data})
	c.size += len(data)
	for c.size > c.limit {
		last := c.order.Back()
		s := last.Value.(*cachedSnapshot)
		c.order.Remove(last)
		delete(c.items, s.id)
		c.size -= len(s.data)
	}
}

// drop forgets id's snapshot.
func (c *snapshotCache) drop(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.size -= len(el.Value.(*cachedSnapshot).data)
		c.order.Remove(el)
		delete(c.items, id)
	}
}

// InstanceStats describe a node's activations of instances.
type InstanceStats struct {
	// Activations counts the instances this node's workers activated;
	// CacheHits those that found their snapshot in the node's cache.
	Activations uint64
	CacheHits   uint64
	// CachedBytes and CachedInstances are what the cache holds now.
	CachedBytes     int
	CachedInstances int
	// Latency counts activations by how long they took (claim to state
	// folded), in the buckets of ActivationBuckets, the last for longer.
	Latency [len(ActivationBuckets) + 1]uint64
	// LatencySum is their total time.
	LatencySum time.Duration
}

// ActivationBuckets are the upper bounds of InstanceStats.Latency's
// buckets.
var ActivationBuckets = [...]time.Duration{250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond,
	2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 100 * time.Millisecond, time.Second}

// activations tallies a node's activations.
type activations struct {
	mu    sync.Mutex
	count uint64
	hist  [len(ActivationBuckets) + 1]uint64
	sum   time.Duration
}

func (a *activations) observe(d time.Duration) {
	i := len(ActivationBuckets)
	for j, b := range ActivationBuckets {
		if d <= b {
			i = j
			break
		}
	}
	a.mu.Lock()
	a.count++
	a.hist[i]++
	a.sum += d
	a.mu.Unlock()
}

// InstanceStats reads the node's activation figures.
func (e *Engine) InstanceStats() InstanceStats {
	e.acts.mu.Lock()
	s := InstanceStats{Activations: e.acts.count, Latency: e.acts.hist, LatencySum: e.acts.sum}
	e.acts.mu.Unlock()
	if c := e.snapshots; c != nil {
		s.CacheHits = c.hits.Load()
		c.mu.Lock()
		s.CachedBytes, s.CachedInstances = c.size, len(c.items)
		c.mu.Unlock()
	}
	return s
}
