package sipas

import (
	"sort"
	"sync"
)

// Disclosure control: consistent complementary suppression over every
// partition the API publishes (see Engine, Disclosure control, and
// docs/design.md).
//
// The engine publishes figures of many nested groups of responses — the
// nation, a current province, a province as collected, a unit within a
// province (on either boundaries) or alone — each for a year, a quarter or
// a month, for all channels or one. Each group is split, along one of those
// three dimensions, into published parts:
//
//   - time: a year into its quarters, a quarter into its months;
//   - channel: all channels into each channel;
//   - place: the nation into the current provinces; a current province
//     into the provinces as collected in it (and its responses of no
//     province as collected); a province (as collected or current) into
//     its units and its responses without a unit; a unit into its parts in
//     each current province, and those into its parts in each province as
//     collected. The parts never published (responses without a unit or of
//     no province as collected) are treated as published when they hold k
//     or more — an analyst can often subtract them out — so assuming the
//     analyst knows them only makes the rule stricter.
//
// Each figure is a "cell" (place, period, channel) of one questionnaire and
// year. Cells with 0 < n < k respondents are suppressed (primary). Then,
// over every split of every cell, until nothing changes:
//
//  1. a published cell's hidden parts (with respondents) are either none,
//     or at least two holding at least k respondents together: otherwise
//     more parts are hidden — a never-published part first (it costs no
//     figure), else the smallest, ties by order of the places' keys — or,
//     when no part is left to hide, the cell itself;
//  2. a hidden cell has at least one hidden part (with respondents) in
//     every split: otherwise its smallest part is hidden too.
//
// So no published figure minus published figures inside it isolates a
// hidden part alone, nor a group of fewer than k, in any split; a hidden
// figure is never the sum of published ones; and since every query
// computes the same cells from the same aggregate cells in the same order,
// every query for the same figure agrees (the rule is applied once, to
// the whole lattice of a year, not per query).
//
// The province-level cells (nation, current provinces, provinces as
// collected) are decided first, from the province-level aggregate cells of
// the year alone, so that province queries need not read unit cells. Unit
// cells are decided second, with the province-level decisions fixed: a unit
// cell that holds exactly the responses of a province-level cell (the
// province's only unit, no responses without a unit) takes that cell's
// decision. The units decided together are those of the current provinces
// linked by units that have responses in more than one of them.

// Lattice dimensions: 17 periods of a year and 6 channel filters.
const (
	sdcTimes    = 17 // the year, quarters 1..4, months 1..12
	sdcChannels = 6  // all, then Channels in order
)

func sdcTime(p Period) int {
	switch {
	case p.IsMonth():
		return 4 + p.Month
	case p.IsQuarter():
		return p.Quarter
	default:
		return 0
	}
}

// sdcPlaceKind is the kind of a place of the lattice.
type sdcPlaceKind int

const (
	sdcNation sdcPlaceKind = iota
	sdcCurrent
	sdcCollected
	sdcUnlisted // responses of no province as collected (or none at all): never published
	sdcUnit
	sdcUnitCurrent
	sdcUnitCollected
	sdcDirect // responses without a unit of a province: never published
)

// sdcPlace is one place of the lattice: the nation; a current province
// (code); a province as collected (code); a unit alone (unit), within a
// current province (code, unit) or within a province as collected.
type sdcPlace struct {
	kind sdcPlaceKind
	code string
	unit string
	// current is the code of the current province of a direct part taken
	// from a province as collected (direct parts of both boundaries exist).
	current bool
}

// sdcSplit is a split of each cell of place into the cells of parts.
type sdcSplit struct {
	place int
	parts []int
}

// sdcLattice holds the cells of one questionnaire and year and their
// suppression.
type sdcLattice struct {
	k      int64
	places []sdcPlace
	index  map[sdcPlace]int
	n      []int64 // by cell: (place*sdcTimes + time)*sdcChannels + channel
	hidden []bool
	fixed  []bool // decided earlier (province-level cells, in the unit pass)
	// touched marks, during fixpoint, the places with a cell hidden in
	// the current pass.
	touched []bool
	splits  []sdcSplit
}

