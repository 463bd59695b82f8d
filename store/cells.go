package store

import (
	"github.com/sipas-vn/sipas"
)

// deltas are what the commits since the last checkpoint added to each cell,
// kept sparse (sipas.SparseTally) and indexed by block, so that a read adds
// them to the stored cells of the blocks it reads. A delta may be negative
// (a response taken back out); a stored cell plus its delta never is.
type deltas struct {
	cells   map[sipas.CellKey]*sipas.SparseTally
	byBlock map[BlockKey][]sipas.CellKey
	bytes   int // estimated memory held
}

func newDeltas() *deltas {
	return &deltas{cells: map[sipas.CellKey]*sipas.SparseTally{}, byBlock: map[BlockKey][]sipas.CellKey{}}
}

// add adds sign times contribution c to the delta of cell k.
func (d *deltas) add(k sipas.CellKey, q *sipas.Questionnaire, c *sipas.Contribution, sign int64) {
	t := d.cells[k]
	if t == nil {
		t = sipas.NewSparseTally(q)
		d.cells[k] = t
		b := BlockOf(k)
		d.byBlock[b] = append(d.byBlock[b], k)
		d.bytes += 160 // key, map entries
	} else {
		d.bytes -= t.Size()
	}
	t.Add(c, sign)
	d.bytes += t.Size()
}

func (d *deltas) len() int { return len(d.cells) }

func (d *deltas) reset() {
	clear(d.cells)
	clear(d.byBlock)
	d.bytes = 0
}

// nextMonth returns the cell month after m (both year*100+month).
func nextMonth(m int) int {
	if m%100 >= 12 {
		return (m/100+1)*100 + 1
	}
	return m + 1
}
