package sipas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// Test scales: SAT5 (4 and 5 positive), YESNO (1 positive).
var (
	testSAT5  = &Scale{ID: "SAT5", Codes: []ScaleCode{{Code: 1}, {Code: 2}, {Code: 3}, {Code: 4, Positive: true}, {Code: 5, Positive: true}}}
	testYESNO = &Scale{ID: "YESNO", Codes: []ScaleCode{{Code: 1, Positive: true}, {Code: 2}}}
)

type testNode struct {
	code, parent string
	kind         Kind
	agg          Aggregation
	weight       float64
}

type testItem struct {
	code, node string
	kind       Kind
	role       Role
	scale      *Scale
}

// buildQuestionnaire lays out a questionnaire by hand the way the loader
// does: nodes parents first (Node.Index = position), items with Index, Node
// and consecutive Slot ranges (scale codes, then 8 and 9), Slots the total.
// Node and parent references are (kind, code).
func buildQuestionnaire(id string, nodes []testNode, items []testItem) *Questionnaire {
	q := &Questionnaire{ID: id, FormulaVersion: id + ".1", itemsByCode: map[string]*Item{}}
	byKey := map[string]*Node{}
	key := func(k Kind, c string) string { return fmt.Sprint(k, "/", c) }
	for _, ns := range nodes {
		w := ns.weight
		if w == 0 {
			w = 1
		}
		n := &Node{Code: ns.code, Kind: ns.kind, Aggregation: ns.agg, Weight: w, LabelVi: "vi " + ns.code, LabelEn: "en " + ns.code, Index: len(q.Nodes)}
		if ns.parent == "" {
			q.Roots = append(q.Roots, n)
		} else {
			p := byKey[key(ns.kind, ns.parent)]
			if p == nil {
				panic("parent after child: " + ns.code)
			}
			n.Parent = p
			p.Children = append(p.Children, n)
		}
		byKey[key(ns.kind, ns.code)] = n
		q.Nodes = append(q.Nodes, n)
	}
	for _, is := range items {
		n := byKey[key(is.kind, is.node)]
		if n == nil {
			panic("no node for item " + is.code)
		}
		it := &Item{Code: is.code, Kind: is.kind, Group: is.node, Node: n, Role: is.role, Scale: is.scale,
			LabelVi: "vi " + is.code, LabelEn: "en " + is.code, Index: len(q.Items), Slot: q.Slots}
		q.Slots += len(is.scale.Codes) + 2
		n.Items = append(n.Items, it)
		q.Items = append(q.Items, it)
		q.itemsByCode[it.Code] = it
	}
	return q
}

// miniQuestionnaire: an assessment tree without a value at the root, a
// satisfaction tree with overall items, a weighted mean mixing child nodes
// and a direct item, and an expectation tree of items only. Node code "CC"
// exists in two kinds on purpose.
func miniQuestionnaire() *Questionnaire {
	return buildQuestionnaire("mini", []testNode{
		{code: "NX", kind: KindAssessment, agg: AggregationNone},
		{code: "NX1", parent: "NX", kind: KindAssessment, agg: AggregationMean},
		{code: "SIPAS", kind: KindSatisfaction, agg: AggregationMean},
		{code: "CS", parent: "SIPAS", kind: KindSatisfaction, agg: AggregationMean},
		{code: "DV", parent: "SIPAS", kind: KindSatisfaction, agg: AggregationWeightedMean},
		{code: "CC", parent: "DV", kind: KindSatisfaction, agg: AggregationMean, weight: 2},
		{code: "TT", parent: "DV", kind: KindSatisfaction, agg: AggregationMean, weight: 1},
		{code: "MD", kind: KindExpectation, agg: AggregationNone},
		{code: "CC", parent: "MD", kind: KindExpectation, agg: AggregationNone},
	}, []testItem{
		{"A1", "NX1", KindAssessment, RoleContent, testYESNO},
		{"A2", "NX1", KindAssessment, RoleContent, testYESNO},
		{"S0", "CS", KindSatisfaction, RoleOverall, testSAT5},
		{"S1", "CS", KindSatisfaction, RoleContent, testSAT5},
		{"S2", "CS", KindSatisfaction, RoleContent, testSAT5},
		{"S3", "CC", KindSatisfaction, RoleContent, testSAT5},
		{"S4", "CC", KindSatisfaction, RoleContent, testSAT5},
		{"S5", "CC", KindSatisfaction, RoleOverall, testSAT5},
		{"S6", "TT", KindSatisfaction, RoleContent, testSAT5},
		{"S7", "DV", KindSatisfaction, RoleContent, testSAT5},
		{"E1", "CC", KindExpectation, RoleContent, testSAT5},
	})
}

