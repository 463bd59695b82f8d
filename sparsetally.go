package sipas

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// SparseTally holds the counters of one cell as a list of its non-zero
// counters, so that its memory and its stored size follow the answered items:
// a kiosk response answers about 22 of the 106 items of sipas-2023, and a
// cell of kiosk responses uses a tenth of the dense layout.
//
// Counters are numbered as in the dense Tally: slot i is counter i, node i
// is counter NSlots+i. A SparseTally may hold negative counters: it is also
// the delta of a cell (what commits added since the cell was last written),
// and taking a response back out of a cell (a withdrawn or amended response)
// is adding its contribution with sign -1. A stored cell, the sum of its
// deltas, never has a negative counter; MarshalBinary refuses one.
type SparseTally struct {
	Respondents    int64
	NSlots, NNodes int
	idx            []uint32 // counter numbers, ascending
	val            []int64  // counter values, by idx
	// dense holds every counter instead of idx and val once most are in
	// use (cells of field surveys answering every item, province cells):
	// less memory and a cheaper Add than the sorted lists.
	dense []int64
}

// each calls fn for the counters of s that may be non-zero, ascending.
func (s *SparseTally) each(fn func(ctr uint32, v int64)) {
	if s.dense != nil {
		for i, v := range s.dense {
			if v != 0 {
				fn(uint32(i), v)
			}
		}
		return
	}
	for i, ctr := range s.idx {
		fn(ctr, s.val[i])
	}
}

// maybeDense switches s to the dense form once most counters are in use.
func (s *SparseTally) maybeDense() {
	total := s.NSlots + s.NNodes
	if s.dense != nil || len(s.idx)*3 <= total*2 || total == 0 {
		return
	}
	s.toDense()
}

// toDense switches s to the dense form.
func (s *SparseTally) toDense() {
	d := make([]int64, s.NSlots+s.NNodes)
	for i, ctr := range s.idx {
		d[ctr] += s.val[i]
	}
	s.dense, s.idx, s.val = d, nil, nil
}

// NewSparseTally returns an empty sparse tally laid out for q.
func NewSparseTally(q *Questionnaire) *SparseTally {
	return &SparseTally{NSlots: q.Slots, NNodes: len(q.Nodes)}
}

// Contribution is what one response adds to a cell: one respondent and one
// at each counter it lists (slots, then nodes as NSlots+i, ascending).
type Contribution struct {
	Counters []uint32
}

// Contribution computes what a validated response of questionnaire q,
// given by its packed answers (code + 1 by item position), adds to a cell:
// one at the slot of each answer with a valid code (8 and 9 included) and
// one at each formula node with at least one valid scale answer under it,
// as Tally.AddAnswers counts. dst is reused.
func (q *Questionnaire) Contribution(answers []uint8, dst *Contribution) {
	var seenSmall [256]bool
	seen := seenSmall[:]
	if len(q.Nodes) > len(seen) {
		seen = make([]bool, len(q.Nodes))
	}
	seen = seen[:len(q.Nodes)]
	cs := dst.Counters[:0]
	items := q.Items[:min(len(answers), len(q.Items))]
	sorted := true
	for i, it := range items {
		v := int(answers[i])
		if v == 0 || v > len(it.slotOf) {
			continue
		}
		s := it.slotOf[v-1]
		if s < 0 {
			continue
		}
		if n := len(cs); n > 0 && cs[n-1] > uint32(s) {
			sorted = false
		}
		cs = append(cs, uint32(s))
		if int(s) >= it.Slot+len(it.Scale.Codes) {
			continue // 8 or 9: not a valid answer for n
		}
		for n := it.Node; n != nil && !seen[n.Index]; n = n.Parent {
			seen[n.Index] = true // this node and its ancestors count once
		}
	}
	// Items' slots ascend in questionnaire order; a definition that did not
	// lay them out so would still be counted right.
	if !sorted {
		slices.Sort(cs)
	}
	// Nodes in index order: ascending without a sort.
	for i, ok := range seen {
		if ok {
			cs = append(cs, uint32(q.Slots+i))
		}
	}
	dst.Counters = cs
}

