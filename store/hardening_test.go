package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sipas-vn/sipas"
)

// Regression tests of issue 16 for the store.

// TestItem1UnitRegistryInMemoryAndIDsUniqueRegardlessOfCase: the in-memory
// registry has every unit, also after a reopen, and ids are unique
// regardless of case.
func TestItem1UnitRegistryInMemoryAndIDsUniqueRegardlessOfCase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sipas.db")
	s := openTest(t, path, Options{})
	ctx := context.Background()
	if err := s.CreateUnit(ctx, Unit{ID: "Dn-HaiChau", DisplayName: "Một cửa", ProvinceCode: "48"}, AuditEvent{Actor: "test", Action: "unit.create"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dn-haichau", "DN-HAICHAU", "Dn-HaiChau"} {
		err := s.CreateUnit(ctx, Unit{ID: id, DisplayName: "x", ProvinceCode: "01"}, AuditEvent{Actor: "test", Action: "unit.create"})
		if e, ok := err.(*sipas.Error); !ok || e.Kind != sipas.KindConflict || e.Reason != "UNIT_EXISTS" {
			t.Fatalf("unit %s after Dn-HaiChau: %v, want UNIT_EXISTS", id, err)
		}
		if _, ok := s.Unit(id); ok != (id == "Dn-HaiChau") {
			t.Fatalf("registry lookup of %s: %v", id, ok)
		}
	}
	if code, ok := s.UnitProvince("Dn-HaiChau"); !ok || code != "48" {
		t.Fatalf("UnitProvince: %q %v", code, ok)
	}
	s.Close()
	s = openTest(t, path, Options{})
	if u, ok := s.Unit("Dn-HaiChau"); !ok || u.ProvinceCode != "48" || u.DisplayName != "Một cửa" {
		t.Fatalf("after reopen: %+v %v", u, ok)
	}
}
