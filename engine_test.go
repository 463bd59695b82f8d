package sipas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// mapSource is an in-memory CellSource, as the store keeps its totals.
type mapSource struct {
	cells map[CellKey]*Tally
	calls int
}

func (s *mapSource) EachCell(qid string, from, to int, fn func(CellKey, *Tally)) {
	s.calls++
	for k, t := range s.cells {
		if k.QuestionnaireID == qid && from <= k.Month && k.Month <= to {
			fn(k, t)
		}
	}
}

// rec is a generated response with the province it is counted for.
type rec struct {
	r *Response
	p *Province
}

type engineFixture struct {
	q    *Questionnaire
	reg  *Registry
	src  *mapSource
	recs []rec
	e    *Engine
}

func loadTestRegistry(t testing.TB) *Registry {
	t.Helper()
	f, err := os.Open("questionnaires/provinces.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reg, err := LoadRegistry(f, "provinces.csv")
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// newEngineFixture generates responses over 2024..2026 for a few provinces,
// including the merged Lào Cai (old 10 + Yên Bái 15 → new 15) and Bắc Ninh
// (Bắc Giang 24 + old Bắc Ninh 27 → new 24), a small province (46, Huế,
// renamed on 2025-01-01) and a tiny one (02, suppressed), resolves them like
// ingestion does and counts them into cells with Tally.Add. Because 02 is
// below the disclosure threshold, the complementary rule hides the smallest
// visible province beside it (usually 46); 22 keeps at least three provinces
// ranked in every period tested.
func newEngineFixture(t testing.TB) *engineFixture {
	t.Helper()
	q := miniQuestionnaire()
	reg := loadTestRegistry(t)
	cat, err := NewCatalog(q)
	if err != nil {
		t.Fatal(err)
	}
	fx := &engineFixture{q: q, reg: reg, src: &mapSource{cells: map[CellKey]*Tally{}}}
	rng := rand.New(rand.NewPCG(7, 11))
	codes := []struct {
		code string
		w    float64
		pos  float64 // chance of a positive answer
	}{{"01", 0.186, 0.85}, {"22", 0.1, 0.8}, {"10", 0.15, 0.6}, {"15", 0.2, 0.7}, {"24", 0.15, 0.8}, {"27", 0.2, 0.75}, {"46", 0.012, 0.9}, {"02", 0.002, 0.5}}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, VietnamZone)
	span := time.Date(2027, 1, 1, 0, 0, 0, 0, VietnamZone).Sub(start)
	seen := make([]bool, len(q.Nodes))
	for i := 0; i < 6000; i++ {
		x := rng.Float64()
		c := codes[len(codes)-1]
		for _, cc := range codes {
			if x < cc.w {
				c = cc
				break
			}
			x -= cc.w
		}
		at := start.Add(time.Duration(rng.Int64N(int64(span))))
		p, _, err := reg.Resolve(c.code, at)
		if err != nil {
			t.Fatalf("resolve %s at %v: %v", c.code, at, err)
		}
		r := &Response{ID: fmt.Sprint(i), QuestionnaireID: q.ID, ProvinceCode: c.code, CollectedAt: at,
			Channel: Channels[rng.IntN(len(Channels))], Answers: map[string]int{}}
		if rng.IntN(2) == 0 {
			r.UnitID = fmt.Sprintf("U%s-%d", c.code, rng.IntN(3))
		}
		pos := c.pos + 0.1*math.Sin(float64(at.Month())) // seasonal drift, so periods differ
		if c.code == "15" && at.Year() == 2026 {
			pos += 0.25 // Yên Bái's improvement moves the new Lào Cai up the 2026 ranking
		}
		for _, it := range q.Items {
			switch y := rng.Float64(); {
			case y < 0.15: // not asked
			case y < 0.2:
				r.Answers[it.Code] = 8 + rng.IntN(2)
			default:
				var cands []int
				want := rng.Float64() < pos
				for _, sc := range it.Scale.Codes {
					if sc.Positive == want {
						cands = append(cands, sc.Code)
					}
				}
				r.Answers[it.Code] = cands[rng.IntN(len(cands))]
			}
		}
		fx.recs = append(fx.recs, rec{r, p})
		k := CellKey{QuestionnaireID: q.ID, ProvinceID: p.ID, Month: MonthOf(at), Channel: r.Channel}
		fx.add(k, r, seen)
		if r.UnitID != "" {
			k.UnitID = r.UnitID
			fx.add(k, r, seen)
		}
	}
	fx.e = &Engine{Catalog: cat, Registry: reg, Source: fx.src, Thresholds: Thresholds{MinSample: 40, Disclosure: 10}}
	return fx
}

func (fx *engineFixture) add(k CellKey, r *Response, seen []bool) {
	t := fx.src.cells[k]
	if t == nil {
		t = NewTally(fx.q)
		fx.src.cells[k] = t
	}
	t.Add(fx.q, r, seen)
}

// --- independent recomputation from the raw responses ---

func currentOf(p *Province) *Province {
	for p.Successor != nil {
		p = p.Successor
	}
	return p
}

// provKey is the province code a response counts for on boundaries b.
func provKey(x rec, b Boundaries) string {
	if b == BoundariesCurrent {
		return currentOf(x.p).Code
	}
	return x.p.Code
}

func (fx *engineFixture) sel(per Period, ch Channel, match func(rec) bool) []rec {
	var out []rec
	for _, x := range fx.recs {
		m := x.r.CollectedAt.In(VietnamZone)
		if m.Before(per.Start()) || !m.Before(per.End()) {
			continue
		}
		if ch != 0 && x.r.Channel != ch {
			continue
		}
		if match(x) {
			out = append(out, x)
		}
	}
	return out
}

type refFig struct {
	value *float64
	n     int64
}

func inScale(it *Item, a int) (valid, positive bool) {
	for _, sc := range it.Scale.Codes {
		if sc.Code == a {
			return true, sc.Positive
		}
	}
	return false, false
}

func under(it *Item, n *Node) bool {
	for m := it.Node; m != nil; m = m.Parent {
		if m == n {
			return true
		}
	}
	return false
}

// refFigures computes every figure straight from the responses, keyed like
// figureKey. Suppression is left to the caller.
func refFigures(q *Questionnaire, rs []rec, th Thresholds) map[string]refFig {
	out := map[string]refFig{}
	itemVal := map[*Item]*float64{}
	for _, it := range q.Items {
		var valid, pos int64
		for _, x := range rs {
			if a, ok := x.r.Answers[it.Code]; ok {
				v, p := inScale(it, a)
				if v {
					valid++
				}
				if p {
					pos++
				}
			}
		}
		var v *float64
		if valid > 0 {
			v = fp(100 * float64(pos) / float64(valid))
		}
		itemVal[it] = v
		out["i:"+it.Code] = refFig{v, valid}
	}
	var node func(n *Node) *float64
	node = func(n *Node) *float64 {
		var s, w float64
		for _, c := range n.Children {
			cv := node(c)
			wt := 1.0
			if n.Aggregation == AggregationWeightedMean {
				wt = c.Weight
			}
			if cv != nil {
				s += wt * *cv
				w += wt
			}
		}
		for _, it := range n.Items {
			if it.Role == RoleContent && itemVal[it] != nil {
				s += *itemVal[it]
				w++
			}
		}
		var nn int64
		for _, x := range rs {
			for _, it := range q.Items {
				if !under(it, n) {
					continue
				}
				if v, _ := inScale(it, x.r.Answers[it.Code]); v {
					nn++
					break
				}
			}
		}
		var v *float64
		if w > 0 && n.Aggregation != AggregationNone {
			v = fp(s / w)
		}
		out[fmt.Sprintf("n%d:%s", n.Kind, n.Code)] = refFig{v, nn}
		return v
	}
	for _, r := range q.Roots {
		node(r)
	}
	return out
}

// refHidden is the disclosure rule for one set of siblings (the provinces
// of the nation, or the units of one province), written from its
// definition independently of the engine: the siblings with 0 < n < k are
// hidden; while the hidden ones hold fewer than k respondents together
// (and at least one is hidden), the visible sibling with the fewest
// respondents (> 0; ties by id) is hidden too. It returns every hidden
// sibling, by either rule.
func refHidden(sizes map[string]int, k int64) map[string]bool {
	hidden := map[string]bool{}
	var held int64
	for id, n := range sizes {
		if n > 0 && int64(n) < k {
			hidden[id] = true
			held += int64(n)
		}
	}
	for len(hidden) > 0 && held < k {
		best := ""
		for id, n := range sizes {
			if n > 0 && !hidden[id] && (best == "" || n < sizes[best] || (n == sizes[best] && id < best)) {
				best = id
			}
		}
		if best == "" {
			break
		}
		hidden[best] = true
		held += int64(sizes[best])
	}
	return hidden
}

// refHiddenGroups applies refHidden to groups of responses.
func refHiddenGroups(groups map[string][]rec, k int64) map[string]bool {
	sizes := map[string]int{}
	for id, g := range groups {
		sizes[id] = len(g)
	}
	return refHidden(sizes, k)
}

// refProvinceHidden reports whether province code is hidden among the
// provinces (on boundaries b) in period per and channel ch.
func (fx *engineFixture) refProvinceHidden(code string, per Period, ch Channel, b Boundaries) bool {
	g := map[string][]rec{}
	for _, x := range fx.sel(per, ch, func(rec) bool { return true }) {
		g[provKey(x, b)] = append(g[provKey(x, b)], x)
	}
	return refHiddenGroups(g, fx.e.Thresholds.disclosure())[code]
}

// refUnitHidden reports whether unit id is hidden among the units of any
// province (on boundaries b; only province, when given) it has responses
// in, in period per and channel ch.
func (fx *engineFixture) refUnitHidden(id, province string, per Period, ch Channel, b Boundaries) bool {
	byProv := map[string]map[string][]rec{}
	for _, x := range fx.sel(per, ch, func(x rec) bool { return x.r.UnitID != "" }) {
		pc := provKey(x, b)
		if province != "" && pc != province {
			continue
		}
		if byProv[pc] == nil {
			byProv[pc] = map[string][]rec{}
		}
		byProv[pc][x.r.UnitID] = append(byProv[pc][x.r.UnitID], x)
	}
	for _, units := range byProv {
		if len(units[id]) > 0 && refHiddenGroups(units, fx.e.Thresholds.disclosure())[id] {
			return true
		}
	}
	return false
}

func refSIPAS(q *Questionnaire, rs []rec, th Thresholds) (v *float64, n int64, insufficient, suppressed bool) {
	f := refFigures(q, rs, th)["n2:SIPAS"]
	if n := int64(len(rs)); n > 0 && n < th.disclosure() {
		return nil, 0, false, true
	}
	return f.value, f.n, f.n > 0 && f.n < th.MinSample, false
}

// checkTrees compares engine trees with the reference figures.
func checkTrees(t *testing.T, label string, trees []*NodeValue, ref map[string]refFig, suppressed bool) {
	t.Helper()
	count := 0
	Walk(trees, func(v *NodeValue) {
		count++
		r, ok := ref[figureKey(v)]
		if !ok {
			t.Errorf("%s: %s not in reference", label, figureKey(v))
			return
		}
		if suppressed {
			if !v.Suppressed || v.Value != nil || v.N != 0 {
				t.Errorf("%s: %s not suppressed: %+v", label, v.Code, v)
			}
			return
		}
		if !approx(v.Value, r.value) || v.N != r.n {
			t.Errorf("%s: %s = %s (n %d), reference %s (n %d)", label, figureKey(v), fmtp(v.Value), v.N, fmtp(r.value), r.n)
		}
	})
	if count == 0 {
		t.Errorf("%s: empty trees", label)
	}
}

func TestEngineIndex(t *testing.T) {
	fx := newEngineFixture(t)
	th := fx.e.Thresholds
	y24, y25, y26 := Period{Year: 2024}, Period{Year: 2025}, Period{Year: 2026}
	for _, tc := range []struct {
		name     string
		q        Query
		match    func(rec) bool
		wantName string
		wantSupp bool
	}{
		{"nation 2025", Query{Scope: Scope{Nation: true}, Period: y25}, func(rec) bool { return true }, NationNameVi, false},
		{"15 as collected 2024 is Yên Bái", Query{Scope: Scope{ProvinceCode: "15"}, Period: y24},
			func(x rec) bool { return x.p.Code == "15" }, "Tỉnh Yên Bái", false},
		{"15 as collected 2025 is Yên Bái then Lào Cai", Query{Scope: Scope{ProvinceCode: "15"}, Period: y25, Boundaries: BoundariesAsCollected},
			func(x rec) bool { return x.p.Code == "15" }, "Tỉnh Lào Cai", false},
		{"15 as collected 2025-Q2 is Yên Bái", Query{Scope: Scope{ProvinceCode: "15"}, Period: Period{Year: 2025, Quarter: 2}},
			func(x rec) bool { return x.p.ID == "15@2008-08-01" }, "Tỉnh Yên Bái", false},
		{"15 as collected 2025-07 is new Lào Cai", Query{Scope: Scope{ProvinceCode: "15"}, Period: Period{Year: 2025, Month: 7}},
			func(x rec) bool { return x.p.ID == "15@2025-07-01" }, "Tỉnh Lào Cai", false},
		{"15 current 2024 folds old Lào Cai and Yên Bái", Query{Scope: Scope{ProvinceCode: "15"}, Period: y24, Boundaries: BoundariesCurrent},
			func(x rec) bool { return x.p.Code == "10" || x.p.Code == "15" }, "Tỉnh Lào Cai", false},
		{"15 current 2025", Query{Scope: Scope{ProvinceCode: "15"}, Period: y25, Boundaries: BoundariesCurrent},
			func(x rec) bool { return currentOf(x.p).Code == "15" }, "Tỉnh Lào Cai", false},
		{"10 as collected 2025-H1 months", Query{Scope: Scope{ProvinceCode: "10"}, Period: Period{Year: 2025, Quarter: 1}},
			func(x rec) bool { return x.p.Code == "10" }, "Tỉnh Lào Cai", false},
		{"10 as collected 2026: retired, no data (not suppressed)", Query{Scope: Scope{ProvinceCode: "10"}, Period: y26},
			func(x rec) bool { return false }, "Tỉnh Lào Cai", false},
		{"24 current 2026-Q1 kiosk", Query{Scope: Scope{ProvinceCode: "24"}, Period: Period{Year: 2026, Quarter: 1}, Boundaries: BoundariesCurrent, Channel: ChannelKiosk},
			func(x rec) bool { return currentOf(x.p).Code == "24" && x.r.Channel == ChannelKiosk }, "Tỉnh Bắc Ninh", false},
		{"24 as collected 2024 is Bắc Giang", Query{Scope: Scope{ProvinceCode: "24"}, Period: y24},
			func(x rec) bool { return x.p.Code == "24" }, "Tỉnh Bắc Giang", false},
		{"02 2024 suppressed", Query{Scope: Scope{ProvinceCode: "02"}, Period: y24},
			func(x rec) bool { return x.p.Code == "02" }, "Tỉnh Hà Giang", true},
		// 46 (27 respondents) is the smallest province beside the tiny 02
		// and 08 (2025: 02's successor), hidden together with them.
		{"46 2025 renamed, complementary suppression", Query{Scope: Scope{ProvinceCode: "46"}, Period: y25},
			func(x rec) bool { return x.p.Code == "46" }, "Thành phố Huế", true},
		{"unit", Query{Scope: Scope{UnitID: "U27-1"}, Period: y25},
			func(x rec) bool { return x.r.UnitID == "U27-1" }, "U27-1", false},
		{"unit within current province", Query{Scope: Scope{ProvinceCode: "15", UnitID: "U10-2"}, Period: y26, Boundaries: BoundariesCurrent},
			func(x rec) bool { return x.r.UnitID == "U10-2" && currentOf(x.p).Code == "15" }, "U10-2, Tỉnh Lào Cai", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.QuestionnaireID = "mini"
			rep, err := fx.e.Index(q)
			if err != nil {
				t.Fatal(err)
			}
			rs := fx.sel(q.Period, q.Channel, tc.match)
			b := q.Boundaries
			if b == 0 {
				b = BoundariesAsCollected
			}
			supp := len(rs) > 0 && int64(len(rs)) < th.disclosure()
			switch s := q.Scope; {
			case s.Nation:
			case s.UnitID != "":
				supp = supp || fx.refUnitHidden(s.UnitID, s.ProvinceCode, q.Period, q.Channel, b)
			default:
				supp = supp || fx.refProvinceHidden(s.ProvinceCode, q.Period, q.Channel, b)
			}
			if supp != tc.wantSupp {
				t.Fatalf("fixture: %d responses, suppressed %v, want %v", len(rs), supp, tc.wantSupp)
			}
			if rep.Suppressed != supp || (!supp && rep.Respondents != int64(len(rs))) || (supp && rep.Respondents != 0) {
				t.Errorf("respondents %d suppressed %v, reference %d", rep.Respondents, rep.Suppressed, len(rs))
			}
			if rep.ScopeName != tc.wantName {
				t.Errorf("scope name %q, want %q", rep.ScopeName, tc.wantName)
			}
			if rep.FormulaVersion != "mini.1" || rep.QuestionnaireID != "mini" {
				t.Errorf("report names %s %s", rep.QuestionnaireID, rep.FormulaVersion)
			}
			checkTrees(t, tc.name, rep.Roots, refFigures(fx.q, rs, th), supp)

			// National mean: unweighted over provinces on the same boundaries,
			// without the hidden ones.
			groups := map[string][]rec{}
			for _, x := range fx.sel(q.Period, q.Channel, func(rec) bool { return true }) {
				groups[provKey(x, b)] = append(groups[provKey(x, b)], x)
			}
			hidden := refHiddenGroups(groups, th.disclosure())
			var s float64
			var n int
			for code, g := range groups {
				v, _, ins, sup := refSIPAS(fx.q, g, th)
				if v != nil && !ins && !sup && !hidden[code] {
					s += *v
					n++
				}
			}
			var want *float64
			if n > 0 {
				want = fp(s / float64(n))
			}
			if !approx(rep.NationalMean, want) {
				t.Errorf("national mean %s, reference %s over %d provinces", fmtp(rep.NationalMean), fmtp(want), n)
			}
		})
	}
}