// Add adds sign times contribution c (one respondent and one at each of its
// counters) to s: sign 1 counts a response, -1 takes it back out.
func (s *SparseTally) Add(c *Contribution, sign int64) {
	s.Respondents += sign
	if s.dense == nil && len(s.idx) == 0 && len(c.Counters)*8 >= s.NSlots+s.NNodes {
		s.toDense() // a response that answers most items: the cell will fill up
	}
	if s.dense != nil {
		for _, ctr := range c.Counters {
			s.dense[ctr] += sign
		}
		return
	}
	// Both lists ascend: one walk adds to the counters s has (after its
	// first responses, a cell has them all), and the others are merged in
	// once at the end.
	var buf [64]uint32
	missing := buf[:0]
	i := 0
	for _, ctr := range c.Counters {
		for i < len(s.idx) && s.idx[i] < ctr {
			i++
		}
		if i < len(s.idx) && s.idx[i] == ctr {
			s.val[i] += sign
			i++
			continue
		}
		missing = append(missing, ctr)
	}
	if len(missing) == 0 {
		return
	}
	// Merge the missing counters in place, from the back (the slices grow
	// by amortised appends, not a new pair per response).
	n, w := len(s.idx), len(s.idx)+len(missing)
	s.idx = slices.Grow(s.idx, len(missing))[:w]
	s.val = slices.Grow(s.val, len(missing))[:w]
	i, j := n-1, len(missing)-1
	for w--; j >= 0; w-- {
		if i >= 0 && s.idx[i] > missing[j] {
			s.idx[w], s.val[w] = s.idx[i], s.val[i]
			i--
		} else {
			s.idx[w], s.val[w] = missing[j], sign
			j--
		}
	}
	s.maybeDense()
}

// Merge adds the counters of o to s (same layout).
func (s *SparseTally) Merge(o *SparseTally) {
	s.Respondents += o.Respondents
	if s.dense == nil && o.dense != nil {
		s.toDense()
	}
	if s.dense != nil {
		o.each(func(ctr uint32, v int64) { s.dense[ctr] += v })
		return
	}
	if len(o.idx) == 0 {
		return
	}
	idx := make([]uint32, 0, len(s.idx)+len(o.idx))
	val := make([]int64, 0, len(s.idx)+len(o.idx))
	i, j := 0, 0
	for i < len(s.idx) || j < len(o.idx) {
		switch {
		case j == len(o.idx) || (i < len(s.idx) && s.idx[i] < o.idx[j]):
			idx, val = append(idx, s.idx[i]), append(val, s.val[i])
			i++
		case i == len(s.idx) || o.idx[j] < s.idx[i]:
			idx, val = append(idx, o.idx[j]), append(val, o.val[j])
			j++
		default:
			idx, val = append(idx, s.idx[i]), append(val, s.val[i]+o.val[j])
			i++
			j++
		}
	}
	s.idx, s.val = idx, val
	s.maybeDense()
}

// IsZero reports whether s counts nothing: no respondent, every counter 0.
func (s *SparseTally) IsZero() bool {
	if s.Respondents != 0 {
		return false
	}
	zero := true
	s.each(func(_ uint32, v int64) {
		if v != 0 {
			zero = false
		}
	})
	return zero
}

// Size is an estimate of the memory s holds, in bytes.
func (s *SparseTally) Size() int { return 72 + 12*cap(s.idx) + 8*cap(s.dense) }

// AddTo adds s to the dense tally t (same layout), recording the slots it
// touches when t tracks its non-zero slots.
func (s *SparseTally) AddTo(t *Tally) {
	t.Respondents += s.Respondents
	s.each(func(ctr uint32, v int64) {
		if int(ctr) < s.NSlots {
			t.addSlot(int(ctr), v)
		} else {
			t.NodeN[int(ctr)-s.NSlots] += v
		}
	})
}

// Dense returns s as a dense Tally.
func (s *SparseTally) Dense() *Tally {
	t := &Tally{Slots: make([]int64, s.NSlots), NodeN: make([]int64, s.NNodes)}
	s.AddTo(t)
	return t
}

// SparseOf returns the non-zero counters of t as a SparseTally.
func SparseOf(t *Tally) *SparseTally {
	s := &SparseTally{Respondents: t.Respondents, NSlots: len(t.Slots), NNodes: len(t.NodeN)}
	for i, v := range t.Slots {
		if v != 0 {
			s.idx, s.val = append(s.idx, uint32(i)), append(s.val, v)
		}
	}
	for i, v := range t.NodeN {
		if v != 0 {
			s.idx, s.val = append(s.idx, uint32(len(t.Slots)+i)), append(s.val, v)
		}
	}
	return s
}

// sparseFormat and denseFormat are the first byte of an encoded
// SparseTally. The dense encoding of Tally.MarshalBinary has no such byte;
// the two are never stored in the same place.
const (
	sparseFormat = 2
	denseFormat  = 3
)

// MarshalBinary encodes s: the format byte, uvarints of Respondents, NSlots
// and NNodes, then either (sparseFormat) the number of non-zero counters
// and per counter the uvarint gap to the previous counter number and the
// uvarint value, or (denseFormat, when most counters are in use) the uvarint
// value of every counter. A cell of kiosk responses takes about two bytes
// per counter in use. A negative counter is an error (a stored cell is a
// count).
func (s *SparseTally) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, 16+3*len(s.idx)+2*len(s.dense)))
}

