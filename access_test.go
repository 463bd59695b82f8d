package sipas_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

// TestCheckCredential is the table of the issuing rules: role × unit ×
// scope × expiry, with the violations each broken rule reports.
func TestCheckCredential(t *testing.T) {
	reg := registry(t)
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	for _, tc := range []struct {
		name string
		c    sipas.Credential
		want []string // "field REASON" of each violation; nil: accepted
	}{
		{"kiosk with unit", sipas.Credential{Role: sipas.RoleKiosk, UnitID: "dn-1"}, nil},
		{"kiosk without unit", sipas.Credential{Role: sipas.RoleKiosk}, []string{"credential.unit_id REQUIRED"}},
		{"kiosk with provinces", sipas.Credential{Role: sipas.RoleKiosk, UnitID: "dn-1", Provinces: []string{"48"}},
			[]string{"credential.province_codes NOT_ALLOWED"}},
		{"kiosk with all provinces", sipas.Credential{Role: sipas.RoleKiosk, UnitID: "dn-1", AllProvinces: true},
			[]string{"credential.province_codes NOT_ALLOWED"}},
		{"surveyor with provinces", sipas.Credential{Role: sipas.RoleSurveyor, Provinces: []string{"01", "48"}}, nil},
		{"analyst with all provinces", sipas.Credential{Role: sipas.RoleAnalyst, AllProvinces: true}, nil},
		{"analyst without scope", sipas.Credential{Role: sipas.RoleAnalyst}, []string{"credential.province_codes SCOPE_REQUIRED"}},
		{"analyst with both scopes", sipas.Credential{Role: sipas.RoleAnalyst, AllProvinces: true, Provinces: []string{"48"}},
			[]string{"credential.province_codes SCOPE_REQUIRED"}},
		{"surveyor with unit", sipas.Credential{Role: sipas.RoleSurveyor, UnitID: "dn-1", AllProvinces: true},
			[]string{"credential.unit_id NOT_ALLOWED"}},
		{"analyst with unknown province", sipas.Credential{Role: sipas.RoleAnalyst, Provinces: []string{"48", "99"}},
			[]string{"credential.province_codes[1] UNKNOWN_PROVINCE"}},
		{"admin", sipas.Credential{Role: sipas.RoleAdmin}, nil},
		{"admin with unit", sipas.Credential{Role: sipas.RoleAdmin, UnitID: "dn-1"}, []string{"credential NOT_ALLOWED"}},
		{"admin with provinces", sipas.Credential{Role: sipas.RoleAdmin, Provinces: []string{"48"}}, []string{"credential NOT_ALLOWED"}},
		{"no role", sipas.Credential{}, []string{"credential.role REQUIRED"}},
		{"role out of range", sipas.Credential{Role: 9}, []string{"credential.role REQUIRED"}},
		{"expires in the future", sipas.Credential{Role: sipas.RoleAdmin, ExpireTime: &future}, nil},
		{"expired", sipas.Credential{Role: sipas.RoleAdmin, ExpireTime: &past}, []string{"credential.expire_time IN_PAST"}},
		{"expires now", sipas.Credential{Role: sipas.RoleAdmin, ExpireTime: &now}, []string{"credential.expire_time IN_PAST"}},
		{"description of 200 bytes", sipas.Credential{Role: sipas.RoleAdmin, Description: strings.Repeat("a", 200)}, nil},
		{"description too long", sipas.Credential{Role: sipas.RoleAdmin, Description: strings.Repeat("a", 201)},
			[]string{"credential.description TOO_LONG"}},
		{"every rule broken at once", sipas.Credential{Role: sipas.RoleKiosk, AllProvinces: true, ExpireTime: &past, Description: strings.Repeat("ễ", 70)},
			[]string{"credential.unit_id REQUIRED", "credential.province_codes NOT_ALLOWED", "credential.expire_time IN_PAST", "credential.description TOO_LONG"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sipas.CheckCredential(tc.c, now, reg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckCredential = %v, want nil", err)
				}
				return
			}
			if sipas.KindOf(err) != sipas.KindInvalid {
				t.Fatalf("CheckCredential = %v, want KindInvalid", err)
			}
			var got []string
			for _, x := range err.(*sipas.Error).Violations {
				if x.Description == "" {
					t.Errorf("violation %+v has no description", x)
				}
				got = append(got, x.Field+" "+x.Reason)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("violations = %q, want %q", got, tc.want)
			}
		})
	}
	// Without a registry, province codes are not checked.
	if err := sipas.CheckCredential(sipas.Credential{Role: sipas.RoleAnalyst, Provinces: []string{"99"}}, now, nil); err != nil {
		t.Fatalf("without registry: %v", err)
	}
}

