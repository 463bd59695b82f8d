package sipas_test

import (
	"math/rand/v2"
	"testing"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/questionnaires"
)

// TestSparseTallyEqualsDense: a SparseTally counted from the same responses
// as a dense Tally holds the same counters, through its encoding and
// merging; taking a response back out (sign -1) restores the counters
// exactly; the encoding of a cell of kiosk-like responses follows the
// answered items, not the questionnaire's width.
func TestSparseTallyEqualsDense(t *testing.T) {
	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, every := range []int{5, 1} { // a fifth of the items (kiosk), every item (field survey: dense form)
		for _, q := range cat.List() {
			dense := sipas.NewTally(q)
			halves := [2]*sipas.SparseTally{sipas.NewSparseTally(q), sipas.NewSparseTally(q)}
			var c sipas.Contribution
			var packs [][]uint8
			for n := range 300 {
				packed := make([]uint8, len(q.Items))
				for i, it := range q.Items {
					if i%every != 0 {
						continue
					}
					switch rng.IntN(6) {
					case 0:
					case 1:
						packed[i] = uint8(8 + rng.IntN(2) + 1)
					default:
						packed[i] = uint8(it.Scale.Codes[rng.IntN(len(it.Scale.Codes))].Code + 1)
					}
				}
				packs = append(packs, packed)
				dense.AddAnswers(q, packed)
				q.Contribution(packed, &c)
				halves[n%2].Add(&c, 1)
			}
			sum := sipas.NewSparseTally(q)
			sum.Merge(halves[0])
			sum.Merge(halves[1])
			if !sum.Dense().Equal(dense) {
				t.Fatalf("%s: merged sparse tallies disagree with the dense tally", q.ID)
			}
			b, err := sum.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var back sipas.SparseTally
			if err := back.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			fromBytes := sipas.NewTally(q)
			fromBytes.TrackNonzero()
			if err := fromBytes.AddEncoded(b); err != nil {
				t.Fatal(err)
			}
			if !back.Dense().Equal(dense) || !fromBytes.Equal(dense) || !sipas.SparseOf(dense).Dense().Equal(dense) {
				t.Fatalf("%s: encoding does not round-trip", q.ID)
			}
			if d, _ := dense.MarshalBinary(); (every > 1 && len(b) >= len(d)) || len(b) > len(d)+2 {
				t.Errorf("%s, every %d items: encoding %d bytes, dense Tally %d", q.ID, every, len(b), len(d))
			}
			// Take the last response back out: the counters of the first 299.
			q.Contribution(packs[299], &c)
			sum.Add(&c, -1)
			want := sipas.NewTally(q)
			for _, p := range packs[:299] {
				want.AddAnswers(q, p)
			}
			if !sum.Dense().Equal(want) {
				t.Fatalf("%s: taking a response back out does not restore the counters", q.ID)
			}
			dense.AddContribution(&c, -1)
			if !dense.Equal(want) {
				t.Fatalf("%s: Tally.AddContribution(-1) does not restore the counters", q.ID)
			}
			// A stored cell is a count: negative counters are refused, and a
			// layout other than the reader's is an error.
			neg := sipas.NewSparseTally(q)
			neg.Add(&c, -1)
			if _, err := neg.MarshalBinary(); err == nil {
				t.Fatalf("%s: a negative cell was encoded", q.ID)
			}
			for _, other := range cat.List() {
				if other.Slots != q.Slots {
					if err := sipas.NewTally(other).AddEncoded(b); err == nil {
						t.Fatalf("%s cell decoded into a %s tally", q.ID, other.ID)
					}
				}
			}
			if err := fromBytes.AddEncoded(b[:len(b)-1]); err == nil {
				t.Fatalf("%s: a truncated cell decoded", q.ID)
			}
		}
	}
}

// BenchmarkAddFull compares counting a full 106-item response into a dense
// tally (AddAnswers) with computing its contribution and adding it to a
// sparse delta, as the store's applier does for a field survey's cell.
func BenchmarkAddFull(b *testing.B) {
	cat, _, err := questionnaires.Load("")
	if err != nil {
		b.Fatal(err)
	}
	q := cat.Get("sipas-2023")
	rng := rand.New(rand.NewPCG(1, 2))
	packs := make([][]uint8, 256)
	for i := range packs {
		packs[i] = make([]uint8, len(q.Items))
		for j, it := range q.Items {
			packs[i][j] = uint8(it.Scale.Codes[rng.IntN(len(it.Scale.Codes))].Code + 1)
		}
	}
	b.Run("dense", func(b *testing.B) {
		t := sipas.NewTally(q)
		for i := range b.N {
			t.AddAnswers(q, packs[i%len(packs)])
		}
	})
	b.Run("contribution", func(b *testing.B) {
		var c sipas.Contribution
		for i := range b.N {
			q.Contribution(packs[i%len(packs)], &c)
		}
	})
	b.Run("sparse-delta", func(b *testing.B) {
		var c sipas.Contribution
		for i := range b.N {
			if i%16 == 0 {
				b.StopTimer()
				c = sipas.Contribution{}
				b.StartTimer()
			}
			d := sipas.NewSparseTally(q)
			for k := range 16 {
				q.Contribution(packs[(i+k)%len(packs)], &c)
				d.Add(&c, 1)
			}
		}
	})
}
