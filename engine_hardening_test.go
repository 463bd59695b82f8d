package sipas

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Regression tests of issue 16 (hardening) for the engine: unit-only
// figures follow the unit's province lineage (reliability.md row 47), and a
// query stops when its context ends (unary deadlines).

// unitDirectory is a fixed registry of units for the engine.
type unitDirectory map[string]string

func (d unitDirectory) UnitProvince(id string) (string, bool) {
	code, ok := d[id]
	return code, ok
}

// putAt is discFixture.put at any time: n responses of province code (as
// collected at time at) through unit.
func putAt(fx *discFixture, code, unit string, at time.Time, n int) {
	fx.t.Helper()
	p, _, err := fx.reg.Resolve(code, at)
	if err != nil {
		fx.t.Fatal(err)
	}
	for range n {
		r := &Response{ID: fmt.Sprint(fx.n), QuestionnaireID: fx.q.ID, ProvinceCode: code, UnitID: unit, CollectedAt: at,
			Channel: ChannelField, Answers: map[string]int{}}
		fx.n++
		for _, it := range fx.q.Items {
			r.Answers[it.Code] = it.Scale.Codes[0].Code
		}
		for _, k := range []CellKey{
			{QuestionnaireID: fx.q.ID, ProvinceID: p.ID, Month: MonthOf(at), Channel: r.Channel},
			{QuestionnaireID: fx.q.ID, ProvinceID: p.ID, Month: MonthOf(at), Channel: r.Channel, UnitID: unit},
		} {
			tl := fx.src.cells[k]
			if tl == nil {
				tl = NewTally(fx.q)
				fx.src.cells[k] = tl
			}
			tl.Add(fx.q, r, fx.seen)
		}
	}
}

// TestUnitOnlyFiguresCountOnlyTheUnitsLineage: cells filed under a unit in
// another province (as stored before rows were checked, or by a tool) never
// move a unit-only figure; cells of a province merged into the unit's
// province in 2025 do count.
func TestUnitOnlyFiguresCountOnlyTheUnitsLineage(t *testing.T) {
	fx := newDiscFixture(t)
	fx.e.Units = unitDirectory{"lc-1": "15"}
	vn := VietnamZone
	putAt(fx, "10", "lc-1", time.Date(2024, 3, 10, 12, 0, 0, 0, vn), 12) // old Lào Cai, merged into 15
	putAt(fx, "15", "lc-1", time.Date(2024, 3, 11, 12, 0, 0, 0, vn), 13) // Yên Bái, merged into 15
	putAt(fx, "15", "lc-1", time.Date(2026, 3, 10, 12, 0, 0, 0, vn), 14) // Lào Cai today
	putAt(fx, "01", "lc-1", time.Date(2026, 3, 10, 12, 0, 0, 0, vn), 50) // Hà Nội: not the unit's
	putAt(fx, "48", "lc-1", time.Date(2024, 3, 10, 12, 0, 0, 0, vn), 40) // Đà Nẵng: not the unit's

	for _, tc := range []struct {
		period Period
		want   int64
	}{
		{Period{Year: 2024}, 25},
		{Period{Year: 2026}, 14},
	} {
		r, err := fx.e.Index(Query{QuestionnaireID: fx.q.ID, Scope: Scope{UnitID: "lc-1"}, Period: tc.period})
		if err != nil {
			t.Fatal(err)
		}
		if r.Respondents != tc.want {
			t.Errorf("unit lc-1 in %v: %d respondents, want %d (its lineage only)", tc.period, r.Respondents, tc.want)
		}
		series, err := fx.e.Series(Query{QuestionnaireID: fx.q.ID, Scope: Scope{UnitID: "lc-1"}}, tc.period, tc.period)
		if err != nil {
			t.Fatal(err)
		}
		pts := series.Points
		if pts[0].Respondents != tc.want {
			t.Errorf("series of lc-1 in %v: %d respondents, want %d", tc.period, pts[0].Respondents, tc.want)
		}
		w, err := fx.e.WeakPoints(Query{QuestionnaireID: fx.q.ID, Scope: Scope{UnitID: "lc-1"}, Period: tc.period}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if w.Respondents != tc.want {
			t.Errorf("weak points of lc-1 in %v: %d respondents, want %d", tc.period, w.Respondents, tc.want)
		}
	}
	// An unregistered unit has no figures at all.
	r, err := fx.e.Index(Query{QuestionnaireID: fx.q.ID, Scope: Scope{UnitID: "made-up"}, Period: Period{Year: 2026}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Respondents != 0 {
		t.Errorf("unregistered unit: %d respondents, want 0", r.Respondents)
	}
	// The province scope still counts its own cells (the unit's rows in
	// Hà Nội are Hà Nội's).
	r, err = fx.e.Index(Query{QuestionnaireID: fx.q.ID, Scope: Scope{ProvinceCode: "01"}, Period: Period{Year: 2026}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Respondents != 50 {
		t.Errorf("province 01: %d respondents, want 50", r.Respondents)
	}
}

// cancellingSource cancels a context after a number of cells and counts
// the cells passed on after that.
type cancellingSource struct {
	inner  CellSource
	after  int
	cancel context.CancelFunc
	n      int
}

func (s *cancellingSource) EachCell(qid string, from, to int, fn func(CellKey, *Tally)) {
	s.inner.EachCell(qid, from, to, func(k CellKey, t *Tally) {
		s.n++
		if s.n == s.after {
			s.cancel()
		}
		fn(k, t)
	})
}

// TestQueriesStopWhenTheirContextEnds: a query whose context is done
// returns its error (the server maps it to DEADLINE_EXCEEDED or CANCELLED)
// instead of finishing the work: before it starts, and in the middle of a
// pass over many cells.
func TestQueriesStopWhenTheirContextEnds(t *testing.T) {
	fx := newDiscFixture(t)
	for i := range 3000 {
		putAt(fx, "48", fmt.Sprintf("u-%04d", i), time.Date(2026, 3, 10, 12, 0, 0, 0, VietnamZone), 1)
	}
	province := Query{QuestionnaireID: fx.q.ID, Scope: Scope{ProvinceCode: "48"}, Period: march()}

	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	q := province
	q.Context = expired
	if _, err := fx.e.WeakPoints(q, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WeakPoints with an expired deadline: %v, want context.DeadlineExceeded", err)
	}
	if _, err := fx.e.RankUnits(q); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RankUnits with an expired deadline: %v, want context.DeadlineExceeded", err)
	}

	// Cancelled after 100 of the ~6000 cells: the query returns the
	// cancellation and far fewer cells than all reach the computation.
	ctx, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	src := &cancellingSource{inner: fx.src, after: 100, cancel: cancel2}
	e := *fx.e
	e.Source = src
	q = province
	q.Context = ctx
	if _, err := e.WeakPoints(q, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("WeakPoints cancelled midway: %v, want context.Canceled", err)
	}
	// And without a context the same query completes.
	if _, err := e.WeakPoints(province, 10); err != nil {
		t.Fatal(err)
	}
}
