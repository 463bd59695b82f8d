package sipas

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"
)

// Tests of complementary suppression (see Engine, Disclosure control) on
// hand-built cells: every expected hidden set below is written out by hand
// from the rule, and every way a hidden unit or province could be published
// is checked.

// discFixture builds cells of the mini questionnaire by hand.
type discFixture struct {
	t    *testing.T
	q    *Questionnaire
	reg  *Registry
	src  *mapSource
	e    *Engine
	seen []bool
	n    int
}

func newDiscFixture(t *testing.T) *discFixture {
	t.Helper()
	q := miniQuestionnaire()
	cat, err := NewCatalog(q)
	if err != nil {
		t.Fatal(err)
	}
	reg := loadTestRegistry(t)
	fx := &discFixture{t: t, q: q, reg: reg, src: &mapSource{cells: map[CellKey]*Tally{}}, seen: make([]bool, len(q.Nodes))}
	fx.e = &Engine{Catalog: cat, Registry: reg, Source: fx.src, Thresholds: Thresholds{Disclosure: 10}}
	return fx
}

// put adds n responses of province code (through unit, when not empty) in
// month 2026-mm. Every item is answered; a response is positive unless its
// number is a multiple of div, so that groups of different div have
// different values.
func (fx *discFixture) put(code, unit string, mm, n, div int) {
	fx.t.Helper()
	at := time.Date(2026, time.Month(mm), 10, 12, 0, 0, 0, VietnamZone)
	p, _, err := fx.reg.Resolve(code, at)
	if err != nil {
		fx.t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		r := &Response{ID: fmt.Sprint(fx.n), QuestionnaireID: fx.q.ID, ProvinceCode: code, UnitID: unit, CollectedAt: at,
			Channel: ChannelField, Answers: map[string]int{}}
		fx.n++
		pos := i%div != 0
		for _, it := range fx.q.Items {
			for _, sc := range it.Scale.Codes {
				if sc.Positive == pos {
					r.Answers[it.Code] = sc.Code
					break
				}
			}
		}
		keys := []CellKey{{QuestionnaireID: fx.q.ID, ProvinceID: p.ID, Month: MonthOf(at), Channel: r.Channel}}
		if unit != "" {
			keys = append(keys, CellKey{QuestionnaireID: fx.q.ID, ProvinceID: p.ID, Month: MonthOf(at), Channel: r.Channel, UnitID: unit})
		}
		for _, k := range keys {
			tl := fx.src.cells[k]
			if tl == nil {
				tl = NewTally(fx.q)
				fx.src.cells[k] = tl
			}
			tl.Add(fx.q, r, fx.seen)
		}
	}
}

func march() Period { return Period{Year: 2026, Month: 3} }
func april() Period { return Period{Year: 2026, Month: 4} }

// allSuppressed reports whether every figure of the trees is withheld.
func allSuppressed(trees []*NodeValue) bool {
	ok := len(trees) > 0
	Walk(trees, func(v *NodeValue) {
		ok = ok && v.Suppressed && v.Value == nil && v.CILow == nil && v.CIHigh == nil && v.N == 0 && v.Positive == 0 && v.Valid == 0
	})
	return ok
}

// checkReport checks that an Index report is suppressed (respondents 0,
// every figure withheld) or published with want respondents.
func checkReport(t *testing.T, label string, r *Report, err error, hidden bool, want int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	if hidden {
		if !r.Suppressed || r.Respondents != 0 || !allSuppressed(r.Roots) {
			t.Errorf("%s: not suppressed: respondents %d suppressed %v", label, r.Respondents, r.Suppressed)
		}
		return
	}
	if r.Suppressed || r.Respondents != want || Find(r.Roots, SIPASNodeCode).Value == nil {
		t.Errorf("%s: respondents %d suppressed %v, want published with %d", label, r.Respondents, r.Suppressed, want)
	}
}

// checkRows checks ranking rows against the hidden set: hidden rows are
// suppressed, without value, N or rank; the others published; Mean is the
// mean of the published rows only.
func checkRows(t *testing.T, label string, rk *Ranking, sizes map[string]int, hidden []string) {
	t.Helper()
	if len(rk.Rows) < len(sizes) {
		t.Fatalf("%s: %d rows, want %d", label, len(rk.Rows), len(sizes))
	}
	var sum float64
	var n int
	for _, r := range rk.Rows {
		if _, ok := sizes[r.ID]; !ok {
			if r.Suppressed || r.Insufficient || r.Value != nil || r.N != 0 || r.Rank != 0 { // current provinces without data: "no data", not suppressed
				t.Errorf("%s: row %s without data: %+v", label, r.ID, r)
			}
			continue
		}
		if slices.Contains(hidden, r.ID) {
			if !r.Suppressed || r.Value != nil || r.N != 0 || r.Rank != 0 || r.ValueChange != nil {
				t.Errorf("%s: row %s not suppressed: %+v", label, r.ID, r)
			}
			continue
		}
		if r.Suppressed || r.Value == nil || r.N != int64(sizes[r.ID]) || r.Rank == 0 {
			t.Errorf("%s: row %s not published: %+v", label, r.ID, r)
			continue
		}
		sum += *r.Value
		n++
	}
	var want *float64
	if n > 0 {
		want = fp(sum / float64(n))
	}
	if !approx(rk.Mean, want) {
		t.Errorf("%s: mean %s, want %s (published rows only)", label, fmtp(rk.Mean), fmtp(want))
	}
}