// miniResponses are 10 responses whose figures are worked out by hand in
// TestComputeTree.
func miniResponses() []*Response {
	s1 := []int{4, 5, 4, 1, 2, 8, 9, 5, 5, 3} // valid 8, positive 5: 62.5
	var out []*Response
	for i := 0; i < 10; i++ {
		a := map[string]int{
			"S1": s1[i],
			"S2": 5, // 100
			"S0": 1, // overall, 0: never averaged
			"S4": 2, // 0
			"S5": 5, // overall, 100
			"S6": 8, // no valid answer: TT has no value
		}
		if i < 4 {
			a["S3"] = 4 // valid 4, 100
		}
		if i < 8 {
			a["S7"] = 4 // 8 of 10: 80
		} else {
			a["S7"] = 1
		}
		if i < 7 {
			a["A1"] = 1 // 70
		} else {
			a["A1"] = 2
		}
		if i == 0 {
			a["E1"] = 5
		}
		out = append(out, &Response{ID: fmt.Sprint(i), QuestionnaireID: "mini", Answers: a})
	}
	return out
}

func tallyOf(q *Questionnaire, rs []*Response) *Tally {
	t := NewTally(q)
	for _, r := range rs {
		t.Add(q, r, nil)
	}
	return t
}

func fp(v float64) *float64 { return &v }

func approx(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) < 1e-9
}

func fmtp(v *float64) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("%.6f", *v)
}

// findKind finds a figure by kind and code.
func findKind(trees []*NodeValue, kind Kind, code string) *NodeValue {
	var f *NodeValue
	Walk(trees, func(v *NodeValue) {
		if f == nil && v.Kind == kind && v.Code == code {
			f = v
		}
	})
	return f
}