func (l *sdcLattice) place(p sdcPlace) int {
	if i, ok := l.index[p]; ok {
		return i
	}
	i := len(l.places)
	l.places = append(l.places, p)
	l.index[p] = i
	return i
}

func (l *sdcLattice) cell(place, t, c int) int { return (place*sdcTimes+t)*sdcChannels + c }

// sdcRaw is a year's aggregate cells reduced to respondent counts: per
// province row, month and channel, and per unit.
type sdcRaw struct {
	ord   map[string]int // province row id -> index
	ids   []string
	prov  []*[sdcRowCells]int64
	units []map[string]*[sdcRowCells]int64
}

// sdcRowCells are the month × channel counts of one province row or unit.
const sdcRowCells = 12 * 5

func sdcRowCell(month int, ch Channel) int { return (month-1)*5 + int(ch) - 1 }

func newSDCRaw() *sdcRaw { return &sdcRaw{ord: map[string]int{}} }

// add counts the respondents of one cell (unit cells only when units).
func (r *sdcRaw) add(c CellKey, n int64, units bool) {
	if n <= 0 || c.Channel < ChannelKiosk || c.Channel > ChannelPhone || (!units && c.UnitID != "") {
		return
	}
	i, ok := r.ord[c.ProvinceID]
	if !ok {
		i = len(r.ids)
		r.ord[c.ProvinceID] = i
		r.ids = append(r.ids, c.ProvinceID)
		r.prov = append(r.prov, new([sdcRowCells]int64))
		r.units = append(r.units, nil)
	}
	j := sdcRowCell(c.Month%100, c.Channel)
	if c.UnitID == "" {
		r.prov[i][j] += n
		return
	}
	m := r.units[i]
	if m == nil {
		m = map[string]*[sdcRowCells]int64{}
		r.units[i] = m
	}
	a := m[c.UnitID]
	if a == nil {
		a = new([sdcRowCells]int64)
		m[c.UnitID] = a
	}
	a[j] += n
}

// codes returns the codes cells of province row id in month m count for
// (year y): as collected (or "" outside the row's validity) and current (or
// "" for a row without a current province).
func sdcCodes(ps *provinces, id string, y, m int) (collected, current string) {
	collected, _ = ps.key(id, y*100+m, BoundariesAsCollected)
	current, _ = ps.key(id, y*100+m, BoundariesCurrent)
	return collected, current
}

// newSDCLattice builds the province-level lattice of a year and applies
// the rule to it.
func newSDCLattice(k int64, ps *provinces, y int, raw *sdcRaw) *sdcLattice {
	l := &sdcLattice{k: k, index: map[sdcPlace]int{}}
	nation := l.place(sdcPlace{kind: sdcNation})
	// Each province row and month counts for the nation, its current
	// province and its province as collected (or, outside the row's
	// validity or without a current province, the responses of no
	// province, never published).
	type rowMonth struct {
		row, month int
		places     []int
	}
	var rms []rowMonth
	for i, id := range raw.ids {
		for m := 1; m <= 12; m++ {
			any := false
			for c := ChannelKiosk; c <= ChannelPhone; c++ {
				any = any || raw.prov[i][sdcRowCell(m, c)] > 0
			}
			if !any {
				continue
			}
			col, cur := sdcCodes(ps, id, y, m)
			pl := []int{nation}
			switch {
			case cur == "":
				pl = append(pl, l.place(sdcPlace{kind: sdcUnlisted}))
			case col == "":
				pl = append(pl, l.place(sdcPlace{kind: sdcCurrent, code: cur}), l.place(sdcPlace{kind: sdcUnlisted, code: cur}))
			default:
				pl = append(pl, l.place(sdcPlace{kind: sdcCurrent, code: cur}), l.place(sdcPlace{kind: sdcCollected, code: col}))
			}
			rms = append(rms, rowMonth{i, m, pl})
		}
	}
	remap := l.settle(0)
	l.n = make([]int64, len(l.places)*sdcTimes*sdcChannels)
	for _, rm := range rms {
		for c := ChannelKiosk; c <= ChannelPhone; c++ {
			n := raw.prov[rm.row][sdcRowCell(rm.month, c)]
			for _, p := range rm.places {
				l.n[l.cell(remap[p], 4+rm.month, int(c))] += n
			}
		}
	}
	nation = remap[nation]
	l.sum(0)
	// Splits of places: the nation into current provinces (and the
	// unlisted), a current province into its provinces as collected (and
	// its unlisted).
	var nationParts []int
	currentParts := map[string][]int{}
	for i, p := range l.places {
		switch p.kind {
		case sdcCurrent:
			nationParts = append(nationParts, i)
		case sdcUnlisted:
			if p.code == "" {
				nationParts = append(nationParts, i)
			} else {
				currentParts[p.code] = append(currentParts[p.code], i)
			}
		case sdcCollected:
			// A code as collected belongs to the current province of its
			// rows (a code re-used by the merger names a row of its
			// successor, so all of them belong to one).
			cur := l.currentOf(ps, p.code)
			currentParts[cur] = append(currentParts[cur], i)
		}
	}
	l.splits = append(l.splits, sdcSplit{nation, nationParts})
	for _, code := range sortedKeysOf(currentParts) {
		if i, ok := l.index[sdcPlace{kind: sdcCurrent, code: code}]; ok {
			l.splits = append(l.splits, sdcSplit{i, currentParts[code]})
		}
	}
	l.hidden = make([]bool, len(l.n))
	l.fixed = make([]bool, len(l.n))
	l.primary(0)
	l.fixpoint(0)
	return l
}

