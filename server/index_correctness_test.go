package server

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// This test checks the index engine end to end: generated responses go in
// through the real server (batch uploads and kiosk submissions), and every
// node of every unit is compared with a naive recomputation from the
// generated inputs themselves — not from the aggregates, not from responses
// read back through the store, and not with the engine's or the registry's
// code: the province each response is counted for comes from the test's
// own attribution table (attributeProvince).

// rawResponse is a generated response as the test sent it, with the
// province row it must be counted for.
type rawResponse struct {
	r *sipas.Response
	// provinceID is the row counted for ("15@2025-07-01"), code its code
	// (as collected) and current the code of the province it is part of today.
	provinceID, code, current string
}

// attributeProvince is the test's own attribution table for the province
// codes the test uses, written from the provinces file's history rather
// than computed with sipas.Registry: before 2025-07-01 a code counts for
// its 2008 row (46 for Huế's own row from 2025-01-01); from 2025-07-01 the
// merged codes 10, 27 and 49 count for the new 15, 24 and 48, and every
// other code for its new row. It returns the row id and the current code.
func attributeProvince(code string, at time.Time) (id, current string) {
	vn := sipas.VietnamZone
	mergedInto := map[string]string{"10": "15", "27": "24", "49": "48"}
	current = code
	if c, ok := mergedInto[code]; ok {
		current = c
	}
	switch day := at.In(vn); {
	case code == "46" && day.Before(time.Date(2025, 1, 1, 0, 0, 0, 0, vn)):
		return "46@2008-08-01", current
	case code == "46":
		return "46@2025-01-01", current
	case day.Before(time.Date(2025, 7, 1, 0, 0, 0, 0, vn)):
		return code + "@2008-08-01", current
	default:
		return current + "@2025-07-01", current
	}
}

// sent records a generated response as the oracle sees it.
func sent(r *sipasv1.Response, provinceCode, unitID string, ch sipas.Channel) rawResponse {
	answers := make(map[string]int, len(r.Answers))
	for code, a := range r.Answers {
		answers[code] = int(a)
	}
	at := r.CollectedAt.AsTime()
	id, current := attributeProvince(provinceCode, at)
	return rawResponse{
		r: &sipas.Response{ID: r.ResponseId, QuestionnaireID: r.QuestionnaireId, ProvinceCode: provinceCode, CollectedAt: at,
			Channel: ch, UnitID: unitID, Answers: answers},
		provinceID: id, code: id[:2], current: current,
	}
}

// naive computes one node's figures from raw responses.
type naive struct {
	q     *sipas.Questionnaire
	resps []rawResponse
	th    sipas.Thresholds
	// hidden: the unit is suppressed by the complementary rule, whatever
	// its own size.
	hidden bool
}

type naiveValue struct {
	value            *float64
	n, pos, valid    int64
	ciLow, ciHigh    *float64
	insufficient     bool
	suppressed       bool
	children         []*naiveValue
	code             string
	isItem, aggrNone bool
}

func isValid(it *sipas.Item, code int) (valid, positive bool) {
	for _, sc := range it.Scale.Codes {
		if sc.Code == code {
			return true, sc.Positive
		}
	}
	return false, false
}

func wilsonNaive(pos, n int64) (float64, float64) {
	z := 1.959963984540054
	p := float64(pos) / float64(n)
	nn := float64(n)
	den := 1 + z*z/nn
	centre := (p + z*z/(2*nn)) / den
	half := z * math.Sqrt(p*(1-p)/nn+z*z/(4*nn*nn)) / den
	return 100 * math.Max(0, centre-half), 100 * math.Min(1, centre+half)
}

func (nv *naive) item(it *sipas.Item) *naiveValue {
	out := &naiveValue{code: it.Code, isItem: true}
	for _, rr := range nv.resps {
		a, ok := rr.r.Answers[it.Code]
		if !ok {
			continue
		}
		if v, p := isValid(it, a); v {
			out.valid++
			if p {
				out.pos++
			}
		}
	}
	out.n = out.valid
	if out.valid > 0 {
		v := 100 * float64(out.pos) / float64(out.valid)
		out.value = &v
		lo, hi := wilsonNaive(out.pos, out.valid)
		out.ciLow, out.ciHigh = &lo, &hi
	}
	out.insufficient = out.n > 0 && out.n < nv.th.MinSample
	return out
}

