package sipas

import "sync"

// The decisions of disclosure control for a year (an sdcYear: the
// province-level lattice and the unit lattices built on it) are a function
// of the respondent counts the query's pass read (its sdcRaw), the
// registry and the threshold k alone. Building them is a large part of an
// index read: a dashboard page asks several queries over the same cells
// (a province page's unit ranking and weak points decide the same year
// with the same units), and pages are asked again and again between two
// commits. sdcMemo keeps the years most recently decided and hands one to
// a query whose pass read the same counts. A hit is checked against the
// counts themselves, not against a version of the store, so it can never
// serve decisions made on other cells (a commit between two queries, a
// source with flagged responses added, another store): it is exactly what
// building the year again would give.

// sdcMemoSize bounds the years kept (each a few hundred KiB for a province
// with a hundred units).
const sdcMemoSize = 8

type sdcMemoKey struct {
	registry  *Registry
	k         int64
	year      int
	withUnits bool
}

type sdcMemoEntry struct {
	key sdcMemoKey
	d   *sdcYear
}

var sdcMemo struct {
	mu      sync.Mutex
	entries []sdcMemoEntry // least recently used first
}

// sdcMemoGet returns a year decided from counts equal to raw, or nil.
func sdcMemoGet(key sdcMemoKey, raw *sdcRaw) *sdcYear {
	sdcMemo.mu.Lock()
	defer sdcMemo.mu.Unlock()
	es := sdcMemo.entries
	for i := len(es) - 1; i >= 0; i-- {
		if e := es[i]; e.key == key && e.d.raw.equal(raw) {
			copy(es[i:], es[i+1:])
			es[len(es)-1] = e
			return e.d
		}
	}
	return nil
}

// sdcMemoPut keeps d, forgetting the least recently used year beyond
// sdcMemoSize.
func sdcMemoPut(key sdcMemoKey, d *sdcYear) {
	sdcMemo.mu.Lock()
	defer sdcMemo.mu.Unlock()
	if len(sdcMemo.entries) >= sdcMemoSize {
		n := copy(sdcMemo.entries, sdcMemo.entries[1:])
		sdcMemo.entries[n] = sdcMemoEntry{}
		sdcMemo.entries = sdcMemo.entries[:n]
	}
	sdcMemo.entries = append(sdcMemo.entries, sdcMemoEntry{key: key, d: d})
}

// equal reports whether r and o hold the same counts (whatever order
// their rows were first met in).
func (r *sdcRaw) equal(o *sdcRaw) bool {
	if r == o {
		return true
	}
	if len(r.ids) != len(o.ids) {
		return false
	}
	for i, id := range r.ids {
		j, ok := o.ord[id]
		if !ok || *r.prov[i] != *o.prov[j] || len(r.units[i]) != len(o.units[j]) {
			return false
		}
		ou := o.units[j]
		for u, a := range r.units[i] {
			if b := ou[u]; b == nil || *a != *b {
				return false
			}
		}
	}
	return true
}
