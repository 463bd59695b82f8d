package export

import (
	"fmt"
	"strings"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// State is what a figure is: shown, or one of the three reasons it is not
// (fully) shown. They are kept apart everywhere: "no data" means nobody
// answered; "suppressed" means fewer than k respondents, so nothing of the
// unit is published; "insufficient" means a value is shown but its sample
// is below the minimum, so it is not ranked.
type State string

// States.
const (
	StateOK           State = "ok"
	StateNoData       State = "no_data"
	StateSuppressed   State = "suppressed"
	StateInsufficient State = "insufficient"
	// StateNotComputed is a node whose aggregation is "none" (a heading
	// such as the expectation tree): it has respondents but no value.
	StateNotComputed State = "not_computed"
)

// StateOf classifies a figure from the API's fields.
func StateOf(value *float64, n int64, insufficient, suppressed bool) State {
	switch {
	case suppressed:
		return StateSuppressed
	case insufficient:
		return StateInsufficient
	case value == nil && n == 0:
		return StateNoData
	case value == nil:
		return StateNotComputed
	}
	return StateOK
}

// Label is the state as a reader reads it; k and minSample complete it.
func (s State) Label(l Lang, k, minSample int64) string {
	switch s {
	case StateNoData:
		return l.pick("Không có dữ liệu", "No data")
	case StateSuppressed:
		return l.pick(fmt.Sprintf("Ẩn: dưới %d người trả lời", k), fmt.Sprintf("Suppressed: fewer than %d respondents", k))
	case StateInsufficient:
		return l.pick(fmt.Sprintf("Mẫu chưa đủ: n < %d", minSample), fmt.Sprintf("Insufficient sample: n < %d", minSample))
	case StateNotComputed:
		return l.pick("Không tính giá trị", "Not computed")
	}
	return ""
}

// PeriodString is a period as YYYY, YYYY-Qn or YYYY-MM.
func PeriodString(p *sipasv1.Period) string {
	switch {
	case p == nil:
		return ""
	case p.Quarter != 0:
		return fmt.Sprintf("%d-Q%d", p.Year, p.Quarter)
	case p.Month != 0:
		return fmt.Sprintf("%d-%02d", p.Year, p.Month)
	}
	return fmt.Sprint(p.Year)
}

// BoundariesName is "as_collected" or "current".
func BoundariesName(b sipasv1.Boundaries) string {
	if b == sipasv1.Boundaries_BOUNDARIES_CURRENT {
		return "current"
	}
	return "as_collected"
}

// ChannelName is a channel's lower-case name, "all" for every channel.
func ChannelName(c sipasv1.Channel) string {
	if c == sipasv1.Channel_CHANNEL_UNSPECIFIED {
		return "all"
	}
	return strings.ToLower(strings.TrimPrefix(c.String(), "CHANNEL_"))
}

// Context is what a table was computed for: it becomes the header block.
type Context struct {
	Questionnaire  string
	FormulaVersion string
	Scope          string
	Node           string
	Period         string
	Boundaries     sipasv1.Boundaries
	Channel        sipasv1.Channel
	Disclosure     int64
	MinSample      int64
}

// Meta is the header block of a table computed for c.
func (c Context) Meta() []Meta {
	m := []Meta{
		{"questionnaire", "Bộ câu hỏi", "Questionnaire", c.Questionnaire},
		{"formula_version", "Phiên bản công thức", "Formula version", c.FormulaVersion},
	}
	if c.Scope != "" {
		m = append(m, Meta{"scope", "Phạm vi", "Scope", c.Scope})
	}
	if c.Node != "" {
		m = append(m, Meta{"node", "Chỉ số", "Figure", c.Node})
	}
	m = append(m,
		Meta{"period", "Kỳ", "Period", c.Period},
		Meta{"boundaries", "Địa giới", "Boundaries", BoundariesName(c.Boundaries)},
		Meta{"channel", "Kênh", "Channel", ChannelName(c.Channel)},
		Meta{"disclosure", "Quy tắc công bố", "Disclosure rules", fmt.Sprintf(
			"k=%d: đơn vị dưới %d người trả lời bị ẩn (kể cả ẩn bổ sung); n<%d: mẫu chưa đủ, không xếp hạng / "+
				"k=%d: units with fewer than %d respondents are suppressed (with complementary suppression); n<%d: insufficient sample, not ranked",
			c.Disclosure, c.Disclosure, c.MinSample, c.Disclosure, c.Disclosure, c.MinSample)},
	)
	return m
}

// stateCols are the state columns every figure table ends with.
var stateCols = []Column{
	{"state", "Trạng thái (mã)", "State (code)", Text},
	{"state_label", "Trạng thái", "State", Text},
}

func stateCells(s State, c Context, l Lang) []any {
	if s == StateOK {
		return []any{string(s), ""}
	}
	return []any{string(s), s.Label(l, c.Disclosure, c.MinSample)}
}

// nOf is the n cell: empty when suppressed (the count is disclosive).
func nOf(n int64, suppressed bool) any {
	if suppressed {
		return nil
	}
	return n
}

// RankingContext is the context of a ranking; scope names the ranked set.
func RankingContext(rk *sipasv1.Ranking, scope string) Context {
	return Context{Questionnaire: rk.GetQuestionnaireId(), FormulaVersion: rk.GetFormulaVersion(), Scope: scope,
		Node: rk.GetNodeCode(), Period: PeriodString(rk.GetPeriod()), Boundaries: rk.GetBoundaries(), Channel: rk.GetChannel(),
		Disclosure: rk.GetDisclosureThreshold(), MinSample: rk.GetMinimumSample()}
}

// RankingTable is a ranking of provinces (units false) or of a province's
// units, with the previous period beside it. A suppressed unit is not
// named at all: its row is left out and only counted in the header block
// (suppressed_units); a suppressed province, whose existence is public,
// keeps its row with the state "suppressed" and no figures.
func RankingTable(rk *sipasv1.Ranking, c Context, units bool, l Lang) *Table {
	idVi, idEn, name := "Mã tỉnh", "Province code", "ranking"
	titleVi, titleEn := "Xếp hạng các tỉnh, thành phố", "Ranking of provinces"
	if units {
		idVi, idEn, name = "Mã đơn vị", "Unit id", "units"
		titleVi, titleEn = "Xếp hạng các đơn vị", "Ranking of units"
	}
	t := &Table{Name: name, TitleVi: titleVi, TitleEn: titleEn, Meta: append(c.Meta(),
		Meta{"previous_period", "Kỳ trước", "Previous period", PeriodString(rk.GetPreviousPeriod())},
		Meta{"mean", "Trung bình (không trọng số)", "Unweighted mean", fmtOpt(rk.Mean)},
		Meta{"pooled", "Gộp chung", "Pooled", fmtOpt(rk.Pooled)},
		flaggedExcludedMeta(rk.GetFlaggedExcluded()), flaggedIncludedMeta(rk.GetFlaggedIncluded()),
	), Columns: append([]Column{
		{"rank", "Hạng", "Rank", Integer},
		{"id", idVi, idEn, Text},
		{"name", "Tên", "Name", Text},
		{"value", "Giá trị (%)", "Value (%)", Number},
		{"ci_low", "Cận dưới 95%", "95% CI low", Number},
		{"ci_high", "Cận trên 95%", "95% CI high", Number},
		{"n", "n", "n", Integer},
		{"previous_rank", "Hạng kỳ trước", "Previous rank", Integer},
		{"rank_change", "Thay đổi hạng (+ tăng)", "Rank change (+ up)", Integer},
		{"previous_value", "Giá trị kỳ trước", "Previous value", Number},
		{"value_change", "Thay đổi giá trị", "Value change", Number},
	}, stateCols...)}
	hidden := 0
	for _, r := range rk.GetRows() {
		if units && r.Suppressed {
			hidden++
			continue
		}
		var rank, prevRank, change any
		if r.Rank > 0 {
			rank = r.Rank
		}
		if r.PreviousRank > 0 {
			prevRank = r.PreviousRank
			if r.Rank > 0 {
				change = r.RankChange
			}
		}
		row := []any{rank, r.Id, r.Name, r.Value, r.CiLow, r.CiHigh, nOf(r.N, r.Suppressed), prevRank, change, r.PreviousValue, r.ValueChange}
		t.Add(append(row, stateCells(StateOf(r.Value, r.N, r.Insufficient, r.Suppressed), c, l)...)...)
	}
	if units {
		t.Meta = append(t.Meta, Meta{"suppressed_units", "Số đơn vị bị ẩn", "Units suppressed", fmt.Sprint(hidden)})
	}
	return t
}

// ReportContext is the context of an index report.
func ReportContext(rep *sipasv1.IndexReport) Context {
	return Context{Questionnaire: rep.GetQuestionnaireId(), FormulaVersion: rep.GetFormulaVersion(), Scope: rep.GetScopeName(),
		Period: PeriodString(rep.GetPeriod()), Boundaries: rep.GetBoundaries(), Channel: rep.GetChannel(),
		Disclosure: rep.GetDisclosureThreshold(), MinSample: rep.GetMinimumSample()}
}

// TreeTable is an index report's formula trees, one row per node or item
// in depth-first order, with its level (0 for a root) and parent code.
func TreeTable(rep *sipasv1.IndexReport, l Lang) *Table {
	return SubtreeTable(rep, rep.GetRoots(), -1, "tree", "Cây chỉ số", "Index tree", l)
}

// SubtreeTable is TreeTable for some nodes of the report's trees (such as
// the five service elements), down to maxLevel below them (-1: all). Level
// and parent are those of the whole tree.
func SubtreeTable(rep *sipasv1.IndexReport, nodes []*sipasv1.IndexNode, maxLevel int, name, titleVi, titleEn string, l Lang) *Table {
	c := ReportContext(rep)
	type place struct {
		root, parent string
		level        int
	}
	where := map[*sipasv1.IndexNode]place{}
	WalkTree(rep.GetRoots(), func(n *sipasv1.IndexNode, root, parent string, level int) { where[n] = place{root, parent, level} })
	respondents := fmt.Sprint(rep.GetRespondents())
	switch {
	case rep.GetSuppressed():
		respondents = StateSuppressed.Label(l, c.Disclosure, c.MinSample)
	case rep.GetRespondents() == 0:
		respondents = StateNoData.Label(l, c.Disclosure, c.MinSample)
	}
	t := &Table{Name: name, TitleVi: titleVi, TitleEn: titleEn, Meta: append(c.Meta(),
		Meta{"respondents", "Số người trả lời", "Respondents", respondents},
		Meta{"national_mean", "Trung bình các tỉnh", "Mean of provinces", fmtOpt(rep.NationalMean)},
		flaggedExcludedMeta(rep.GetFlaggedExcluded()), flaggedIncludedMeta(rep.GetFlaggedIncluded()),
	), Columns: append([]Column{
		{"tree", "Cây", "Tree", Text},
		{"level", "Cấp", "Level", Integer},
		{"code", "Mã", "Code", Text},
		{"parent", "Mã cấp trên", "Parent code", Text},
		{"type", "Loại", "Type", Text},
		{"label_vi", "Nội dung", "Label (Vietnamese)", Text},
		{"label_en", "Nội dung (tiếng Anh)", "Label", Text},
		{"value", "Giá trị (%)", "Value (%)", Number},
		{"ci_low", "Cận dưới 95%", "95% CI low", Number},
		{"ci_high", "Cận trên 95%", "95% CI high", Number},
		{"n", "n", "n", Integer},
		{"positive", "Số hài lòng", "Positive answers", Integer},
		{"valid", "Số trả lời hợp lệ", "Valid answers", Integer},
	}, stateCols...)}
	WalkTree(nodes, func(n *sipasv1.IndexNode, _, _ string, depth int) {
		if maxLevel >= 0 && depth > maxLevel {
			return
		}
		pl := where[n]
		root, parent, level := pl.root, pl.parent, pl.level
		typ := "node"
		if n.IsItem {
			typ = "item"
			if n.Role == sipasv1.ItemRole_ITEM_ROLE_OVERALL {
				typ = "item_overall"
			}
		}
		var pos, valid any
		if n.IsItem && !n.Suppressed {
			pos, valid = n.Positive, n.Valid
		}
		row := []any{root, level, n.Code, parent, typ, n.LabelVi, n.LabelEn, n.Value, n.CiLow, n.CiHigh, nOf(n.N, n.Suppressed), pos, valid}
		t.Add(append(row, stateCells(StateOf(n.Value, n.N, n.Insufficient, n.Suppressed), c, l)...)...)
	})
	return t
}

// WalkTree visits every node of the trees depth-first, parents first, with
// its root's code, its parent's code ("" for a root) and its level.
func WalkTree(roots []*sipasv1.IndexNode, fn func(n *sipasv1.IndexNode, root, parent string, level int)) {
	var walk func(n *sipasv1.IndexNode, root, parent string, level int)
	walk = func(n *sipasv1.IndexNode, root, parent string, level int) {
		fn(n, root, parent, level)
		for _, ch := range n.Children {
			walk(ch, root, n.Code, level+1)
		}
	}
	for _, r := range roots {
		walk(r, r.Code, "", 0)
	}
}

// SeriesContext is the context of a series; period is "from–to".
func SeriesContext(s *sipasv1.Series, scope string, from, to *sipasv1.Period, b sipasv1.Boundaries, ch sipasv1.Channel) Context {
	return Context{Questionnaire: s.GetQuestionnaireId(), FormulaVersion: s.GetFormulaVersion(), Scope: scope, Node: s.GetNodeCode(),
		Period: PeriodString(from) + " – " + PeriodString(to), Boundaries: b, Channel: ch,
		Disclosure: s.GetDisclosureThreshold(), MinSample: s.GetMinimumSample()}
}

// SeriesTable is one figure over consecutive periods.
func SeriesTable(s *sipasv1.Series, c Context, l Lang) *Table {
	var excluded, included int64
	for _, p := range s.GetPoints() {
		excluded += p.GetFlaggedExcluded()
		included += p.GetFlaggedIncluded()
	}
	t := &Table{Name: "series", TitleVi: "Diễn biến theo thời gian", TitleEn: "Time series", Meta: append(c.Meta(),
		flaggedExcludedMeta(excluded), flaggedIncludedMeta(included)),
		Columns: append([]Column{
			{"period", "Kỳ", "Period", Text},
			{"value", "Giá trị (%)", "Value (%)", Number},
			{"ci_low", "Cận dưới 95%", "95% CI low", Number},
			{"ci_high", "Cận trên 95%", "95% CI high", Number},
			{"n", "n", "n", Integer},
		}, stateCols...)}
	for _, p := range s.GetPoints() {
		row := []any{PeriodString(p.Period), p.Value, p.CiLow, p.CiHigh, nOf(p.N, p.Suppressed)}
		t.Add(append(row, stateCells(StateOf(p.Value, p.N, p.Insufficient, p.Suppressed), c, l)...)...)
	}
	return t
}

// flaggedExcludedMeta and flaggedIncludedMeta say how many responses
// flagged for data quality the figures left out, or count (include_flagged).
func flaggedExcludedMeta(n int64) Meta {
	return Meta{"flagged_excluded", "Phiếu bị gắn cờ không tính", "Flagged responses left out", fmt.Sprint(n)}
}

func flaggedIncludedMeta(n int64) Meta {
	return Meta{"flagged_included", "Phiếu bị gắn cờ có tính", "Flagged responses included", fmt.Sprint(n)}
}

// WeakContext is the context of a weak-points list.
func WeakContext(w *sipasv1.WeakPoints, scope string, b sipasv1.Boundaries) Context {
	return Context{Questionnaire: w.GetQuestionnaireId(), FormulaVersion: w.GetFormulaVersion(), Scope: scope,
		Period: PeriodString(w.GetPeriod()), Boundaries: b, Disclosure: w.GetDisclosureThreshold(), MinSample: w.GetMinimumSample()}
}

// WeakTable lists a province's lowest figures and largest drops, one list
// column telling them apart.
func WeakTable(w *sipasv1.WeakPoints, c Context) *Table {
	t := &Table{Name: "weak_points", TitleVi: "Điểm yếu", TitleEn: "Weak points", Meta: append(c.Meta(),
		Meta{"previous_period", "Kỳ trước", "Previous period", PeriodString(w.GetPreviousPeriod())},
		flaggedExcludedMeta(w.GetFlaggedExcluded()), flaggedIncludedMeta(w.GetFlaggedIncluded())),
		Columns: []Column{
			{"list", "Danh sách", "List", Text},
			{"level", "Cấp", "Level", Text},
			{"code", "Mã", "Code", Text},
			{"label_vi", "Nội dung", "Label (Vietnamese)", Text},
			{"label_en", "Nội dung (tiếng Anh)", "Label", Text},
			{"value", "Giá trị (%)", "Value (%)", Number},
			{"n", "n", "n", Integer},
			{"previous_value", "Giá trị kỳ trước", "Previous value", Number},
			{"change", "Thay đổi", "Change", Number},
			{"national_value", "Toàn quốc", "National", Number},
		}}
	for _, part := range []struct {
		name string
		rows []*sipasv1.WeakPoint
	}{{"lowest", w.GetLowest()}, {"largest_drops", w.GetLargestDrops()}} {
		for _, r := range part.rows {
			t.Add(part.name, r.Level, r.Code, r.LabelVi, r.LabelEn, r.Value, r.N, r.PreviousValue, r.Change, r.NationalValue)
		}
	}
	return t
}

func fmtOpt(v *float64) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf("%.2f", *v)
}