func subtreeItems(n *sipas.Node) []*sipas.Item {
	items := append([]*sipas.Item{}, n.Items...)
	for _, c := range n.Children {
		items = append(items, subtreeItems(c)...)
	}
	return items
}

func (nv *naive) node(n *sipas.Node) *naiveValue {
	out := &naiveValue{code: n.Code, aggrNone: n.Aggregation == sipas.AggregationNone}
	var sum, wsum, lo, hi float64
	for _, c := range n.Children {
		cv := nv.node(c)
		out.children = append(out.children, cv)
		if cv.value != nil {
			w := 1.0
			if n.Aggregation == sipas.AggregationWeightedMean {
				w = c.Weight
			}
			sum += w * *cv.value
			lo += w * *cv.ciLow
			hi += w * *cv.ciHigh
			wsum += w
		}
	}
	for _, it := range n.Items {
		iv := nv.item(it)
		out.children = append(out.children, iv)
		if it.Role != sipas.RoleOverall && iv.value != nil {
			sum += *iv.value
			lo += *iv.ciLow
			hi += *iv.ciHigh
			wsum++
		}
	}
	if !out.aggrNone && wsum > 0 {
		v, l, h := sum/wsum, lo/wsum, hi/wsum
		out.value, out.ciLow, out.ciHigh = &v, &l, &h
	}
	items := subtreeItems(n)
	for _, rr := range nv.resps {
		for _, it := range items {
			if a, ok := rr.r.Answers[it.Code]; ok {
				if v, _ := isValid(it, a); v {
					out.n++
					break
				}
			}
		}
	}
	out.insufficient = out.n > 0 && out.n < nv.th.MinSample
	return out
}

func (nv *naive) trees() []*naiveValue {
	var out []*naiveValue
	for _, r := range nv.q.Roots {
		out = append(out, nv.node(r))
	}
	if n := int64(len(nv.resps)); (n > 0 && n < nv.th.Disclosure) || nv.hidden {
		var sup func(v *naiveValue)
		sup = func(v *naiveValue) {
			*v = naiveValue{code: v.code, isItem: v.isItem, suppressed: true, children: v.children}
			for _, c := range v.children {
				sup(c)
			}
		}
		for _, t := range out {
			sup(t)
		}
	}
	return out
}

func closeTo(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) <= 1e-9
}

func compareTree(t *testing.T, where string, want *naiveValue, got *sipasv1.IndexNode) int {
	t.Helper()
	checked := 1
	path := where + "/" + want.code
	if got.Code != want.code {
		t.Fatalf("%s: node %s, want %s", where, got.Code, want.code)
	}
	if got.N != want.n || got.Positive != want.pos || got.Valid != want.valid || got.Suppressed != want.suppressed || got.Insufficient != want.insufficient {
		t.Fatalf("%s: n/pos/valid/suppressed/insufficient %d/%d/%d/%v/%v, want %d/%d/%d/%v/%v", path,
			got.N, got.Positive, got.Valid, got.Suppressed, got.Insufficient, want.n, want.pos, want.valid, want.suppressed, want.insufficient)
	}
	if !closeTo(got.Value, want.value) || !closeTo(got.CiLow, want.ciLow) || !closeTo(got.CiHigh, want.ciHigh) {
		t.Fatalf("%s: value %v [%v, %v], want %v [%v, %v]", path, fv(got.Value), fv(got.CiLow), fv(got.CiHigh), fv(want.value), fv(want.ciLow), fv(want.ciHigh))
	}
	// The API lists child nodes then items; so does the naive tree.
	if len(got.Children) != len(want.children) {
		t.Fatalf("%s: %d children, want %d", path, len(got.Children), len(want.children))
	}
	for i := range want.children {
		checked += compareTree(t, path, want.children[i], got.Children[i])
	}
	return checked
}

