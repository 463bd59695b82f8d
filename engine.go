package sipas

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// CellSource gives the engine the aggregate cells of a questionnaire.
type CellSource interface {
	// EachCell calls fn for every cell of the questionnaire whose month is
	// in fromMonth..toMonth (both year*100+month, inclusive). fn must neither
	// retain nor modify t.
	EachCell(questionnaireID string, fromMonth, toMonth int, fn func(k CellKey, t *Tally))
}

// CellQuery narrows a read of cells to what a query needs.
type CellQuery struct {
	QuestionnaireID    string
	FromMonth, ToMonth int // year*100+month, inclusive
	// Units asks for unit cells too (province-level cells always come).
	Units bool
	// UnitProvinceIDs, when not nil, limits the unit cells to those of
	// these provinces (Province.ID).
	UnitProvinceIDs []string
	// Detail, when not nil, tells the cells whose counters the reader
	// needs; the others may be passed with their respondents alone (every
	// other counter zero), which spares decoding them: a query reads whole
	// years for disclosure control, which counts respondents only. A
	// source may ignore it and pass every cell whole.
	Detail func(k CellKey) bool
}

// CellQuerier is a CellSource that can read only the cells a query needs,
// and fail: the store reads cells by key range from a bounded cache or its
// database. The engine uses it when the source has it.
type CellQuerier interface {
	// QueryCells calls fn for at least every cell cq selects (callers
	// filter), as of one instant between two commits. fn must neither
	// retain nor modify t.
	QueryCells(cq CellQuery, fn func(k CellKey, t *Tally)) error
}

// Engine answers index queries from aggregate cells. Its cost depends on the
// number of cells read (provinces × months × channels × units), never on the
// number of responses: each query makes one pass over the cells of its
// months, sums them into one Tally per reported unit, and computes each
// unit's formula tree once.
//
// # Disclosure control
//
// A figure (of a province, unit or the nation, for a period and channel)
// with 0 < respondents < k, the disclosure threshold
// (Thresholds.Disclosure, default 10), is suppressed (primary
// suppression): every figure withheld, counts zeroed, its respondent count
// reported as 0. Because figures overlap — a year and its months, all
// channels and each channel, a province and its units, a current province
// and the provinces as collected in it — a small figure could otherwise be
// recovered by subtraction. The engine therefore applies consistent
// complementary suppression (disclosure.go): over every split of every
// figure of the year the API can publish, the hidden parts of a published
// figure are none, or at least two holding at least k respondents; a
// hidden figure has a hidden part in every split. A figure so suppressed
// is suppressed everywhere it is published — Index, the rows of
// RankProvinces and RankUnits (also as the previous period of a later
// ranking), Series points, WeakPoints (as the scope, as a unit row, as the
// previous period and as the national figure), Ranking.Pooled — and is
// indistinguishable from a primarily suppressed one; it is left out of
// means (Ranking.Mean, Report.NationalMean) like one.
//
// A unit queried without a province (Scope.UnitID only) sums its cells of
// its own province lineage only: the cells of the provinces that are today
// part of the province the unit is registered in (Engine.Units), so a row
// filed under a unit of another province can never move the unit's figure.
//
// The rule is decided for a whole year from the respondent counts of its
// cells, the same way for every query, so every query for the same figure
// agrees. The query's one pass over the cells reads the whole years of
// its periods for it (unit cells only when the query is about units).
type Engine struct {
	Catalog    *Catalog
	Registry   *Registry
	Source     CellSource
	Thresholds Thresholds
	// Units tells the province of a registered unit, for the lineage rule
	// of unit-only queries; nil leaves those queries unrestricted (tools
	// that load cells without a unit registry).
	Units UnitDirectory
}

// UnitDirectory is the registry of service units, as the engine needs it.
type UnitDirectory interface {
	// UnitProvince returns the code of the (current) province a unit is
	// registered in, false for an unknown unit.
	UnitProvince(unitID string) (code string, ok bool)
}

// Scope is what an index is computed for: the nation, a province (by code),
// or a unit (by id, optionally within a province).
type Scope struct {
	ProvinceCode string
	UnitID       string
	Nation       bool
}

// Boundaries says which province boundaries a province-level query uses.
type Boundaries int

// Boundaries. Zero means as collected.
const (
	BoundariesUnspecified Boundaries = iota
	// BoundariesAsCollected reports the provinces as the responses were
	// collected. A province code then means every registry row with that
	// code valid in the period: in 2025, code 15 is Yên Bái until 2025-06-30
	// and Lào Cai from 2025-07-01, and both are counted under 15 (a code
	// re-used by the 2025 merger names one "as collected" unit per period,
	// whatever province it named). The scope is named after the row valid at
	// the end of the period. For periods spanning 2025-07-01, current
	// boundaries are usually what an analyst wants.
	BoundariesAsCollected
	// BoundariesCurrent folds every province row into the province it is now
	// part of (Registry.Current), so a new province compares its 2023 and
	// 2026 figures on the same footing. Only provinces valid today can be
	// asked for.
	BoundariesCurrent
)

// String is "as-collected" or "current" (the zero value reads as
// collected), as the command line writes it.
func (b Boundaries) String() string {
	if b == BoundariesCurrent {
		return "current"
	}
	return "as-collected"
}