// clone returns a copy of l that can be extended without changing l.
func (l *sdcLattice) clone() *sdcLattice {
	c := &sdcLattice{k: l.k, places: append([]sdcPlace(nil), l.places...), index: make(map[sdcPlace]int, len(l.index)),
		n: append([]int64(nil), l.n...), hidden: append([]bool(nil), l.hidden...), fixed: append([]bool(nil), l.fixed...),
		splits: append([]sdcSplit(nil), l.splits...)}
	for k, v := range l.index {
		c.index[k] = v
	}
	return c
}

// settle orders the places from.. by their keys, so that their order, and
// so every tie the rule breaks by order, does not depend on the order the
// cells were read in. It returns the new index of each place.
func (l *sdcLattice) settle(from int) []int {
	order := make([]int, len(l.places)-from)
	for i := range order {
		order[i] = from + i
	}
	sort.Slice(order, func(a, b int) bool {
		x, y := l.places[order[a]], l.places[order[b]]
		switch {
		case x.kind != y.kind:
			return x.kind < y.kind
		case x.code != y.code:
			return x.code < y.code
		case x.unit != y.unit:
			return x.unit < y.unit
		default:
			return !x.current && y.current
		}
	})
	remap := make([]int, len(l.places))
	for i := 0; i < from; i++ {
		remap[i] = i
	}
	places := append([]sdcPlace(nil), l.places[:from]...)
	for _, old := range order {
		remap[old] = len(places)
		l.index[l.places[old]] = len(places)
		places = append(places, l.places[old])
	}
	l.places = places
	return remap
}

// currentOf returns the current province code of a code as collected.
func (l *sdcLattice) currentOf(ps *provinces, code string) string {
	for _, r := range ps.byCode[code] {
		if r.cur != nil {
			return r.cur.Code
		}
	}
	return ""
}

// sum fills the cells of places from..end of the lattice from their month
// cells of each channel: quarters, the year, and all channels.
func (l *sdcLattice) sum(from int) {
	for p := from; p < len(l.places); p++ {
		for c := 1; c < sdcChannels; c++ {
			for q := 1; q <= 4; q++ {
				var s int64
				for m := 3*q - 2; m <= 3*q; m++ {
					s += l.n[l.cell(p, 4+m, c)]
				}
				l.n[l.cell(p, q, c)] = s
				l.n[l.cell(p, 0, c)] += s
			}
		}
		for t := 0; t < sdcTimes; t++ {
			var s int64
			for c := 1; c < sdcChannels; c++ {
				s += l.n[l.cell(p, t, c)]
			}
			l.n[l.cell(p, t, 0)] = s
		}
	}
}

