package store

import (
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

// TestQueryCellsDetail: a read that names the cells it needs whole
// (CellQuery.Detail) gets those decoded exactly as a plain read gives them,
// and every other cell with its respondents alone (the stored cell's plus
// its delta's), every counter zero; a cell whose responses were all taken
// back out is not passed at all. Checked with the cells stored and cached,
// with deltas on top, and read from the table.
func TestQueryCellsDetail(t *testing.T) {
	s := openTest(t, "", Options{CheckpointRows: 80, CheckpointInterval: time.Hour})
	g := newGen(t, 31)
	var accs []*sipas.Accepted
	for range 120 {
		accs = append(accs, g.accepted())
	}
	mustInsert(t, s, accs[:80]...) // checkpointed: stored cells
	mustInsert(t, s, accs[80:]...) // in the deltas only
	if checkpointSeq(t, s) != 80 || s.deltas.len() == 0 {
		t.Fatalf("checkpoint at seq %d, %d cells in the deltas; want 80 and some", checkpointSeq(t, s), s.deltas.len())
	}

	check := func(what string) {
		t.Helper()
		want := s.Cells()
		if len(want) == 0 {
			t.Fatal("no cells")
		}
		// Whole: the province-level cells and the unit cells of odd months.
		detail := func(k sipas.CellKey) bool { return k.UnitID == "" || k.Month%2 == 1 }
		cat, _ := catalog(t)
		for _, q := range cat.List() {
			seen := map[sipas.CellKey]bool{}
			err := s.QueryCells(sipas.CellQuery{QuestionnaireID: q.ID, Units: true, Detail: detail}, func(k sipas.CellKey, got *sipas.Tally) {
				seen[k] = true
				w := want[k]
				switch {
				case w == nil:
					t.Errorf("%s: cell %v passed, not stored", what, k)
				case detail(k):
					if !tallyEqual(w, got) {
						t.Errorf("%s: cell %v whole: %+v, want %+v", what, k, got, w)
					}
				default:
					if got.Respondents != w.Respondents || !allZero(got.Slots) || !allZero(got.NodeN) {
						t.Errorf("%s: cell %v as a count: %d respondents (want %d), counters zero %v",
							what, k, got.Respondents, w.Respondents, allZero(got.Slots) && allZero(got.NodeN))
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			for k := range want {
				if k.QuestionnaireID == q.ID && !seen[k] {
					t.Errorf("%s: cell %v not passed", what, k)
				}
			}
		}
	}
	check("stored and deltas, cached")
	s.DropCellCache()
	check("stored and deltas, from the table")
}

func tallyEqual(a, b *sipas.Tally) bool {
	if a.Respondents != b.Respondents || len(a.Slots) != len(b.Slots) || len(a.NodeN) != len(b.NodeN) {
		return false
	}
	for i := range a.Slots {
		if a.Slots[i] != b.Slots[i] {
			return false
		}
	}
	for i := range a.NodeN {
		if a.NodeN[i] != b.NodeN[i] {
			return false
		}
	}
	return true
}

func allZero(v []int64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}