func fv(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("%.12f", *p)
}

// genResponse makes a partial response with 8/9 and blanks.
func genResponse(rng *rand.Rand, q *sipas.Questionnaire, province string, at time.Time, ch sipasv1.Channel) *sipasv1.Response {
	answers := map[string]int32{}
	skip := rng.Float64() * 0.6
	for _, it := range q.Items {
		if rng.Float64() < skip {
			continue // not asked
		}
		switch x := rng.Float64(); {
		case x < 0.05:
			answers[it.Code] = 8
		case x < 0.08:
			answers[it.Code] = 9
		default:
			codes := it.Scale.Codes
			// Skew towards positive answers, as real surveys are.
			i := len(codes) - 1 - int(math.Floor(math.Pow(rng.Float64(), 1.7)*float64(len(codes))))
			answers[it.Code] = int32(codes[max(0, i)].Code)
		}
	}
	if len(answers) == 0 {
		answers[q.Items[0].Code] = int32(q.Items[0].Scale.Codes[0].Code)
	}
	return &sipasv1.Response{ResponseId: uuid.Must(uuid.NewV7()).String(), QuestionnaireId: q.ID, ProvinceCode: province,
		CollectedAt: timestamppb.New(at), Channel: ch, Answers: answers}
}

func TestIndexCorrectnessAgainstRawResponses(t *testing.T) {
	// The kiosks' responses are spread over 2026: the kiosk time window
	// (checked in TestKioskChannelAndTimeWindow) is opened wide here.
	e := newTestEnv(t, func(c *Config) {
		c.RatePerSecond = -1
		c.KioskMaxAge, c.KioskClockGrace = 20*365*24*time.Hour, 20*365*24*time.Hour
	})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	vn := sipas.VietnamZone
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true})
	units := map[string]string{"dn-1": "48", "dn-2": "48", "lc-1": "15", "hn-1": "01"}
	for u, p := range units {
		e.mustUnit(u, p)
		e.mustCredential("kiosk-"+u, &sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: u})
	}
	// Field data: old codes before the merger, old and new codes after it,
	// both questionnaire versions; some provinces kept below the thresholds.
	type plan struct {
		q         string
		provinces []string
		from, to  time.Time
		n         int
	}
	plans := []plan{
		{"sipas-2023", []string{"48", "01", "10", "15", "24", "27", "46", "49"}, time.Date(2023, 1, 1, 0, 0, 0, 0, vn), time.Date(2023, 12, 31, 0, 0, 0, 0, vn), 900},
		{"sipas-2023", []string{"48", "10", "15", "24", "46"}, time.Date(2025, 1, 1, 0, 0, 0, 0, vn), time.Date(2025, 12, 31, 0, 0, 0, 0, vn), 700},
		{"sipas-2023", []string{"48", "01", "15", "24", "79"}, time.Date(2026, 1, 1, 0, 0, 0, 0, vn), time.Date(2026, 10, 31, 0, 0, 0, 0, vn), 700},
		{"sipas-2023", []string{"96"}, time.Date(2026, 2, 1, 0, 0, 0, 0, vn), time.Date(2026, 3, 1, 0, 0, 0, 0, vn), 3}, // suppressed
		{"sipas-2017", []string{"48", "01", "15"}, time.Date(2023, 1, 1, 0, 0, 0, 0, vn), time.Date(2023, 12, 31, 0, 0, 0, 0, vn), 300},
	}
	st, err := e.survey.UploadBatch(e.as("surveyor"))
	if err != nil {
		t.Fatal(err)
	}
	var raw []rawResponse // the oracle's inputs, as generated
	line := int64(1)
	for _, p := range plans {
		q := e.cat.Get(p.q)
		for range p.n {
			prov := p.provinces[rng.IntN(len(p.provinces))]
			at := p.from.Add(time.Duration(rng.Int64N(int64(p.to.Sub(p.from)))))
			r := genResponse(rng, q, prov, at, sipasv1.Channel_CHANNEL_FIELD)
			raw = append(raw, sent(r, prov, "", sipas.ChannelField))
			if line%2 == 0 {
				r = pack(t, q, r) // half of the batch in the compact form
			}
			line++
			if err := st.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: line, Response: r}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	st.CloseSend()
	sum, res := drainUpload(t, st)
	if sum.Rejected != 0 {
		for _, r := range res {
			if r.Outcome == sipasv1.ItemOutcome_ITEM_OUTCOME_REJECTED {
				t.Fatalf("line %d rejected: %s %s", r.Line, r.Reason, r.Message)
			}
		}
	}
	// Kiosk data through SubmitResponse, with units.
	for u := range units {
		for range 60 {
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, vn).Add(time.Duration(rng.Int64N(int64(290 * 24 * time.Hour))))
			r := genResponse(rng, e.cat.Get("sipas-2023"), "", at, sipasv1.Channel_CHANNEL_KIOSK)
			raw = append(raw, sent(r, units[u], u, sipas.ChannelKiosk))
			if _, err := e.survey.SubmitResponse(e.as("kiosk-"+u), &sipasv1.SubmitResponseRequest{Response: r}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every response was stored, counted for the province of the table.
	// (A check of the store; the figures below are compared with the
	// generated inputs, not with what is read back here.)
	for _, rr := range raw {
		_, pid, _, err := e.store.GetResponse(ctx, rr.r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if pid != rr.provinceID {
			t.Fatalf("response %s (province %s, %v) stored for %s, want %s", rr.r.ID, rr.r.ProvinceCode, rr.r.CollectedAt, pid, rr.provinceID)
		}
		if e.reg.ByID(pid) == nil {
			t.Fatalf("the attribution table names %s, which is not a province row", pid)
		}
	}
	th := e.srv.cfg.Engine.Thresholds
	select1 := func(qid string, p sipas.Period, keep func(rr rawResponse) bool, ch sipas.Channel) []rawResponse {
		from, to := p.Months()
		var out []rawResponse
		for _, rr := range raw {
			m := sipas.MonthOf(rr.r.CollectedAt)
			if rr.r.QuestionnaireID == qid && m >= from && m <= to && (ch == 0 || rr.r.Channel == ch) && keep(rr) {
				out = append(out, rr)
			}
		}
		return out
	}
	// ref is a second engine over cells counted here from the generated
	// responses (not the store's aggregates): the complementary rule (see
	// sipas/disclosure.go; its own tests attack it) decides from the same
	// responses which figures it withholds, and the served figures must
	// agree with it.
	ref := &sipas.Engine{Catalog: e.cat, Registry: e.reg, Source: rawCells(raw, e.cat), Thresholds: th}
	// hiddenScope reports whether the reference withholds the scope of req
	// (the primary rule, fewer than k responses, is also the test's own).
	hiddenScope := func(req *sipasv1.GetIndexRequest) bool {
		q := sipas.Query{QuestionnaireID: req.QuestionnaireId, Period: periodFromProto(req.Period), Boundaries: sipas.Boundaries(req.Boundaries),
			Channel: sipas.Channel(req.Channel)}
		switch sc := req.Scope.Scope.(type) {
		case *sipasv1.Scope_ProvinceCode:
			q.Scope.ProvinceCode = sc.ProvinceCode
		case *sipasv1.Scope_UnitId:
			q.Scope.UnitID = sc.UnitId
		default:
			q.Scope.Nation = true
		}
		r, err := ref.Index(q)
		if err != nil {
			t.Fatal(err)
		}
		return r.Suppressed
	}
	checked, hiddenChecked := 0, 0
	check := func(name string, req *sipasv1.GetIndexRequest, keep func(rawResponse) bool) {
		p := periodFromProto(req.Period)
		sel := select1(req.QuestionnaireId, p, keep, sipas.Channel(req.Channel))
		gotResp, err := e.index.GetIndex(e.as("admin"), req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := gotResp.GetReport()
		hidden := hiddenScope(req)
		wantResp := int64(len(sel))
		if wantResp < th.Disclosure || hidden {
			wantResp = 0
		}
		if hidden && int64(len(sel)) >= th.Disclosure {
			hiddenChecked++ // hidden by the complementary rule only
		}
		if got.Respondents != wantResp {
			t.Fatalf("%s: respondents %d, want %d", name, got.Respondents, wantResp)
		}
		nv := &naive{q: e.cat.Get(req.QuestionnaireId), resps: sel, th: th, hidden: hidden}
		want := nv.trees()
		if len(got.Roots) != len(want) {
			t.Fatalf("%s: %d roots, want %d", name, len(got.Roots), len(want))
		}
		for i := range want {
			checked += compareTree(t, name, want[i], got.Roots[i])
		}
	}
	periods := []*sipasv1.Period{{Year: 2023}, {Year: 2025}, {Year: 2026}, {Year: 2025, Quarter: 3}, {Year: 2026, Month: 2}, {Year: 2023, Quarter: 1}}
	provinceScope := func(c string) *sipasv1.Scope {
		return &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: c}}
	}
	for _, qid := range []string{"sipas-2023", "sipas-2017"} {
		for _, per := range periods {
			for _, code := range []string{"48", "01", "15", "24", "46", "79", "96"} {
				check(fmt.Sprintf("%s %v as-collected %s", qid, per, code),
					&sipasv1.GetIndexRequest{QuestionnaireId: qid, Scope: provinceScope(code), Period: per, Boundaries: sipasv1.Boundaries_BOUNDARIES_AS_COLLECTED},
					func(rr rawResponse) bool { return rr.code == code })
				check(fmt.Sprintf("%s %v current %s", qid, per, code),
					&sipasv1.GetIndexRequest{QuestionnaireId: qid, Scope: provinceScope(code), Period: per, Boundaries: sipasv1.Boundaries_BOUNDARIES_CURRENT},
					func(rr rawResponse) bool { return rr.current == code })
			}
			check(fmt.Sprintf("%s %v nation", qid, per), &sipasv1.GetIndexRequest{QuestionnaireId: qid, Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_Nation{Nation: true}}, Period: per},
				func(rawResponse) bool { return true })
			for _, ch := range []sipasv1.Channel{sipasv1.Channel_CHANNEL_KIOSK, sipasv1.Channel_CHANNEL_FIELD} {
				check(fmt.Sprintf("%s %v nation %v", qid, per, ch), &sipasv1.GetIndexRequest{QuestionnaireId: qid, Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_Nation{Nation: true}}, Period: per, Channel: ch},
					func(rawResponse) bool { return true })
			}
			for u := range units {
				check(fmt.Sprintf("%s %v unit %s", qid, per, u), &sipasv1.GetIndexRequest{QuestionnaireId: qid, Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_UnitId{UnitId: u}}, Period: per},
					func(rr rawResponse) bool { return rr.r.UnitID == u })
			}
		}
	}
	// Rankings: competition ranks on 2-decimal values, unranked when
	// insufficient or suppressed.
	for _, rc := range []struct {
		per *sipasv1.Period
		b   sipasv1.Boundaries
	}{{&sipasv1.Period{Year: 2026}, sipasv1.Boundaries_BOUNDARIES_AS_COLLECTED}, {&sipasv1.Period{Year: 2025}, sipasv1.Boundaries_BOUNDARIES_CURRENT}, {&sipasv1.Period{Year: 2023}, sipasv1.Boundaries_BOUNDARIES_AS_COLLECTED}} {
		rkResp, err := e.index.RankProvinces(e.as("admin"), &sipasv1.RankProvincesRequest{QuestionnaireId: "sipas-2023", Period: rc.per, Boundaries: rc.b})
		if err != nil {
			t.Fatal(err)
		}
		rk := rkResp.GetRanking()
		p := periodFromProto(rc.per)
		groups := map[string][]rawResponse{}
		for _, rr := range select1("sipas-2023", p, func(rawResponse) bool { return true }, 0) {
			code := rr.code
			if rc.b == sipasv1.Boundaries_BOUNDARIES_CURRENT {
				code = rr.current
			}
			groups[code] = append(groups[code], rr)
		}
		type row struct {
			code string
			key  int64
		}
		sizes := map[string]int{}
		for code, rs := range groups {
			sizes[code] = len(rs)
		}
		refRk, err := ref.RankProvinces(sipas.Query{QuestionnaireID: "sipas-2023", Period: p, Boundaries: sipas.Boundaries(rc.b)})
		if err != nil {
			t.Fatal(err)
		}
		hidden := map[string]bool{}
		for _, r := range refRk.Rows {
			if r.Suppressed && sizes[r.ID] > 0 {
				hidden[r.ID] = true
			}
		}
		for code, n := range sizes {
			if n > 0 && int64(n) < th.Disclosure && !hidden[code] {
				t.Errorf("%v %v: province %s has %d responses, not suppressed by the reference", rc.per, rc.b, code, n)
			}
		}
		var ranked []row
		for code, rs := range groups {
			nv := &naive{q: e.cat.Get("sipas-2023"), resps: rs, th: th, hidden: hidden[code]}
			sipasNode := nv.trees()[1] // assessment, satisfaction, expectation
			if sipasNode.value != nil && !sipasNode.suppressed && !sipasNode.insufficient {
				ranked = append(ranked, row{code, int64(math.Round(*sipasNode.value * 100))})
			}
		}
		sort.Slice(ranked, func(i, j int) bool { return ranked[i].key > ranked[j].key })
		wantRank := map[string]int32{}
		for i, r := range ranked {
			wantRank[r.code] = int32(i + 1)
			if i > 0 && r.key == ranked[i-1].key {
				wantRank[r.code] = wantRank[ranked[i-1].code]
			}
		}
		gotRanked := 0
		for _, r := range rk.Rows {
			if r.Rank != wantRank[r.Id] {
				t.Errorf("%v %v: province %s rank %d, want %d", rc.per, rc.b, r.Id, r.Rank, wantRank[r.Id])
			}
			if r.Rank > 0 {
				gotRanked++
			}
		}
		if gotRanked != len(ranked) || len(ranked) < 3 {
			t.Errorf("%v %v: %d ranked, want %d (at least 3)", rc.per, rc.b, gotRanked, len(ranked))
		}
	}
	if hiddenChecked == 0 {
		t.Error("fixture: no scope hidden by the complementary rule")
	}
	t.Logf("%d responses; %d nodes compared with the raw recomputation; %d scopes hidden by the complementary rule", len(raw), checked, hiddenChecked)
}