// Pair is a satisfaction group and the expectation group of the same code.
type Pair struct {
	Satisfaction, Expectation *sipasv1.IndexNode
}

// Pairs pairs each group of the expectation tree (the root with code
// expectationRoot) with the satisfaction group of the same code, where the
// questionnaire has both.
func Pairs(rep *sipasv1.IndexReport, expectationRoot string) []Pair {
	sat := map[string]*sipasv1.IndexNode{}
	var exp *sipasv1.IndexNode
	for _, r := range rep.GetRoots() {
		switch {
		case r.Code == "SIPAS":
			WalkTree([]*sipasv1.IndexNode{r}, func(n *sipasv1.IndexNode, _, _ string, _ int) {
				if !n.IsItem {
					sat[n.Code] = n
				}
			})
		case expectationRoot != "" && r.Code == expectationRoot:
			exp = r
		}
	}
	if exp == nil {
		return nil
	}
	var out []Pair
	for _, g := range exp.Children {
		if s := sat[g.Code]; s != nil && !g.IsItem {
			out = append(out, Pair{Satisfaction: s, Expectation: g})
		}
	}
	return out
}

// ExpectationTable lists, per group, its satisfaction beside each of the
// group's expectation items.
func ExpectationTable(rep *sipasv1.IndexReport, pairs []Pair, l Lang) *Table {
	c := ReportContext(rep)
	t := &Table{Name: "expectation", TitleVi: "Hài lòng bên cạnh mong đợi", TitleEn: "Satisfaction beside expectation", Meta: c.Meta(),
		Columns: append([]Column{
			{"group", "Nhóm", "Group", Text},
			{"satisfaction_label_vi", "Nội dung hài lòng", "Satisfaction (Vietnamese)", Text},
			{"satisfaction_label_en", "Nội dung hài lòng (tiếng Anh)", "Satisfaction", Text},
			{"satisfaction_value", "Hài lòng (%)", "Satisfaction (%)", Number},
			{"expectation_code", "Mã mong đợi", "Expectation code", Text},
			{"expectation_label_vi", "Mong đợi", "Expectation (Vietnamese)", Text},
			{"expectation_label_en", "Mong đợi (tiếng Anh)", "Expectation", Text},
			{"expectation_value", "Tỷ lệ mong đợi (%)", "Share expecting (%)", Number},
			{"n", "n", "n", Integer},
		}, stateCols...)}
	for _, p := range pairs {
		s := p.Satisfaction
		for _, it := range p.Expectation.Children {
			row := []any{p.Expectation.Code, s.LabelVi, s.LabelEn, s.Value, it.Code, it.LabelVi, it.LabelEn, it.Value, nOf(it.N, it.Suppressed)}
			t.Add(append(row, stateCells(StateOf(it.Value, it.N, it.Insufficient, it.Suppressed), c, l)...)...)
		}
	}
	return t
}
