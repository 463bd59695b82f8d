package sipas

import (
	"fmt"
	"testing"
	"time"
)

// benchDisclosureFixture fills every province of 2026 with cells of every
// month and channel (a few responses each, so many are small) and 200
// units, like cmd/sipasbench's index store.
func benchDisclosureFixture(b *testing.B) *attackFixture {
	t := &testing.T{}
	fx := newAttackFixture(t)
	codes := map[string]bool{}
	for _, p := range fx.reg.ValidOn(time.Date(2026, 6, 1, 0, 0, 0, 0, VietnamZone)) {
		codes[p.Code] = true
	}
	i := 0
	for code := range codes {
		for m := 1; m <= 12; m++ {
			for _, ch := range Channels {
				n := 1 + (i*7)%40
				unit := ""
				if ch == ChannelKiosk {
					unit = fmt.Sprintf("U%s-%d", code, i%6)
				}
				fx.put(code, unit, 2026, m, ch, n)
				i++
			}
		}
	}
	if t.Failed() {
		b.Fatal("fixture")
	}
	return fx
}

// BenchmarkIndexProvinceYear measures Engine.Index of a province for a year
// (the index_tree_province_year figure's query) with disclosure control.
func BenchmarkIndexProvinceYear(b *testing.B) {
	fx := benchDisclosureFixture(b)
	q := Query{QuestionnaireID: fx.q.ID, Scope: Scope{ProvinceCode: "48"}, Period: Period{Year: 2026}}
	b.ResetTimer()
	for b.Loop() {
		if _, err := fx.e.Index(q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRankUnitsYear measures Engine.RankUnits of a province for a
// year, which decides unit figures too.
func BenchmarkRankUnitsYear(b *testing.B) {
	fx := benchDisclosureFixture(b)
	q := Query{QuestionnaireID: fx.q.ID, Scope: Scope{ProvinceCode: "48"}, Period: Period{Year: 2026}}
	b.ResetTimer()
	for b.Loop() {
		if _, err := fx.e.RankUnits(q); err != nil {
			b.Fatal(err)
		}
	}
}
