package sipas

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// CellKey identifies one aggregate cell: the responses of one questionnaire,
// counted for one province (as collected), in one month, through one channel,
// at one unit. UnitID is empty for the province-level cell, which counts every
// response of the province whatever its unit; a response with a unit is also
// counted in its unit's cell.
type CellKey struct {
	QuestionnaireID string
	ProvinceID      string // Province.ID the response is counted for
	Month           int    // year*100 + month, Vietnam time, e.g. 202607
	Channel         Channel
	UnitID          string
}

// MonthOf returns the cell month (year*100+month) of t in Vietnam time.
func MonthOf(t time.Time) int {
	v := t.In(VietnamZone)
	return v.Year()*100 + int(v.Month())
}

// Tally holds the counters of one cell. Index arithmetic needs nothing else,
// so reading an index never scans responses.
type Tally struct {
	// Respondents is the number of responses counted.
	Respondents int64
	// Slots are answer counters laid out per Item.Slot: for each item one
	// counter per scale code, in scale order, then one for 8 and one for 9.
	Slots []int64
	// NodeN[i] counts respondents with at least one valid answer (a code of
	// the item's scale) under Questionnaire.Nodes[i], at any depth.
	NodeN []int64

	// nonzero lists the non-zero slots while t tracks them (see
	// TrackNonzero); nil for a dense tally.
	nonzero []uint16
}

// TrackNonzero makes t record its non-zero slots when most of them are zero
// (a kiosk asks only the service block, a tenth of the items), so that
// merging t reads only those: index reads are bound by memory traffic over
// the cells, and kiosk cells are the most numerous. AddAnswers keeps the
// record up to date (and drops it once half the slots are in use); Add,
// Merge into t and UnmarshalBinary drop it, so it is never wrong.
func (t *Tally) TrackNonzero() {
	n := 0
	for _, v := range t.Slots {
		if v != 0 {
			n++
		}
	}
	if n*2 > len(t.Slots) || len(t.Slots) > 1<<16 {
		t.nonzero = nil
		return
	}
	nz := make([]uint16, 0, max(n, 16))
	for i, v := range t.Slots {
		if v != 0 {
			nz = append(nz, uint16(i))
		}
	}
	t.nonzero = nz
}

// AddAnswers counts one validated response of questionnaire q from its
// packed answers (Accepted.Answers: code + 1 by item position): one
// respondent, one at the slot of each answer with a valid code (8 and 9
// included) and one at each formula node with at least one valid scale
// answer under it (Questionnaire.Contribution). It equals Add of the same
// answers in the map form, and keeps the record of non-zero slots
// (TrackNonzero).
func (t *Tally) AddAnswers(q *Questionnaire, answers []uint8) {
	var c Contribution
	q.Contribution(answers, &c)
	t.AddContribution(&c, 1)
}

// AddContribution adds sign times c to t: sign 1 counts a response, -1
// takes it back out (a withdrawn or amended response).
func (t *Tally) AddContribution(c *Contribution, sign int64) {
	t.Respondents += sign
	for _, ctr := range c.Counters {
		if int(ctr) < len(t.Slots) {
			t.addSlot(int(ctr), sign)
		} else {
			t.NodeN[int(ctr)-len(t.Slots)] += sign
		}
	}
}

// NewTally returns an empty tally laid out for q.
func NewTally(q *Questionnaire) *Tally {
	return &Tally{Slots: make([]int64, q.Slots), NodeN: make([]int64, len(q.Nodes))}
}

// SlotOf returns the counter slot of answer code c of item it, or -1 when c
// is not a valid code for the item.
func SlotOf(it *Item, c int) int {
	if it.slotOf != nil {
		if c < 0 || c >= len(it.slotOf) {
			return -1
		}
		return int(it.slotOf[c])
	}
	return slotOfScan(it, c)
}

// slotTable is the slot of every answer code of it up to the largest valid
// one, by code (-1 for codes that are not valid).
func slotTable(it *Item) []int32 {
	hi := CodeNotApplicable
	for _, sc := range it.Scale.Codes {
		hi = max(hi, sc.Code)
	}
	t := make([]int32, hi+1)
	for c := range t {
		t[c] = int32(slotOfScan(it, c))
	}
	return t
}

func slotOfScan(it *Item, c int) int {
	for i, sc := range it.Scale.Codes {
		if sc.Code == c {
			return it.Slot + i
		}
	}
	switch c {
	case CodeDontKnow:
		return it.Slot + len(it.Scale.Codes)
	case CodeNotApplicable:
		return it.Slot + len(it.Scale.Codes) + 1
	}
	return -1
}