// ParseBoundaries reads "as-collected" (or "as_collected", or "") and
// "current".
func ParseBoundaries(s string) (Boundaries, error) {
	switch strings.ToLower(s) {
	case "", "as-collected", "as_collected":
		return BoundariesAsCollected, nil
	case "current":
		return BoundariesCurrent, nil
	}
	return 0, Invalid("parse boundaries", Violation{Field: "boundaries", Reason: "INVALID_BOUNDARIES",
		Description: fmt.Sprintf("%q is not a boundaries choice; want as-collected or current", s)})
}

// MaxSeriesPoints is the most periods one Series query returns.
const MaxSeriesPoints = 120

// SIPASNodeCode is the code of the satisfaction root, the node ranked when a
// query names none.
const SIPASNodeCode = "SIPAS"

// NationNameVi is the scope name of the nation.
const NationNameVi = "Toàn quốc"

// Query selects what to compute.
type Query struct {
	QuestionnaireID string
	Scope           Scope
	Period          Period
	Boundaries      Boundaries
	Channel         Channel // 0: every channel
	// NodeCode names the figure to rank, chart or restrict the report to: a
	// formula node code or an item code. Node codes are looked up in the
	// satisfaction tree first, then assessment, then expectation (codes such
	// as "CC" exist in several trees). Empty means the satisfaction root
	// ("SIPAS").
	NodeCode string
	// Context, when set, bounds the work: a query whose context is done
	// stops reading cells and computing, and returns the context's error
	// (the server passes the call's context, whose deadline it caps).
	// It is a field rather than a parameter so that every query method
	// keeps one argument.
	Context context.Context
}

// Report is a unit's formula trees for a period.
type Report struct {
	QuestionnaireID string
	FormulaVersion  string
	Scope           Scope
	ScopeName       string
	Period          Period
	Boundaries      Boundaries
	Channel         Channel
	// Respondents is the number of responses counted; 0 when suppressed
	// (the count of a small unit is itself disclosive).
	Respondents int64
	Suppressed  bool
	// Roots are the formula trees, or only the subtree of Query.NodeCode
	// when one was given.
	Roots []*NodeValue
	// NationalMean is the unweighted mean, over the provinces (on the same
	// boundaries, channel and period), of the figure of Query.NodeCode
	// (default SIPAS) — the national figure of the SIPAS method. Provinces
	// that are suppressed, insufficient or without a value are left out.
	NationalMean *float64
	// Thresholds are the sample-size rules the report was computed under.
	Thresholds Thresholds
	// FlaggedExcluded and FlaggedIncluded count the responses flagged for
	// data quality that were left out of, or (on request) counted in, the
	// report. The Engine counts what its cells hold and leaves them zero;
	// the server, which keeps flagged responses apart, sets them.
	FlaggedExcluded, FlaggedIncluded int64
}

// Ranking is a ranking of provinces or units by one figure.
type Ranking struct {
	QuestionnaireID string
	FormulaVersion  string
	Period          Period
	PreviousPeriod  Period
	Boundaries      Boundaries
	Channel         Channel
	// ScopeName names the province whose units are ranked (RankUnits).
	ScopeName string
	NodeCode  string
	// Rows are the ranked rows by rank, then the unranked ones (rank 0).
	Rows []RankRow
	// Mean is the unweighted mean of the ranked rows' values.
	Mean *float64
	// Pooled is the figure of all respondents of the ranked population as
	// one unit (the nation's province-level cells, or the province).
	Pooled *float64
	// Thresholds are the sample-size rules the ranking was computed under.
	Thresholds Thresholds
	// FlaggedExcluded and FlaggedIncluded are set by the server, as on
	// Report.
	FlaggedExcluded, FlaggedIncluded int64
}

// SeriesPoint is one period of a time series.
type SeriesPoint struct {
	Period       Period
	Respondents  int64 // 0 when suppressed
	Value        *float64
	N            int64
	CILow        *float64
	CIHigh       *float64
	Insufficient bool
	Suppressed   bool
	// FlaggedExcluded and FlaggedIncluded are set by the server, as on
	// Report.
	FlaggedExcluded, FlaggedIncluded int64
}

// Series is one figure of a scope over consecutive periods.
type Series struct {
	QuestionnaireID string
	FormulaVersion  string
	Scope           Scope
	// NodeCode is the code of the figure charted: Query.NodeCode, or the
	// default figure's (the satisfaction root) when none was given.
	NodeCode   string
	From, To   Period
	Boundaries Boundaries
	Channel    Channel
	Points     []SeriesPoint
	// Thresholds are the sample-size rules the points were computed under.
	Thresholds Thresholds
}

// WeakPoint is one figure (an item or a group) of a unit, with the national
// pooled figure of the same node beside it.
type WeakPoint struct {
	UnitID  string // set on unit rows
	Code    string
	LabelVi string
	LabelEn string
	Kind    Kind
	IsItem  bool
	Value   float64
	N       int64
	CILow   *float64
	CIHigh  *float64
	// PreviousValue and Change (Value − PreviousValue) are nil when the
	// figure had no usable value in the previous period.
	PreviousValue *float64
	Change        *float64
	// National is the pooled national value of the same figure.
	National *float64
	// Scope is, on unit rows, the value of the same figure for the whole
	// queried scope (the province).
	Scope *float64
}