func TestEngineIndexNode(t *testing.T) {
	fx := newEngineFixture(t)
	for _, code := range []string{"CC", "S3", "DV"} {
		rep, err := fx.e.Index(Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "01"}, Period: Period{Year: 2026}, NodeCode: code})
		if err != nil {
			t.Fatal(err)
		}
		// "CC" is a satisfaction and an expectation node: satisfaction wins.
		if len(rep.Roots) != 1 || rep.Roots[0].Code != code || (code == "CC" && rep.Roots[0].Kind != KindSatisfaction) {
			t.Errorf("%s: roots %+v", code, rep.Roots)
		}
	}
}

func TestEngineErrors(t *testing.T) {
	fx := newEngineFixture(t)
	y := Period{Year: 2025}
	for _, tc := range []struct {
		name string
		q    Query
		kind ErrorKind
	}{
		{"unknown questionnaire", Query{QuestionnaireID: "sipas-1999", Scope: Scope{Nation: true}, Period: y}, KindFailedPrecondition},
		{"no questionnaire", Query{Scope: Scope{Nation: true}, Period: y}, KindInvalid},
		{"unknown province", Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "99"}, Period: y}, KindNotFound},
		{"retired province on current boundaries", Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "10"}, Period: y, Boundaries: BoundariesCurrent}, KindNotFound},
		{"bad period", Query{QuestionnaireID: "mini", Scope: Scope{Nation: true}, Period: Period{Year: 2025, Quarter: 1, Month: 2}}, KindInvalid},
		{"no scope", Query{QuestionnaireID: "mini", Period: y}, KindInvalid},
		{"nation and province", Query{QuestionnaireID: "mini", Scope: Scope{Nation: true, ProvinceCode: "01"}, Period: y}, KindInvalid},
		{"bad boundaries", Query{QuestionnaireID: "mini", Scope: Scope{Nation: true}, Period: y, Boundaries: 3}, KindInvalid},
		{"bad channel", Query{QuestionnaireID: "mini", Scope: Scope{Nation: true}, Period: y, Channel: 9}, KindInvalid},
		{"unknown node", Query{QuestionnaireID: "mini", Scope: Scope{Nation: true}, Period: y, NodeCode: "XX"}, KindInvalid},
	} {
		if _, err := fx.e.Index(tc.q); KindOf(err) != tc.kind || err == nil {
			t.Errorf("%s: err %v (kind %v), want %v", tc.name, err, KindOf(err), tc.kind)
		}
	}
	if _, err := fx.e.RankUnits(Query{QuestionnaireID: "mini", Scope: Scope{Nation: true}, Period: y}); KindOf(err) != KindInvalid {
		t.Errorf("rank units without province: %v", err)
	}
	if _, err := fx.e.RankProvinces(Query{QuestionnaireID: "nope", Period: y}); KindOf(err) != KindFailedPrecondition {
		t.Errorf("rank provinces unknown questionnaire: %v", err)
	}
}

