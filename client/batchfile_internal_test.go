package client

import (
	"strings"
	"testing"
)

// TestEnumSpellings: Vietnamese spellings (with or without diacritics) and
// the API's numbers are read like the English names; anything else is
// refused without echoing the value.
func TestEnumSpellings(t *testing.T) {
	for _, c := range []struct {
		col, v string
		want   int
	}{
		{"gender", "Nữ", 2}, {"gender", "nu", 2}, {"gender", "NAM", 1}, {"gender", "2", 2}, {"gender", "female", 2},
		{"residence", "Nông thôn", 2}, {"residence", "thanh thi", 1},
		{"respondent_type", "Tổ chức", 2}, {"respondent_type", "nguoi dan", 1}, {"respondent_type", "organization", 2},
		{"ethnicity", "Kinh", 1}, {"ethnicity", "khác", 2},
		{"education", "6", 6}, {"occupation", "farmer", 1},
	} {
		got, err := parseEnum(c.col, c.v)
		if err != nil || got != c.want {
			t.Errorf("parseEnum(%s, %q) = %d, %v; want %d", c.col, c.v, got, err, c.want)
		}
	}
	for _, c := range []struct{ col, v string }{{"gender", "4"}, {"gender", "0"}, {"residence", "xyz-1961"}, {"education", "99"}} {
		_, err := parseEnum(c.col, c.v)
		if err == nil || strings.Contains(err.Error(), c.v) {
			t.Errorf("parseEnum(%s, %q): %v, want a refusal that does not echo the value", c.col, c.v, err)
		}
	}
}

func TestCollectedAtDayFirst(t *testing.T) {
	got, err := ParseCollectedAt("14/03/2026")
	if err != nil || got.Year() != 2026 || got.Month() != 3 || got.Day() != 14 {
		t.Fatalf("14/03/2026: %v %v", got, err)
	}
	if _, err := ParseCollectedAt("03/14/2026"); err == nil {
		t.Fatal("month-first 03/14/2026 was accepted")
	}
	got, err = ParseCollectedAt("4/3/2026 09:30")
	if err != nil || got.Day() != 4 || got.Month() != 3 || got.Hour() != 9 {
		t.Fatalf("4/3/2026 09:30: %v %v", got, err)
	}
}
