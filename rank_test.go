package sipas

import (
	"fmt"
	"testing"
)

func TestRankRows(t *testing.T) {
	rows := []RankRow{
		{ID: "a", Value: fp(84.996)},                 // 85.00
		{ID: "b", Value: fp(85.004)},                 // 85.00: ties with a
		{ID: "c", Value: fp(90)},                     // 1
		{ID: "d", Value: fp(84.994)},                 // 84.99: rank 5
		{ID: "e", Value: fp(99), Insufficient: true}, // not ranked
		{ID: "f", Suppressed: true},                  // not ranked
		{ID: "g"},                                    // no value
		{ID: "h", Value: fp(84.9851)},                // 84.99: ties with d
		{ID: "i", Value: fp(10)},                     // 7
		{ID: "0", Value: fp(50), Insufficient: true}, // unranked, ordered by ID
		{ID: "j", Value: fp(90.0049)},                // 90.00: ties with c
	}
	RankRows(rows)
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s:%d", r.ID, r.Rank))
	}
	want := "[c:1 j:1 a:3 b:3 d:5 h:5 i:7 0:0 e:0 f:0 g:0]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v\nwant %s", got, want)
	}
}

func TestRankRowsSimpleTie(t *testing.T) {
	rows := []RankRow{{ID: "x", Value: fp(80)}, {ID: "y", Value: fp(85.004)}, {ID: "z", Value: fp(84.996)}, {ID: "w", Value: fp(70)}}
	RankRows(rows)
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s:%d", r.ID, r.Rank))
	}
	if fmt.Sprint(got) != "[y:1 z:1 x:3 w:4]" {
		t.Fatalf("got %v", got)
	}
}

func TestComparePrevious(t *testing.T) {
	prev := []RankRow{{ID: "a", Value: fp(80)}, {ID: "b", Value: fp(90)}, {ID: "c", Value: fp(70), Insufficient: true}, {ID: "d", Value: fp(60)}}
	RankRows(prev) // b 1, a 2, d 3, c 0
	cur := []RankRow{{ID: "a", Value: fp(95)}, {ID: "b", Value: fp(85)}, {ID: "c", Value: fp(75)}, {ID: "e", Value: fp(50)}, {ID: "d", Suppressed: true}}
	RankRows(cur) // a 1, b 2, c 3, e 4, d 0
	ComparePrevious(cur, prev)
	type res struct {
		prevV       string
		prevR, chg  int
		valueChange string
	}
	want := map[string]res{
		"a": {"80.000000", 2, 1, "15.000000"},
		"b": {"90.000000", 1, -1, "-5.000000"},
		"c": {"70.000000", 0, 0, "5.000000"}, // previously insufficient: no rank change
		"e": {"nil", 0, 0, "nil"},            // new
		"d": {"60.000000", 3, 0, "nil"},      // suppressed now
	}
	for _, r := range cur {
		got := res{fmtp(r.PreviousValue), r.PreviousRank, r.RankChange, fmtp(r.ValueChange)}
		if got != want[r.ID] {
			t.Errorf("%s: got %+v, want %+v", r.ID, got, want[r.ID])
		}
	}
	if m := MeanOfRanked(cur); !approx(m, fp((95+85+75+50)/4.0)) {
		t.Errorf("mean %s", fmtp(m))
	}
	if MeanOfRanked(nil) != nil {
		t.Error("mean of nothing")
	}
}