// refRanking ranks groups of responses by the SIPAS figure, straight from
// the definition: rank = 1 + number of ranked rows with a larger value at
// two decimals.
// Groups hidden are suppressed: those listed in hidden, or when it is nil,
// those hidden by the rule for one set of siblings (refHidden).
func refRanking(fx *engineFixture, groups map[string][]rec, hidden map[string]bool) map[string]RankRow {
	th := fx.e.Thresholds
	if hidden == nil {
		hidden = refHiddenGroups(groups, th.disclosure())
	}
	out := map[string]RankRow{}
	for id, g := range groups {
		v, n, ins, sup := refSIPAS(fx.q, g, th)
		if hidden[id] {
			v, n, ins, sup = nil, 0, false, true
		}
		out[id] = RankRow{ID: id, Value: v, N: n, Insufficient: ins, Suppressed: sup}
	}
	for id, r := range out {
		if r.Value == nil || r.Insufficient || r.Suppressed {
			continue
		}
		r.Rank = 1
		for _, o := range out {
			if o.Value != nil && !o.Insufficient && !o.Suppressed && math.Round(*o.Value*100) > math.Round(*r.Value*100) {
				r.Rank++
			}
		}
		out[id] = r
	}
	return out
}

func TestEngineRankProvinces(t *testing.T) {
	fx := newEngineFixture(t)
	for _, tc := range []struct {
		per Period
		b   Boundaries
		ch  Channel
	}{
		{Period{Year: 2025}, BoundariesAsCollected, 0},
		{Period{Year: 2025}, BoundariesCurrent, 0},
		{Period{Year: 2026}, BoundariesCurrent, 0},
		{Period{Year: 2025, Quarter: 3}, BoundariesAsCollected, 0},
		{Period{Year: 2026}, BoundariesCurrent, ChannelField},
	} {
		t.Run(fmt.Sprint(tc.per, "/", tc.b, "/", tc.ch), func(t *testing.T) {
			calls := fx.src.calls
			rk, err := fx.e.RankProvinces(Query{QuestionnaireID: "mini", Period: tc.per, Boundaries: tc.b, Channel: tc.ch})
			if err != nil {
				t.Fatal(err)
			}
			if fx.src.calls-calls != 1 {
				t.Errorf("%d passes over the cells, want 1", fx.src.calls-calls)
			}
			group := func(per Period) map[string][]rec {
				g := map[string][]rec{}
				for _, x := range fx.sel(per, tc.ch, func(rec) bool { return true }) {
					g[provKey(x, tc.b)] = append(g[provKey(x, tc.b)], x)
				}
				if tc.b == BoundariesCurrent {
					for _, p := range fx.reg.All() {
						if p.ValidTo.IsZero() {
							g[p.Code] = g[p.Code]
						}
					}
				}
				return g
			}
			cur, prev := refRanking(fx, group(tc.per), nil), refRanking(fx, group(tc.per.Previous()), nil)
			if len(rk.Rows) != len(cur) {
				t.Fatalf("%d rows, reference %d", len(rk.Rows), len(cur))
			}
			if tc.b == BoundariesCurrent && len(rk.Rows) != 34 {
				t.Errorf("%d current provinces", len(rk.Rows))
			}
			if rk.PreviousPeriod != tc.per.Previous() || rk.NodeCode != "SIPAS" {
				t.Errorf("ranking header %+v", rk)
			}
			ranked, lastRank := 0, 1
			var sum float64
			for i, r := range rk.Rows {
				ref := cur[r.ID]
				if !approx(r.Value, ref.Value) || r.Rank != ref.Rank || r.N != ref.N || r.Insufficient != ref.Insufficient || r.Suppressed != ref.Suppressed {
					t.Errorf("row %d %s: %s rank %d n %d ins %v sup %v; reference %s rank %d n %d ins %v sup %v", i, r.ID,
						fmtp(r.Value), r.Rank, r.N, r.Insufficient, r.Suppressed, fmtp(ref.Value), ref.Rank, ref.N, ref.Insufficient, ref.Suppressed)
				}
				if r.Rank > 0 {
					ranked++
					sum += *r.Value
					if r.Rank < lastRank || ranked != i+1 {
						t.Errorf("row %d %s out of order", i, r.ID)
					}
					lastRank = r.Rank
				}
				if p, ok := prev[r.ID]; ok {
					if !approx(r.PreviousValue, p.Value) || r.PreviousRank != p.Rank {
						t.Errorf("%s previous %s/%d, reference %s/%d", r.ID, fmtp(r.PreviousValue), r.PreviousRank, fmtp(p.Value), p.Rank)
					}
					if r.Rank > 0 && p.Rank > 0 && r.RankChange != p.Rank-r.Rank {
						t.Errorf("%s rank change %d", r.ID, r.RankChange)
					}
					if r.Value != nil && p.Value != nil && !approx(r.ValueChange, fp(*r.Value-*p.Value)) {
						t.Errorf("%s value change %s", r.ID, fmtp(r.ValueChange))
					}
				} else if r.PreviousValue != nil || r.PreviousRank != 0 {
					t.Errorf("%s has a previous value without previous data", r.ID)
				}
			}
			if tc.per == (Period{Year: 2026}) && tc.ch == 0 {
				moved := false
				for _, r := range rk.Rows {
					moved = moved || r.RankChange != 0
				}
				if !moved {
					t.Error("fixture: no rank change in 2026")
				}
			}
			if ranked < 3 {
				t.Errorf("only %d ranked rows: fixture too small", ranked)
			}
			if !approx(rk.Mean, fp(sum/float64(ranked))) {
				t.Errorf("mean %s", fmtp(rk.Mean))
			}
			all := fx.sel(tc.per, tc.ch, func(rec) bool { return true })
			if pv, _, _, _ := refSIPAS(fx.q, all, fx.e.Thresholds); !approx(rk.Pooled, pv) {
				t.Errorf("pooled %s, reference %s", fmtp(rk.Pooled), fmtp(pv))
			}
		})
	}
}

