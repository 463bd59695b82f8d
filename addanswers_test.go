package sipas_test

import (
	"math/rand/v2"
	"testing"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/questionnaires"
)

// TestAddAnswersEqualsAdd: AddAnswers of the packed answers gives the same
// tally as Tally.Add of the map form.
func TestAddAnswersEqualsAdd(t *testing.T) {
	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, q := range cat.List() {
		viaAdd, viaAnswers := sipas.NewTally(q), sipas.NewTally(q)
		viaAnswers.TrackNonzero() // as the store's cells: sparse while they can be
		for n := range 500 {
			r := &sipas.Response{Answers: map[string]int{}}
			packed := make([]uint8, len(q.Items))
			for _, it := range q.Items {
				switch x := rng.IntN(10); {
				case x < 4 || rng.IntN(8) > 0: // not asked (most items: sparse at first)
				case x == 4:
					r.Answers[it.Code] = 8 + rng.IntN(2)
				case x == 5:
					r.Answers[it.Code] = 7 // invalid: ignored by both
				default:
					r.Answers[it.Code] = it.Scale.Codes[rng.IntN(len(it.Scale.Codes))].Code
				}
			}
			for i, it := range q.Items {
				if a, ok := r.Answers[it.Code]; ok {
					packed[i] = uint8(a + 1)
				}
			}
			r.Answers["NOT-AN-ITEM"] = 1
			viaAdd.Add(q, r, nil)
			viaAnswers.AddAnswers(q, packed)
			// Merging the tracked tally reads only its non-zero slots while
			// it is sparse: it must still give every count.
			merged := sipas.NewTally(q)
			merged.Merge(viaAnswers)
			if !viaAdd.Equal(viaAnswers) || !viaAdd.Equal(merged) {
				t.Fatalf("%s, response %d: AddAnswers disagrees with Add", q.ID, n)
			}
		}
	}
}