func TestComputeTree(t *testing.T) {
	q := miniQuestionnaire()
	tl := tallyOf(q, miniResponses())
	trees := ComputeTree(q, tl, Thresholds{MinSample: 5})
	if len(trees) != 3 || trees[0].Code != "NX" || trees[1].Code != "SIPAS" || trees[2].Code != "MD" {
		t.Fatalf("roots %v", trees)
	}
	wil := func(p, n int64) (float64, float64) { l, h, _ := Wilson(p, n); return l, h }
	s1l, s1h := wil(5, 8)
	s2l, s2h := wil(10, 10)
	s3l, s3h := wil(4, 4)
	s4l, s4h := wil(0, 10)
	s7l, s7h := wil(8, 10)
	csl, csh := (s1l+s2l)/2, (s1h+s2h)/2
	ccl, cch := (s3l+s4l)/2, (s3h+s4h)/2
	dvl, dvh := (2*ccl+s7l)/3, (2*cch+s7h)/3
	a1l, a1h := wil(7, 10)
	for _, tc := range []struct {
		kind         Kind
		code         string
		value        *float64
		n            int64
		lo, hi       *float64
		insufficient bool
	}{
		{KindAssessment, "NX", nil, 10, nil, nil, false}, // aggregation none
		{KindAssessment, "NX1", fp(70), 10, fp(a1l), fp(a1h), false},
		{KindAssessment, "A1", fp(70), 10, fp(a1l), fp(a1h), false},
		{KindAssessment, "A2", nil, 0, nil, nil, false},
		{KindSatisfaction, "S1", fp(62.5), 8, fp(s1l), fp(s1h), false},
		{KindSatisfaction, "S0", fp(0), 10, fp(0), fp(27.75327998628892), false},
		{KindSatisfaction, "CS", fp(81.25), 10, fp(csl), fp(csh), false}, // S0 (overall) not averaged
		{KindSatisfaction, "S3", fp(100), 4, fp(s3l), fp(s3h), true},     // 4 < MinSample
		{KindSatisfaction, "CC", fp(50), 10, fp(ccl), fp(cch), false},    // S5 (overall) not averaged
		{KindSatisfaction, "S6", nil, 0, nil, nil, false},
		{KindSatisfaction, "TT", nil, 0, nil, nil, false}, // only 8s: no value, n 0, not flagged
		{KindSatisfaction, "DV", fp((2*50 + 80) / 3.0), 10, fp(dvl), fp(dvh), false},
		{KindSatisfaction, "SIPAS", fp((81.25 + 60) / 2), 10, fp((csl + dvl) / 2), fp((csh + dvh) / 2), false},
		{KindExpectation, "MD", nil, 1, nil, nil, true},
		{KindExpectation, "CC", nil, 1, nil, nil, true},
		{KindExpectation, "E1", fp(100), 1, fp(20.654931437723747), fp(100), true},
	} {
		v := findKind(trees, tc.kind, tc.code)
		if v == nil {
			t.Errorf("%v %s missing", tc.kind, tc.code)
			continue
		}
		if !approx(v.Value, tc.value) || v.N != tc.n || !approx(v.CILow, tc.lo) || !approx(v.CIHigh, tc.hi) ||
			v.Insufficient != tc.insufficient || v.Suppressed {
			t.Errorf("%s: value %s n %d ci [%s, %s] insufficient %v suppressed %v; want %s n %d [%s, %s] %v",
				tc.code, fmtp(v.Value), v.N, fmtp(v.CILow), fmtp(v.CIHigh), v.Insufficient, v.Suppressed,
				fmtp(tc.value), tc.n, fmtp(tc.lo), fmtp(tc.hi), tc.insufficient)
		}
	}
	s1 := findKind(trees, KindSatisfaction, "S1")
	if !s1.IsItem || s1.Role != RoleContent || s1.Valid != 8 || s1.Positive != 5 {
		t.Errorf("S1 = %+v", s1)
	}
	// Children: child nodes, then items in definition order (overall included).
	var codes []string
	for _, c := range findKind(trees, KindSatisfaction, "DV").Children {
		codes = append(codes, c.Code)
	}
	if fmt.Sprint(codes) != "[CC TT S7]" {
		t.Errorf("DV children %v", codes)
	}
	codes = nil
	for _, c := range findKind(trees, KindSatisfaction, "CS").Children {
		codes = append(codes, c.Code)
	}
	if fmt.Sprint(codes) != "[S0 S1 S2]" {
		t.Errorf("CS children %v", codes)
	}
}

func TestComputeTreeWeights(t *testing.T) {
	// A zero weight drops a child; a child without value drops out and the
	// remaining weights are renormalised.
	q := buildQuestionnaire("w", []testNode{
		{code: "R", kind: KindSatisfaction, agg: AggregationWeightedMean},
		{code: "A", parent: "R", kind: KindSatisfaction, agg: AggregationMean, weight: 3},
		{code: "B", parent: "R", kind: KindSatisfaction, agg: AggregationMean, weight: 1},
		{code: "C", parent: "R", kind: KindSatisfaction, agg: AggregationMean, weight: 5},
	}, []testItem{
		{"IA", "A", KindSatisfaction, RoleContent, testYESNO},
		{"IB", "B", KindSatisfaction, RoleContent, testYESNO},
		{"IC", "C", KindSatisfaction, RoleContent, testYESNO},
	})
	var rs []*Response
	for i := 0; i < 10; i++ {
		a := map[string]int{"IA": 1, "IB": 2} // A 100, B 0, C no value
		rs = append(rs, &Response{Answers: a})
	}
	v := ComputeTree(q, tallyOf(q, rs), Thresholds{})[0]
	if !approx(v.Value, fp(75)) {
		t.Fatalf("R = %s, want 75", fmtp(v.Value))
	}
}