// WeakPoints lists a unit's lowest figures and largest drops.
type WeakPoints struct {
	QuestionnaireID string
	FormulaVersion  string
	Scope           Scope
	ScopeName       string
	Period          Period
	PreviousPeriod  Period
	Boundaries      Boundaries
	Channel         Channel
	Respondents     int64 // 0 when suppressed
	Suppressed      bool
	// Lowest are the figures by value, lowest first.
	Lowest []WeakPoint
	// Drops are the figures that fell against the previous period, largest
	// drop first.
	Drops []WeakPoint
	// Units are (unit, figure) rows of the units of a province scope, lowest
	// first.
	Units []WeakPoint
	// Thresholds are the sample-size rules the lists were computed under.
	Thresholds Thresholds
	// FlaggedExcluded and FlaggedIncluded are set by the server, as on
	// Report.
	FlaggedExcluded, FlaggedIncluded int64
}

// target is the figure a query asks for: a node or an item.
type target struct {
	node *Node
	item *Item
}

func (t target) code() string {
	if t.item != nil {
		return t.item.Code
	}
	return t.node.Code
}

// compute returns the target's figure over t, computing only its subtree.
// force suppresses it whatever the respondents (complementary suppression).
func (tg target) compute(q *Questionnaire, t *Tally, th Thresholds, force bool) *NodeValue {
	c := treeComputer{q: q, t: t, th: th, suppressed: force || th.Suppressed(t.Respondents)}
	if tg.item != nil {
		return c.item(tg.item)
	}
	return c.node(tg.node)
}

func defaultTarget(q *Questionnaire) (target, bool) {
	for _, r := range q.Roots {
		if r.Code == SIPASNodeCode && r.Kind == KindSatisfaction {
			return target{node: r}, true
		}
	}
	for _, r := range q.Roots {
		if r.Kind == KindSatisfaction {
			return target{node: r}, true
		}
	}
	if len(q.Roots) > 0 {
		return target{node: q.Roots[0]}, true
	}
	return target{}, false
}

func findTarget(q *Questionnaire, code string) (target, bool) {
	if code == "" {
		return defaultTarget(q)
	}
	for _, k := range []Kind{KindSatisfaction, KindAssessment, KindExpectation, KindUnspecified} {
		for _, n := range q.Nodes {
			if n.Kind == k && n.Code == code {
				return target{node: n}, true
			}
		}
	}
	for _, it := range q.Items {
		if it.Code == code {
			return target{item: it}, true
		}
	}
	return target{}, false
}

// unitLineageIDs returns the ids of the province rows whose unit cells a
// query reads, or nil for all: for a province scope, every row of the
// current provinces the queried code belongs to (on either boundaries), and
// for a unit-only scope with a unit directory, the rows of the unit's
// current province. Disclosure control decides unit figures per current
// province from exactly these cells, so every query of a current
// province's units — either boundaries, a ranking or a unit alone — sees the
// same set whatever the cell source (TestReadsDuringCommitsAndCheckpoints).
// This is exact because a unit's rows lie in its registered province's
// lineage (the ingestion rule), and a unit alone counts that lineage only.
func (p *prepared) unitLineageIDs() map[string]bool {
	var cur map[*Province]bool
	switch s := p.q.Scope; {
	case s.ProvinceCode != "":
		cur = map[*Province]bool{}
		for _, r := range p.ps.byID {
			if r.cur != nil && ((p.b == BoundariesCurrent && r.cur.Code == s.ProvinceCode) || (p.b != BoundariesCurrent && r.p.Code == s.ProvinceCode)) {
				cur[r.cur] = true
			}
		}
	case p.lineage:
		cur = map[*Province]bool{}
		if p.unitCurrent != nil {
			cur[p.unitCurrent] = true
		}
	default:
		return nil
	}
	ids := map[string]bool{}
	for id, r := range p.ps.byID {
		if cur[r.cur] {
			ids[id] = true
		}
	}
	return ids
}

// prepared is a validated query.
type prepared struct {
	q      Query
	qn     *Questionnaire
	target target
	ps     *provinces
	b      Boundaries
	// lineage, for a unit-only scope with a unit directory: the current
	// province the unit is registered in (nil: unknown unit, no cells).
	lineage     bool
	unitCurrent *Province
	// detail, when set by the query before its scan, tells the cells of
	// its period and channel whose counters it uses; the other cells of
	// the pass count for disclosure control only and are not decoded
	// (CellQuery.Detail). nil: every cell of the period and channel.
	detail func(k CellKey) bool
}

