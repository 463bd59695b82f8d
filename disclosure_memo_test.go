package sipas

import (
	"reflect"
	"sync"
	"testing"
)

// frozenSource is a read-only CellSource for concurrent queries.
type frozenSource map[CellKey]*Tally

func (s frozenSource) EachCell(qid string, from, to int, fn func(CellKey, *Tally)) {
	for k, t := range s {
		if k.QuestionnaireID == qid && from <= k.Month && k.Month <= to {
			fn(k, t)
		}
	}
}

func clearSDCMemo() {
	sdcMemo.mu.Lock()
	defer sdcMemo.mu.Unlock()
	sdcMemo.entries = nil
}

func memoLen() int {
	sdcMemo.mu.Lock()
	defer sdcMemo.mu.Unlock()
	return len(sdcMemo.entries)
}

// TestDisclosureMemoFollowsTheCells: the decisions kept from an earlier
// query (sdcMemo) are never served once the cells have changed: a unit
// added below the threshold hides its smallest visible sibling at once, on
// the same engine, and decisions kept for the earlier cells are served
// again only for those cells.
func TestDisclosureMemoFollowsTheCells(t *testing.T) {
	clearSDCMemo()
	q := Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "01"}, Period: march()}
	rank := func(fx *discFixture, label string, sizes map[string]int, hidden []string) {
		t.Helper()
		rk, err := fx.e.RankUnits(q)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, label, rk, sizes, hidden)
	}
	fx := newDiscFixture(t)
	fx.put("01", "A", 3, 50, 2)
	fx.put("01", "B", 3, 40, 3)
	rank(fx, "A and B", map[string]int{"A": 50, "B": 40}, nil)
	rank(fx, "A and B again", map[string]int{"A": 50, "B": 40}, nil)
	if memoLen() == 0 {
		t.Fatal("no decisions kept")
	}
	fx.put("01", "C", 3, 3, 4) // C is small: B, the smallest visible unit, goes too
	rank(fx, "C added", map[string]int{"A": 50, "B": 40, "C": 3}, []string{"B", "C"})

	again := newDiscFixture(t) // other cells equal to the first ones
	again.put("01", "A", 3, 50, 2)
	again.put("01", "B", 3, 40, 3)
	rank(again, "A and B, another source", map[string]int{"A": 50, "B": 40}, nil)
}

// TestDisclosureMemoConcurrentQueries: queries sharing kept decisions from
// several goroutines (run with -race) give what each gives alone with
// nothing kept.
func TestDisclosureMemoConcurrentQueries(t *testing.T) {
	fx := newDiscFixture(t)
	for i, u := range []string{"A", "B", "C", "D", "E"} {
		fx.put("01", u, 3, []int{50, 40, 3, 30, 8}[i], 2+i)
		fx.put("01", u, 4, []int{20, 4, 30, 12, 40}[i], 3+i)
	}
	fx.put("22", "Z", 3, 60, 3)
	fx.e.Source = frozenSource(fx.src.cells) // mapSource counts its calls: not for concurrent readers
	q := Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "01"}, Period: april()}
	run := func() (*Ranking, *WeakPoints) {
		rk, err := fx.e.RankUnits(q)
		if err != nil {
			t.Error(err)
		}
		wp, err := fx.e.WeakPoints(q, 50)
		if err != nil {
			t.Error(err)
		}
		return rk, wp
	}
	clearSDCMemo()
	wantRK, wantWP := run()
	suppressed := 0
	for _, r := range wantRK.Rows {
		if r.Suppressed {
			suppressed++
		}
	}
	if suppressed == 0 {
		t.Fatal("no unit suppressed: the case does not exercise disclosure control")
	}
	clearSDCMemo()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rk, wp := run()
			if !reflect.DeepEqual(rk, wantRK) || !reflect.DeepEqual(wp, wantWP) {
				t.Error("a query with kept decisions differs from the query alone")
			}
		})
	}
	wg.Wait()
}
