package client_test

import (
	"context"
	"math"
	"sort"
	"testing"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/questionnaires"
)

// TestTypedIndexReads reads the index of responses uploaded to a real
// sipasd through the typed client, and checks the domain values against a
// recount of the same responses with the domain's own formulas.
func TestTypedIndexReads(t *testing.T) {
	ctx := context.Background()
	d, cl := surveyor(t)
	items := fieldItems(40) // province 48, March 2026, field channel
	if sum, err := cl.Upload(ctx, client.UploadSlice(items), client.UploadOptions{}); err != nil || sum.Accepted != int64(len(items)) {
		t.Fatalf("upload: %+v %v", sum, err)
	}
	adm, err := client.Dial(client.Options{Server: d.Addr, Token: d.AdminToken()})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()

	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	qn := cat.Get("sipas-2023")
	tally := sipas.NewTally(qn)
	for _, it := range items {
		tally.Add(qn, it.Response, nil)
	}
	year := sipas.Period{Year: 2026}
	base := sipas.Query{QuestionnaireID: qn.ID, Period: year}

	// Report: the whole tree, as recounted.
	q := client.Query{Query: base}
	q.Scope = sipas.Scope{ProvinceCode: "48"}
	rep, err := adm.Report(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Respondents != 40 || rep.Suppressed || rep.Period != year || rep.Scope.ProvinceCode != "48" ||
		rep.Boundaries != sipas.BoundariesAsCollected || rep.Thresholds.EffectiveDisclosure() != sipas.DefaultDisclosure || rep.FormulaVersion != qn.FormulaVersion {
		t.Fatalf("report header: %+v", rep)
	}
	want := map[string]*sipas.NodeValue{}
	sipas.Walk(sipas.ComputeTree(qn, tally, rep.Thresholds), func(v *sipas.NodeValue) { want[v.Code+"/"+v.Kind.String()] = v })
	got := 0
	var walk func(ns []*sipas.NodeValue, kind sipas.Kind)
	walk = func(ns []*sipas.NodeValue, kind sipas.Kind) {
		for _, n := range ns {
			k := kind
			if k == sipas.KindUnspecified {
				k = kindOfRoot(qn, n.Code)
			}
			w := want[n.Code+"/"+k.String()]
			if w == nil {
				t.Errorf("report node %s (%s) not in the recount", n.Code, k)
				continue
			}
			got++
			if !sameValue(n.Value, w.Value) || n.N != w.N || n.IsItem != w.IsItem || n.Positive != w.Positive || n.Valid != w.Valid {
				t.Errorf("node %s: value %v n %d (%d/%d), recount %v n %d (%d/%d)", n.Code, deref(n.Value), n.N, n.Positive, n.Valid,
					deref(w.Value), w.N, w.Positive, w.Valid)
			}
			walk(n.Children, k)
		}
	}
	walk(rep.Roots, sipas.KindUnspecified)
	if got != len(want) {
		t.Errorf("report has %d figures, the recount %d", got, len(want))
	}
	sipasRoot := sipas.Find(sipas.ComputeTree(qn, tally, rep.Thresholds), sipas.SIPASNodeCode)

	// RankProvinces: 48 is the only province with data.
	rk, err := adm.RankProvinces(ctx, client.Query{Query: base})
	if err != nil {
		t.Fatal(err)
	}
	if rk.ScopeName != sipas.NationNameVi || rk.NodeCode != sipas.SIPASNodeCode || rk.Period != year || rk.PreviousPeriod != year.Previous() {
		t.Fatalf("ranking header: %+v", rk)
	}
	for _, r := range rk.Rows {
		if r.ID == "48" {
			if r.Rank != 1 || r.N != 40 || !sameValue(r.Value, sipasRoot.Value) {
				t.Errorf("ranking row 48: %+v, recount %v", r, deref(sipasRoot.Value))
			}
		} else if r.Rank != 0 || r.Value != nil {
			t.Errorf("ranking row %s without data: %+v", r.ID, r)
		}
	}

	// RankUnits: the responses have no unit, so no unit is ranked.
	q = client.Query{Query: base}
	q.Scope = sipas.Scope{ProvinceCode: "48"}
	ru, err := adm.RankUnits(ctx, q)
	if err != nil || ru.ScopeName != "48" || len(ru.Rows) != 0 {
		t.Fatalf("rank units: %+v %v", ru, err)
	}

	// Series: one point per month, asked range kept.
	from, to := sipas.Period{Year: 2026, Month: 1}, sipas.Period{Year: 2026, Month: 6}
	s, err := adm.Series(ctx, q, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if s.From != from || s.To != to || s.Scope.ProvinceCode != "48" || s.NodeCode != sipas.SIPASNodeCode || len(s.Points) != 6 {
		t.Fatalf("series: %+v", s)
	}
	for i, p := range s.Points {
		if p.Period != (sipas.Period{Year: 2026, Month: i + 1}) {
			t.Errorf("series point %d: period %v", i, p.Period)
		}
		if p.Period.Month != 3 && (p.N != 0 || p.Value != nil || p.Suppressed) {
			t.Errorf("series point %v without responses: %+v", p.Period, p)
		}
	}

	// WeakPoints: the lowest figures are the recount's, lowest first; the
	// channel is honoured (no kiosk responses: empty lists).
	q.Period, q.Channel = year, sipas.ChannelField
	w, err := adm.WeakPoints(ctx, q, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Lowest) != 5 || w.Channel != sipas.ChannelField || w.Thresholds.EffectiveDisclosure() != sipas.DefaultDisclosure {
		t.Fatalf("weak points: %+v", w)
	}
	if !sort.SliceIsSorted(w.Lowest, func(i, j int) bool { return w.Lowest[i].Value < w.Lowest[j].Value }) {
		t.Errorf("lowest not lowest first: %+v", w.Lowest)
	}
	for _, p := range w.Lowest {
		var rc *sipas.NodeValue
		for k, v := range want {
			if v.Code == p.Code && v.IsItem == p.IsItem && (v.Kind == sipas.KindSatisfaction || v.Kind == sipas.KindAssessment) {
				if rc != nil && !sameValue(rc.Value, v.Value) {
					t.Logf("code %s in two trees (%s)", p.Code, k)
				}
				rc = v
			}
		}
		if rc == nil || !sameValue(&p.Value, rc.Value) {
			t.Errorf("weak point %s = %v, recount %v", p.Code, p.Value, rc)
		}
	}
	q.Channel = sipas.ChannelKiosk
	wk, err := adm.WeakPoints(ctx, q, 5)
	if err != nil || len(wk.Lowest) != 0 || len(wk.Drops) != 0 || len(wk.Units) != 0 || wk.Channel != sipas.ChannelKiosk {
		t.Fatalf("weak points of the kiosk channel (no responses): %+v %v", wk, err)
	}

	// Counts: exact, per month and channel.
	counts, err := adm.Counts(ctx, sipas.CountQuery{Period: year})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, c := range counts {
		if c.Month != 202603 || c.Channel != sipas.ChannelField || c.ProvinceCode != "48" || c.QuestionnaireID != qn.ID || c.UnitID != "" {
			t.Errorf("count row %+v", c)
		}
		total += c.Responses
	}
	if total != 40 {
		t.Errorf("counts total %d, want 40 (%+v)", total, counts)
	}
}

// kindOfRoot is the kind of the formula root with the given code.
func kindOfRoot(q *sipas.Questionnaire, code string) sipas.Kind {
	for _, r := range q.Roots {
		if r.Code == code {
			return r.Kind
		}
	}
	return sipas.KindUnspecified
}

func sameValue(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) < 1e-9
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}
