package store

import (
	"container/list"
	"sync"

	"github.com/sipas-vn/sipas"
)

// BlockKey names a block of cells: what one range read of the tallies table
// returns, and what a cache keeps together (this store's and pgstore's). A
// block is either the province-level cells of one questionnaire and month
// (every province and channel) or the unit cells of one questionnaire, month
// and province.
type BlockKey struct {
	QuestionnaireID string
	Month           int
	Units           bool
	ProvinceID      string // units only
}

// BlockOf returns the block cell k belongs to.
func BlockOf(k sipas.CellKey) BlockKey {
	if k.UnitID == "" {
		return BlockKey{QuestionnaireID: k.QuestionnaireID, Month: k.Month}
	}
	return BlockKey{QuestionnaireID: k.QuestionnaireID, Month: k.Month, Units: true, ProvinceID: k.ProvinceID}
}

// block is every stored cell of a BlockKey, encoded (sipas.SparseTally).
type block struct {
	key   BlockKey
	cells map[sipas.CellKey][]byte
	size  int
}

// cellOverhead is what a cached cell costs beyond its encoded bytes (the
// key and its unit id string, the map entry, the slice header and the
// allocator's rounding), as counted against the cache budget (an
// estimate).
const cellOverhead = 160

// put sets the encoding of cell k; nil removes the cell (no longer stored).
func (b *block) put(k sipas.CellKey, data []byte) {
	if old, ok := b.cells[k]; ok {
		b.size -= len(old) + cellOverhead
		delete(b.cells, k)
	}
	if data != nil {
		b.cells[k] = data
		b.size += len(data) + cellOverhead
	}
}

// cellCache is a least-recently-used cache of blocks bounded by the bytes
// they hold (Options.CellCacheBytes). Blocks are complete: a cached block
// holds every stored cell of its key, so a read never needs to ask the
// database whether other cells exist. Blocks are read-only once cached,
// except that a checkpoint replaces the cells it wrote (with every reader
// excluded, under the store's cellsMu).
type cellCache struct {
	mu     sync.Mutex
	budget int
	size   int
	lru    *list.List // of *block, most recent first
	byKey  map[BlockKey]*list.Element

	hits, misses, evictions uint64
}

func newCellCache(budget int) *cellCache {
	return &cellCache{budget: budget, lru: list.New(), byKey: map[BlockKey]*list.Element{}}
}

// get returns the cached block of k, or nil.
func (c *cellCache) get(k BlockKey) *block {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byKey[k]
	if e == nil {
		c.misses++
		return nil
	}
	c.hits++
	c.lru.MoveToFront(e)
	return e.Value.(*block)
}

// add caches b (replacing any block of its key) and evicts the least
// recently used blocks beyond the budget. A block larger than the whole
// budget is not cached.
func (c *cellCache) add(b *block) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byKey[b.key]; e != nil {
		c.size -= e.Value.(*block).size
		c.lru.Remove(e)
		delete(c.byKey, b.key)
	}
	if b.size > c.budget {
		return
	}
	c.byKey[b.key] = c.lru.PushFront(b)
	c.size += b.size
	c.evict()
}

func (c *cellCache) evict() {
	for c.size > c.budget {
		e := c.lru.Back()
		b := e.Value.(*block)
		c.lru.Remove(e)
		delete(c.byKey, b.key)
		c.size -= b.size
		c.evictions++
	}
}

// update records that cell k is now stored as data, in its block when that
// block is cached. Callers hold cellsMu for writing (no reader iterates the
// block meanwhile).
func (c *cellCache) update(k sipas.CellKey, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byKey[BlockOf(k)]
	if e == nil {
		return
	}
	b := e.Value.(*block)
	c.size -= b.size
	b.put(k, data)
	c.size += b.size
	c.evict()
}

// has reports whether block k is cached (without making it recent).
func (c *cellCache) has(k BlockKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byKey[k] != nil
}

// peek returns the cached encoding of cell k and whether its block is
// cached (a cached block without k means k is not stored).
func (c *cellCache) peek(k sipas.CellKey) (data []byte, cached bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byKey[BlockOf(k)]
	if e == nil {
		return nil, false
	}
	return e.Value.(*block).cells[k], true
}

// clear empties the cache.
func (c *cellCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Init()
	clear(c.byKey)
	c.size = 0
}

// CacheStats describe the cell cache.
type CacheStats struct {
	Bytes, Budget, Blocks   int
	Hits, Misses, Evictions uint64
}

func (c *cellCache) stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Bytes: c.size, Budget: c.budget, Blocks: c.lru.Len(), Hits: c.hits, Misses: c.misses, Evictions: c.evictions}
}