func TestComplementarySuppressionUnits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		units  map[string]int // respondents of the units of province 01 in March
		hidden []string       // by hand: primary and complementary
	}{
		// B is primary; alone it holds 3 < 10, so A (the only visible unit)
		// goes too, or province − A = B.
		{"two units, one small", map[string]int{"A": 50, "B": 3}, []string{"A", "B"}},
		// C and D are primary and hold 3 + 8 = 11 ≥ 10 together.
		{"two small units protect each other", map[string]int{"A": 50, "B": 40, "C": 3, "D": 8}, []string{"C", "D"}},
		// C holds 3 < 10; the smallest visible unit is B.
		{"smallest visible unit", map[string]int{"A": 50, "B": 40, "C": 3}, []string{"B", "C"}},
		// Ties by id.
		{"tie by id", map[string]int{"A": 40, "B": 40, "C": 3}, []string{"A", "C"}},
		// Nothing primary: nothing to protect.
		{"no small unit", map[string]int{"A": 50, "B": 10}, nil},
		// A lone small unit: the province total (3 + 30 direct) is the
		// margin and has no visible unit to subtract.
		{"one small unit only", map[string]int{"A": 3}, []string{"A"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newDiscFixture(t)
			ids := make([]string, 0, len(tc.units))
			for id := range tc.units {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			var total int64
			for i, id := range ids {
				fx.put("01", id, 3, tc.units[id], 2+i)
				total += int64(tc.units[id])
			}
			if len(tc.units) == 1 {
				fx.put("01", "", 3, 30, 7) // responses without a unit
				total += 30
			}
			fx.put("22", "Z", 3, 60, 3) // another province's units are no siblings
			e := fx.e
			q := Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "01"}, Period: march()}

			rk, err := e.RankUnits(q)
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, "rank units", rk, tc.units, tc.hidden)
			// The province is the margin: published.
			prov, err := e.Index(q)
			checkReport(t, "index province", prov, err, false, total)
			if !approx(rk.Pooled, Find(prov.Roots, SIPASNodeCode).Value) {
				t.Errorf("pooled %s, province %s", fmtp(rk.Pooled), fmtp(Find(prov.Roots, SIPASNodeCode).Value))
			}
			for _, id := range ids {
				hidden := slices.Contains(tc.hidden, id)
				n := int64(tc.units[id])
				r, err := e.Index(Query{QuestionnaireID: "mini", Scope: Scope{UnitID: id}, Period: march()})
				checkReport(t, "index unit "+id, r, err, hidden, n)
				r, err = e.Index(Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "01", UnitID: id}, Period: march()})
				checkReport(t, "index unit in province "+id, r, err, hidden, n)
				r, err = e.Index(Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "01", UnitID: id}, Period: march(), NodeCode: "CC"})
				if err != nil || r.Suppressed != hidden || r.Roots[0].Suppressed != hidden || (r.Roots[0].Value == nil) != hidden {
					t.Errorf("index unit %s node CC: %+v %v", id, r, err)
				}
				series, err := e.Series(Query{QuestionnaireID: "mini", Scope: Scope{UnitID: id}}, march(), april())
				if err != nil {
					t.Fatal(err)
				}
				pts := series.Points
				if p := pts[0]; p.Suppressed != hidden || (p.Value == nil) != hidden || (hidden && (p.N != 0 || p.Respondents != 0)) {
					t.Errorf("series unit %s: %+v", id, p)
				}
				w, err := e.WeakPoints(Query{QuestionnaireID: "mini", Scope: Scope{UnitID: id}, Period: march()}, 500)
				if err != nil || w.Suppressed != hidden || (hidden && (w.Respondents != 0 || len(w.Lowest) != 0)) {
					t.Errorf("weak points of unit %s: %+v %v", id, w, err)
				}
			}
			w, err := e.WeakPoints(q, 500)
			if err != nil || w.Suppressed {
				t.Fatalf("weak points of the province: %+v %v", w, err)
			}
			listed := map[string]bool{}
			for _, u := range w.Units {
				listed[u.UnitID] = true
			}
			for _, id := range ids {
				if listed[id] == slices.Contains(tc.hidden, id) {
					t.Errorf("weak points unit rows: %s listed %v, hidden %v", id, listed[id], slices.Contains(tc.hidden, id))
				}
			}
		})
	}
}

