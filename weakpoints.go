package sipas

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The parts of Engine.WeakPoints that do not depend on the query: which
// figures are listed, how a figure becomes a row, and the orders.

// weakFigures returns the figures WeakPoints lists from t — every node and
// item under the satisfaction and assessment roots — by figureKey. force
// withholds them all (complementary suppression).
func weakFigures(q *Questionnaire, t *Tally, th Thresholds, force bool) map[string]*NodeValue {
	m := map[string]*NodeValue{}
	for _, root := range computeTree(q, t, th, force) {
		if root.Kind != KindSatisfaction && root.Kind != KindAssessment {
			continue
		}
		Walk(root.Children, func(v *NodeValue) { m[figureKey(v)] = v })
	}
	return m
}

// usable reports whether a figure has a value that may be listed: present,
// sufficient and not suppressed.
func usable(v *NodeValue) bool { return v != nil && v.Value != nil && !v.Insufficient && !v.Suppressed }

// weakPoint is the row of a usable figure v (of unit, "" for the scope),
// with the national figure of the same node from national beside it unless
// that is withheld.
func weakPoint(unit string, v *NodeValue, national map[string]*NodeValue) WeakPoint {
	wp := WeakPoint{UnitID: unit, Code: v.Code, LabelVi: v.LabelVi, LabelEn: v.LabelEn, Kind: v.Kind, IsItem: v.IsItem,
		Value: *v.Value, N: v.N, CILow: v.CILow, CIHigh: v.CIHigh}
	if nv := national[figureKey(v)]; nv != nil && !nv.Suppressed {
		wp.National = nv.Value
	}
	return wp
}

// sortByValue orders rows lowest value first, then by unit and code.
func sortByValue(rows []WeakPoint) {
	// The rows are large: they are sorted by pointer, then put in order
	// (sort.SliceStable swapping the rows themselves through reflection took
	// several ms for the unit rows of a province of 100 units). The order is
	// the same: a stable sort by the same comparison.
	ptrs := make([]*WeakPoint, len(rows))
	for i := range rows {
		ptrs[i] = &rows[i]
	}
	slices.SortStableFunc(ptrs, func(a, b *WeakPoint) int {
		if a.Value != b.Value {
			return cmp.Compare(a.Value, b.Value)
		}
		if a.UnitID != b.UnitID {
			return strings.Compare(a.UnitID, b.UnitID)
		}
		return strings.Compare(a.Code, b.Code)
	})
	sorted := make([]WeakPoint, len(rows))
	for i, r := range ptrs {
		sorted[i] = *r
	}
	copy(rows, sorted)
}

// sortByDrop orders drops largest fall first, then by code.
func sortByDrop(rows []WeakPoint) {
	sort.SliceStable(rows, func(i, j int) bool {
		if *rows[i].Change != *rows[j].Change {
			return *rows[i].Change < *rows[j].Change
		}
		return rows[i].Code < rows[j].Code
	})
}

// figureKey identifies a figure within a questionnaire: node codes repeat
// across kinds, item codes are unique.
func figureKey(v *NodeValue) string {
	if v.IsItem {
		return "i:" + v.Code
	}
	return fmt.Sprintf("n%d:%s", v.Kind, v.Code)
}

func sortedKeys(m map[string]*NodeValue) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func truncate(rows []WeakPoint, n int) []WeakPoint {
	if len(rows) > n {
		return rows[:n]
	}
	return rows
}