func (e *Engine) prepare(op string, q Query, scope scopeRule) (*prepared, error) {
	var vs []Violation
	if q.QuestionnaireID == "" {
		vs = append(vs, Violation{Field: "questionnaire_id", Reason: "REQUIRED", Description: "a questionnaire id is required"})
	}
	if err := q.Period.Validate(); err != nil {
		vs = append(vs, err.(*Error).Violations...)
	}
	if q.Boundaries < BoundariesUnspecified || q.Boundaries > BoundariesCurrent {
		vs = append(vs, Violation{Field: "boundaries", Reason: "INVALID_BOUNDARIES", Description: "boundaries must be as collected or current"})
	}
	if q.Channel < ChannelUnspecified || q.Channel > ChannelPhone {
		vs = append(vs, Violation{Field: "channel", Reason: "INVALID_CHANNEL", Description: fmt.Sprintf("unknown channel %d", q.Channel)})
	}
	s := q.Scope
	switch scope {
	case scopeAny:
		switch {
		case s.Nation && (s.ProvinceCode != "" || s.UnitID != ""):
			vs = append(vs, Violation{Field: "scope", Reason: "INVALID_SCOPE", Description: "the nation scope takes no province or unit"})
		case !s.Nation && s.ProvinceCode == "" && s.UnitID == "":
			vs = append(vs, Violation{Field: "scope", Reason: "INVALID_SCOPE", Description: "give a province, a unit or the nation"})
		}
	case scopeProvince:
		if s.ProvinceCode == "" || s.Nation || s.UnitID != "" {
			vs = append(vs, Violation{Field: "scope", Reason: "INVALID_SCOPE", Description: "give a province (and no unit)"})
		}
	}
	if len(vs) > 0 {
		return nil, Invalid(op, vs...)
	}
	var qn *Questionnaire
	if e.Catalog != nil {
		qn = e.Catalog.Get(q.QuestionnaireID)
	}
	if qn == nil {
		return nil, &Error{Kind: KindFailedPrecondition, Op: op, Reason: "UNKNOWN_QUESTIONNAIRE",
			Message: fmt.Sprintf("unknown questionnaire %q", q.QuestionnaireID)}
	}
	tg, ok := findTarget(qn, q.NodeCode)
	if !ok {
		return nil, Invalid(op, Violation{Field: "node_code", Reason: "UNKNOWN_NODE",
			Description: fmt.Sprintf("questionnaire %s has no node or item %q", qn.ID, q.NodeCode)})
	}
	b := q.Boundaries
	if b == BoundariesUnspecified {
		b = BoundariesAsCollected
	}
	p := &prepared{q: q, qn: qn, target: tg, ps: e.provinces(), b: b}
	if s.UnitID != "" && s.ProvinceCode == "" && e.Units != nil {
		p.lineage = true
		if code, ok := e.Units.UnitProvince(s.UnitID); ok {
			p.unitCurrent = p.ps.current[code]
		}
	}
	if s.ProvinceCode != "" {
		if err := p.ps.checkProvince(op, s.ProvinceCode, b); err != nil {
			return nil, err
		}
	}
	return p, nil
}

type scopeRule int

const (
	scopeAny scopeRule = iota
	scopeProvince
	scopeIgnored
)

// scan calls fn for the cells of the query's questionnaire and channel in
// from..to (cell months). Unit cells are passed only when units is true: a
// query that does not need them never touches their memory (most cells are
// unit cells). A cell laid out for another version of the questionnaire is
// an internal error. The same pass gives dc the respondents of every cell
// of the years from..to fall in (all channels; unit cells when units is
// true), from which disclosure control decides what to withhold, so a
// query reads the cells once.
func (e *Engine) scan(op string, p *prepared, dc *disclosure, from, to int, units bool, fn func(k CellKey, t *Tally)) error {
	if e.Source == nil {
		return Errorf(KindOther, op, "no cell source")
	}
	if err := p.cancelled(op); err != nil {
		return err
	}
	yfrom, yto := from/100*100+1, to/100*100+12
	dc.reading(from/100, to/100, units)
	var unitIDs map[string]bool
	if units {
		unitIDs = p.unitLineageIDs()
	}
	// detail: the cells fn gets; the others count for dc alone.
	detail := func(k CellKey) bool {
		return k.Month >= from && k.Month <= to && (p.q.Channel == ChannelUnspecified || k.Channel == p.q.Channel) &&
			(p.detail == nil || p.detail(k))
	}
	var bad, seen int
	stopped := false
	each := func(k CellKey, t *Tally) {
		if stopped {
			return
		}
		if seen++; seen%1024 == 0 && p.cancelled(op) != nil {
			stopped = true // the source cannot be stopped: skip the rest
			return
		}
		if k.Month < yfrom || k.Month > yto || (k.UnitID != "" && (!units || unitIDs != nil && !unitIDs[k.ProvinceID])) {
			return
		}
		dc.add(k, t.Respondents)
		if !detail(k) {
			return
		}
		if len(t.Slots) != p.qn.Slots || len(t.NodeN) != len(p.qn.Nodes) {
			bad++
			return
		}
		fn(k, t)
	}
	if cq, ok := e.Source.(CellQuerier); ok {
		sel := CellQuery{QuestionnaireID: p.qn.ID, FromMonth: yfrom, ToMonth: yto, Units: units}
		if p.detail != nil || from != yfrom || to != yto || p.q.Channel != ChannelUnspecified {
			sel.Detail = detail // some cells count for dc alone
		}
		if unitIDs != nil {
			sel.UnitProvinceIDs = make([]string, 0, len(unitIDs))
			for id := range unitIDs {
				sel.UnitProvinceIDs = append(sel.UnitProvinceIDs, id)
			}
			sort.Strings(sel.UnitProvinceIDs)
		}
		if err := cq.QueryCells(sel, each); err != nil {
			// The cause is logged by the server, not sent to the caller.
			return &Error{Kind: KindUnavailable, Op: op, Reason: "STORAGE_UNAVAILABLE",
				Message: "the aggregates could not be read; retry later", Err: err}
		}
	} else {
		e.Source.EachCell(p.qn.ID, yfrom, yto, each)
	}
	if err := p.cancelled(op); err != nil {
		return err
	}
	if bad > 0 {
		return Errorf(KindOther, op, "%d cells of %s have a layout other than the questionnaire's", bad, p.qn.ID)
	}
	return nil
}

