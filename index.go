package sipas

import (
	"fmt"
)

// DefaultDisclosure is the disclosure threshold used when
// Thresholds.Disclosure is not set: a unit with fewer respondents is
// suppressed entirely.
const DefaultDisclosure = 10

// MinDisclosure is the smallest disclosure threshold Thresholds.Validate
// accepts for a production configuration.
const MinDisclosure = 5

// Thresholds are the sample-size rules applied to every figure.
type Thresholds struct {
	// MinSample flags a figure whose n is below it (and above zero) as
	// insufficient: it is shown, but never ranked and never averaged into
	// a national mean.
	MinSample int64
	// Disclosure suppresses a whole unit (every figure of it) with fewer
	// respondents than this; 0 means DefaultDisclosure.
	Disclosure int64
}

// EffectiveDisclosure is the disclosure threshold k in force (Disclosure,
// or DefaultDisclosure when unset).
func (th Thresholds) EffectiveDisclosure() int64 { return th.disclosure() }

// disclosure returns the effective disclosure threshold.
func (th Thresholds) disclosure() int64 {
	if th.Disclosure <= 0 {
		return DefaultDisclosure
	}
	return th.Disclosure
}

// Validate checks a production configuration: MinSample must not be
// negative and Disclosure, when set, must be at least MinDisclosure.
func (th Thresholds) Validate() error {
	var vs []Violation
	if th.MinSample < 0 {
		vs = append(vs, Violation{Field: "min_sample", Reason: "INVALID_THRESHOLD", Description: "must not be negative"})
	}
	if th.Disclosure != 0 && th.Disclosure < MinDisclosure {
		vs = append(vs, Violation{Field: "disclosure", Reason: "INVALID_THRESHOLD",
			Description: fmt.Sprintf("must be at least %d (or 0 for the default %d)", MinDisclosure, DefaultDisclosure)})
	}
	if len(vs) > 0 {
		return Invalid("validate thresholds", vs...)
	}
	return nil
}

// Suppressed reports whether a unit with the given number of respondents is
// suppressed: 0 < respondents < k. A unit without respondents is not
// suppressed but has no data (no values, N zero, neither flag): "no data",
// "suppressed" and "insufficient" are three states readers must be able to
// tell apart, and a count of zero discloses nobody.
func (th Thresholds) Suppressed(respondents int64) bool {
	return respondents > 0 && respondents < th.disclosure()
}

// insufficient reports whether a figure with sample n is flagged.
func (th Thresholds) insufficient(n int64) bool {
	return n > 0 && n < th.MinSample
}

// NodeValue is one computed figure of a formula tree: a formula node or an
// item, with its sample size, 95% interval and flags. Values are percentages
// (0..100); a nil Value means the figure has no value (no valid answer, an
// aggregation of "none", or suppression).
type NodeValue struct {
	Code    string
	LabelVi string
	LabelEn string
	Kind    Kind
	IsItem  bool
	Role    Role // items only
	Value   *float64
	// N is the sample size: for an item its valid answers, for a node the
	// respondents with at least one valid answer under it.
	N int64
	// Positive and Valid are the item's answer counts; zero for nodes.
	Positive, Valid int64
	CILow, CIHigh   *float64
	Insufficient    bool
	Suppressed      bool
	// Children are the child nodes, then the items directly under the node
	// (content and overall, in definition order).
	Children []*NodeValue
}

// ComputeTree computes the formula trees of q over the counters t, one tree
// per root, in root order.
//
//   - Item: Value = 100 × positive / valid, nil when valid = 0; the interval
//     is the Wilson score interval (see Wilson); N = valid.
//   - Node, aggregation mean: the arithmetic mean of the values of the child
//     nodes and of the items directly under it whose role is not overall,
//     counting only those that have a value. Overall items are listed among
//     the children but never averaged in. No child with a value: no value.
//   - Node, aggregation weighted_mean: the same children, weighted by
//     Node.Weight for child nodes and 1 for items, the weights of the
//     children that have a value renormalised to sum to one.
//   - Node, aggregation none: no value and no interval.
//   - Node N is t.NodeN[node.Index].
//   - Node interval: the (weighted) mean of the averaged children's interval
//     bounds, using the same weights as the value. This is the exact interval
//     of the mean when the children are perfectly correlated, and is wider
//     than the interval under independence, so it is conservative; survey
//     answers of one respondent are strongly correlated, which makes the
//     independence interval too narrow.
//   - Insufficient: 0 < N < th.MinSample.
//   - Suppression: when 0 < t.Respondents < the disclosure threshold
//     (default 10) every figure of every tree is
//     suppressed: Value and interval nil, N, Positive and Valid zero and
//     Suppressed true, so that nothing of a small unit can be read back.
//
// ComputeTree knows one unit only; complementary suppression, which depends
// on every figure published beside and around the unit, is applied by the
// Engine (see disclosure.go).
func ComputeTree(q *Questionnaire, t *Tally, th Thresholds) []*NodeValue {
	return computeTree(q, t, th, false)
}

