package sipas

import (
	"fmt"
	"math/bits"
	"testing"
	"time"
)

// The differencing attacker (reliability.md, bad-input row 56; issue 16
// item 4): it asks the engine for every figure the API can publish about a
// province and its units — every scope (the nation, the province as
// collected and on current boundaries, each unit alone and within the
// province on both boundaries), every period (the year, its quarters and
// months), every channel filter (all and each channel) — and then tries
// every single figure and every difference of one or two published figures
// from a published figure that contains them. It knows which responses each
// figure counts (from the fixture's records, as an analyst knows the
// definitions), and reports any difference that isolates 0 < n < k
// responses: a suppressed group recovered by subtraction.

// attackRec is one response of the attack fixture.
type attackRec struct {
	id      *Province // counted for
	code    string    // as collected
	current string    // current boundaries
	month   int
	channel Channel
	unit    string
}

type attackFixture struct {
	t    *testing.T
	q    *Questionnaire
	reg  *Registry
	src  *mapSource
	e    *Engine
	seen []bool
	recs []attackRec
}

func newAttackFixture(t *testing.T) *attackFixture {
	t.Helper()
	q := miniQuestionnaire()
	cat, err := NewCatalog(q)
	if err != nil {
		t.Fatal(err)
	}
	reg := loadTestRegistry(t)
	fx := &attackFixture{t: t, q: q, reg: reg, src: &mapSource{cells: map[CellKey]*Tally{}}, seen: make([]bool, len(q.Nodes))}
	fx.e = &Engine{Catalog: cat, Registry: reg, Source: fx.src, Thresholds: Thresholds{Disclosure: 10}}
	return fx
}

// put adds n responses of province code (as collected), through unit (or
// none), in year y month m on channel ch. Answers vary with the record's
// number so that figures differ.
func (fx *attackFixture) put(code, unit string, y, m int, ch Channel, n int) {
	fx.t.Helper()
	at := time.Date(y, time.Month(m), 10, 12, 0, 0, 0, VietnamZone)
	p, _, err := fx.reg.Resolve(code, at)
	if err != nil {
		fx.t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		r := &Response{ID: fmt.Sprint(len(fx.recs)), QuestionnaireID: fx.q.ID, ProvinceCode: code, UnitID: unit, CollectedAt: at,
			Channel: ch, Answers: map[string]int{}}
		pos := (len(fx.recs)*7)%3 != 0
		for _, it := range fx.q.Items {
			for _, sc := range it.Scale.Codes {
				if sc.Positive == pos {
					r.Answers[it.Code] = sc.Code
					break
				}
			}
		}
		keys := []CellKey{{QuestionnaireID: fx.q.ID, ProvinceID: p.ID, Month: MonthOf(at), Channel: ch}}
		if unit != "" {
			keys = append(keys, CellKey{QuestionnaireID: fx.q.ID, ProvinceID: p.ID, Month: MonthOf(at), Channel: ch, UnitID: unit})
		}
		for _, k := range keys {
			tl := fx.src.cells[k]
			if tl == nil {
				tl = NewTally(fx.q)
				fx.src.cells[k] = tl
			}
			tl.Add(fx.q, r, fx.seen)
		}
		fx.recs = append(fx.recs, attackRec{id: p, code: p.Code, current: fx.reg.Current(p).Code, month: MonthOf(at), channel: ch, unit: unit})
	}
}

// attackFigure is one published figure: what it counts (a set of records)
// and the respondents the engine published for it.
type attackFigure struct {
	name        string
	set         []uint64 // bitset over fx.recs
	respondents int64
}

func (f *attackFigure) has(i int) bool { return f.set[i/64]&(1<<(i%64)) != 0 }

func (f *attackFigure) count() int64 {
	var n int
	for _, w := range f.set {
		n += bits.OnesCount64(w)
	}
	return int64(n)
}

// subsetOf reports whether f counts only records that g counts.
func (f *attackFigure) subsetOf(g *attackFigure) bool {
	for i, w := range f.set {
		if w&^g.set[i] != 0 {
			return false
		}
	}
	return true
}

func (f *attackFigure) disjoint(g *attackFigure) bool {
	for i, w := range f.set {
		if w&g.set[i] != 0 {
			return false
		}
	}
	return true
}

// attackScope is a scope an analyst can ask for, with the records it counts.
type attackScope struct {
	name   string
	scope  Scope
	b      Boundaries
	counts func(r attackRec) bool
}