// primary hides the cells of places from.. with 0 < n < k. The parts
// never published (responses without a unit, or of no province as
// collected) are treated as published when they hold k or more: an
// analyst can often get them by subtraction, and assuming so only makes
// the rule stricter.
func (l *sdcLattice) primary(from int) {
	for i := from * sdcTimes * sdcChannels; i < len(l.n); i++ {
		if l.n[i] > 0 && l.n[i] < l.k {
			l.hidden[i] = true
		}
	}
}

// fixpoint applies the two rules to every split of the cells of places
// from.. (and the place splits listed from splits[firstSplit]) until
// nothing changes. Each pass only hides cells, so it ends.
func (l *sdcLattice) fixpoint(from int) {
	firstSplit := 0
	for i, s := range l.splits {
		if s.place >= from || (len(s.parts) > 0 && s.parts[0] >= from) {
			firstSplit = i
			break
		}
		firstSplit = len(l.splits)
	}
	// Only splits with a cell hidden since they were last checked are
	// checked again: dirty marks the places with such cells.
	dirty := make([]bool, len(l.places))
	for i := range dirty {
		dirty[i] = true
	}
	l.touched = make([]bool, len(l.places))
	parts := make([]int, 0, 16)
	for changed := true; changed; {
		changed = false
		for _, s := range l.splits[firstSplit:] {
			recheck := dirty[s.place]
			for _, p := range s.parts {
				recheck = recheck || dirty[p]
			}
			if !recheck {
				continue
			}
			for t := 0; t < sdcTimes; t++ {
				for c := 0; c < sdcChannels; c++ {
					if l.n[l.cell(s.place, t, c)] == 0 {
						continue
					}
					parts = parts[:0]
					for _, p := range s.parts {
						parts = append(parts, l.cell(p, t, c))
					}
					changed = l.apply(l.cell(s.place, t, c), parts) || changed
				}
			}
		}
		for p := from; p < len(l.places); p++ {
			if !dirty[p] || l.n[l.cell(p, 0, 0)] == 0 {
				continue
			}
			for c := 0; c < sdcChannels; c++ {
				if l.n[l.cell(p, 0, c)] == 0 {
					continue
				}
				parts = parts[:0]
				for q := 1; q <= 4; q++ {
					parts = append(parts, l.cell(p, q, c))
				}
				changed = l.apply(l.cell(p, 0, c), parts) || changed
				for q := 1; q <= 4; q++ {
					if l.n[l.cell(p, q, c)] == 0 {
						continue
					}
					parts = parts[:0]
					for m := 3*q - 2; m <= 3*q; m++ {
						parts = append(parts, l.cell(p, 4+m, c))
					}
					changed = l.apply(l.cell(p, q, c), parts) || changed
				}
			}
			for t := 0; t < sdcTimes; t++ {
				if l.n[l.cell(p, t, 0)] == 0 {
					continue
				}
				parts = parts[:0]
				for c := 1; c < sdcChannels; c++ {
					parts = append(parts, l.cell(p, t, c))
				}
				changed = l.apply(l.cell(p, t, 0), parts) || changed
			}
		}
		dirty, l.touched = l.touched, dirty
		clear(l.touched)
	}
	l.touched = nil
}

// hide hides cell i and marks its place for the next pass of fixpoint.
func (l *sdcLattice) hide(i int) {
	l.hidden[i] = true
	if l.touched != nil {
		l.touched[i/(sdcTimes*sdcChannels)] = true
	}
}

// apply enforces the rules on one split: whole = sum of parts.
func (l *sdcLattice) apply(whole int, parts []int) bool {
	if l.n[whole] == 0 {
		return false
	}
	var held int64
	count := 0
	for _, p := range parts {
		if l.n[p] > 0 && l.hidden[p] {
			held += l.n[p]
			count++
		}
	}
	changed := false
	if l.hidden[whole] {
		if count > 0 {
			return false
		}
		if p := l.smallestShown(parts); p >= 0 {
			l.hide(p)
			return true
		}
		return false
	}
	for count > 0 && (count < 2 || held < l.k) {
		p := l.smallestShown(parts)
		if p < 0 {
			if !l.fixed[whole] {
				l.hide(whole)
				changed = true
			}
			break
		}
		l.hide(p)
		held += l.n[p]
		count++
		changed = true
	}
	return changed
}

