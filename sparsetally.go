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
	var seen [256]bool
	var seenBig []bool
	if len(q.Nodes) > len(seen) {
		seenBig = make([]bool, len(q.Nodes))
	}
	cs := dst.Counters[:0]
	var nodes []uint32
	items := q.Items[:min(len(answers), len(q.Items))]
	for i, it := range items {
		v := int(answers[i])
		if v == 0 || v > len(it.slotOf) {
			continue
		}
		s := it.slotOf[v-1]
		if s < 0 {
			continue
		}
		cs = append(cs, uint32(s))
		if int(s) >= it.Slot+len(it.Scale.Codes) {
			continue // 8 or 9: not a valid answer for n
		}
		for n := it.Node; n != nil; n = n.Parent {
			if seenBig != nil {
				if seenBig[n.Index] {
					break
				}
				seenBig[n.Index] = true
			} else {
				if seen[n.Index] {
					break
				}
				seen[n.Index] = true
			}
			nodes = append(nodes, uint32(q.Slots+n.Index))
		}
	}
	slices.Sort(cs) // slots of items in questionnaire order ascend already; keep the rule explicit
	slices.Sort(nodes)
	dst.Counters = append(cs, nodes...)
}

// Add adds sign times contribution c (one respondent and one at each of its
// counters) to s: sign 1 counts a response, -1 takes it back out.
func (s *SparseTally) Add(c *Contribution, sign int64) {
	s.Respondents += sign
	// c.Counters ascend, so each search starts where the previous one ended.
	lo := 0
	for _, ctr := range c.Counters {
		i, found := slices.BinarySearch(s.idx[lo:], ctr)
		i += lo
		if found {
			s.val[i] += sign
		} else {
			s.idx = slices.Insert(s.idx, i, ctr)
			s.val = slices.Insert(s.val, i, sign)
		}
		lo = i + 1
	}
}

// Merge adds the counters of o to s (same layout).
func (s *SparseTally) Merge(o *SparseTally) {
	s.Respondents += o.Respondents
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
}

// IsZero reports whether s counts nothing: no respondent, every counter 0.
func (s *SparseTally) IsZero() bool {
	if s.Respondents != 0 {
		return false
	}
	for _, v := range s.val {
		if v != 0 {
			return false
		}
	}
	return true
}

// Size is an estimate of the memory s holds, in bytes.
func (s *SparseTally) Size() int { return 48 + 12*cap(s.idx) }

// AddTo adds s to the dense tally t (same layout), recording the slots it
// touches when t tracks its non-zero slots.
func (s *SparseTally) AddTo(t *Tally) {
	t.Respondents += s.Respondents
	for i, ctr := range s.idx {
		if int(ctr) < s.NSlots {
			t.addSlot(int(ctr), s.val[i])
		} else {
			t.NodeN[int(ctr)-s.NSlots] += s.val[i]
		}
	}
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

// sparseFormat is the first byte of an encoded SparseTally. The dense
// encoding of Tally.MarshalBinary has no such byte; the two are never stored
// in the same place.
const sparseFormat = 2

// MarshalBinary encodes s: the format byte, uvarints of Respondents, NSlots,
// NNodes and the number of non-zero counters, then per counter the uvarint
// gap to the previous counter number and the uvarint value. A cell of
// kiosk responses takes about two bytes per counter in use. Counters of 0
// are left out; a negative counter is an error (a stored cell is a count).
func (s *SparseTally) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, 16+3*len(s.idx)))
}

// AppendBinary appends the encoding of MarshalBinary to b.
func (s *SparseTally) AppendBinary(b []byte) ([]byte, error) {
	if s.Respondents < 0 {
		return nil, fmt.Errorf("sparse tally: %d respondents", s.Respondents)
	}
	n := 0
	for i, v := range s.val {
		if v < 0 {
			return nil, fmt.Errorf("sparse tally: counter %d is %d", s.idx[i], v)
		}
		if v > 0 {
			n++
		}
	}
	b = append(b, sparseFormat)
	b = binary.AppendUvarint(b, uint64(s.Respondents))
	b = binary.AppendUvarint(b, uint64(s.NSlots))
	b = binary.AppendUvarint(b, uint64(s.NNodes))
	b = binary.AppendUvarint(b, uint64(n))
	prev := uint32(0)
	for i, ctr := range s.idx {
		if s.val[i] == 0 {
			continue
		}
		b = binary.AppendUvarint(b, uint64(ctr-prev))
		b = binary.AppendUvarint(b, uint64(s.val[i]))
		prev = ctr
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (s *SparseTally) UnmarshalBinary(b []byte) error {
	*s = SparseTally{}
	return walkSparse(b, func(resp int64, nslots, nnodes, n int) {
		s.Respondents, s.NSlots, s.NNodes = resp, nslots, nnodes
		s.idx, s.val = make([]uint32, 0, n), make([]int64, 0, n)
	}, func(ctr uint32, v int64) {
		s.idx, s.val = append(s.idx, ctr), append(s.val, v)
	})
}

// AddEncoded adds an encoded SparseTally to the dense tally t, whose layout
// it must have; the slots it touches are recorded when t tracks its
// non-zero slots. Reads decode stored cells this way without building a
// SparseTally.
func (t *Tally) AddEncoded(b []byte) error {
	var bad error
	err := walkSparse(b, func(resp int64, nslots, nnodes, _ int) {
		if nslots != len(t.Slots) || nnodes != len(t.NodeN) {
			bad = fmt.Errorf("%w: cell has %d slots and %d nodes, want %d and %d", errTallyCorrupt, nslots, nnodes, len(t.Slots), len(t.NodeN))
			return
		}
		t.Respondents += resp
	}, func(ctr uint32, v int64) {
		if bad != nil {
			return
		}
		if int(ctr) < len(t.Slots) {
			t.addSlot(int(ctr), v)
		} else {
			t.NodeN[int(ctr)-len(t.Slots)] += v
		}
	})
	if err != nil {
		return err
	}
	return bad
}

// walkSparse decodes an encoded SparseTally, calling head once and then
// counter for each non-zero counter in ascending order.
func walkSparse(b []byte, head func(resp int64, nslots, nnodes, n int), counter func(ctr uint32, v int64)) error {
	if len(b) == 0 || b[0] != sparseFormat {
		return fmt.Errorf("%w: not a sparse tally", errTallyCorrupt)
	}
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
	for i := range h {
		v, err := next()
		if err != nil {
			return err
		}
		h[i] = v
	}
	limit := h[1] + h[2]
	if h[1] > 1<<20 || h[2] > 1<<20 || h[3] > limit || h[0] > 1<<62 {
		return fmt.Errorf("%w: bad header", errTallyCorrupt)
	}
	head(int64(h[0]), int(h[1]), int(h[2]), int(h[3]))
	ctr := uint64(0)
	for i := uint64(0); i < h[3]; i++ {
		gap, err := next()
		if err != nil {
			return err
		}
		v, err := next()
		if err != nil {
			return err
		}
		if (i > 0 && gap == 0) || ctr+gap >= limit || v > 1<<62 {
			return fmt.Errorf("%w: bad counter", errTallyCorrupt)
		}
		ctr += gap
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