func TestComputeTreeSuppressed(t *testing.T) {
	q := miniQuestionnaire()
	rs := miniResponses()
	for _, tc := range []struct {
		name       string
		th         Thresholds
		n          int
		suppressed bool
	}{
		{"default threshold, 10 respondents", Thresholds{}, 10, false},
		{"default threshold, 9 respondents", Thresholds{}, 9, true},
		{"threshold 11", Thresholds{Disclosure: 11}, 10, true},
		{"threshold 3", Thresholds{Disclosure: 3}, 3, false},
		{"no respondents: no data, not suppressed", Thresholds{Disclosure: 3}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trees := ComputeTree(q, tallyOf(q, rs[:tc.n]), tc.th)
			count := 0
			Walk(trees, func(v *NodeValue) {
				count++
				if v.Suppressed != tc.suppressed {
					t.Errorf("%s suppressed = %v", v.Code, v.Suppressed)
				}
				if tc.n == 0 && (v.Value != nil || v.CILow != nil || v.N != 0 || v.Valid != 0 || v.Insufficient) {
					t.Errorf("%s has figures without respondents: %+v", v.Code, v)
				}
				if tc.suppressed && (v.Value != nil || v.CILow != nil || v.CIHigh != nil || v.N != 0 || v.Positive != 0 || v.Valid != 0 || v.Insufficient) {
					t.Errorf("%s leaks: %+v", v.Code, v)
				}
			})
			if count != len(q.Nodes)+len(q.Items) {
				t.Errorf("walked %d figures, want %d", count, len(q.Nodes)+len(q.Items))
			}
		})
	}
}

func TestThresholdsValidate(t *testing.T) {
	for _, tc := range []struct {
		th Thresholds
		ok bool
	}{
		{Thresholds{}, true},
		{Thresholds{MinSample: 30, Disclosure: 10}, true},
		{Thresholds{Disclosure: 4}, false},
		{Thresholds{MinSample: -1}, false},
	} {
		if err := tc.th.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.th, err)
		}
	}
}

