package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
)

// TestFlaggedLeftOutAndCountedOnRequest: the pages leave responses flagged
// for data quality out by default and say how many; the flagged=1 option
// (a picker checkbox and a link beside the count) counts them, in every
// query of the page.
func TestFlaggedLeftOutAndCountedOnRequest(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		answers := map[string]int32{}
		for _, it := range sipasCatalogItems(t) {
			answers[it] = 1
		}
		_, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: &sipasv1.Response{
			ResponseId: uuid.Must(uuid.NewV7()).String(), QuestionnaireId: "sipas-2023", ProvinceCode: "48", UnitId: "dn-a",
			CollectedAt: timestamppb.New(time.Date(year, time.Month(1+i), 11, 10, 0, 0, 0, sipas.VietnamZone)), Channel: sipasv1.Channel_CHANNEL_FIELD,
			Answers: answers, Flags: []sipasv1.ResponseFlag{sipasv1.ResponseFlag_RESPONSE_FLAG_TOO_FAST}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	c, _ := e.client("admin")
	en := query + "&lang=en"
	page := e.get(c, "/province/48"+en)
	if !strings.Contains(page, `id="respondents">40<`) || !strings.Contains(page, "3 responses flagged for data quality") ||
		!strings.Contains(page, `name="flagged" value="1">`) {
		t.Errorf("province page by default: want 40 respondents, 3 flagged left out and the option:\n%s", page)
	}
	if !strings.Contains(page, "flagged=1") {
		t.Error("province page: no link that counts the flagged responses")
	}
	page = e.get(c, "/province/48"+en+"&flagged=1")
	if !strings.Contains(page, `id="respondents">43<`) || !strings.Contains(page, "3 responses flagged for data quality are counted") ||
		!strings.Contains(page, `name="flagged" value="1" checked>`) {
		t.Errorf("province page with flagged=1: want 43 respondents, 3 counted, the box checked:\n%s", page)
	}
	// The unit ranking of the page is asked with the option too: dn-a has n 43.
	if !strings.Contains(page, `data-code="dn-a"`) || !strings.Contains(page[strings.Index(page, `data-code="dn-a"`):], `<td class="num">43</td>`) {
		t.Error("province page with flagged=1: the unit ranking does not count the flagged responses")
	}
	if national := e.get(c, "/national"+en); !strings.Contains(national, "3 responses flagged for data quality") {
		t.Errorf("national page does not say 3 flagged responses were left out:\n%s", national)
	}
	if code, _ := e.status(c, "/province/48"+en+"&flagged=yes"); code != http.StatusBadRequest {
		t.Errorf("flagged=yes: status %d, want 400", code)
	}
}

// sipasCatalogItems are the satisfaction item codes of sipas-2023.
func sipasCatalogItems(t *testing.T) []string {
	t.Helper()
	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range cat.Get("sipas-2023").Items {
		if it.Kind == sipas.KindSatisfaction && it.Node != nil {
			out = append(out, it.Code)
		}
	}
	return out
}