// cancelled returns the error of the query's context once it is done.
func (p *prepared) cancelled(op string) error {
	if ctx := p.q.Context; ctx != nil && ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	return nil
}

// inScope reports whether cell k counts for the query's scope.
func (p *prepared) inScope(k CellKey) bool {
	s := p.q.Scope
	switch {
	case s.Nation:
		return k.UnitID == ""
	case s.UnitID != "":
		if k.UnitID != s.UnitID {
			return false
		}
		if s.ProvinceCode == "" {
			return p.inLineage(k)
		}
	default:
		if k.UnitID != "" {
			return false
		}
	}
	code, ok := p.ps.key(k.ProvinceID, k.Month, p.b)
	return ok && code == s.ProvinceCode
}

// inLineage reports whether cell k of a unit-only query belongs to the
// unit's province lineage: its province row is today part of the province
// the unit is registered in. Without a unit directory every cell does.
func (p *prepared) inLineage(k CellKey) bool {
	if !p.lineage {
		return true
	}
	r := p.ps.byID[k.ProvinceID]
	return r != nil && p.unitCurrent != nil && r.cur == p.unitCurrent
}

func (p *prepared) scopeName(period Period) string {
	s := p.q.Scope
	switch {
	case s.Nation:
		return NationNameVi
	case s.UnitID != "":
		if s.ProvinceCode != "" {
			return s.UnitID + ", " + p.ps.name(s.ProvinceCode, period, p.b)
		}
		return s.UnitID
	default:
		return p.ps.name(s.ProvinceCode, period, p.b)
	}
}

// tallies sums cells into one Tally per key.
type tallies struct {
	q *Questionnaire
	m map[string]*Tally
}

func newTallies(q *Questionnaire) *tallies { return &tallies{q: q, m: map[string]*Tally{}} }

func (ts *tallies) add(key string, t *Tally) {
	x := ts.m[key]
	if x == nil {
		x = NewTally(ts.q)
		ts.m[key] = x
	}
	x.Merge(t)
}

func (ts *tallies) get(key string) *Tally {
	if x := ts.m[key]; x != nil {
		return x
	}
	return NewTally(ts.q)
}