// TestComputeTreeSIPAS2023 computes the embedded sipas-2023 definition and
// checks it against the README §3 formulas written out by hand: P1..P9 and
// the five service elements are the means of their content items, CS the
// mean of P1..P9, DV the mean of the five elements, SIPAS = mean(CS, DV),
// NX1..NX8 the means of their items; overall items never count.
func TestComputeTreeSIPAS2023(t *testing.T) {
	fsys := os.DirFS("questionnaires")
	scales, err := LoadScales(fsys, "scales.csv")
	if err != nil {
		t.Fatal(err)
	}
	q, err := LoadQuestionnaire(fsys, "sipas-2023", scales, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var rs []*Response
	for i := 0; i < 200; i++ {
		a := map[string]int{}
		for _, it := range q.Items {
			if rng.IntN(5) == 0 {
				continue
			}
			codes := []int{8, 9}
			for _, sc := range it.Scale.Codes {
				codes = append(codes, sc.Code, sc.Code, sc.Code)
			}
			a[it.Code] = codes[rng.IntN(len(codes))]
		}
		rs = append(rs, &Response{Answers: a})
	}
	trees := ComputeTree(q, tallyOf(q, rs), Thresholds{})
	// Item values straight from the answers.
	item := map[string]float64{}
	for _, it := range q.Items {
		var v, p float64
		for _, r := range rs {
			if a, ok := r.Answers[it.Code]; ok {
				ok, pos := inScale(it, a)
				if ok {
					v++
				}
				if pos {
					p++
				}
			}
		}
		item[it.Code] = 100 * p / v
	}
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	group := func(kind Kind, g string) float64 {
		var xs []float64
		for _, it := range q.Items {
			if it.Kind == kind && it.Group == g && it.Role == RoleContent {
				xs = append(xs, item[it.Code])
			}
		}
		if len(xs) == 0 {
			t.Fatalf("no items in %s", g)
		}
		return mean(xs)
	}
	want := map[string]float64{}
	var ps, els []float64
	for i := 1; i <= 9; i++ {
		g := fmt.Sprintf("CS.P%d", i)
		want[g] = group(KindSatisfaction, g)
		ps = append(ps, want[g])
	}
	for _, g := range []string{"TC", "TT", "CC", "KQ", "PA"} {
		want[g] = group(KindSatisfaction, g)
		els = append(els, want[g])
	}
	want["CS"], want["DV"] = mean(ps), mean(els)
	want["SIPAS"] = (want["CS"] + want["DV"]) / 2
	for i := 1; i <= 8; i++ {
		g := fmt.Sprintf("NX%d", i)
		want["NX:"+g] = group(KindAssessment, g)
	}
	for code, w := range want {
		kind := KindSatisfaction
		if c, ok := strings.CutPrefix(code, "NX:"); ok {
			kind, code = KindAssessment, c
		}
		v := findKind(trees, kind, code)
		if v == nil || !approx(v.Value, fp(w)) {
			t.Errorf("%s: got %+v, want %v", code, v, w)
		}
	}
	if v := findKind(trees, KindAssessment, "NX"); v == nil || v.Value != nil {
		t.Errorf("NX root should have no value: %+v", v)
	}
}

// TestSplitRule checks the rule applied to one split (disclosure.go): a
// published whole whose hidden parts are fewer than two or hold fewer
// than k gets its smallest published parts hidden too (ties: the first).
func TestSplitRule(t *testing.T) {
	for _, tc := range []struct {
		name  string
		k     int64
		sizes []int64 // parts A, B, C, ... in order
		want  string  // complementary only
	}{
		{"one small, one large", 10, []int64{50, 3}, "A"},
		{"small ones hold k", 10, []int64{50, 40, 3, 8}, ""},
		{"small ones hold exactly k", 10, []int64{50, 3, 7}, ""},
		{"smallest visible", 10, []int64{50, 40, 3}, "B"},
		{"tie: the first", 10, []int64{40, 40, 3}, "A"},
		{"nothing small", 10, []int64{50, 10}, ""},
		{"zeros take no part", 10, []int64{50, 0, 0}, ""},
		{"zeros are not picked", 10, []int64{50, 0, 2}, "A"},
		{"threshold", 5, []int64{6, 4, 5}, "C"},
		{"empty", 10, nil, ""},
	} {
		l := &sdcLattice{k: tc.k, index: map[sdcPlace]int{}}
		whole := l.place(sdcPlace{kind: sdcNation})
		var parts []int
		var total int64
		for i, n := range tc.sizes {
			p := l.place(sdcPlace{kind: sdcCollected, code: string(rune('A' + i))})
			parts = append(parts, l.cell(p, 0, 0))
			total += n
		}
		l.n = make([]int64, len(l.places)*sdcTimes*sdcChannels)
		l.hidden = make([]bool, len(l.n))
		l.fixed = make([]bool, len(l.n))
		l.n[l.cell(whole, 0, 0)] = total
		for i, n := range tc.sizes {
			l.n[parts[i]] = n
		}
		l.primary(0)
		primary := append([]bool(nil), l.hidden...)
		l.apply(l.cell(whole, 0, 0), parts)
		got := ""
		for i, p := range parts {
			if l.hidden[p] && !primary[p] {
				got += string(rune('A' + i))
			}
		}
		if got != tc.want || l.hidden[l.cell(whole, 0, 0)] {
			t.Errorf("%s: hidden %q (whole %v), want %q", tc.name, got, l.hidden[l.cell(whole, 0, 0)], tc.want)
		}
	}
}