// TestComplementarySuppressionUnitInTwoProvinces: a unit counted in two
// provinces (as collected, a merger can do that) is hidden as a whole when
// either part is hidden, or its total minus its visible part would show the
// hidden one.
func TestComplementarySuppressionUnitInTwoProvinces(t *testing.T) {
	fx := newDiscFixture(t)
	fx.put("01", "X", 3, 3, 2)
	fx.put("01", "Y", 3, 50, 3)
	fx.put("22", "X", 3, 50, 4)
	e := fx.e
	r, err := e.Index(Query{QuestionnaireID: "mini", Scope: Scope{UnitID: "X"}, Period: march()})
	checkReport(t, "X", r, err, true, 0)
	r, err = e.Index(Query{QuestionnaireID: "mini", Scope: Scope{UnitID: "Y"}, Period: march()})
	checkReport(t, "Y", r, err, true, 0) // complementary in 01
	r, err = e.Index(Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "22", UnitID: "X"}, Period: march()})
	checkReport(t, "X in 22", r, err, false, 50)
	rk, err := e.RankUnits(Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "01"}, Period: march()})
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, "rank units 01", rk, map[string]int{"X": 3, "Y": 50}, []string{"X", "Y"})
	series, err := e.Series(Query{QuestionnaireID: "mini", Scope: Scope{UnitID: "X"}}, march(), march())
	if err != nil {
		t.Fatal(err)
	}
	if pts := series.Points; !pts[0].Suppressed || pts[0].Value != nil {
		t.Errorf("series X: %+v", pts)
	}
}

func TestComplementarySuppressionProvinces(t *testing.T) {
	for _, tc := range []struct {
		name   string
		provs  map[string]int // province-level respondents in March
		hidden []string
	}{
		{"two provinces, one small", map[string]int{"01": 50, "22": 3}, []string{"01", "22"}},
		{"two small provinces protect each other", map[string]int{"01": 50, "22": 40, "04": 3, "11": 8}, []string{"04", "11"}},
		{"smallest visible province", map[string]int{"01": 50, "22": 40, "04": 3}, []string{"04", "22"}},
		{"no small province", map[string]int{"01": 50, "22": 40}, nil},
	} {
		for _, b := range []Boundaries{BoundariesAsCollected, BoundariesCurrent} {
			t.Run(fmt.Sprint(tc.name, "/", b), func(t *testing.T) {
				fx := newDiscFixture(t)
				codes := make([]string, 0, len(tc.provs))
				for c := range tc.provs {
					codes = append(codes, c)
				}
				sort.Strings(codes)
				var total int64
				for i, c := range codes {
					fx.put(c, "", 3, tc.provs[c], 2+i)
					total += int64(tc.provs[c])
				}
				e := fx.e
				rk, err := e.RankProvinces(Query{QuestionnaireID: "mini", Period: march(), Boundaries: b})
				if err != nil {
					t.Fatal(err)
				}
				checkRows(t, "rank provinces", rk, tc.provs, tc.hidden)
				nation, err := e.Index(Query{QuestionnaireID: "mini", Scope: Scope{Nation: true}, Period: march(), Boundaries: b})
				checkReport(t, "nation", nation, err, false, total)
				if !approx(rk.Pooled, Find(nation.Roots, SIPASNodeCode).Value) {
					t.Errorf("pooled %s, nation %s", fmtp(rk.Pooled), fmtp(Find(nation.Roots, SIPASNodeCode).Value))
				}
				if !approx(nation.NationalMean, rk.Mean) {
					t.Errorf("national mean %s, ranking mean %s", fmtp(nation.NationalMean), fmtp(rk.Mean))
				}
				for _, c := range codes {
					hidden := slices.Contains(tc.hidden, c)
					q := Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: c}, Period: march(), Boundaries: b}
					r, err := e.Index(q)
					checkReport(t, "index "+c, r, err, hidden, int64(tc.provs[c]))
					if !approx(r.NationalMean, rk.Mean) {
						t.Errorf("%s: national mean %s, ranking mean %s", c, fmtp(r.NationalMean), fmtp(rk.Mean))
					}
					w, err := e.WeakPoints(q, 500)
					if err != nil || w.Suppressed != hidden || (hidden && (w.Respondents != 0 || len(w.Lowest)+len(w.Drops)+len(w.Units) != 0)) {
						t.Errorf("weak points %s: suppressed %v respondents %d, %v", c, w.Suppressed, w.Respondents, err)
					}
					series, err := e.Series(q, march(), april())
					if err != nil {
						t.Fatal(err)
					}
					pts := series.Points
					if p := pts[0]; p.Suppressed != hidden || (p.Value == nil) != hidden || (hidden && p.Respondents != 0) {
						t.Errorf("series %s: %+v", c, p)
					}
				}
			})
		}
	}
}

