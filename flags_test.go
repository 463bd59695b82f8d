package sipas

import "testing"

func TestFlags(t *testing.T) {
	f := FlagTooFast | FlagClockSkew
	if f.String() != "too_fast+clock_skew" {
		t.Errorf("String = %q", f.String())
	}
	if n := f.Numbers(); len(n) != 2 || n[0] != 1 || n[1] != 4 {
		t.Errorf("Numbers = %v, want [1 4] (the API's RESPONSE_FLAG_ values)", n)
	}
	var back Flags
	for _, n := range f.Numbers() {
		back |= FlagFromNumber(n)
	}
	if back != f {
		t.Errorf("round trip through numbers: %v", back)
	}
	if g, ok := ParseFlags("Too_Fast, clock_skew"); !ok || g != f {
		t.Errorf("ParseFlags = %v %v", g, ok)
	}
	if _, ok := ParseFlags("too_fast+sleepy"); ok {
		t.Error("an unknown name parsed")
	}
	if g, ok := ParseFlags(""); !ok || g != 0 {
		t.Error("empty flags")
	}
	for _, n := range []int32{0, 5, 77, -1} {
		if FlagFromNumber(n).Known() {
			t.Errorf("ResponseFlag %d is known", n)
		}
	}
	if !f.Known() || Flags(0).Known() != true {
		t.Error("known flags refused")
	}
}