// cellSource holds cells counted from raw responses.
type cellSource map[sipas.CellKey]*sipas.Tally

func (s cellSource) EachCell(qid string, from, to int, fn func(sipas.CellKey, *sipas.Tally)) {
	for k, t := range s {
		if k.QuestionnaireID == qid && k.Month >= from && k.Month <= to {
			fn(k, t)
		}
	}
}

// rawCells counts generated responses into cells the way the definition says: a
// province-level cell per (questionnaire, province counted for, month,
// channel), and a unit cell beside it for a response with a unit.
func rawCells(raw []rawResponse, cat *sipas.Catalog) cellSource {
	s := cellSource{}
	for _, rr := range raw {
		q := cat.Get(rr.r.QuestionnaireID)
		k := sipas.CellKey{QuestionnaireID: q.ID, ProvinceID: rr.provinceID, Month: sipas.MonthOf(rr.r.CollectedAt), Channel: rr.r.Channel}
		keys := []sipas.CellKey{k}
		if rr.r.UnitID != "" {
			k.UnitID = rr.r.UnitID
			keys = append(keys, k)
		}
		for _, k := range keys {
			t := s[k]
			if t == nil {
				t = sipas.NewTally(q)
				s[k] = t
			}
			t.Add(q, rr.r, make([]bool, len(q.Nodes)))
		}
	}
	return s
}
