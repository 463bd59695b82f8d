package sipas_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/questionnaires"
)

func registry(t *testing.T) *sipas.Registry {
	t.Helper()
	reg, err := questionnaires.Registry()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func vn(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02T15:04", s, sipas.VietnamZone)
	if err != nil {
		panic(err)
	}
	return t
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestResolve(t *testing.T) {
	reg := registry(t)
	cases := []struct {
		code       string
		at         time.Time
		wantID     string
		attributed bool
	}{
		{"15", vn("2025-06-30T23:59"), "15@2008-08-01", false}, // Yên Bái
		{"15", vn("2025-07-01T00:00"), "15@2025-07-01", false}, // Lào Cai
		{"24", vn("2024-03-01T10:00"), "24@2008-08-01", false}, // Bắc Giang
		{"24", vn("2025-07-02T10:00"), "24@2025-07-01", false}, // Bắc Ninh
		{"44", vn("2025-06-30T10:00"), "44@2008-08-01", false},
		{"44", vn("2025-07-01T10:00"), "44@2025-07-01", false},
		{"52", vn("2023-01-01T00:00"), "52@2008-08-01", false},
		{"52", vn("2026-01-01T00:00"), "52@2025-07-01", false},
		{"80", vn("2025-06-30T12:00"), "80@2008-08-01", false},
		{"80", vn("2025-07-01T12:00"), "80@2025-07-01", false},
		{"82", vn("2025-06-30T12:00"), "82@2008-08-01", false},
		{"82", vn("2025-07-01T12:00"), "82@2025-07-01", false},
		{"91", vn("2025-06-30T12:00"), "91@2008-08-01", false},
		{"91", vn("2025-07-01T12:00"), "91@2025-07-01", false},
		// Retired codes are attributed to the successor.
		{"10", vn("2025-06-30T23:59"), "10@2008-08-01", false},
		{"10", vn("2025-07-01T00:00"), "15@2025-07-01", true},
		{"27", vn("2026-02-01T00:00"), "24@2025-07-01", true}, // Bắc Ninh old → new Bắc Ninh (code 24)
		{"89", vn("2025-08-01T00:00"), "91@2025-07-01", true},
		// Huế: same code, new row from 2025-01-01.
		{"46", vn("2024-12-31T23:59"), "46@2008-08-01", false},
		{"46", vn("2025-01-01T00:00"), "46@2025-01-01", false},
		{"46", vn("2026-01-01T00:00"), "46@2025-01-01", false},
		// Midnight boundary: UTC vs Vietnam time.
		{"15", utc("2025-06-30T16:59:59Z"), "15@2008-08-01", false}, // 23:59:59 in Vietnam
		{"15", utc("2025-06-30T17:00:00Z"), "15@2025-07-01", false}, // 00:00 on 1 July in Vietnam
		{"15", utc("2025-06-30T17:30:00Z"), "15@2025-07-01", false},
		{"10", utc("2025-06-30T17:30:00Z"), "15@2025-07-01", true},
		{"10", utc("2025-06-30T16:30:00Z"), "10@2008-08-01", false},
		{"46", utc("2024-12-31T16:59:00Z"), "46@2008-08-01", false},
		{"46", utc("2024-12-31T17:00:00Z"), "46@2025-01-01", false},
		{"01", time.Date(2025, 7, 1, 0, 30, 0, 0, time.FixedZone("X", 9*3600)), "01@2008-08-01", false}, // 2025-06-30T22:30 in Vietnam
	}
	for _, tc := range cases {
		p, attributed, err := reg.Resolve(tc.code, tc.at)
		if err != nil {
			t.Errorf("Resolve(%s, %s): %v", tc.code, tc.at, err)
			continue
		}
		if p.ID != tc.wantID || attributed != tc.attributed {
			t.Errorf("Resolve(%s, %s) = %s, %v; want %s, %v", tc.code, tc.at, p.ID, attributed, tc.wantID, tc.attributed)
		}
	}
}

func TestResolveInvalid(t *testing.T) {
	reg := registry(t)
	cases := []struct {
		code   string
		at     time.Time
		reason string
	}{
		{"99", vn("2024-01-01T00:00"), "UNKNOWN_PROVINCE"},
		{"03", vn("2024-01-01T00:00"), "UNKNOWN_PROVINCE"},
		{"1", vn("2024-01-01T00:00"), "INVALID_PROVINCE_CODE"},
		{"", vn("2024-01-01T00:00"), "INVALID_PROVINCE_CODE"},
		{"001", vn("2024-01-01T00:00"), "INVALID_PROVINCE_CODE"},
		{"15", vn("2008-07-31T23:59"), "PROVINCE_NOT_YET_VALID"},
		{"15", utc("2008-07-31T16:59:00Z"), "PROVINCE_NOT_YET_VALID"},
	}
	for _, tc := range cases {
		_, _, err := reg.Resolve(tc.code, tc.at)
		var e *sipas.Error
		if !errors.As(err, &e) {
			t.Errorf("Resolve(%q): err %v, want *Error", tc.code, err)
			continue
		}
		if e.Kind != sipas.KindInvalid || len(e.Violations) != 1 || e.Violations[0].Field != "province_code" || e.Violations[0].Reason != tc.reason {
			t.Errorf("Resolve(%q, %s): %+v, want %s", tc.code, tc.at, e, tc.reason)
		}
	}
	if _, _, err := reg.Resolve("15", utc("2008-07-31T17:00:00Z")); err != nil {
		t.Errorf("first valid day in Vietnam time refused: %v", err)
	}
}

func TestCurrentAndLookups(t *testing.T) {
	reg := registry(t)
	old46 := reg.ByID("46@2008-08-01")
	new46 := reg.ByID("46@2025-01-01")
	if old46 == nil || new46 == nil {
		t.Fatal("Huế rows missing")
	}
	if old46.Successor != new46 || reg.Current(old46) != new46 || reg.Current(new46) != new46 {
		t.Errorf("Current(old 46) = %v", reg.Current(old46))
	}
	if old46.ValidTo.Format("2006-01-02") != "2024-12-31" || new46.NameVi != "Thành phố Huế" {
		t.Errorf("Huế rows: %+v %+v", old46, new46)
	}
	if got := reg.Current(reg.ByID("10@2008-08-01")); got.ID != "15@2025-07-01" || got.NameEn != "Lao Cai" {
		t.Errorf("Current(old 10) = %v", got)
	}
	if got := reg.Current(reg.ByID("15@2008-08-01")); got.ID != "15@2025-07-01" {
		t.Errorf("Current(Yên Bái) = %v", got.ID)
	}
	if reg.Current(nil) != nil || reg.ByID("nope") != nil {
		t.Error("nil handling")
	}
	if n := len(reg.ValidOn(vn("2025-06-30T12:00"))); n != 63 {
		t.Errorf("ValidOn(2025-06-30) = %d provinces, want 63", n)
	}
	if n := len(reg.ValidOn(vn("2025-07-01T00:00"))); n != 34 {
		t.Errorf("ValidOn(2025-07-01) = %d provinces, want 34", n)
	}
	if n := len(reg.ValidOn(utc("2025-06-30T17:30:00Z"))); n != 34 {
		t.Errorf("ValidOn(2025-06-30T17:30Z) = %d provinces, want 34", n)
	}
	if n := len(reg.ValidOn(vn("2024-06-30T00:00"))); n != 63 {
		t.Errorf("ValidOn(2024-06-30) = %d, want 63", n)
	}
	all := reg.All()
	if len(all) != 97 {
		t.Errorf("All = %d rows", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Code > all[i].Code {
			t.Fatal("All not sorted by code")
		}
	}
	// Every retired row has a successor valid on the next day.
	for _, p := range all {
		if p.ValidTo.IsZero() != (p.Successor == nil) {
			t.Errorf("%s: ValidTo %v Successor %v", p.ID, p.ValidTo, p.Successor)
		}
	}
}

func TestLoadRegistryErrors(t *testing.T) {
	const h = "code,name_vi,name_en,valid_from,valid_to,merged_into_code\n"
	cases := []struct{ in, want string }{
		{"code,name\n", "p.csv:1: header is"},
		{h + "1,A,A,2008-08-01,,\n", `p.csv:2: invalid province code "1"`},
		{h + "01,A,A,2008-8-1,,\n", `p.csv:2: valid_from "2008-8-1" is not a date`},
		{h + "01,A,A,2008-08-01,2025-06-30,\n", "p.csv:2: a province with valid_to needs merged_into_code"},
		{h + "01,A,A,2008-08-01,2025-06-30,02\n", "p.csv:2: merged_into_code 02: no province with that code is valid on 2025-07-01"},
		{h + "01,A,A,2008-08-01,,\n01,B,B,2025-07-01,,\n", "p.csv:3: province code 01: validity overlaps the row on line 2"},
		{h + "01,A,A,2008-08-01,,02\n", `p.csv:2: merged_into_code "02" without valid_to`},
		{h + "01,A,A,2008-08-01,2007-01-01,01\n", "p.csv:2: valid_to 2007-01-01 is before valid_from 2008-08-01"},
	}
	for _, tc := range cases {
		_, err := sipas.LoadRegistry(strings.NewReader(tc.in), "p.csv")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadRegistry(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}
