package sipas

import (
	"math"
	"testing"
)

func TestWilson(t *testing.T) {
	// Reference values: 5/10 and 81/263 are textbook examples
	// (0.2366–0.7634; 0.2553–0.3662); the others were computed with the
	// closed form in double precision (Python).
	for _, tc := range []struct {
		pos, n   int64
		lo, hi   float64
		tol      float64
		okWanted bool
	}{
		{5, 10, 23.66, 76.34, 0.005, true},
		{81, 263, 25.53, 36.62, 0.005, true},
		{0, 10, 0, 27.75327998628892, 1e-9, true},
		{10, 10, 72.24672001371107, 100, 1e-9, true},
		{1, 1, 20.654931437723747, 100, 1e-9, true},
		{95, 100, 88.82495307680807, 97.84563208456319, 1e-9, true},
		{580, 600, 94.90759071771072, 97.83198385434389, 1e-9, true},
		{0, 0, 0, 0, 0, false},
		{3, 2, 0, 0, 0, false},
		{-1, 2, 0, 0, 0, false},
	} {
		lo, hi, ok := Wilson(tc.pos, tc.n)
		if ok != tc.okWanted {
			t.Errorf("Wilson(%d, %d) ok = %v", tc.pos, tc.n, ok)
			continue
		}
		if !ok {
			continue
		}
		if math.Abs(lo-tc.lo) > tc.tol || math.Abs(hi-tc.hi) > tc.tol {
			t.Errorf("Wilson(%d, %d) = [%v, %v], want [%v, %v]", tc.pos, tc.n, lo, hi, tc.lo, tc.hi)
		}
		if p := 100 * float64(tc.pos) / float64(tc.n); lo > p || hi < p || lo < 0 || hi > 100 {
			t.Errorf("Wilson(%d, %d) = [%v, %v] does not contain %v within 0..100", tc.pos, tc.n, lo, hi, p)
		}
	}
}
