package sipas

import (
	"math"
	"sort"
)

// RankRow is one ranked unit (a province or a one-stop unit).
type RankRow struct {
	ID   string // province code, or unit id
	Name string
	// Value is the unit's figure for the ranked node; nil without a value
	// and when suppressed.
	Value *float64
	// CILow and CIHigh are the 95% interval of Value, nil without one.
	CILow, CIHigh *float64
	// Rank is the competition rank (1, 2, 2, 4), 0 for rows not ranked:
	// without a value, insufficient or suppressed.
	Rank         int
	N            int64
	Insufficient bool
	Suppressed   bool
	// PreviousValue and PreviousRank are the row's figures in the previous
	// period (nil / 0 when it had none there, or was not ranked).
	PreviousValue *float64
	PreviousRank  int
	// RankChange is PreviousRank − Rank: positive means up that many places.
	// It is 0 unless the row is ranked in both periods.
	RankChange int
	// ValueChange is Value − PreviousValue, nil unless both exist.
	ValueChange *float64
}

// Ranked reports whether the row takes part in the ranking.
func (r *RankRow) Ranked() bool { return r.Value != nil && !r.Insufficient && !r.Suppressed }

// rankKey is the value compared for ranking: the value rounded to two
// decimals, as an integer number of hundredths so that ties are exact.
func rankKey(v float64) int64 { return int64(math.Round(v * 100)) }

// Round2 rounds a percentage to the two decimals SIPAS is published with.
func Round2(v float64) float64 { return float64(rankKey(v)) / 100 }

// RankRows orders rows in place and sets Rank: the ranked rows (with a
// value, neither insufficient nor suppressed) by value descending, compared
// at two decimals, equal values sharing a rank and the next rank skipping
// (competition ranking 1, 2, 2, 4); ties, and then the unranked rows, which
// follow with rank 0, are ordered by ID.
func RankRows(rows []RankRow) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := &rows[i], &rows[j]
		ra, rb := a.Ranked(), b.Ranked()
		if ra != rb {
			return ra
		}
		if ra {
			ka, kb := rankKey(*a.Value), rankKey(*b.Value)
			if ka != kb {
				return ka > kb
			}
		}
		return a.ID < b.ID
	})
	for i := range rows {
		r := &rows[i]
		switch {
		case !r.Ranked():
			r.Rank = 0
		case i > 0 && rows[i-1].Ranked() && rankKey(*rows[i-1].Value) == rankKey(*r.Value):
			r.Rank = rows[i-1].Rank
		default:
			r.Rank = i + 1
		}
	}
}

// ComparePrevious fills the previous-period fields of rows from prev (a
// ranking of the previous period, already ranked), matching rows by ID.
func ComparePrevious(rows, prev []RankRow) {
	byID := make(map[string]*RankRow, len(prev))
	for i := range prev {
		byID[prev[i].ID] = &prev[i]
	}
	for i := range rows {
		r := &rows[i]
		r.PreviousValue, r.PreviousRank, r.RankChange, r.ValueChange = nil, 0, 0, nil
		p := byID[r.ID]
		if p == nil {
			continue
		}
		if p.Value != nil {
			pv := *p.Value
			r.PreviousValue = &pv
			if r.Value != nil {
				d := *r.Value - pv
				r.ValueChange = &d
			}
		}
		r.PreviousRank = p.Rank
		if r.Rank > 0 && p.Rank > 0 {
			r.RankChange = p.Rank - r.Rank
		}
	}
}

// MeanOfRanked returns the unweighted mean of the ranked rows' values (the
// national figure of the SIPAS method: every province counts once), or nil
// when no row is ranked.
func MeanOfRanked(rows []RankRow) *float64 {
	var s float64
	var n int
	for i := range rows {
		if rows[i].Ranked() {
			s += *rows[i].Value
			n++
		}
	}
	if n == 0 {
		return nil
	}
	m := s / float64(n)
	return &m
}