// TestCredentialActive: a credential may be used until it is revoked or
// its expiry time is reached.
func TestCredentialActive(t *testing.T) {
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Nanosecond), now.Add(time.Nanosecond)
	for _, tc := range []struct {
		name string
		c    sipas.Credential
		want bool
	}{
		{"never expires", sipas.Credential{}, true},
		{"expires later", sipas.Credential{ExpireTime: &future}, true},
		{"expires now", sipas.Credential{ExpireTime: &now}, false},
		{"expired", sipas.Credential{ExpireTime: &past}, false},
		{"revoked", sipas.Credential{RevokeTime: &past}, false},
		{"revoked later", sipas.Credential{RevokeTime: &future, ExpireTime: &future}, false},
	} {
		if got := tc.c.Active(now); got != tc.want {
			t.Errorf("%s: Active = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCredentialScope is the scope the audit trail records.
func TestCredentialScope(t *testing.T) {
	for c, want := range map[*sipas.Credential]string{
		{Role: sipas.RoleKiosk, UnitID: "dn-1"}:                    "dn-1",
		{Role: sipas.RoleAnalyst, Provinces: []string{"01", "48"}}: "01,48",
		{Role: sipas.RoleSurveyor, AllProvinces: true}:             "all",
		{Role: sipas.RoleAdmin}:                                    "",
	} {
		if got := c.Scope(); got != want {
			t.Errorf("%+v: Scope = %q, want %q", c, got, want)
		}
	}
}

// TestCheckUnit is the table of the rules for creating a unit.
func TestCheckUnit(t *testing.T) {
	reg := registry(t)
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	ok := sipas.Unit{ID: "dn-HaiChau.1_a", DisplayName: "Bộ phận Một cửa Hải Châu", ProvinceCode: "48", CommuneCode: "20194"}
	with := func(f func(*sipas.Unit)) sipas.Unit { u := ok; f(&u); return u }
	for _, tc := range []struct {
		name string
		u    sipas.Unit
		want []string
	}{
		{"valid", ok, nil},
		{"no commune", with(func(u *sipas.Unit) { u.CommuneCode = "" }), nil},
		{"name of 200 bytes", with(func(u *sipas.Unit) { u.DisplayName = strings.Repeat("a", 200) }), nil},
		{"empty id", with(func(u *sipas.Unit) { u.ID = "" }), []string{"unit.unit_id INVALID_UNIT_ID"}},
		{"id with a slash", with(func(u *sipas.Unit) { u.ID = "dn/1" }), []string{"unit.unit_id INVALID_UNIT_ID"}},
		{"id of 65 bytes", with(func(u *sipas.Unit) { u.ID = strings.Repeat("a", 65) }), []string{"unit.unit_id INVALID_UNIT_ID"}},
		{"no name", with(func(u *sipas.Unit) { u.DisplayName = "" }), []string{"unit.display_name INVALID_NAME"}},
		{"name too long", with(func(u *sipas.Unit) { u.DisplayName = strings.Repeat("a", 201) }), []string{"unit.display_name INVALID_NAME"}},
		{"name with surrounding space", with(func(u *sipas.Unit) { u.DisplayName = " Một cửa" }), []string{"unit.display_name INVALID_NAME"}},
		{"name with a line break", with(func(u *sipas.Unit) { u.DisplayName = "Một\ncửa" }), []string{"unit.display_name CONTROL_CHARACTER"}},
		{"name with a bidi override", with(func(u *sipas.Unit) { u.DisplayName = "Một\u202ecửa" }), []string{"unit.display_name CONTROL_CHARACTER"}},
		{"unknown province", with(func(u *sipas.Unit) { u.ProvinceCode = "99" }), []string{"unit.province_code UNKNOWN_PROVINCE"}},
		{"no province", with(func(u *sipas.Unit) { u.ProvinceCode = "" }), []string{"unit.province_code UNKNOWN_PROVINCE"}},
		{"bad commune", with(func(u *sipas.Unit) { u.CommuneCode = "x y" }), []string{"unit.commune_code INVALID_COMMUNE"}},
		{"everything wrong", sipas.Unit{ID: "a b", ProvinceCode: "99", CommuneCode: "?"},
			[]string{"unit.unit_id INVALID_UNIT_ID", "unit.display_name INVALID_NAME", "unit.province_code UNKNOWN_PROVINCE", "unit.commune_code INVALID_COMMUNE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sipas.CheckUnit(tc.u, now, reg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckUnit = %v, want nil", err)
				}
				return
			}
			if sipas.KindOf(err) != sipas.KindInvalid {
				t.Fatalf("CheckUnit = %v, want KindInvalid", err)
			}
			var got []string
			for _, x := range err.(*sipas.Error).Violations {
				got = append(got, x.Field+" "+x.Reason)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("violations = %q, want %q", got, tc.want)
			}
		})
	}
}