// AppendBinary appends the encoding of MarshalBinary to b.
func (s *SparseTally) AppendBinary(b []byte) ([]byte, error) {
	if s.Respondents < 0 {
		return nil, fmt.Errorf("sparse tally: %d respondents", s.Respondents)
	}
	n := 0
	var bad error
	s.each(func(ctr uint32, v int64) {
		if v < 0 && bad == nil {
			bad = fmt.Errorf("sparse tally: counter %d is %d", ctr, v)
		}
		if v > 0 {
			n++
		}
	})
	if bad != nil {
		return nil, bad
	}
	total := s.NSlots + s.NNodes
	format := byte(sparseFormat)
	if 2*n > total {
		format = denseFormat
	}
	b = append(b, format)
	b = binary.AppendUvarint(b, uint64(s.Respondents))
	b = binary.AppendUvarint(b, uint64(s.NSlots))
	b = binary.AppendUvarint(b, uint64(s.NNodes))
	if format == denseFormat {
		next := uint32(0)
		s.each(func(ctr uint32, v int64) {
			for ; next < ctr; next++ {
				b = append(b, 0)
			}
			b = binary.AppendUvarint(b, uint64(v))
			next = ctr + 1
		})
		for ; int(next) < total; next++ {
			b = append(b, 0)
		}
		return b, nil
	}
	b = binary.AppendUvarint(b, uint64(n))
	prev := uint32(0)
	s.each(func(ctr uint32, v int64) {
		if v == 0 {
			return
		}
		b = binary.AppendUvarint(b, uint64(ctr-prev))
		b = binary.AppendUvarint(b, uint64(v))
		prev = ctr
	})
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (s *SparseTally) UnmarshalBinary(b []byte) error {
	*s = SparseTally{}
	err := walkSparse(b, func(resp int64, nslots, nnodes, n int) {
		s.Respondents, s.NSlots, s.NNodes = resp, nslots, nnodes
		s.idx, s.val = make([]uint32, 0, n), make([]int64, 0, n)
	}, func(ctr uint32, v int64) {
		s.idx, s.val = append(s.idx, ctr), append(s.val, v)
	})
	s.maybeDense()
	return err
}

// AddEncoded adds an encoded SparseTally to the dense tally t, whose layout
// it must have; the slots it touches are recorded when t tracks its
// non-zero slots. Reads decode stored cells this way without building a
// SparseTally: it is the inner loop of an index read from stored cells, so
// it decodes in place rather than through walkSparse's callbacks.
func (t *Tally) AddEncoded(b []byte) error {
	if len(b) == 0 || (b[0] != sparseFormat && b[0] != denseFormat) {
		return fmt.Errorf("%w: not a sparse tally", errTallyCorrupt)
	}
	dense := b[0] == denseFormat
	p := 1
	var h [4]uint64
	nh := 4
	if dense {
		nh = 3
	}
	for i := range h[:nh] {
		if h[i], p = readUvarint(b, p); p < 0 {
			return errTallyCorrupt
		}
	}
	nslots, nnodes := uint64(len(t.Slots)), uint64(len(t.NodeN))
	if h[1] != nslots || h[2] != nnodes {
		return fmt.Errorf("%w: cell has %d slots and %d nodes, want %d and %d", errTallyCorrupt, h[1], h[2], nslots, nnodes)
	}
	limit := nslots + nnodes
	if dense {
		h[3] = limit
	}
	if h[3] > limit || h[0] > 1<<62 {
		return fmt.Errorf("%w: bad header", errTallyCorrupt)
	}
	t.Respondents += int64(h[0])
	var ctr, gap, v uint64
	for i := uint64(0); i < h[3]; i++ {
		// The one-byte case of readUvarint, by hand: the compiler does not
		// inline it here.
		if dense {
			ctr = i
		} else {
			if p < len(b) && b[p] < 0x80 {
				gap, p = uint64(b[p]), p+1
			} else if gap, p = readUvarintSlow(b, p); p < 0 {
				return fmt.Errorf("%w: bad counter", errTallyCorrupt)
			}
			if (i > 0 && gap == 0) || ctr+gap >= limit {
				return fmt.Errorf("%w: bad counter", errTallyCorrupt)
			}
			ctr += gap
		}
		switch {
		case p < len(b) && b[p] < 0x80:
			v, p = uint64(b[p]), p+1
		case p+1 < len(b) && b[p+1] < 0x80: // counts up to 16383: cells of many responses
			v, p = uint64(b[p]&0x7f)|uint64(b[p+1])<<7, p+2
		default:
			if v, p = readUvarintSlow(b, p); p < 0 || v > 1<<62 {
				return fmt.Errorf("%w: bad counter", errTallyCorrupt)
			}
		}
		switch {
		case v == 0:
		case ctr < nslots:
			t.addSlot(int(ctr), int64(v))
		default:
			t.NodeN[ctr-nslots] += int64(v)
		}
	}
	if p != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", errTallyCorrupt, len(b)-p)
	}
	return nil
}