// smallestShown returns the part to hide next: among the published parts
// (with respondents) that may still be hidden, a part never published
// (hiding it costs no figure), else the one with the fewest respondents;
// the first on ties. -1 if none.
func (l *sdcLattice) smallestShown(parts []int) int {
	best, bestFree := -1, false
	for _, p := range parts {
		if l.n[p] == 0 || l.hidden[p] || l.fixed[p] {
			continue
		}
		k := l.places[p/(sdcTimes*sdcChannels)].kind
		free := k == sdcDirect || k == sdcUnlisted
		if best < 0 || (free && !bestFree) || (free == bestFree && l.n[p] < l.n[best]) {
			best, bestFree = p, free
		}
	}
	return best
}

// addUnits extends a decided province-level lattice with the units of the
// given current provinces and applies the rule to the unit cells, the
// province-level cells fixed.
func (l *sdcLattice) addUnits(ps *provinces, y int, raw *sdcRaw, currents map[string]bool) {
	firstUnit := len(l.places)
	for i := range l.fixed {
		l.fixed[i] = true
	}
	// Each unit's part of a province row and month counts for the unit
	// alone, in its current province and in its province as collected; the
	// rest of the row is its responses without a unit.
	type part struct {
		counts     *[sdcRowCells]int64
		direct     bool
		row, month int
		places     []int
	}
	var parts []part
	for i, id := range raw.ids {
		for m := 1; m <= 12; m++ {
			col, cur := sdcCodes(ps, id, y, m)
			if !currents[cur] {
				continue
			}
			for u, a := range raw.units[i] {
				pl := []int{l.place(sdcPlace{kind: sdcUnit, unit: u}), l.place(sdcPlace{kind: sdcUnitCurrent, code: cur, unit: u})}
				if col != "" {
					pl = append(pl, l.place(sdcPlace{kind: sdcUnitCollected, code: col, unit: u}))
				}
				parts = append(parts, part{counts: a, row: i, month: m, places: pl})
			}
			pl := []int{l.place(sdcPlace{kind: sdcDirect, code: cur, current: true})}
			if col != "" {
				pl = append(pl, l.place(sdcPlace{kind: sdcDirect, code: col}))
			}
			parts = append(parts, part{direct: true, row: i, month: m, places: pl})
		}
	}
	remap := l.settle(firstUnit)
	cells := len(l.places) * sdcTimes * sdcChannels
	l.n = append(l.n, make([]int64, cells-len(l.n))...)
	l.hidden = append(l.hidden, make([]bool, cells-len(l.hidden))...)
	l.fixed = append(l.fixed, make([]bool, cells-len(l.fixed))...)
	for _, pt := range parts {
		for c := ChannelKiosk; c <= ChannelPhone; c++ {
			j := sdcRowCell(pt.month, c)
			var n int64
			if pt.direct {
				n = raw.prov[pt.row][j]
				for _, a := range raw.units[pt.row] {
					n -= a[j]
				}
			} else {
				n = pt.counts[j]
			}
			if n <= 0 {
				continue
			}
			for _, p := range pt.places {
				l.n[l.cell(remap[p], 4+pt.month, int(c))] += n
			}
		}
	}
	l.sum(firstUnit)
	l.primary(firstUnit)
	// Splits: a province into its units and its direct part; a unit into
	// its current provinces; a unit in a current province into its
	// provinces as collected.
	provParts := map[int][]int{}
	unitParts := map[int][]int{}
	for i := firstUnit; i < len(l.places); i++ {
		p := l.places[i]
		var whole sdcPlace
		switch {
		case p.kind == sdcUnitCollected:
			whole = sdcPlace{kind: sdcCollected, code: p.code}
			if u, ok := l.index[sdcPlace{kind: sdcUnitCurrent, code: l.currentOf(ps, p.code), unit: p.unit}]; ok {
				unitParts[u] = append(unitParts[u], i)
			}
		case p.kind == sdcUnitCurrent:
			whole = sdcPlace{kind: sdcCurrent, code: p.code}
			if u, ok := l.index[sdcPlace{kind: sdcUnit, unit: p.unit}]; ok {
				unitParts[u] = append(unitParts[u], i)
			}
		case p.kind == sdcDirect && p.current:
			whole = sdcPlace{kind: sdcCurrent, code: p.code}
		case p.kind == sdcDirect:
			whole = sdcPlace{kind: sdcCollected, code: p.code}
		default:
			continue // a unit alone is split above, not part of a province
		}
		if w, ok := l.index[whole]; ok {
			provParts[w] = append(provParts[w], i)
		}
	}
	for _, w := range sortedIntKeys(provParts) {
		l.splits = append(l.splits, sdcSplit{w, provParts[w]})
	}
	for _, w := range sortedIntKeys(unitParts) {
		l.splits = append(l.splits, sdcSplit{w, unitParts[w]})
	}
	// A unit cell with exactly the responses of the province-level cell
	// it is part of is that cell: it takes its decision.
	for w, ps := range provParts {
		for _, p := range ps {
			if l.places[p].kind == sdcDirect {
				continue
			}
			for t := 0; t < sdcTimes; t++ {
				for c := 0; c < sdcChannels; c++ {
					wi, pi := l.cell(w, t, c), l.cell(p, t, c)
					if l.n[pi] > 0 && l.n[pi] == l.n[wi] {
						l.hidden[pi], l.fixed[pi] = l.hidden[wi], true
					}
				}
			}
		}
	}
	l.fixpoint(firstUnit)
}