// Add counts one validated response of questionnaire q. Answers with codes
// outside the item's scale and 8/9 are ignored here; validation refuses them
// before they reach a tally. The second argument is scratch space of at least
// len(q.Nodes) booleans (nil allocates), so hot paths can reuse it.
func (t *Tally) Add(q *Questionnaire, r *Response, seen []bool) {
	if len(seen) < len(q.Nodes) {
		seen = make([]bool, len(q.Nodes))
	}
	seen = seen[:len(q.Nodes)]
	clear(seen)
	t.nonzero = nil
	t.Respondents++
	for code, a := range r.Answers {
		it := q.Item(code)
		if it == nil {
			continue
		}
		s := SlotOf(it, a)
		if s < 0 {
			continue
		}
		t.Slots[s]++
		if s >= it.Slot+len(it.Scale.Codes) {
			continue // 8 or 9: not a valid answer for n
		}
		for n := it.Node; n != nil; n = n.Parent {
			seen[n.Index] = true
		}
	}
	for i, ok := range seen {
		if ok {
			t.NodeN[i]++
		}
	}
}

// Merge adds the counters of o to t. Both must be laid out for the same questionnaire.
func (t *Tally) Merge(o *Tally) {
	t.nonzero = nil
	t.Respondents += o.Respondents
	if o.nonzero != nil {
		slots := t.Slots[:len(o.Slots)]
		for _, i := range o.nonzero {
			slots[i] += o.Slots[i]
		}
	} else {
		addInto(t.Slots, o.Slots)
	}
	addInto(t.NodeN, o.NodeN)
}

// addInto adds src to dst element by element; it is the inner loop of every
// index read, written so the compiler drops the bounds checks and unrolls.
func addInto(dst, src []int64) {
	dst = dst[:len(src)]
	i := 0
	for ; i+4 <= len(src); i += 4 {
		d, s := dst[i:i+4:i+4], src[i:i+4:i+4]
		d[0] += s[0]
		d[1] += s[1]
		d[2] += s[2]
		d[3] += s[3]
	}
	for ; i < len(src); i++ {
		dst[i] += src[i]
	}
}

// Equal reports whether t and o hold the same counters.
func (t *Tally) Equal(o *Tally) bool {
	if t.Respondents != o.Respondents || len(t.Slots) != len(o.Slots) || len(t.NodeN) != len(o.NodeN) {
		return false
	}
	for i := range t.Slots {
		if t.Slots[i] != o.Slots[i] {
			return false
		}
	}
	for i := range t.NodeN {
		if t.NodeN[i] != o.NodeN[i] {
			return false
		}
	}
	return true
}

// ItemCounts returns the valid and positive answer counts of item it.
func (t *Tally) ItemCounts(it *Item) (valid, positive int64) {
	for i, sc := range it.Scale.Codes {
		v := t.Slots[it.Slot+i]
		valid += v
		if sc.Positive {
			positive += v
		}
	}
	return valid, positive
}

// MarshalBinary encodes the tally compactly: uvarints of Respondents,
// len(Slots), the slots, len(NodeN), the node counts. Most slots are small or
// zero, so a cell of a 106-item questionnaire takes a few hundred bytes.
func (t *Tally) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 2*(len(t.Slots)+len(t.NodeN))+16)
	b = binary.AppendUvarint(b, uint64(t.Respondents))
	b = binary.AppendUvarint(b, uint64(len(t.Slots)))
	for _, v := range t.Slots {
		b = binary.AppendUvarint(b, uint64(v))
	}
	b = binary.AppendUvarint(b, uint64(len(t.NodeN)))
	for _, v := range t.NodeN {
		b = binary.AppendUvarint(b, uint64(v))
	}
	return b, nil
}

var errTallyCorrupt = errors.New("corrupt tally encoding")

// UnmarshalBinary decodes what MarshalBinary encoded.
func (t *Tally) UnmarshalBinary(b []byte) error {
	next := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errTallyCorrupt
		}
		b = b[n:]
		return v, nil
	}
	r, err := next()
	if err != nil {
		return err
	}
	t.Respondents = int64(r)
	t.nonzero = nil
	for _, dst := range []*[]int64{&t.Slots, &t.NodeN} {
		n, err := next()
		if err != nil {
			return err
		}
		if n > uint64(len(b)) {
			return fmt.Errorf("%w: length %d exceeds data", errTallyCorrupt, n)
		}
		*dst = make([]int64, n)
		for i := range *dst {
			v, err := next()
			if err != nil {
				return err
			}
			(*dst)[i] = int64(v)
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errTallyCorrupt, len(b))
	}
	return nil
}