func TestEngineRankAsCollectedMergedCode(t *testing.T) {
	// In 2025 as collected, code 15 counts Yên Bái (Jan–Jun) and the new
	// Lào Cai (Jul–Dec); code 10 (old Lào Cai) only Jan–Jun.
	fx := newEngineFixture(t)
	rk, err := fx.e.RankProvinces(Query{QuestionnaireID: "mini", Period: Period{Year: 2025}})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]RankRow{}
	for _, r := range rk.Rows {
		byID[r.ID] = r
	}
	n15 := len(fx.sel(Period{Year: 2025}, 0, func(x rec) bool { return x.p.ID == "15@2008-08-01" || x.p.ID == "15@2025-07-01" }))
	if n15 == 0 || byID["15"].Name != "Tỉnh Lào Cai" || byID["10"].Name != "Tỉnh Lào Cai" {
		t.Errorf("rows 15 %+v, 10 %+v", byID["15"], byID["10"])
	}
	if _, ok := byID["08"]; !ok {
		t.Errorf("code 08 (successor of 02 from 2025-07-01) missing: %v", byID)
	}
}

func TestEngineRankUnits(t *testing.T) {
	fx := newEngineFixture(t)
	for _, tc := range []struct {
		code string
		per  Period
		b    Boundaries
	}{
		{"15", Period{Year: 2026}, BoundariesCurrent},
		{"15", Period{Year: 2025}, BoundariesAsCollected},
		{"01", Period{Year: 2025, Quarter: 2}, BoundariesAsCollected},
	} {
		rk, err := fx.e.RankUnits(Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: tc.code}, Period: tc.per, Boundaries: tc.b})
		if err != nil {
			t.Fatal(err)
		}
		match := func(x rec) bool { return x.r.UnitID != "" && provKey(x, tc.b) == tc.code }
		group := func(per Period) map[string][]rec {
			g := map[string][]rec{}
			for _, x := range fx.sel(per, 0, match) {
				g[x.r.UnitID] = append(g[x.r.UnitID], x)
			}
			return g
		}
		// Units are also hidden by the splits of their own figures (a year
		// into quarters, all channels into each channel; see disclosure.go),
		// which the reference for one set of siblings does not know: those
		// rows are taken from the engine, for this period and (asked
		// separately, as the rule is the same for every query) the previous
		// one. TestNoRecoveryOnTheEngineFixture checks that they protect.
		prq := Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: tc.code}, Period: tc.per.Previous(), Boundaries: tc.b}
		prk, err := fx.e.RankUnits(prq)
		if err != nil {
			t.Fatal(err)
		}
		cur, prev := refRanking(fx, group(tc.per), hiddenRows(t, rk.Rows, group(tc.per))), refRanking(fx, group(tc.per.Previous()), hiddenRows(t, prk.Rows, group(tc.per.Previous())))
		if len(rk.Rows) != len(cur) || len(cur) == 0 {
			t.Fatalf("%v: %d rows, reference %d", tc, len(rk.Rows), len(cur))
		}
		for _, r := range rk.Rows {
			ref := cur[r.ID]
			if !approx(r.Value, ref.Value) || r.Rank != ref.Rank || r.Insufficient != ref.Insufficient || r.Suppressed != ref.Suppressed {
				t.Errorf("%v %s: %s rank %d; reference %s rank %d", tc, r.ID, fmtp(r.Value), r.Rank, fmtp(ref.Value), ref.Rank)
			}
			if p, ok := prev[r.ID]; ok && (!approx(r.PreviousValue, p.Value) || r.PreviousRank != p.Rank) {
				t.Errorf("%v %s previous %s/%d, reference %s/%d", tc, r.ID, fmtp(r.PreviousValue), r.PreviousRank, fmtp(p.Value), p.Rank)
			}
		}
		prov := fx.sel(tc.per, 0, func(x rec) bool { return provKey(x, tc.b) == tc.code })
		if pv, _, _, _ := refSIPAS(fx.q, prov, fx.e.Thresholds); !approx(rk.Pooled, pv) {
			t.Errorf("%v pooled %s, reference %s", tc, fmtp(rk.Pooled), fmtp(pv))
		}
	}
}