func sortedKeysOf[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sortedIntKeys(m map[int][]int) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

// disclosure answers, for one query, whether a figure is withheld by the
// complementary rule. The query's pass over the cells (Engine.scan) gives
// it the respondents of every cell of the years it reads; it builds each
// year's lattice from them once.
type disclosure struct {
	e     *Engine
	p     *prepared
	units bool
	raws  map[int]*sdcRaw // being read
	years map[int]*sdcYear
}

// sdcYear is a year's province-level lattice and the unit lattices built on
// it, by the smallest current province code of their linked group.
type sdcYear struct {
	// mu guards the unit lattices and groups, built on demand: a year
	// kept by sdcMemo is shared by concurrent queries. The rest is
	// read-only once built.
	mu        sync.Mutex
	raw       *sdcRaw
	withUnits bool // raw holds the unit cells
	prov      *sdcLattice
	units     map[string]*sdcLattice
	// unitIn lists, per unit, the (as collected, current) province codes
	// it has responses in.
	unitIn map[string]map[[2]string]bool
	// groupOf names the group of current provinces linked by units (see
	// linkCurrents) of each current province with units; groups lists them.
	groupOf map[string]string
	groups  map[string]map[string]bool
}

// linkCurrents groups the current provinces linked by units with
// responses in more than one of them; a group is named by its smallest
// code.
func (d *sdcYear) linkCurrents() {
	parent := map[string]string{}
	var find func(c string) string
	find = func(c string) string {
		p, ok := parent[c]
		if !ok || p == c {
			parent[c] = c
			return c
		}
		r := find(p)
		parent[c] = r
		return r
	}
	for _, in := range d.unitIn {
		first := ""
		for pc := range in {
			if first == "" {
				first = find(pc[1])
				continue
			}
			a, b := first, find(pc[1])
			if b < a {
				a, b = b, a
			}
			parent[b] = a
			first = a
		}
	}
	d.groupOf, d.groups = map[string]string{}, map[string]map[string]bool{}
	for c := range parent {
		r := find(c)
		d.groupOf[c] = r
		if d.groups[r] == nil {
			d.groups[r] = map[string]bool{}
		}
		d.groups[r][c] = true
	}
}

func (e *Engine) disclosure(p *prepared) *disclosure {
	return &disclosure{e: e, p: p, raws: map[int]*sdcRaw{}, years: map[int]*sdcYear{}}
}

// reading announces a pass over the cells of years from..to, with unit
// cells or not.
func (dc *disclosure) reading(from, to int, units bool) {
	dc.units = units
	for y := from; y <= to; y++ {
		dc.raws[y] = newSDCRaw()
	}
}

// add counts one cell of the pass.
func (dc *disclosure) add(k CellKey, n int64) {
	if r := dc.raws[k.Month/100]; r != nil {
		r.add(k, n, dc.units)
	}
}

func (dc *disclosure) year(y int, units bool) *sdcYear {
	if d := dc.years[y]; d != nil && (d.withUnits || !units) {
		return d
	}
	raw, withUnits := dc.raws[y], dc.units
	if raw == nil || (units && !dc.units) {
		withUnits = units
		// A year the query's pass did not read (not expected): read it.
		raw = newSDCRaw()
		dc.e.Source.EachCell(dc.p.qn.ID, y*100+1, y*100+12, func(k CellKey, t *Tally) {
			if k.Month >= y*100+1 && k.Month <= y*100+12 {
				raw.add(k, t.Respondents, units)
			}
		})
	}
	key := sdcMemoKey{registry: dc.e.Registry, k: dc.e.Thresholds.disclosure(), year: y, withUnits: withUnits}
	if d := sdcMemoGet(key, raw); d != nil {
		dc.years[y] = d
		return d
	}
	d := &sdcYear{raw: raw, withUnits: withUnits, prov: newSDCLattice(key.k, dc.p.ps, y, raw),
		units: map[string]*sdcLattice{}, unitIn: map[string]map[[2]string]bool{}}
	for i, id := range raw.ids {
		for u, a := range raw.units[i] {
			for m := 1; m <= 12; m++ {
				n := int64(0)
				for c := ChannelKiosk; c <= ChannelPhone; c++ {
					n += a[sdcRowCell(m, c)]
				}
				if n == 0 {
					continue
				}
				col, cur := sdcCodes(dc.p.ps, id, y, m)
				if d.unitIn[u] == nil {
					d.unitIn[u] = map[[2]string]bool{}
				}
				d.unitIn[u][[2]string{col, cur}] = true
			}
		}
	}
	dc.years[y] = d
	sdcMemoPut(key, d)
	return d
}

// unitLattice returns the lattice deciding the units of current province
// cur: the province-level lattice extended with the units of every current
// province linked to cur by units with responses in both.
func (dc *disclosure) unitLattice(d *sdcYear, y int, cur string) *sdcLattice {
	d.mu.Lock() // d may be shared with other queries (sdcMemoGet)
	defer d.mu.Unlock()
	if d.groups == nil {
		d.linkCurrents()
	}
	group := d.groups[d.groupOf[cur]]
	first := d.groupOf[cur]
	if l := d.units[first]; l != nil {
		return l
	}
	l := d.prov.clone()
	l.addUnits(dc.p.ps, y, d.raw, group)
	d.units[first] = l
	return l
}

// hidden reports whether the figure of scope s in period per (for the
// query's channel and boundaries) is withheld by the complementary rule.
// The primary rule (fewer than k respondents) is applied by the caller.
func (dc *disclosure) hidden(s Scope, per Period) bool {
	y, t, c := per.Year, sdcTime(per), int(dc.p.q.Channel)
	current := dc.p.b == BoundariesCurrent
	if s.UnitID == "" {
		l := dc.year(y, false).prov
		pl := sdcPlace{kind: sdcNation}
		if !s.Nation {
			pl = sdcPlace{kind: sdcCollected, code: s.ProvinceCode}
			if current {
				pl.kind = sdcCurrent
			}
		}
		i, ok := l.index[pl]
		return ok && l.hidden[l.cell(i, t, c)]
	}
	d := dc.year(y, true)
	// The current provinces the unit has responses in (within the scope's
	// province, when it names one).
	curs := map[string]bool{}
	for pc := range d.unitIn[s.UnitID] {
		col, cur := pc[0], pc[1]
		if s.ProvinceCode == "" || (current && cur == s.ProvinceCode) || (!current && col == s.ProvinceCode) {
			curs[cur] = true
		}
	}
	if len(curs) == 0 {
		return false
	}
	l := dc.unitLattice(d, y, sortedKeysOf(curs)[0])
	pl := sdcPlace{kind: sdcUnit, unit: s.UnitID}
	switch {
	case s.ProvinceCode != "" && current:
		pl = sdcPlace{kind: sdcUnitCurrent, code: s.ProvinceCode, unit: s.UnitID}
	case s.ProvinceCode != "":
		pl = sdcPlace{kind: sdcUnitCollected, code: s.ProvinceCode, unit: s.UnitID}
	}
	i, ok := l.index[pl]
	return ok && l.hidden[l.cell(i, t, c)]
}
