package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// TestFlaggedResponsesLeftOutOfIndices: flagged responses are stored with
// their flags (never lost), not counted in the aggregates, left out of an
// index by default with their number said, and counted when asked; a
// resend with other flags is a duplicate. The batch path carries flags too.
func TestFlaggedResponsesLeftOutOfIndices(t *testing.T) {
	e := newTestEnv(t, nil)
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, ProvinceCodes: []string{"48"}})
	at := time.Date(time.Now().Year(), time.Now().Month(), 1, 10, 0, 0, 0, time.UTC)
	if at.After(time.Now()) {
		at = time.Now().Add(-time.Hour)
	}
	var flaggedIDs []string
	for i := range 15 {
		r := serviceResponse(t, e.cat, "48", at)
		if i%5 == 0 { // 3 of 15
			r.Flags = []sipasv1.ResponseFlag{sipasv1.ResponseFlag_RESPONSE_FLAG_TOO_FAST, sipasv1.ResponseFlag_RESPONSE_FLAG_IDENTICAL_RUN}
			flaggedIDs = append(flaggedIDs, r.ResponseId)
		}
		if _, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: r}); err != nil {
			t.Fatal(err)
		}
	}
	// One more flagged, through the batch path.
	up, err := e.survey.UploadBatch(e.as("surveyor"))
	if err != nil {
		t.Fatal(err)
	}
	br := serviceResponse(t, e.cat, "48", at)
	br.Flags = []sipasv1.ResponseFlag{sipasv1.ResponseFlag_RESPONSE_FLAG_TOO_SOON}
	if err := up.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{{Line: 2, Response: br}}}); err != nil {
		t.Fatal(err)
	}
	up.CloseSend()
	for {
		m, err := up.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetSummary() != nil {
			if m.GetSummary().Accepted != 1 {
				t.Fatalf("batch summary %v", m.GetSummary())
			}
			break
		}
	}
	// A resend of a flagged response without its flags is a duplicate.
	got, _, _, err := e.store.GetResponse(context.Background(), flaggedIDs[0])
	if err != nil || got.Flags != sipas.FlagTooFast|sipas.FlagIdenticalRun {
		t.Fatalf("stored flags %v (%v)", got.Flags, err)
	}
	again := serviceResponse(t, e.cat, "48", at)
	again.ResponseId = flaggedIDs[0]
	if resp, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: again}); err != nil || !resp.Duplicate {
		t.Fatalf("resend without flags: %v %v", resp, err)
	}
	// An unknown flag is refused.
	bad := serviceResponse(t, e.cat, "48", at)
	bad.Flags = []sipasv1.ResponseFlag{77}
	if _, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: bad}); err == nil {
		t.Error("an unknown flag was accepted")
	}

	period := &sipasv1.Period{Year: int32(at.Year()), Month: int32(at.Month())}
	get := func(include bool) *sipasv1.IndexReport {
		resp, err := e.index.GetIndex(e.as("admin"), &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023",
			Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: "48"}}, Period: period, IncludeFlagged: include})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Report
	}
	def := get(false)
	if def.Respondents != 12 || def.FlaggedExcluded != 4 || def.FlaggedIncluded != 0 {
		t.Errorf("default: respondents %d, flagged excluded %d, included %d; want 12, 4, 0", def.Respondents, def.FlaggedExcluded, def.FlaggedIncluded)
	}
	all := get(true)
	if all.Respondents != 16 || all.FlaggedIncluded != 4 || all.FlaggedExcluded != 0 {
		t.Errorf("include_flagged: respondents %d, flagged included %d, excluded %d; want 16, 4, 0", all.Respondents, all.FlaggedIncluded, all.FlaggedExcluded)
	}
	if n := e.countResponses(); n != 16 {
		t.Errorf("stored %d responses, want 16 (flagged ones are kept)", n)
	}
	// Memory, checkpoint + replay and a recount agree: none counts flagged ones.
	if err := e.store.CheckAggregates(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestWorkingTimeBetween: silence is measured in working time only
// (Monday–Saturday, 07:00–17:00 Vietnam time).
func TestWorkingTimeBetween(t *testing.T) {
	vn := time.FixedZone("ICT", 7*3600)
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, vn) } // 2026-11-28 is a Saturday
	for _, c := range []struct {
		from, to time.Time
		want     time.Duration
	}{
		{at(23, 9, 0), at(23, 11, 30), 150 * time.Minute},        // Monday morning
		{at(23, 16, 0), at(24, 8, 0), 2 * time.Hour},             // overnight: 16–17 and 07–08
		{at(28, 16, 0), at(30, 7, 30), 90 * time.Minute},         // Saturday to Monday: Sunday does not count
		{at(29, 9, 0), at(29, 15, 0), 0},                         // all Sunday
		{at(23, 5, 0), at(23, 6, 59), 0},                         // before opening
		{at(23, 12, 0), at(23, 10, 0), 0},                        // reversed
		{at(23, 0, 0).UTC(), at(24, 0, 0).UTC(), 10 * time.Hour}, // zones do not matter
		{at(23, 7, 0), at(30, 7, 0), 6 * 10 * time.Hour},         // a whole week
	} {
		if got := WorkingTimeBetween(c.from, c.to); got != c.want {
			t.Errorf("WorkingTimeBetween(%v, %v) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	// A kiosk that reported at 16:30 on Saturday is not silent at 08:00 on
	// Monday (1 h 30 of working time), but is at 09:31.
	hb := at(28, 16, 30)
	if WorkingTimeBetween(hb, at(30, 8, 0)) > SilentAfter || WorkingTimeBetween(hb, at(30, 9, 31)) <= SilentAfter {
		t.Error("silence across the weekend is measured wrongly")
	}
}

// TestFlaggedLeftOutOfRankingsSeriesAndWeakPoints: rankings of provinces
// and units, series and weak points leave flagged responses out by default
// and say how many they left out; include_flagged counts them, in the
// figures and in the count.
func TestFlaggedLeftOutOfRankingsSeriesAndWeakPoints(t *testing.T) {
	e := newTestEnv(t, nil)
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, ProvinceCodes: []string{"48", "01"}})
	e.mustUnit("dn-1", "48")
	at := time.Date(time.Now().Year(), time.Now().Month(), 1, 10, 0, 0, 0, time.UTC)
	if at.After(time.Now()) {
		at = time.Now().Add(-time.Hour)
	}
	for i := range 16 { // province 48, unit dn-1: 12 plain, 4 flagged
		r := serviceResponse(t, e.cat, "48", at)
		r.UnitId = "dn-1"
		if i%4 == 0 {
			r.Flags = []sipasv1.ResponseFlag{sipasv1.ResponseFlag_RESPONSE_FLAG_TOO_SOON}
		}
		if _, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: r}); err != nil {
			t.Fatal(err)
		}
	}
	for range 12 { // province 01: none flagged
		if _, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: serviceResponse(t, e.cat, "01", at)}); err != nil {
			t.Fatal(err)
		}
	}
	period := &sipasv1.Period{Year: int32(at.Year()), Month: int32(at.Month())}
	const qid = "sipas-2023"
	rowN := func(r *sipasv1.Ranking, id string) int64 {
		for _, row := range r.Rows {
			if row.Id == id {
				return row.N
			}
		}
		t.Fatalf("no row %s in %v", id, r.Rows)
		return 0
	}
	type counts struct{ n, excluded, included int64 }
	check := func(what string, got, want counts) {
		t.Helper()
		if got != want {
			t.Errorf("%s: n %d, flagged excluded %d, included %d; want %d, %d, %d", what, got.n, got.excluded, got.included, want.n, want.excluded, want.included)
		}
	}
	for _, include := range []bool{false, true} {
		want := counts{12, 4, 0}
		if include {
			want = counts{16, 0, 4}
		}
		rp, err := e.index.RankProvinces(e.as("admin"), &sipasv1.RankProvincesRequest{QuestionnaireId: qid, Period: period, IncludeFlagged: include})
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("RankProvinces include=%v", include), counts{rowN(rp.Ranking, "48"), rp.Ranking.FlaggedExcluded, rp.Ranking.FlaggedIncluded}, want)
		if n := rowN(rp.Ranking, "01"); n != 12 {
			t.Errorf("RankProvinces include=%v: province 01 n %d, want 12", include, n)
		}
		ru, err := e.index.RankUnits(e.as("admin"), &sipasv1.RankUnitsRequest{QuestionnaireId: qid, ProvinceCode: "48", Period: period, IncludeFlagged: include})
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("RankUnits include=%v", include), counts{rowN(ru.Ranking, "dn-1"), ru.Ranking.FlaggedExcluded, ru.Ranking.FlaggedIncluded}, want)
		se, err := e.index.GetSeries(e.as("admin"), &sipasv1.GetSeriesRequest{QuestionnaireId: qid,
			Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: "48"}}, From: period, To: period, IncludeFlagged: include})
		if err != nil {
			t.Fatal(err)
		}
		if len(se.Series.Points) != 1 {
			t.Fatalf("series has %d points, want 1", len(se.Series.Points))
		}
		if se.Series.NodeCode != sipas.SIPASNodeCode || se.Series.FormulaVersion == "" {
			t.Errorf("series names node %q, formula version %q", se.Series.NodeCode, se.Series.FormulaVersion)
		}
		p := se.Series.Points[0]
		check(fmt.Sprintf("GetSeries include=%v", include), counts{p.N, p.FlaggedExcluded, p.FlaggedIncluded}, want)
		wp, err := e.index.GetWeakPoints(e.as("admin"), &sipasv1.GetWeakPointsRequest{QuestionnaireId: qid, ProvinceCode: "48", Period: period, IncludeFlagged: include})
		if err != nil {
			t.Fatal(err)
		}
		var itemN int64
		for _, w := range wp.WeakPoints.Lowest {
			if w.Level == "item" {
				itemN = w.N
				break
			}
		}
		check(fmt.Sprintf("GetWeakPoints include=%v", include), counts{itemN, wp.WeakPoints.FlaggedExcluded, wp.WeakPoints.FlaggedIncluded}, want)
	}
}