// hiddenRows returns the suppressed rows; every group below the
// disclosure threshold must be one.
func hiddenRows(t *testing.T, rows []RankRow, groups map[string][]rec) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range rows {
		if r.Suppressed {
			out[r.ID] = true
		}
	}
	for id, g := range groups {
		if len(g) < DefaultDisclosure && !out[id] {
			t.Errorf("%s: %d responses, not suppressed", id, len(g))
		}
	}
	return out
}

func TestEngineSeries(t *testing.T) {
	fx := newEngineFixture(t)
	for _, tc := range []struct {
		scope    Scope
		b        Boundaries
		from, to Period
		node     string
	}{
		{Scope{ProvinceCode: "15"}, BoundariesCurrent, Period{Year: 2024, Month: 11}, Period{Year: 2025, Month: 9}, ""},
		{Scope{ProvinceCode: "15"}, BoundariesAsCollected, Period{Year: 2024, Quarter: 1}, Period{Year: 2026, Quarter: 4}, "CS"},
		{Scope{Nation: true}, 0, Period{Year: 2024}, Period{Year: 2026}, "S7"},
		{Scope{ProvinceCode: "46"}, 0, Period{Year: 2025, Month: 1}, Period{Year: 2025, Month: 12}, ""},
	} {
		q := Query{QuestionnaireID: "mini", Scope: tc.scope, Boundaries: tc.b, NodeCode: tc.node}
		calls := fx.src.calls
		series, err := fx.e.Series(q, tc.from, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		pts := series.Points
		wantNode := tc.node
		if wantNode == "" {
			wantNode = SIPASNodeCode
		}
		if series.NodeCode != wantNode {
			t.Errorf("%v: series of node %q is named %q", tc.scope, tc.node, series.NodeCode)
		}
		if series.QuestionnaireID != "mini" || series.FormulaVersion != fx.q.FormulaVersion {
			t.Errorf("series names questionnaire %q formula %q", series.QuestionnaireID, series.FormulaVersion)
		}
		if fx.src.calls-calls != 1 {
			t.Errorf("%d passes over the cells, want 1", fx.src.calls-calls)
		}
		if len(pts) != PeriodsBetween(tc.from, tc.to) {
			t.Fatalf("%d points", len(pts))
		}
		per := tc.from
		for _, pt := range pts {
			if pt.Period != per {
				t.Fatalf("point %v, want %v", pt.Period, per)
			}
			q.Period = per
			if q.NodeCode == "" {
				q.NodeCode = SIPASNodeCode
			}
			rep, err := fx.e.Index(q)
			if err != nil {
				t.Fatal(err)
			}
			v := rep.Roots[0]
			if !approx(pt.Value, v.Value) || pt.N != v.N || pt.Suppressed != rep.Suppressed || pt.Respondents != rep.Respondents ||
				pt.Insufficient != v.Insufficient || !approx(pt.CILow, v.CILow) || !approx(pt.CIHigh, v.CIHigh) {
				t.Errorf("%v %v: series %+v, index %+v", tc.scope, per, pt, v)
			}
			per = per.Next()
		}
	}
	bad := []struct{ from, to Period }{
		{Period{Year: 2025}, Period{Year: 2025, Month: 3}},
		{Period{Year: 2026}, Period{Year: 2025}},
		{Period{Year: 2015, Month: 1}, Period{Year: 2025, Month: 1}}, // 121 months
	}
	for _, b := range bad {
		if _, err := fx.e.Series(Query{QuestionnaireID: "mini", Scope: Scope{Nation: true}}, b.from, b.to); KindOf(err) != KindInvalid {
			t.Errorf("series %v..%v: %v", b.from, b.to, err)
		}
	}
	if s, err := fx.e.Series(Query{QuestionnaireID: "mini", Scope: Scope{Nation: true}}, Period{Year: 2015, Month: 2}, Period{Year: 2025, Month: 1}); err != nil {
		t.Errorf("120 months: %v", err)
	} else if len(s.Points) != 120 {
		t.Errorf("120 months: %d points", len(s.Points))
	}
}

func TestEngineWeakPoints(t *testing.T) {
	fx := newEngineFixture(t)
	th := fx.e.Thresholds
	per := Period{Year: 2026}
	q := Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "24"}, Period: per, Boundaries: BoundariesCurrent}
	wp, err := fx.e.WeakPoints(q, 5)
	if err != nil {
		t.Fatal(err)
	}
	match := func(x rec) bool { return currentOf(x.p).Code == "24" }
	cur := refFigures(fx.q, fx.sel(per, 0, match), th)
	prev := refFigures(fx.q, fx.sel(per.Previous(), 0, match), th)
	nat := refFigures(fx.q, fx.sel(per, 0, func(rec) bool { return true }), th)
	key := func(w WeakPoint) string {
		if w.IsItem {
			return "i:" + w.Code
		}
		return fmt.Sprintf("n%d:%s", w.Kind, w.Code)
	}
	// Expected lowest: every usable satisfaction/assessment figure below the roots.
	var all []WeakPoint
	for k, r := range cur {
		if k == "n1:NX" || k == "n2:SIPAS" || r.value == nil || r.n < th.MinSample {
			continue
		}
		var kind Kind
		switch {
		case k[0] == 'n':
			kind = Kind(k[1] - '0')
		default:
			kind = fx.q.Item(k[2:]).Kind
		}
		if kind != KindSatisfaction && kind != KindAssessment {
			continue
		}
		all = append(all, WeakPoint{Code: k, Value: *r.value})
	}
	plain := func(k string) string { _, c, _ := strings.Cut(k, ":"); return c }
	sort.Slice(all, func(i, j int) bool { // ties by code, like the engine
		if all[i].Value != all[j].Value {
			return all[i].Value < all[j].Value
		}
		return plain(all[i].Code) < plain(all[j].Code)
	})
	if len(wp.Lowest) != 5 || len(all) < 5 {
		t.Fatalf("%d lowest, %d candidates", len(wp.Lowest), len(all))
	}
	for i, w := range wp.Lowest {
		if key(w) != all[i].Code || math.Abs(w.Value-all[i].Value) > 1e-9 {
			t.Errorf("lowest %d: %s %v, reference %s %v", i, key(w), w.Value, all[i].Code, all[i].Value)
		}
		if !approx(w.National, nat[key(w)].value) {
			t.Errorf("%s national %s, reference %s", key(w), fmtp(w.National), fmtp(nat[key(w)].value))
		}
		if p := prev[key(w)]; p.value != nil && p.n >= th.MinSample && !approx(w.PreviousValue, p.value) {
			t.Errorf("%s previous %s, reference %s", key(w), fmtp(w.PreviousValue), fmtp(p.value))
		}
	}
	for i, d := range wp.Drops {
		if d.Change == nil || *d.Change >= 0 || (i > 0 && *d.Change < *wp.Drops[i-1].Change) {
			t.Errorf("drop %d: %+v", i, d)
		}
		if !approx(d.Change, fp(*cur[key(d)].value-*prev[key(d)].value)) {
			t.Errorf("%s change %s", key(d), fmtp(d.Change))
		}
	}
	if len(wp.Units) == 0 {
		t.Fatal("no unit rows")
	}
	for i, u := range wp.Units {
		if u.UnitID == "" || (i > 0 && u.Value < wp.Units[i-1].Value) || !approx(u.Scope, cur[key(u)].value) {
			t.Errorf("unit row %d: %+v", i, u)
		}
		ref := refFigures(fx.q, fx.sel(per, 0, func(x rec) bool { return match(x) && x.r.UnitID == u.UnitID }), th)[key(u)]
		if math.Abs(u.Value-*ref.value) > 1e-9 || u.N != ref.n {
			t.Errorf("unit %s %s: %v, reference %v", u.UnitID, key(u), u.Value, *ref.value)
		}
	}
	// A suppressed scope lists nothing.
	wp, err = fx.e.WeakPoints(Query{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "02"}, Period: Period{Year: 2024}}, 5)
	if err != nil || !wp.Suppressed || len(wp.Lowest)+len(wp.Drops)+len(wp.Units) != 0 || wp.Respondents != 0 {
		t.Errorf("suppressed weak points %+v, %v", wp, err)
	}
}

