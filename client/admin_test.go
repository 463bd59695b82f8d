package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
)

// TestTypedAdminCalls drives the AdminService through the typed client on a
// real sipasd: units, credentials (create, list, revoke), the audit trail,
// the kiosk fleet and a backup, all as domain values.
func TestTypedAdminCalls(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	adm, err := client.Dial(client.Options{Server: d.Addr, Token: d.AdminToken()})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()

	u, err := adm.CreateUnit(ctx, sipas.Unit{ID: "dn-haichau", DisplayName: "Một cửa Hải Châu", ProvinceCode: "48", CommuneCode: "20194"})
	if err != nil || u.ID != "dn-haichau" || u.DisplayName != "Một cửa Hải Châu" || u.CommuneCode != "20194" || u.CreateTime.IsZero() {
		t.Fatalf("create unit: %+v %v", u, err)
	}
	if _, err := adm.CreateUnit(ctx, sipas.Unit{ID: "hn-1", DisplayName: "Một cửa Hà Nội", ProvinceCode: "01"}); err != nil {
		t.Fatal(err)
	}
	units, err := adm.Units(ctx, "48")
	if err != nil || len(units) != 1 || units[0].ID != "dn-haichau" {
		t.Fatalf("units of 48: %+v %v", units, err)
	}
	if all, err := adm.Units(ctx, ""); err != nil || len(all) != 2 {
		t.Fatalf("all units: %+v %v", all, err)
	}

	kiosk, token, err := adm.CreateCredential(ctx, sipas.Credential{Role: sipas.RoleKiosk, UnitID: "dn-haichau", Description: "quầy 1"}, 0)
	if err != nil || kiosk.Role != sipas.RoleKiosk || kiosk.UnitID != "dn-haichau" || kiosk.ExpireTime != nil || len(token) < 20 || !kiosk.Active(time.Now()) {
		t.Fatalf("create kiosk credential: %+v %q %v", kiosk, token, err)
	}
	analyst, atoken, err := adm.CreateCredential(ctx, sipas.Credential{Role: sipas.RoleAnalyst, Provinces: []string{"48", "49"}}, time.Hour)
	if err != nil || analyst.ExpireTime == nil || analyst.ExpireTime.Sub(analyst.CreateTime).Round(time.Minute) != time.Hour ||
		!slices.Equal(analyst.Provinces, []string{"48", "49"}) || analyst.AllProvinces {
		t.Fatalf("create analyst credential: %+v %v", analyst, err)
	}
	// The analyst's token reads its province.
	ac, err := client.Dial(client.Options{Server: d.Addr, Token: atoken})
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	q := client.Query{Query: sipas.Query{QuestionnaireID: "sipas-2023", Scope: sipas.Scope{ProvinceCode: "48"}, Period: sipas.Period{Year: 2026}}}
	if _, err := ac.Report(ctx, q); err != nil {
		t.Fatalf("the new analyst reads 48: %v", err)
	}

	revoked, err := adm.RevokeCredential(ctx, analyst.ID)
	if err != nil || revoked.RevokeTime == nil || revoked.Active(time.Now()) {
		t.Fatalf("revoke: %+v %v", revoked, err)
	}
	if _, err := ac.Report(ctx, q); sipas.KindOf(err) != sipas.KindUnauthenticated {
		t.Fatalf("the revoked analyst reads: %v, want unauthenticated", err)
	}
	ids := func(cs []sipas.Credential) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	active, err := adm.Credentials(ctx, false)
	if err != nil || !slices.Contains(ids(active), kiosk.ID) || slices.Contains(ids(active), analyst.ID) {
		t.Fatalf("active credentials %v (%v): want the kiosk, not the revoked analyst", ids(active), err)
	}
	every, err := adm.Credentials(ctx, true)
	if err != nil || !slices.Contains(ids(every), analyst.ID) || len(every) != len(active)+1 {
		t.Fatalf("all credentials %v (%v): want the revoked analyst too", ids(every), err)
	}

	events, err := adm.AuditEvents(ctx, 3)
	if err != nil || len(events) != 3 {
		t.Fatalf("audit: %+v %v", events, err)
	}
	if events[0].Target == "" || events[0].Seq <= events[1].Seq || events[0].Time.IsZero() || events[0].Actor == "" {
		t.Errorf("audit events not newest first, or incomplete: %+v", events)
	}
	found := false
	for _, ev := range events {
		found = found || (ev.Target == analyst.ID || ev.Target == "credentials/"+analyst.ID) && ev.Action != ""
	}
	if !found {
		t.Errorf("the revocation of %s is not among the newest events: %+v", analyst.ID, events)
	}

	kiosks, err := adm.Kiosks(ctx)
	if err != nil || len(kiosks) != 1 || kiosks[0].CredentialID != kiosk.ID || kiosks[0].UnitDisplayName != "Một cửa Hải Châu" ||
		kiosks[0].ProvinceCode != "48" || kiosks[0].LastHeartbeat != nil {
		t.Fatalf("kiosks: %+v %v", kiosks, err)
	}

	var b bytes.Buffer
	n, sum, err := adm.Backup(ctx, &b)
	h := sha256.Sum256(b.Bytes())
	if err != nil || n != 0 || sum != hex.EncodeToString(h[:]) || !bytes.HasPrefix(b.Bytes(), []byte("SQLite format 3")) {
		t.Fatalf("backup: %d responses, sum %s, %d bytes, %v", n, sum, b.Len(), err)
	}
}
