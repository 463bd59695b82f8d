package sipas

import (
	"testing"
	"time"
)

func TestPeriodValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Period
		ok bool
	}{
		{Period{Year: 2026}, true},
		{Period{Year: 2015, Quarter: 1}, true},
		{Period{Year: 2100, Month: 12}, true},
		{Period{Year: 2014}, false},
		{Period{Year: 2101}, false},
		{Period{Year: 2026, Quarter: 5}, false},
		{Period{Year: 2026, Quarter: -1}, false},
		{Period{Year: 2026, Month: 13}, false},
		{Period{Year: 2026, Quarter: 1, Month: 1}, false},
	} {
		err := tc.p.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", tc.p, err, tc.ok)
		}
		if err != nil {
			if KindOf(err) != KindInvalid {
				t.Errorf("%+v: kind %v", tc.p, KindOf(err))
			}
			if e := err.(*Error); len(e.Violations) != 1 || e.Violations[0].Field != "period" {
				t.Errorf("%+v: violations %+v", tc.p, e.Violations)
			}
		}
	}
}

func TestPeriodMath(t *testing.T) {
	for _, tc := range []struct {
		p          Period
		s          string
		from, to   int
		prev, next Period
	}{
		{Period{Year: 2026}, "2026", 202601, 202612, Period{Year: 2025}, Period{Year: 2027}},
		{Period{Year: 2026, Quarter: 1}, "2026-Q1", 202601, 202603, Period{Year: 2025, Quarter: 4}, Period{Year: 2026, Quarter: 2}},
		{Period{Year: 2026, Quarter: 3}, "2026-Q3", 202607, 202609, Period{Year: 2026, Quarter: 2}, Period{Year: 2026, Quarter: 4}},
		{Period{Year: 2026, Quarter: 4}, "2026-Q4", 202610, 202612, Period{Year: 2026, Quarter: 3}, Period{Year: 2027, Quarter: 1}},
		{Period{Year: 2026, Month: 1}, "2026-01", 202601, 202601, Period{Year: 2025, Month: 12}, Period{Year: 2026, Month: 2}},
		{Period{Year: 2026, Month: 7}, "2026-07", 202607, 202607, Period{Year: 2026, Month: 6}, Period{Year: 2026, Month: 8}},
		{Period{Year: 2026, Month: 12}, "2026-12", 202612, 202612, Period{Year: 2026, Month: 11}, Period{Year: 2027, Month: 1}},
	} {
		if got := tc.p.String(); got != tc.s {
			t.Errorf("%+v: String() = %q, want %q", tc.p, got, tc.s)
		}
		if f, to := tc.p.Months(); f != tc.from || to != tc.to {
			t.Errorf("%v: Months() = %d, %d, want %d, %d", tc.p, f, to, tc.from, tc.to)
		}
		if got := tc.p.Previous(); got != tc.prev {
			t.Errorf("%v: Previous() = %v, want %v", tc.p, got, tc.prev)
		}
		if got := tc.p.Next(); got != tc.next {
			t.Errorf("%v: Next() = %v, want %v", tc.p, got, tc.next)
		}
		if got := tc.p.Previous().Next(); got != tc.p {
			t.Errorf("%v: Previous().Next() = %v", tc.p, got)
		}
		got, err := ParsePeriod(tc.s)
		if err != nil || got != tc.p {
			t.Errorf("ParsePeriod(%q) = %v, %v", tc.s, got, err)
		}
		// Start and End bracket exactly the months, in Vietnam time.
		if m := MonthOf(tc.p.Start()); m != tc.from {
			t.Errorf("%v: Start month %d", tc.p, m)
		}
		if m := MonthOf(tc.p.End().Add(-time.Nanosecond)); m != tc.to {
			t.Errorf("%v: last instant month %d", tc.p, m)
		}
		if !tc.p.Contains(tc.from) || !tc.p.Contains(tc.to) || tc.p.Contains(tc.to+1) || tc.p.Contains(tc.from-1) {
			t.Errorf("%v: Contains wrong", tc.p)
		}
	}
}

func TestPeriodBoundaryIsVietnamTime(t *testing.T) {
	// 2025-12-31 17:00 UTC is 2026-01-01 00:00 in Vietnam.
	at := time.Date(2025, 12, 31, 17, 0, 0, 0, time.UTC)
	if !(Period{Year: 2026, Month: 1}).Contains(MonthOf(at)) {
		t.Fatalf("MonthOf(%v) = %d", at, MonthOf(at))
	}
	if !(Period{Year: 2026}).Start().Equal(at) {
		t.Fatalf("Start = %v", Period{Year: 2026}.Start())
	}
}

func TestParsePeriodInvalid(t *testing.T) {
	for _, s := range []string{"", "26", "2026-", "2026-Q5", "2026-Q0", "2026-13", "2026-00", "2026-7", "2014", "2026-W1", "abcd"} {
		if _, err := ParsePeriod(s); KindOf(err) != KindInvalid {
			t.Errorf("ParsePeriod(%q) err = %v, want invalid", s, err)
		}
	}
}

func TestPeriodsBetween(t *testing.T) {
	for _, tc := range []struct {
		a, b Period
		n    int
	}{
		{Period{Year: 2024}, Period{Year: 2026}, 3},
		{Period{Year: 2025, Quarter: 3}, Period{Year: 2026, Quarter: 2}, 4},
		{Period{Year: 2025, Month: 11}, Period{Year: 2026, Month: 2}, 4},
		{Period{Year: 2026, Month: 2}, Period{Year: 2026, Month: 1}, 0},
		{Period{Year: 2026}, Period{Year: 2026, Month: 1}, 0},
	} {
		if got := PeriodsBetween(tc.a, tc.b); got != tc.n {
			t.Errorf("PeriodsBetween(%v, %v) = %d, want %d", tc.a, tc.b, got, tc.n)
		}
	}
}
