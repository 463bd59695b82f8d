package sipas

import "strings"

// Flags are the data-quality flags of a response, one bit per reason. A
// flagged response is stored with its flags and never lost, but indices
// leave it out unless asked to include flagged responses.
type Flags uint32

// The flags, numbered as the API's ResponseFlag values (bit n-1 for value n).
const (
	// FlagTooFast: completed faster than a plausible time.
	FlagTooFast Flags = 1 << iota
	// FlagTooSoon: completed within the minimum interval after the
	// previous response at the same kiosk.
	FlagTooSoon
	// FlagIdenticalRun: one of a run of identical responses in a row at
	// the same kiosk.
	FlagIdenticalRun
	// FlagClockSkew: the collecting device's clock was more than
	// MaxClockSkew off the server's.
	FlagClockSkew

	// flagsKnown are the flags this version defines.
	flagsKnown = FlagTooFast | FlagTooSoon | FlagIdenticalRun | FlagClockSkew
)

// flagNames are the flags' names, by bit, as they appear in files and reports.
var flagNames = []struct {
	f    Flags
	name string
}{
	{FlagTooFast, "too_fast"},
	{FlagTooSoon, "too_soon"},
	{FlagIdenticalRun, "identical_run"},
	{FlagClockSkew, "clock_skew"},
}

// FlagFromNumber returns the flag of an API ResponseFlag value (1..4);
// any other value gives a bit outside the known ones, which Validate refuses.
func FlagFromNumber(n int32) Flags {
	if n < 1 || n > 31 {
		return 1 << 31
	}
	return 1 << (n - 1)
}

// Numbers returns the API ResponseFlag values of f, in order.
func (f Flags) Numbers() []int32 {
	var out []int32
	for i := int32(0); i < 32; i++ {
		if f&(1<<i) != 0 {
			out = append(out, i+1)
		}
	}
	return out
}

// Known reports whether f holds only flags this version defines.
func (f Flags) Known() bool { return f&^flagsKnown == 0 }

// String lists the flags' names separated by "+", e.g. "too_fast+too_soon".
func (f Flags) String() string {
	var parts []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, "+")
}

// ParseFlags reads a list of flag names separated by "+", "," or spaces
// (the form String writes); ok is false for an unknown name.
func ParseFlags(s string) (f Flags, ok bool) {
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == ',' || r == ' ' || r == ';' }) {
		found := false
		for _, n := range flagNames {
			if strings.EqualFold(part, n.name) {
				f |= n.f
				found = true
			}
		}
		if !found {
			return 0, false
		}
	}
	return f, true
}