func (ts *tallies) keys() []string {
	ks := make([]string, 0, len(ts.m))
	for k := range ts.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// meanOfProvinces returns the unweighted mean of the target figure over the
// provinces in ts, leaving out those suppressed (by either rule).
func (e *Engine) meanOfProvinces(p *prepared, ts *tallies, dc *disclosure, per Period) *float64 {
	rows := make([]RankRow, 0, len(ts.m))
	for _, k := range ts.keys() {
		rows = append(rows, rowOf(k, "", p.target.compute(p.qn, ts.m[k], e.Thresholds, dc.hidden(Scope{ProvinceCode: k}, per))))
	}
	return MeanOfRanked(rows)
}

func rowOf(id, name string, v *NodeValue) RankRow {
	return RankRow{ID: id, Name: name, Value: v.Value, CILow: v.CILow, CIHigh: v.CIHigh, N: v.N, Insufficient: v.Insufficient, Suppressed: v.Suppressed}
}

// Index computes the formula trees of one scope (the nation, a province or a
// unit) for a period. The nation and provinces are computed from the
// province-level cells (UnitID ""), a unit from its own cells; the nation's
// trees are the pooled figures (all respondents as one unit), and
// NationalMean is the unweighted mean of the provinces.
//
// A province or unit suppressed by the complementary rule (see Engine,
// Disclosure control) is reported exactly like a primarily suppressed one;
// NationalMean leaves out the provinces suppressed by either rule.
//
// Errors: KindInvalid for a malformed query, KindFailedPrecondition for an
// unknown questionnaire, KindNotFound for an unknown province (on current
// boundaries: a province code that no longer exists).
func (e *Engine) Index(q Query) (*Report, error) {
	const op = "index"
	p, err := e.prepare(op, q, scopeAny)
	if err != nil {
		return nil, err
	}
	from, to := q.Period.Months()
	scope := NewTally(p.qn)
	provs := newTallies(p.qn)
	dc := e.disclosure(p)
	err = e.scan(op, p, dc, from, to, q.Scope.UnitID != "", func(k CellKey, t *Tally) {
		if p.inScope(k) {
			scope.Merge(t)
		}
		if k.UnitID == "" {
			if code, ok := p.ps.key(k.ProvinceID, k.Month, p.b); ok {
				provs.add(code, t)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	forced := dc.hidden(q.Scope, q.Period)
	r := &Report{QuestionnaireID: p.qn.ID, FormulaVersion: p.qn.FormulaVersion, Scope: q.Scope,
		ScopeName: p.scopeName(q.Period), Period: q.Period, Boundaries: p.b, Channel: q.Channel,
		Respondents: scope.Respondents, Suppressed: forced || e.Thresholds.Suppressed(scope.Respondents), Thresholds: e.Thresholds}
	if r.Suppressed {
		r.Respondents = 0
	}
	if q.NodeCode != "" {
		r.Roots = []*NodeValue{p.target.compute(p.qn, scope, e.Thresholds, forced)}
	} else {
		r.Roots = computeTree(p.qn, scope, e.Thresholds, forced)
	}
	r.NationalMean = e.meanOfProvinces(p, provs, dc, q.Period)
	return r, nil
}

// RankProvinces ranks provinces by the figure of Query.NodeCode (default
// SIPAS) for a period and compares with the previous period of the same
// length. The scope of the query is ignored.
//
// As collected, the rows are the province codes with data in the period,
// each code counting every row of that code valid in the period (see
// BoundariesAsCollected); on current boundaries, every current province,
// with or without data. Rows are matched to the previous period by code, so
// as collected a re-used code compares with whatever that code was then.
// Rows without a value, insufficient (n below MinSample) or suppressed (fewer
// respondents than the disclosure threshold) are listed after the ranked
// ones with rank 0; so are the provinces suppressed by the complementary
// rule in that period (see Engine, Disclosure control), in the previous
// period's figures too. Mean is the unweighted mean of the ranked
// provinces, Pooled the figure of all province-level cells as one unit
// (nil when the complementary rule withholds the nation's figure).
func (e *Engine) RankProvinces(q Query) (*Ranking, error) {
	const op = "rank provinces"
	p, err := e.prepare(op, q, scopeIgnored)
	if err != nil {
		return nil, err
	}
	prevP := q.Period.Previous()
	pfrom, _ := prevP.Months()
	from, to := q.Period.Months()
	cur, prev := newTallies(p.qn), newTallies(p.qn)
	pooled := NewTally(p.qn)
	dc := e.disclosure(p)
	err = e.scan(op, p, dc, pfrom, to, false, func(k CellKey, t *Tally) {
		if k.UnitID != "" {
			return
		}
		code, ok := p.ps.key(k.ProvinceID, k.Month, p.b)
		switch {
		case k.Month < from:
			if ok {
				prev.add(code, t)
			}
		case ok:
			cur.add(code, t)
		default:
			pooled.Merge(t) // a cell of no listed province still counts nationally
		}
	})
	if err != nil {
		return nil, err
	}
	// The pooled figure is the sum of the provinces' sums: one merge per
	// province instead of one per cell.
	for _, t := range cur.m {
		pooled.Merge(t)
	}
	byCode := rowKind{
		keys: func(ts *tallies) []string {
			if p.b != BoundariesCurrent {
				return ts.keys()
			}
			keys := make([]string, 0, len(p.ps.current))
			for code := range p.ps.current {
				keys = append(keys, code)
			}
			sort.Strings(keys)
			return keys
		},
		name:  func(code string, per Period) string { return p.ps.name(code, per, p.b) },
		scope: func(code string) Scope { return Scope{ProvinceCode: code} },
	}
	return e.rank(op, p, dc, byCode, cur, prev, pooled, Scope{Nation: true}, NationNameVi)
}

// RankUnits ranks the units with cells in a province (Query.Scope.ProvinceCode,
// on the query's boundaries) by the figure of Query.NodeCode, like
// RankProvinces. A unit suppressed by the complementary rule (see Engine,
// Disclosure control) is listed as suppressed, in the previous period's
// figures too. Pooled is the province's own figure (nil when withheld);
// Mean the unweighted mean of the ranked units.
func (e *Engine) RankUnits(q Query) (*Ranking, error) {
	const op = "rank units"
	p, err := e.prepare(op, q, scopeProvince)
	if err != nil {
		return nil, err
	}
	prevP := q.Period.Previous()
	pfrom, _ := prevP.Months()
	from, to := q.Period.Months()
	cur, prev := newTallies(p.qn), newTallies(p.qn)
	province := NewTally(p.qn)
	dc := e.disclosure(p)
	p.detail = func(k CellKey) bool {
		code, ok := p.ps.key(k.ProvinceID, k.Month, p.b)
		return ok && code == q.Scope.ProvinceCode
	}
	err = e.scan(op, p, dc, pfrom, to, true, func(k CellKey, t *Tally) {
		code, ok := p.ps.key(k.ProvinceID, k.Month, p.b)
		if !ok || code != q.Scope.ProvinceCode {
			return
		}
		switch {
		case k.Month < from:
			if k.UnitID != "" {
				prev.add(k.UnitID, t)
			}
		case k.UnitID == "":
			province.Merge(t)
		default:
			cur.add(k.UnitID, t)
		}
	})
	if err != nil {
		return nil, err
	}
	byUnit := rowKind{
		keys:  (*tallies).keys,
		name:  func(id string, _ Period) string { return id },
		scope: func(id string) Scope { return Scope{ProvinceCode: q.Scope.ProvinceCode, UnitID: id} },
	}
	return e.rank(op, p, dc, byUnit, cur, prev, province, Scope{ProvinceCode: q.Scope.ProvinceCode}, p.scopeName(q.Period))
}

// rowKind says what the rows of a ranking are: their keys among the summed
// tallies, their names and the scope of each row's figure (for disclosure
// control).
type rowKind struct {
	keys  func(ts *tallies) []string
	name  func(key string, per Period) string
	scope func(key string) Scope
}

// rank builds a Ranking from the tallies of the query's period (cur) and of
// the previous period (prev), one row per key of kind: every row's figure
// computed once (withheld where the complementary rule hides it), ranked,
// compared with the previous period; Mean over the ranked rows and Pooled
// the figure of pooled, the ranked population as one unit (scope pooledAs).
// RankProvinces and RankUnits differ only in their scan and their rowKind.
func (e *Engine) rank(op string, p *prepared, dc *disclosure, kind rowKind, cur, prev *tallies, pooled *Tally, pooledAs Scope, scopeName string) (*Ranking, error) {
	rows := func(ts *tallies, per Period) []RankRow {
		keys := kind.keys(ts)
		out := make([]RankRow, 0, len(keys))
		for i, key := range keys {
			if i%256 == 0 && p.cancelled(op) != nil {
				return nil // the caller returns the error
			}
			v := p.target.compute(p.qn, ts.get(key), e.Thresholds, dc.hidden(kind.scope(key), per))
			out = append(out, rowOf(key, kind.name(key, per), v))
		}
		RankRows(out)
		return out
	}
	q := p.q
	prevP := q.Period.Previous()
	r := &Ranking{QuestionnaireID: p.qn.ID, FormulaVersion: p.qn.FormulaVersion, Period: q.Period, PreviousPeriod: prevP,
		Boundaries: p.b, Channel: q.Channel, ScopeName: scopeName, NodeCode: p.target.code(), Thresholds: e.Thresholds}
	r.Rows = rows(cur, q.Period)
	ComparePrevious(r.Rows, rows(prev, prevP))
	if err := p.cancelled(op); err != nil {
		return nil, err
	}
	r.Mean = MeanOfRanked(r.Rows)
	r.Pooled = p.target.compute(p.qn, pooled, e.Thresholds, dc.hidden(pooledAs, q.Period)).Value
	return r, nil
}

// Series computes the figure of Query.NodeCode for the query's scope over
// the consecutive periods from..to, which must have the same granularity (at
// most MaxSeriesPoints periods). Query.Period is ignored. As collected, each
// point counts the rows of the province code valid in that point's period.
// Each point is its own period for disclosure control: a point is
// suppressed when the scope is suppressed, by either rule, in that period
// (see Engine, Disclosure control).
func (e *Engine) Series(q Query, from, to Period) (*Series, error) {
	const op = "series"
	q.Period = from
	p, err := e.prepare(op, q, scopeAny)
	if err != nil {
		return nil, err
	}
	if err := to.Validate(); err != nil {
		return nil, err
	}
	n := PeriodsBetween(from, to)
	switch {
	case !from.SameGranularity(to):
		return nil, Invalid(op, Violation{Field: "to", Reason: "INVALID_SERIES", Description: "from and to must both be years, quarters or months"})
	case n == 0:
		return nil, Invalid(op, Violation{Field: "to", Reason: "INVALID_SERIES", Description: "to is before from"})
	case n > MaxSeriesPoints:
		return nil, Invalid(op, Violation{Field: "to", Reason: "INVALID_SERIES",
			Description: fmt.Sprintf("%d periods asked for; at most %d", n, MaxSeriesPoints)})
	}
	periods := make([]Period, n)
	ts := make([]*Tally, n)
	for i, per := 0, from; i < n; i, per = i+1, per.Next() {
		periods[i] = per
		ts[i] = NewTally(p.qn)
	}
	mfrom, _ := from.Months()
	_, mto := to.Months()
	base := from.ordinal()
	dc := e.disclosure(p)
	p.detail = p.inScope
	err = e.scan(op, p, dc, mfrom, mto, q.Scope.UnitID != "", func(k CellKey, t *Tally) {
		i := periodOfMonth(k.Month, from).ordinal() - base
		if i < 0 || i >= n {
			return
		}
		if p.inScope(k) {
			ts[i].Merge(t)
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]SeriesPoint, n)
	for i := range out {
		forced := dc.hidden(q.Scope, periods[i])
		v := p.target.compute(p.qn, ts[i], e.Thresholds, forced)
		sp := SeriesPoint{Period: periods[i], Respondents: ts[i].Respondents, Value: v.Value, N: v.N,
			CILow: v.CILow, CIHigh: v.CIHigh, Insufficient: v.Insufficient, Suppressed: forced || e.Thresholds.Suppressed(ts[i].Respondents)}
		if sp.Suppressed {
			sp.Respondents = 0
		}
		out[i] = sp
	}
	return &Series{QuestionnaireID: p.qn.ID, FormulaVersion: p.qn.FormulaVersion, Scope: q.Scope, Boundaries: p.b,
		Channel: q.Channel, NodeCode: p.target.code(), From: from, To: to, Points: out, Thresholds: e.Thresholds}, nil
}

// periodOfMonth returns the period of the granularity of like containing
// cell month m.
func periodOfMonth(m int, like Period) Period {
	y, mo := m/100, m%100
	switch {
	case like.IsMonth():
		return Period{Year: y, Month: mo}
	case like.IsQuarter():
		return Period{Year: y, Quarter: (mo-1)/3 + 1}
	default:
		return Period{Year: y}
	}
}

// WeakPoints lists the weakest figures of a scope (a province, a unit or the
// nation) for a period: its satisfaction and assessment items and groups
// (every node below the roots) that have a value and a sufficient sample,
// lowest first (Lowest), and those that fell most against the previous
// period (Drops; only figures with a sufficient value in both periods and a
// negative change). For a province, Units lists (unit, figure) rows of its
// units the same way, lowest first. Every row carries the pooled national
// value of the same figure. Each list holds at most limit rows (0: 10; at
// most 500). A suppressed scope has empty lists. Disclosure control (see
// Engine) applies as everywhere: a scope suppressed by the complementary
// rule is a suppressed scope; one so suppressed in the previous period has
// no previous values (and so no drops); units so suppressed have no rows;
// the national values are nil when the nation's figure is withheld.
func (e *Engine) WeakPoints(q Query, limit int) (*WeakPoints, error) {
	const op = "weak points"
	p, err := e.prepare(op, q, scopeAny)
	if err != nil {
		return nil, err
	}
	switch {
	case limit <= 0:
		limit = 10
	case limit > 500:
		limit = 500
	}
	prevP := q.Period.Previous()
	pfrom, _ := prevP.Months()
	from, to := q.Period.Months()
	cur, prev, nation := NewTally(p.qn), NewTally(p.qn), NewTally(p.qn)
	units := newTallies(p.qn)
	wantUnits := q.Scope.ProvinceCode != "" && q.Scope.UnitID == ""
	dc := e.disclosure(p)
	p.detail = func(k CellKey) bool { // the cells the function below merges
		switch {
		case p.inScope(k):
			return true
		case k.Month < from:
			return false
		case k.UnitID == "":
			return true
		case wantUnits:
			code, ok := p.ps.key(k.ProvinceID, k.Month, p.b)
			return ok && code == q.Scope.ProvinceCode
		}
		return false
	}
	err = e.scan(op, p, dc, pfrom, to, wantUnits || q.Scope.UnitID != "", func(k CellKey, t *Tally) {
		if k.Month < from {
			if p.inScope(k) {
				prev.Merge(t)
			}
			return
		}
		if k.UnitID == "" {
			nation.Merge(t)
		}
		if p.inScope(k) {
			cur.Merge(t)
		}
		if wantUnits && k.UnitID != "" {
			if code, ok := p.ps.key(k.ProvinceID, k.Month, p.b); ok && code == q.Scope.ProvinceCode {
				units.add(k.UnitID, t)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	th := e.Thresholds
	w := &WeakPoints{QuestionnaireID: p.qn.ID, FormulaVersion: p.qn.FormulaVersion, Scope: q.Scope,
		ScopeName: p.scopeName(q.Period), Period: q.Period, PreviousPeriod: prevP, Boundaries: p.b, Channel: q.Channel,
		Respondents: cur.Respondents, Suppressed: dc.hidden(q.Scope, q.Period) || th.Suppressed(cur.Respondents), Thresholds: th}
	if w.Suppressed {
		w.Respondents = 0
		return w, nil
	}
	curF, prevF := weakFigures(p.qn, cur, th, false), weakFigures(p.qn, prev, th, dc.hidden(q.Scope, prevP))
	natF := weakFigures(p.qn, nation, th, dc.hidden(Scope{Nation: true}, q.Period))
	for _, key := range sortedKeys(curF) {
		v := curF[key]
		if !usable(v) {
			continue
		}
		wp := weakPoint("", v, natF)
		w.Lowest = append(w.Lowest, wp)
		if pv := prevF[key]; usable(pv) {
			x, d := *pv.Value, *v.Value-*pv.Value
			wp.PreviousValue, wp.Change = &x, &d
			if d < 0 {
				w.Drops = append(w.Drops, wp)
			}
			w.Lowest[len(w.Lowest)-1] = wp
		}
	}
	sortByValue(w.Lowest)
	sortByDrop(w.Drops)
	for i, id := range units.keys() {
		if i%256 == 0 {
			if err := p.cancelled(op); err != nil {
				return nil, err
			}
		}
		uf := weakFigures(p.qn, units.m[id], th, dc.hidden(Scope{ProvinceCode: q.Scope.ProvinceCode, UnitID: id}, q.Period))
		for _, key := range sortedKeys(uf) {
			v := uf[key]
			if !usable(v) {
				continue
			}
			wp := weakPoint(id, v, natF)
			if sv := curF[key]; sv != nil {
				wp.Scope = sv.Value
			}
			w.Units = append(w.Units, wp)
		}
	}
	sortByValue(w.Units)
	w.Lowest = truncate(w.Lowest, limit)
	w.Drops = truncate(w.Drops, limit)
	w.Units = truncate(w.Units, limit)
	return w, nil
}