// published asks the engine for every figure of the scopes over the periods
// and channels and returns those it published (not suppressed). Each figure
// is read through Index, and the same figure through RankUnits,
// RankProvinces and Series where they publish it; all must agree.
func (fx *attackFixture) published(scopes []attackScope, years []int, channels []Channel) []*attackFigure {
	t := fx.t
	t.Helper()
	words := (len(fx.recs) + 63) / 64
	var out []*attackFigure
	for _, y := range years {
		periods := []Period{{Year: y}}
		for qq := 1; qq <= 4; qq++ {
			periods = append(periods, Period{Year: y, Quarter: qq})
		}
		for m := 1; m <= 12; m++ {
			periods = append(periods, Period{Year: y, Month: m})
		}
		for _, per := range periods {
			from, to := per.Months()
			for _, ch := range channels {
				for _, sc := range scopes {
					q := Query{QuestionnaireID: fx.q.ID, Scope: sc.scope, Period: per, Boundaries: sc.b, Channel: ch}
					r, err := fx.e.Index(q)
					if err != nil {
						t.Fatalf("%s %v %v: %v", sc.name, per, ch, err)
					}
					f := &attackFigure{name: fmt.Sprintf("%s %v channel %v", sc.name, per, ch), set: make([]uint64, words)}
					for i, rec := range fx.recs {
						if rec.month >= from && rec.month <= to && (ch == ChannelUnspecified || rec.channel == ch) && sc.counts(rec) {
							f.set[i/64] |= 1 << (i % 64)
						}
					}
					if r.Suppressed {
						if r.Respondents != 0 || !allSuppressed(r.Roots) {
							t.Errorf("%s: suppressed but shows figures: %+v", f.name, r)
						}
						continue
					}
					f.respondents = r.Respondents
					if f.respondents != f.count() {
						t.Fatalf("%s: published %d respondents, the records say %d", f.name, f.respondents, f.count())
					}
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// attack returns every single figure, and every difference of a published
// figure and one or two disjoint published figures inside it, that isolates
// between 1 and k-1 responses.
func attack(figs []*attackFigure, k int64) []string {
	var found []string
	for _, a := range figs {
		if a.respondents > 0 && a.respondents < k {
			found = append(found, fmt.Sprintf("%s = %d", a.name, a.respondents))
		}
		var inside []*attackFigure
		for _, b := range figs {
			if b != a && b.respondents < a.respondents && b.subsetOf(a) {
				inside = append(inside, b)
			}
		}
		for i, b := range inside {
			if d := a.respondents - b.respondents; d > 0 && d < k {
				found = append(found, fmt.Sprintf("%s − %s = %d", a.name, b.name, d))
			}
			for _, c := range inside[i+1:] {
				if d := a.respondents - b.respondents - c.respondents; d > 0 && d < k && b.disjoint(c) {
					found = append(found, fmt.Sprintf("%s − %s − %s = %d", a.name, b.name, c.name, d))
				}
			}
		}
	}
	return found
}

// TestRow56NoRecoveryOfSuppressedFiguresBySubtraction is the regression test of
// issue 16 item 4 (reliability.md row 56): the known attacks — all channels
// minus one channel, a quarter minus its other months, the province minus
// its other units, current boundaries minus the provinces as collected —
// and every other single or pairwise difference of published figures
// recover nothing below k.
func TestRow56NoRecoveryOfSuppressedFiguresBySubtraction(t *testing.T) {
	fx := newAttackFixture(t)
	// Province 01 in 2026: units A, B, C, kiosks most months, field
	// surveys some months, responses without a unit.
	for m := 1; m <= 12; m++ {
		fx.put("01", "A", 2026, m, ChannelKiosk, 20+m)
		fx.put("01", "B", 2026, m, ChannelKiosk, 12)
		if m != 2 {
			fx.put("01", "C", 2026, m, ChannelKiosk, 15)
		}
	}
	fx.put("01", "B", 2026, 8, ChannelField, 3) // August: all channels − kiosk = B's 3 field responses
	fx.put("01", "C", 2026, 2, ChannelField, 4) // February: C's only responses
	fx.put("01", "", 2026, 5, ChannelField, 40)
	fx.put("01", "", 2026, 6, ChannelField, 2) // June: 2 field responses without a unit
	fx.put("01", "", 2026, 9, ChannelPost, 1)
	// Province 22 in 2026: a field survey in March and a straggler in
	// April (Q2 − May − June = April).
	fx.put("22", "", 2026, 3, ChannelField, 60)
	fx.put("22", "", 2026, 4, ChannelField, 3)
	fx.put("22", "", 2026, 5, ChannelField, 30)
	fx.put("22", "", 2026, 6, ChannelField, 25)
	// 2024, before the merger: Bắc Giang (24) and Bắc Ninh (27) are now
	// Bắc Ninh (24); old Bắc Ninh has 3 responses, so current 24 − as
	// collected 24 = 27.
	fx.put("24", "", 2024, 5, ChannelField, 80)
	fx.put("27", "", 2024, 5, ChannelField, 3)
	fx.put("01", "", 2024, 5, ChannelField, 50)
	fx.put("22", "", 2024, 5, ChannelField, 45)

	type sc = attackScope
	prov := func(code string, b Boundaries) sc {
		return sc{name: fmt.Sprintf("province %s (%v)", code, b), scope: Scope{ProvinceCode: code}, b: b, counts: func(r attackRec) bool {
			if b == BoundariesCurrent {
				return r.current == code
			}
			return r.code == code
		}}
	}
	scopes := []sc{{name: "nation", scope: Scope{Nation: true}, counts: func(attackRec) bool { return true }}}
	for _, code := range []string{"01", "22", "24", "27"} {
		for _, b := range []Boundaries{BoundariesAsCollected, BoundariesCurrent} {
			if b == BoundariesCurrent && code == "27" {
				continue // no longer a province
			}
			scopes = append(scopes, prov(code, b))
		}
	}
	for _, u := range []string{"A", "B", "C"} {
		scopes = append(scopes, sc{name: "unit " + u, scope: Scope{UnitID: u}, counts: func(r attackRec) bool { return r.unit == u }})
		for _, b := range []Boundaries{BoundariesAsCollected, BoundariesCurrent} {
			scopes = append(scopes, sc{name: fmt.Sprintf("unit %s in 01 (%v)", u, b), scope: Scope{ProvinceCode: "01", UnitID: u}, b: b,
				counts: func(r attackRec) bool { return r.unit == u && r.code == "01" }})
		}
	}
	channels := []Channel{ChannelUnspecified, ChannelKiosk, ChannelField, ChannelPost, ChannelOnline, ChannelPhone}
	figs := fx.published(scopes, []int{2024, 2026}, channels)
	fx.checkOtherViews([]int{2024, 2026}, channels)
	found := attack(figs, fx.e.Thresholds.disclosure())
	for i, f := range found {
		if i == 20 {
			t.Errorf("... and %d more", len(found)-20)
			break
		}
		t.Errorf("recovered: %s", f)
	}
	// The attack must have something to try: most figures published.
	if len(figs) < 300 {
		t.Errorf("only %d figures published", len(figs))
	}
	t.Logf("%d figures published, %d recoveries", len(figs), len(found))
}

// checkOtherViews checks that RankProvinces, RankUnits, Series and
// WeakPoints publish a figure exactly when Index does, so the attack on
// Index figures covers them.
func (fx *attackFixture) checkOtherViews(years []int, channels []Channel) {
	t := fx.t
	t.Helper()
	e := fx.e
	index := func(q Query) *Report {
		r, err := e.Index(q)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	value := func(r *Report) *float64 {
		if r.Suppressed {
			return nil
		}
		return Find(r.Roots, SIPASNodeCode).Value
	}
	for _, y := range years {
		for _, per := range []Period{{Year: y}, {Year: y, Quarter: 2}, {Year: y, Month: 8}, {Year: y, Month: 2}} {
			for _, ch := range channels {
				for _, b := range []Boundaries{BoundariesAsCollected, BoundariesCurrent} {
					base := Query{QuestionnaireID: fx.q.ID, Period: per, Boundaries: b, Channel: ch}
					rp, err := e.RankProvinces(base)
					if err != nil {
						t.Fatal(err)
					}
					nq := base
					nq.Scope = Scope{Nation: true}
					if !approx(rp.Pooled, value(index(nq))) {
						t.Errorf("%v %v %v: pooled %s, nation %s", per, ch, b, fmtp(rp.Pooled), fmtp(value(index(nq))))
					}
					for _, row := range rp.Rows {
						q := base
						q.Scope = Scope{ProvinceCode: row.ID}
						if r := index(q); r.Suppressed != row.Suppressed || !approx(row.Value, value(r)) {
							t.Errorf("%v %v %v: province %s row %+v, index suppressed %v", per, ch, b, row.ID, row, r.Suppressed)
						}
					}
					q := base
					q.Scope = Scope{ProvinceCode: "01"}
					ru, err := e.RankUnits(q)
					if err != nil {
						t.Fatal(err)
					}
					if !approx(ru.Pooled, value(index(q))) {
						t.Errorf("%v %v %v: units pooled %s, province %s", per, ch, b, fmtp(ru.Pooled), fmtp(value(index(q))))
					}
					for _, row := range ru.Rows {
						uq := q
						uq.Scope = Scope{ProvinceCode: "01", UnitID: row.ID}
						if r := index(uq); r.Suppressed != row.Suppressed || !approx(row.Value, value(r)) {
							t.Errorf("%v %v %v: unit %s row %+v, index suppressed %v", per, ch, b, row.ID, row, r.Suppressed)
						}
					}
					w, err := e.WeakPoints(q, 500)
					if err != nil {
						t.Fatal(err)
					}
					listed := map[string]bool{}
					for _, u := range w.Units {
						listed[u.UnitID] = true
					}
					for _, u := range []string{"A", "B", "C"} {
						uq := q
						uq.Scope = Scope{ProvinceCode: "01", UnitID: u}
						if r := index(uq); listed[u] && r.Suppressed {
							t.Errorf("%v %v %v: weak points list suppressed unit %s", per, ch, b, u)
						}
					}
					for _, sc := range []Scope{{Nation: true}, {ProvinceCode: "01"}, {UnitID: "B"}, {ProvinceCode: "01", UnitID: "C"}} {
						sq := base
						sq.Scope = sc
						series, err := e.Series(sq, per, per)
						if err != nil {
							t.Fatal(err)
						}
						pts := series.Points
						r := index(sq)
						if pts[0].Suppressed != r.Suppressed || pts[0].Respondents != r.Respondents {
							t.Errorf("%v %v %v %+v: series point %+v, index suppressed %v", per, ch, b, sc, pts[0], r.Suppressed)
						}
					}
				}
			}
		}
	}
}

// TestNoRecoveryOnTheEngineFixture runs the attacker on the engine tests'
// generated responses (every channel, three years across the 2025 merger,
// units with few responses a month): the merged Lào Cai (old 10 and Yên
// Bái 15 → new 15) and its units.
func TestNoRecoveryOnTheEngineFixture(t *testing.T) {
	efx := newEngineFixture(t)
	fx := &attackFixture{t: t, q: efx.q, reg: efx.reg, e: efx.e}
	for _, x := range efx.recs {
		fx.recs = append(fx.recs, attackRec{id: x.p, code: x.p.Code, current: efx.reg.Current(x.p).Code,
			month: MonthOf(x.r.CollectedAt), channel: x.r.Channel, unit: x.r.UnitID})
	}
	type sc = attackScope
	scopes := []sc{{name: "nation", scope: Scope{Nation: true}, counts: func(attackRec) bool { return true }}}
	for _, code := range []string{"10", "15"} {
		scopes = append(scopes, sc{name: "province " + code + " as collected", scope: Scope{ProvinceCode: code}, b: BoundariesAsCollected,
			counts: func(r attackRec) bool { return r.code == code }})
	}
	scopes = append(scopes, sc{name: "province 15 current", scope: Scope{ProvinceCode: "15"}, b: BoundariesCurrent,
		counts: func(r attackRec) bool { return r.current == "15" }})
	for _, u := range []string{"U10-0", "U10-1", "U10-2", "U15-0", "U15-1", "U15-2"} {
		scopes = append(scopes, sc{name: "unit " + u, scope: Scope{UnitID: u}, counts: func(r attackRec) bool { return r.unit == u }},
			sc{name: "unit " + u + " in 15 current", scope: Scope{ProvinceCode: "15", UnitID: u}, b: BoundariesCurrent,
				counts: func(r attackRec) bool { return r.unit == u && r.current == "15" }})
		for _, code := range []string{"10", "15"} {
			scopes = append(scopes, sc{name: "unit " + u + " in " + code + " as collected", scope: Scope{ProvinceCode: code, UnitID: u}, b: BoundariesAsCollected,
				counts: func(r attackRec) bool { return r.unit == u && r.code == code }})
		}
	}
	channels := append([]Channel{ChannelUnspecified}, Channels...)
	var total, published int
	for _, y := range []int{2025, 2026} {
		figs := fx.published(scopes, []int{y}, channels)
		published += len(figs)
		found := attack(figs, fx.e.Thresholds.disclosure())
		total += len(found)
		for i, f := range found {
			if i == 10 {
				t.Errorf("%d: ... and %d more", y, len(found)-10)
				break
			}
			t.Errorf("recovered: %s", f)
		}
	}
	if published < 200 {
		t.Errorf("only %d figures published", published)
	}
	t.Logf("%d figures published, %d recoveries", published, total)
}
