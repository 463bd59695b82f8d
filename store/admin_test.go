package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

func TestUnits(t *testing.T) {
	s := openTest(t, "", Options{})
	ctx := context.Background()
	for i := range 5 {
		u := Unit{ID: fmt.Sprintf("u-%d", i), DisplayName: "Bộ phận một cửa", ProvinceCode: []string{"01", "48"}[i%2], CommuneCode: "00004"}
		if err := s.CreateUnit(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	err := s.CreateUnit(ctx, Unit{ID: "u-1", ProvinceCode: "01"})
	if e, ok := err.(*sipas.Error); !ok || e.Kind != sipas.KindConflict || e.Reason != "UNIT_EXISTS" {
		t.Fatalf("duplicate unit: %v", err)
	}
	if err := s.CreateUnit(ctx, Unit{ID: "x"}); sipas.KindOf(err) != sipas.KindInvalid {
		t.Fatalf("unit without province: %v", err)
	}
	u, err := s.GetUnit(ctx, "u-2")
	if err != nil || u.ProvinceCode != "01" || u.DisplayName != "Bộ phận một cửa" || u.CreateTime.IsZero() {
		t.Fatalf("GetUnit = %+v, %v", u, err)
	}
	if _, err := s.GetUnit(ctx, "nope"); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("unknown unit: %v", err)
	}
	page1, err := s.ListUnits(ctx, "", "", 2)
	if err != nil || len(page1) != 2 || page1[0].ID != "u-0" || page1[1].ID != "u-1" {
		t.Fatalf("page 1 = %+v, %v", page1, err)
	}
	page2, _ := s.ListUnits(ctx, "", page1[1].ID, 10)
	if len(page2) != 3 || page2[0].ID != "u-2" {
		t.Fatalf("page 2 = %+v", page2)
	}
	hn, _ := s.ListUnits(ctx, "01", "", 0)
	if len(hn) != 3 || hn[0].ID != "u-0" || hn[1].ID != "u-2" || hn[2].ID != "u-4" {
		t.Fatalf("province 01 = %+v", hn)
	}
}

func TestCredentials(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	s := openTest(t, "", Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	if n, err := s.CountCredentials(ctx); err != nil || n != 0 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if err := s.CreateUnit(ctx, Unit{ID: "k-1", ProvinceCode: "48"}); err != nil {
		t.Fatal(err)
	}
	past := now.Add(-time.Hour)
	kiosk, err := s.CreateCredential(ctx, Credential{TokenHash: []byte("hash-kiosk"), Role: 1, UnitID: "k-1", Description: "kiosk"})
	if err != nil || kiosk.ID == "" || !kiosk.CreateTime.Equal(now) {
		t.Fatalf("create = %+v, %v", kiosk, err)
	}
	team, err := s.CreateCredential(ctx, Credential{ID: "team", TokenHash: []byte("hash-team"), Role: 2, Provinces: []string{"01", "48"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCredential(ctx, Credential{ID: "old", TokenHash: []byte("hash-old"), Role: 3, AllProvinces: true, ExpireTime: &past}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCredential(ctx, Credential{ID: "team", TokenHash: []byte("other")}); sipas.KindOf(err) != sipas.KindConflict {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := s.CreateCredential(ctx, Credential{TokenHash: []byte("hash-team")}); sipas.KindOf(err) != sipas.KindConflict {
		t.Fatalf("duplicate token hash: %v", err)
	}
	if _, err := s.CreateCredential(ctx, Credential{TokenHash: []byte("h"), UnitID: "no-such-unit"}); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("unknown unit: %v", err)
	}
	got, err := s.CredentialByTokenHash(ctx, []byte("hash-team"))
	if err != nil || !reflect.DeepEqual(got, team) {
		t.Fatalf("by hash = %+v, %v; want %+v", got, err, team)
	}
	got, err = s.CredentialByTokenHash(ctx, []byte("hash-kiosk"))
	if err != nil || got.UnitID != "k-1" || got.Provinces != nil || !got.Active(now) {
		t.Fatalf("by hash = %+v, %v", got, err)
	}
	if _, err := s.CredentialByTokenHash(ctx, []byte("nope")); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("unknown hash: %v", err)
	}
	active, _ := s.ListCredentials(ctx, "", 0, false)
	all, _ := s.ListCredentials(ctx, "", 0, true)
	if len(active) != 2 || len(all) != 3 {
		t.Fatalf("active %d, all %d", len(active), len(all))
	}
	if err := s.RevokeCredential(ctx, "team", now); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeCredential(ctx, "team", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.CredentialByTokenHash(ctx, []byte("hash-team"))
	if got.RevokeTime == nil || !got.RevokeTime.Equal(now) || got.Active(now) {
		t.Fatalf("after revoke: %+v", got)
	}
	if err := s.RevokeCredential(ctx, "nope", now); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("revoke unknown: %v", err)
	}
	if byID, err := s.GetCredential(ctx, "team"); err != nil || byID.RevokeTime == nil || !byID.RevokeTime.Equal(now) || string(byID.TokenHash) != "hash-team" {
		t.Fatalf("GetCredential(team) = %+v, %v", byID, err)
	}
	if _, err := s.GetCredential(ctx, "nope"); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("GetCredential(nope): %v", err)
	}
	if active, _ := s.ListCredentials(ctx, "", 0, false); len(active) != 1 {
		t.Fatalf("active after revoke = %d", len(active))
	}
	if page, _ := s.ListCredentials(ctx, "old", 10, true); len(page) != 1 || page[0].ID != "team" {
		t.Fatalf("page after 'old' = %+v", page)
	}
	if n, _ := s.CountCredentials(ctx); n != 3 {
		t.Fatalf("count = %d", n)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAudit(t *testing.T) {
	s := openTest(t, "", Options{})
	ctx := context.Background()
	for i := range 5 {
		if err := s.AppendAudit(ctx, "admin", "unit.create", fmt.Sprintf("units/%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.ListAudit(ctx, 0, 3)
	if err != nil || len(es) != 3 || es[0].Target != "units/4" || es[2].Target != "units/2" {
		t.Fatalf("page 1 = %+v, %v", es, err)
	}
	es, _ = s.ListAudit(ctx, es[2].Seq, 10)
	if len(es) != 2 || es[1].Target != "units/0" || es[0].Time.IsZero() {
		t.Fatalf("page 2 = %+v", es)
	}
}