// TestEngineCellsOnly checks that the engine's figures are a function of
// the aggregate cells alone (the engine has no other input): doubling every
// cell, as if every response had been counted twice, must double the
// respondents and every figure's n and leave every sufficient figure's value
// unchanged — for a province, the nation and a ranking. An engine that
// counted anything but the cells, or lost part of them, fails this; so
// would a fixture without data, which the test refuses.
func TestEngineCellsOnly(t *testing.T) {
	fx := newEngineFixture(t)
	queries := []Query{
		{QuestionnaireID: "mini", Scope: Scope{ProvinceCode: "15"}, Period: Period{Year: 2025}, Boundaries: BoundariesCurrent},
		{QuestionnaireID: "mini", Scope: Scope{Nation: true}, Period: Period{Year: 2026}},
	}
	rankQ := Query{QuestionnaireID: "mini", Period: Period{Year: 2025}, Boundaries: BoundariesCurrent}
	figures := func(r *Report) map[string]*NodeValue {
		m := map[string]*NodeValue{}
		Walk(r.Roots, func(v *NodeValue) { m[figureKey(v)] = v })
		return m
	}
	before := make([]*Report, len(queries))
	for i, q := range queries {
		r, err := fx.e.Index(q)
		if err != nil {
			t.Fatal(err)
		}
		if r.Suppressed || r.Respondents == 0 {
			t.Fatalf("%+v: the fixture has no figure to compare (respondents %d, suppressed %v)", q.Scope, r.Respondents, r.Suppressed)
		}
		before[i] = r
	}
	rankBefore, err := fx.e.RankProvinces(rankQ)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fx.src.cells {
		c.Merge(c)
	}
	for i, q := range queries {
		a := before[i]
		b, err := fx.e.Index(q)
		if err != nil {
			t.Fatal(err)
		}
		if b.Respondents != 2*a.Respondents {
			t.Errorf("%+v: respondents %d → %d, want doubled", q.Scope, a.Respondents, b.Respondents)
		}
		fa, fb := figures(a), figures(b)
		compared := 0
		for key, va := range fa {
			if va.Value == nil || va.Insufficient {
				continue
			}
			vb := fb[key]
			if vb == nil || !approx(va.Value, vb.Value) || vb.N != 2*va.N {
				t.Errorf("%+v %s: value %s n %d → %+v", q.Scope, key, fmtp(va.Value), va.N, vb)
			}
			compared++
		}
		if compared == 0 {
			t.Errorf("%+v: no sufficient figure to compare", q.Scope)
		}
	}
	rankAfter, err := fx.e.RankProvinces(rankQ)
	if err != nil {
		t.Fatal(err)
	}
	after := map[string]RankRow{}
	for _, r := range rankAfter.Rows {
		after[r.ID] = r
	}
	ranked := 0
	for _, ra := range rankBefore.Rows {
		if !ra.Ranked() {
			continue
		}
		ranked++
		if rb, ok := after[ra.ID]; !ok || !approx(ra.Value, rb.Value) || rb.N != 2*ra.N {
			t.Errorf("rank row %s: value %s n %d → %+v", ra.ID, fmtp(ra.Value), ra.N, rb)
		}
	}
	if ranked == 0 {
		t.Error("the ranking has no ranked province to compare")
	}
}

func BenchmarkRankProvincesYear(b *testing.B) {
	fx := newEngineFixture(b)
	q := Query{QuestionnaireID: "mini", Period: Period{Year: 2025}, Boundaries: BoundariesCurrent}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.e.RankProvinces(q); err != nil {
			b.Fatal(err)
		}
	}
}