// EncodedRespondents returns the respondents of an encoded SparseTally
// (MarshalBinary) without decoding its counters: a read that needs only
// the respondents of a cell (disclosure control counts them for whole
// years) reads the header alone.
func EncodedRespondents(b []byte) (int64, error) {
	if len(b) == 0 || (b[0] != sparseFormat && b[0] != denseFormat) {
		return 0, fmt.Errorf("%w: not a sparse tally", errTallyCorrupt)
	}
	v, p := readUvarint(b, 1)
	if p < 0 || v > 1<<62 {
		return 0, fmt.Errorf("%w: bad header", errTallyCorrupt)
	}
	return int64(v), nil
}

// readUvarint decodes the uvarint at b[p:] and returns it with the position
// after it, or p < 0 when b holds none. One-byte values (most counters)
// take the inlined path.
func readUvarint(b []byte, p int) (uint64, int) {
	if p >= 0 && p < len(b) && b[p] < 0x80 {
		return uint64(b[p]), p + 1
	}
	return readUvarintSlow(b, p)
}

func readUvarintSlow(b []byte, p int) (uint64, int) {
	if p < 0 || p >= len(b) {
		return 0, -1
	}
	v, n := binary.Uvarint(b[p:])
	if n <= 0 {
		return 0, -1
	}
	return v, p + n
}

// walkSparse decodes an encoded SparseTally, calling head once and then
// counter for each non-zero counter in ascending order.
func walkSparse(b []byte, head func(resp int64, nslots, nnodes, n int), counter func(ctr uint32, v int64)) error {
	if len(b) == 0 || (b[0] != sparseFormat && b[0] != denseFormat) {
		return fmt.Errorf("%w: not a sparse tally", errTallyCorrupt)
	}
	dense := b[0] == denseFormat
	b = b[1:]
	next := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errTallyCorrupt
		}
		b = b[n:]
		return v, nil
	}
	var h [4]uint64
	nh := 4
	if dense {
		nh = 3
	}
	for i := range h[:nh] {
		v, err := next()
		if err != nil {
			return err
		}
		h[i] = v
	}
	limit := h[1] + h[2]
	if dense {
		h[3] = limit
	}
	if h[1] > 1<<20 || h[2] > 1<<20 || h[3] > limit || h[0] > 1<<62 {
		return fmt.Errorf("%w: bad header", errTallyCorrupt)
	}
	head(int64(h[0]), int(h[1]), int(h[2]), int(h[3]))
	ctr := uint64(0)
	for i := uint64(0); i < h[3]; i++ {
		gap := uint64(1)
		if !dense {
			var err error
			if gap, err = next(); err != nil {
				return err
			}
		}
		v, err := next()
		if err != nil {
			return err
		}
		if dense {
			ctr = i
			if v == 0 {
				continue
			}
		} else {
			if (i > 0 && gap == 0) || ctr+gap >= limit {
				return fmt.Errorf("%w: bad counter", errTallyCorrupt)
			}
			ctr += gap
		}
		if v > 1<<62 {
			return fmt.Errorf("%w: bad counter", errTallyCorrupt)
		}
		counter(uint32(ctr), int64(v))
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errTallyCorrupt, len(b))
	}
	return nil
}

// addSlot adds v to slot i, recording it among the non-zero slots when t
// tracks them.
func (t *Tally) addSlot(i int, v int64) {
	if t.Slots[i] == 0 && t.nonzero != nil {
		if (len(t.nonzero)+1)*2 > len(t.Slots) {
			t.nonzero = nil // dense now
		} else {
			t.nonzero = append(t.nonzero, uint16(i))
		}
	}
	t.Slots[i] += v
}

// Clear sets every counter of t to zero; a tally that tracks its non-zero
// slots clears only those and keeps tracking. It lets a reader decode cell
// after cell into one scratch tally.
func (t *Tally) Clear() {
	t.Respondents = 0
	if t.nonzero != nil {
		for _, i := range t.nonzero {
			t.Slots[i] = 0
		}
		t.nonzero = t.nonzero[:0]
	} else {
		clear(t.Slots)
		t.TrackNonzero()
	}
	clear(t.NodeN)
}