// TestComplementarySuppressionSeries: a unit and a province hidden by the
// complementary rule in March only are hidden in the March point of a
// series, shown in April, and March is no previous period to April's
// rankings and weak points.
func TestComplementarySuppressionSeries(t *testing.T) {
	fx := newDiscFixture(t)
	// January: A, B and 22 have responses, so that a year minus April is
	// not March (consistent suppression hides January with March).
	fx.put("01", "A", 1, 40, 2)
	fx.put("01", "B", 1, 30, 3)
	fx.put("22", "", 1, 40, 4)
	// March: unit B (3) hides A; province 04 (3 + 0) hides 22.
	fx.put("01", "A", 3, 50, 2)
	fx.put("01", "B", 3, 3, 3)
	fx.put("22", "", 3, 40, 4)
	fx.put("04", "", 3, 3, 5)
	// April: everything large.
	fx.put("01", "A", 4, 50, 3)
	fx.put("01", "B", 4, 30, 4)
	fx.put("22", "", 4, 40, 5)
	e := fx.e
	for _, tc := range []struct {
		scope Scope
		march bool // hidden in March
	}{
		{Scope{UnitID: "A"}, true},
		{Scope{ProvinceCode: "01", UnitID: "A"}, true},
		{Scope{UnitID: "B"}, true},
		{Scope{ProvinceCode: "22"}, true},
		{Scope{ProvinceCode: "01"}, false},
		{Scope{Nation: true}, false},
	} {
		for _, per := range []struct{ from, to Period }{{march(), april()}, {Period{Year: 2026, Month: 2}, Period{Year: 2026, Month: 5}}} {
			series, err := e.Series(Query{QuestionnaireID: "mini", Scope: tc.scope}, per.from, per.to)
			if err != nil {
				t.Fatal(err)
			}
			pts := series.Points
			for _, p := range pts {
				hidden := p.Period == march() && tc.march
				empty := p.Period != march() && p.Period != april()
				if p.Suppressed != hidden || (p.Value == nil) != (hidden || empty) || (empty && (p.N != 0 || p.Insufficient)) || (hidden && (p.N != 0 || p.Respondents != 0)) {
					t.Errorf("series %+v %v: %+v", tc.scope, p.Period, p)
				}
				// Every point agrees with Index of its period.
				r, err := e.Index(Query{QuestionnaireID: "mini", Scope: tc.scope, Period: p.Period, NodeCode: SIPASNodeCode})
				if err != nil || r.Suppressed != p.Suppressed || r.Respondents != p.Respondents || !approx(r.Roots[0].Value, p.Value) {
					t.Errorf("series %+v %v: %+v, index %+v %v", tc.scope, p.Period, p, r, err)
				}
			}
		}
	}
	// April's rankings show nothing of the rows hidden in March.
	rk, err := e.RankUnits(Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "01"}, Period: april()})
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, "rank units April", rk, map[string]int{"A": 50, "B": 30}, nil)
	for _, r := range rk.Rows {
		if r.PreviousValue != nil || r.PreviousRank != 0 || r.RankChange != 0 || r.ValueChange != nil {
			t.Errorf("unit %s has March figures: %+v", r.ID, r)
		}
	}
	rp, err := e.RankProvinces(Query{QuestionnaireID: "mini", Period: april()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rp.Rows {
		if r.ID == "22" && (r.PreviousValue != nil || r.PreviousRank != 0 || r.Value == nil) {
			t.Errorf("province 22 April: %+v", r)
		}
		if r.ID == "01" && r.PreviousValue == nil {
			t.Errorf("province 01 April lacks its March value: %+v", r)
		}
	}
	w, err := e.WeakPoints(Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "22"}, Period: april()}, 500)
	if err != nil || w.Suppressed || len(w.Lowest) == 0 {
		t.Fatalf("weak points 22 April: %+v %v", w, err)
	}
	if len(w.Drops) != 0 {
		t.Errorf("weak points 22 April: drops against a hidden March: %+v", w.Drops)
	}
	for _, l := range w.Lowest {
		if l.PreviousValue != nil || l.Change != nil {
			t.Errorf("weak points 22 April: %s has a March value", l.Code)
		}
	}
	w, err = e.WeakPoints(Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "01"}, Period: april()}, 500)
	if err != nil || w.Suppressed || len(w.Lowest) == 0 || w.Lowest[0].PreviousValue == nil {
		t.Errorf("weak points 01 April should compare with March: %+v %v", w, err)
	}
}
