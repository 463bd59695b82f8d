package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// fleetData gives the env's kiosks three states: kioskHN last reported 8
// days ago (silent); kiosk had a response stored and reports now, 7
// waiting (the oldest 90 s old), one dead letter, its clock 10 minutes
// fast; kioskNew never reported.
func (e *env) fleetData(t *testing.T) {
	t.Helper()
	e.clock.Set(-8 * 24 * time.Hour)
	if _, err := e.survey.ReportKioskHeartbeat(e.as("kioskHN"), &sipasv1.ReportKioskHeartbeatRequest{
		SendTime: timestamppb.New(e.clock.Now()), AgentVersion: "sipas 1.3.0"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(0)
	answers := map[string]int32{}
	for _, code := range sipasCatalogItems(t)[:5] {
		answers[code] = 4
	}
	if _, err := e.survey.SubmitResponse(e.as("kiosk"), &sipasv1.SubmitResponseRequest{Response: &sipasv1.Response{
		ResponseId: uuid.Must(uuid.NewV7()).String(), QuestionnaireId: "sipas-2023", ProvinceCode: "48", UnitId: "dn-a",
		CollectedAt: timestamppb.Now(), Channel: sipasv1.Channel_CHANNEL_KIOSK, Answers: answers}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.survey.ReportKioskHeartbeat(e.as("kiosk"), &sipasv1.ReportKioskHeartbeatRequest{
		SendTime: timestamppb.New(time.Now().Add(10 * time.Minute)), QueueDepth: 7, OldestPendingAge: durationpb.New(90 * time.Second),
		DeadLetters: 1, AgentVersion: "sipas fleet-test", ClockOffset: durationpb.New(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
}

// fleetRow is the HTML of credential id's row of the fleet page.
func fleetRow(t *testing.T, page, id string) string {
	t.Helper()
	i := strings.Index(page, `data-credential="`+id+`"`)
	if i < 0 {
		t.Fatalf("no row for kiosk %s", id)
	}
	row := page[i:]
	return row[:strings.Index(row, "</tr>")]
}

// TestFleetPage: an admin sees every kiosk credential with its unit and
// the health its agent last reported, as AdminService.ListKiosks returns
// it; analysts are refused the page and not offered it.
func TestFleetPage(t *testing.T) {
	e := newEnv(t)
	e.fleetData(t)
	api, err := e.admin.ListKiosks(e.as("admin"), &sipasv1.ListKiosksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(api.Kiosks) != 3 {
		t.Fatalf("ListKiosks: %d kiosks, want 3", len(api.Kiosks))
	}
	c, _ := e.client("admin")
	if nat := e.get(c, "/national"+query); !strings.Contains(nat, `id="nav-fleet"`) {
		t.Error("an admin's pages do not link the fleet")
	}
	code, page := e.status(c, "/fleet?lang=en")
	if code != http.StatusOK {
		t.Fatalf("fleet as admin: %d\n%s", code, page)
	}
	when := func(ts *timestamppb.Timestamp) string {
		return ts.AsTime().In(sipas.VietnamZone).Format("2006-01-02 15:04")
	}
	for _, k := range api.Kiosks {
		row := fleetRow(t, page, k.CredentialId)
		want := []string{k.UnitDisplayName, k.UnitId, ">" + k.ProvinceCode + "<"}
		switch k.UnitId {
		case "dn-a": // reporting, clock off
			if k.Silent || k.LastResponseTime == nil {
				t.Fatalf("API: kiosk dn-a %v", k)
			}
			want = append(want, `<td class="num queue">7</td>`, "1m30s", "sipas fleet-test", when(k.LastHeartbeatTime), when(k.LastResponseTime),
				`class="num offset off"`, "Reporting")
		case "hn-a": // silent for 8 days
			if !k.Silent {
				t.Fatalf("API: kiosk hn-a not silent: %v", k)
			}
			want = append(want, `class="silent"`, "sipas 1.3.0", when(k.LastHeartbeatTime), "Silent")
		case "hn-b": // never reported
			want = append(want, "never", "Never reported", `<td class="num queue">0</td>`)
		}
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("fleet row of %s lacks %q:\n%s", k.UnitId, w, row)
			}
		}
	}
	if !strings.Contains(page, `id="fleet-total">3<`) || !strings.Contains(page, `id="fleet-silent">1<`) {
		t.Errorf("fleet summary wrong:\n%s", page)
	}
	k := api.Kiosks[0]
	for _, who := range []string{"analystAll", "analyst48"} {
		c, _ := e.client(who)
		if code, body := e.status(c, "/fleet?lang=en"); code != http.StatusForbidden || strings.Contains(body, k.CredentialId) || !strings.Contains(body, "Only an admin") {
			t.Errorf("fleet as %s: %d (want 403 without the fleet)", who, code)
		}
		if nat := e.get(c, "/national"+query); strings.Contains(nat, `id="nav-fleet"`) {
			t.Errorf("%s is offered the fleet", who)
		}
	}
}
