package server

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// TestAdminSeesTrueSmallCounts (issue 16 item 4): a new kiosk's 3
// responses are below the disclosure threshold, so every index figure of
// its unit is suppressed, for admins as for analysts; an admin confirms
// they arrived with CountResponses, which gives exact counts per
// province, unit, month and channel (and the responses without a unit).
// Analysts, surveyors and kiosks cannot call it.
func TestAdminSeesTrueSmallCounts(t *testing.T) {
	e := newTestEnv(t, nil)
	e.mustUnit("dn-new", "48")
	e.mustCredential("kiosk-new", &sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-new"})
	e.mustCredential("analyst", &sipasv1.Credential{Role: sipasv1.Role_ROLE_ANALYST, AllProvinces: true})
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true})
	now := time.Now().In(time.FixedZone("ICT", 7*3600)).Add(-time.Minute)
	for i := 0; i < 3; i++ {
		r := serviceResponse(t, e.cat, "", now)
		r.Channel = sipasv1.Channel_CHANNEL_KIOSK
		if _, err := e.survey.SubmitResponse(e.as("kiosk-new"), &sipasv1.SubmitResponseRequest{Response: r}); err != nil {
			t.Fatal(err)
		}
	}
	// 12 field responses without a unit in the same province and month.
	st, err := e.survey.UploadBatch(e.as("surveyor"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		r := serviceResponse(t, e.cat, "48", now)
		r.Channel = sipasv1.Channel_CHANNEL_FIELD
		if err := st.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{{Line: int64(i + 2), Response: r}}}); err != nil {
			t.Fatal(err)
		}
	}
	st.CloseSend()
	if sum, _ := drainUpload(t, st); sum.Accepted != 12 {
		t.Fatalf("upload: %+v", sum)
	}
	month := &sipasv1.Period{Year: int32(now.Year()), Month: int32(now.Month())}
	unit := &sipasv1.Scope{Scope: &sipasv1.Scope_UnitId{UnitId: "dn-new"}}
	for _, who := range []string{"admin", "analyst"} {
		rep, err := e.index.GetIndex(e.as(who), &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023", Scope: unit, Period: month})
		if err != nil {
			t.Fatal(err)
		}
		if r := rep.GetReport(); !r.Suppressed || r.Respondents != 0 {
			t.Errorf("%s: the unit's index is not suppressed: respondents %d", who, r.Respondents)
		}
	}
	resp, err := e.admin.CountResponses(e.as("admin"), &sipasv1.CountResponsesRequest{Period: month, ProvinceCode: "48"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range resp.Counts {
		got = append(got, fmt.Sprintf("%s %s %q %d-%02d %v %d", c.QuestionnaireId, c.ProvinceCode, c.UnitId, c.Month.Year, c.Month.Month, c.Channel, c.Responses))
	}
	want := []string{ // by questionnaire, province, month, channel, unit
		fmt.Sprintf("sipas-2023 48 \"dn-new\" %d-%02d CHANNEL_KIOSK 3", now.Year(), now.Month()),
		fmt.Sprintf("sipas-2023 48 \"\" %d-%02d CHANNEL_FIELD 12", now.Year(), now.Month()),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts\n got %q\nwant %q", got, want)
	}
	// Filters: the unit alone; another province has nothing.
	resp, err = e.admin.CountResponses(e.as("admin"), &sipasv1.CountResponsesRequest{Period: &sipasv1.Period{Year: int32(now.Year())},
		UnitId: "dn-new", QuestionnaireId: "sipas-2023", Channel: sipasv1.Channel_CHANNEL_KIOSK})
	if err != nil || len(resp.Counts) != 1 || resp.Counts[0].Responses != 3 {
		t.Errorf("unit filter: %v %v", resp, err)
	}
	resp, err = e.admin.CountResponses(e.as("admin"), &sipasv1.CountResponsesRequest{Period: month, ProvinceCode: "01"})
	if err != nil || len(resp.Counts) != 0 {
		t.Errorf("province 01: %v %v", resp, err)
	}
	// Bad input is refused.
	for _, req := range []*sipasv1.CountResponsesRequest{
		{},
		{Period: &sipasv1.Period{Year: 2026, Month: 13}},
		{Period: month, Channel: 9},
	} {
		if _, err := e.admin.CountResponses(e.as("admin"), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%v: %v, want InvalidArgument", req, err)
		}
	}
	if _, err := e.admin.CountResponses(e.as("admin"), &sipasv1.CountResponsesRequest{Period: month, QuestionnaireId: "sipas-1999"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("unknown questionnaire: %v", err)
	}
	// Nobody else may see the counts.
	for _, who := range []string{"analyst", "surveyor", "kiosk-new"} {
		if _, err := e.admin.CountResponses(e.as(who), &sipasv1.CountResponsesRequest{Period: month}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: %v, want PermissionDenied", who, err)
		}
	}
}
