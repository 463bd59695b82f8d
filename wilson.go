package sipas

import "math"

// WilsonZ is the standard normal quantile for a two-sided 95% interval.
const WilsonZ = 1.959963984540054

// Wilson returns the 95% Wilson score interval of the proportion
// positive/valid, in percent (0..100). ok is false when valid is not positive
// or positive is outside 0..valid; the interval is then meaningless.
//
// The Wilson interval is used rather than the normal (Wald) interval because
// it stays inside 0..100 and keeps its coverage for proportions near 0 or 100
// and for small n, which is where SIPAS items sit (often above 95%).
func Wilson(positive, valid int64) (low, high float64, ok bool) {
	if valid <= 0 || positive < 0 || positive > valid {
		return 0, 0, false
	}
	n := float64(valid)
	p := float64(positive) / n
	z2 := WilsonZ * WilsonZ
	denom := 1 + z2/n
	center := (p + z2/(2*n)) / denom
	half := WilsonZ * math.Sqrt(p*(1-p)/n+z2/(4*n*n)) / denom
	low, high = center-half, center+half
	// Rounding can push the bounds a hair outside [0,1] (p = 0 or 1).
	low = math.Max(0, low)
	high = math.Min(1, high)
	if positive == 0 {
		low = 0
	}
	if positive == valid {
		high = 1
	}
	return 100 * low, 100 * high, true
}