// computeTree is ComputeTree; force suppresses the unit whatever its
// respondents.
func computeTree(q *Questionnaire, t *Tally, th Thresholds, force bool) []*NodeValue {
	c := treeComputer{q: q, t: t, th: th, suppressed: force || th.Suppressed(t.Respondents)}
	out := make([]*NodeValue, 0, len(q.Roots))
	for _, r := range q.Roots {
		out = append(out, c.node(r))
	}
	return out
}

type treeComputer struct {
	q          *Questionnaire
	t          *Tally
	th         Thresholds
	suppressed bool
}

func (c *treeComputer) item(it *Item) *NodeValue {
	v := &NodeValue{Code: it.Code, LabelVi: it.LabelVi, LabelEn: it.LabelEn, Kind: it.Kind, IsItem: true, Role: it.Role}
	if c.suppressed {
		v.Suppressed = true
		return v
	}
	valid, positive := c.t.ItemCounts(it)
	v.N, v.Valid, v.Positive = valid, valid, positive
	if valid > 0 {
		x := 100 * float64(positive) / float64(valid)
		v.Value = &x
		if lo, hi, ok := Wilson(positive, valid); ok {
			v.CILow, v.CIHigh = &lo, &hi
		}
	}
	v.Insufficient = c.th.insufficient(valid)
	return v
}

func (c *treeComputer) node(n *Node) *NodeValue {
	v := &NodeValue{Code: n.Code, LabelVi: n.LabelVi, LabelEn: n.LabelEn, Kind: n.Kind,
		Children: make([]*NodeValue, 0, len(n.Children)+len(n.Items))}
	var sum, lo, hi, wsum float64
	add := func(cv *NodeValue, w float64) {
		if cv.Value == nil || w <= 0 {
			return
		}
		sum += w * *cv.Value
		wsum += w
		if cv.CILow != nil && cv.CIHigh != nil {
			lo += w * *cv.CILow
			hi += w * *cv.CIHigh
		} else {
			lo += w * *cv.Value
			hi += w * *cv.Value
		}
	}
	for _, ch := range n.Children {
		cv := c.node(ch)
		v.Children = append(v.Children, cv)
		w := 1.0
		if n.Aggregation == AggregationWeightedMean {
			w = ch.Weight
		}
		add(cv, w)
	}
	for _, it := range n.Items {
		cv := c.item(it)
		v.Children = append(v.Children, cv)
		if it.Role != RoleOverall {
			add(cv, 1)
		}
	}
	if c.suppressed {
		v.Suppressed = true
		return v
	}
	if n.Index >= 0 && n.Index < len(c.t.NodeN) {
		v.N = c.t.NodeN[n.Index]
	}
	v.Insufficient = c.th.insufficient(v.N)
	switch n.Aggregation {
	case AggregationNone:
		return v
	}
	if wsum > 0 {
		x, l, h := sum/wsum, lo/wsum, hi/wsum
		v.Value, v.CILow, v.CIHigh = &x, &l, &h
	}
	return v
}

// Find returns the figure with the given code in the trees (depth first), or
// nil.
func Find(trees []*NodeValue, code string) *NodeValue {
	for _, t := range trees {
		if t.Code == code {
			return t
		}
		if f := Find(t.Children, code); f != nil {
			return f
		}
	}
	return nil
}

// Walk calls fn for every figure of the trees, parents before children.
func Walk(trees []*NodeValue, fn func(v *NodeValue)) {
	for _, t := range trees {
		fn(t)
		Walk(t.Children, fn)
	}
}
