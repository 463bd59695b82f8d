package server

import (
	"context"
	"time"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// indexService implements sipas.v1.IndexService. Analysts limited to some
// provinces read those provinces and their units; national figures and the
// ranking of all provinces need an all-provinces analyst or an admin.
type indexService struct {
	sipasv1.UnimplementedIndexServiceServer
	s *Server
}

func periodFromProto(p *sipasv1.Period) sipas.Period {
	if p == nil {
		return sipas.Period{}
	}
	return sipas.Period{Year: int(p.Year), Quarter: int(p.Quarter), Month: int(p.Month)}
}

func periodToProto(p sipas.Period) *sipasv1.Period {
	return &sipasv1.Period{Year: int32(p.Year), Quarter: int32(p.Quarter), Month: int32(p.Month)}
}

func scopeFromProto(s *sipasv1.Scope) sipas.Scope {
	switch v := s.GetScope().(type) {
	case *sipasv1.Scope_ProvinceCode:
		return sipas.Scope{ProvinceCode: v.ProvinceCode}
	case *sipasv1.Scope_UnitId:
		return sipas.Scope{UnitID: v.UnitId}
	case *sipasv1.Scope_Nation:
		return sipas.Scope{Nation: v.Nation}
	}
	return sipas.Scope{}
}

func scopeToProto(s sipas.Scope) *sipasv1.Scope {
	switch {
	case s.UnitID != "":
		return &sipasv1.Scope{Scope: &sipasv1.Scope_UnitId{UnitId: s.UnitID}}
	case s.ProvinceCode != "":
		return &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: s.ProvinceCode}}
	}
	return &sipasv1.Scope{Scope: &sipasv1.Scope_Nation{Nation: true}}
}

// checkPeriod validates a period field of a request.
func checkPeriod(p *sipasv1.Period, field string) error {
	if p == nil {
		return sipas.Invalid("index", sipas.Violation{Field: field, Reason: "REQUIRED", Description: "a period is required (year, optionally quarter or month)"})
	}
	if err := periodFromProto(p).Validate(); err != nil {
		return err
	}
	return nil
}

var errOutOfScope = &sipas.Error{Kind: sipas.KindPermissionDenied, Reason: "SCOPE",
	Message: "this credential may not read figures outside its provinces"}

// allowScope checks that the caller may read a scope.
func (h *indexService) allowScope(ctx context.Context, sc sipas.Scope) error {
	p := principalFrom(ctx)
	if p == nil || p.Role == sipasv1.Role_ROLE_ADMIN || p.All {
		return nil
	}
	switch {
	case sc.UnitID != "":
		u, ok := h.s.cfg.Store.Unit(sc.UnitID)
		if !ok {
			return errOutOfScope // do not reveal which units exist
		}
		if !h.s.inScopeCurrent(p, u.ProvinceCode) {
			return errOutOfScope
		}
		return nil
	case sc.ProvinceCode != "":
		// A province folded into one in scope by the 2025 merger is in scope
		// too: a new province reads its predecessors' history.
		if !h.s.inScopeCurrent(p, sc.ProvinceCode) {
			return errOutOfScope
		}
		return nil
	}
	return errOutOfScope // the nation
}

// inScopeCurrent reports whether a province code, or the province it is part
// of today, is in the caller's scope.
func (s *Server) inScopeCurrent(p *Principal, code string) bool {
	if p.InProvince(code) {
		return true
	}
	if prov, _, err := s.cfg.Registry.Resolve(code, s.cfg.Now()); err == nil {
		return p.InProvince(s.cfg.Registry.Current(prov).Code)
	}
	return false
}

// thresholds are the disclosure threshold k and the minimum sample in
// force, as the API reports them beside the figures.
func (h *indexService) thresholds() (disclosure, minSample int64) {
	th := h.s.cfg.Engine.Thresholds
	return th.EffectiveDisclosure(), th.MinSample
}

func (h *indexService) observe(method string, start time.Time) {
	h.s.metrics.IndexReadSeconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

func (h *indexService) GetIndex(ctx context.Context, req *sipasv1.GetIndexRequest) (*sipasv1.GetIndexResponse, error) {
	defer h.observe("GetIndex", time.Now())
	if err := checkPeriod(req.GetPeriod(), "period"); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	sc := scopeFromProto(req.GetScope())
	if sc == (sipas.Scope{}) {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("get index", sipas.Violation{Field: "scope", Reason: "REQUIRED",
			Description: "give a province_code, a unit_id or nation = true"}))
	}
	if err := h.allowScope(ctx, sc); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	rep, excluded, included, err := h.s.indexWithFlags(ctx, sipas.Query{Context: ctx, QuestionnaireID: req.GetQuestionnaireId(), Scope: sc,
		Period: periodFromProto(req.GetPeriod()), Boundaries: sipas.Boundaries(req.GetBoundaries()), Channel: sipas.Channel(req.GetChannel())},
		req.GetIncludeFlagged())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	th := h.s.cfg.Engine.Thresholds
	out := &sipasv1.IndexReport{
		QuestionnaireId: rep.QuestionnaireID, FormulaVersion: rep.FormulaVersion, Scope: scopeToProto(rep.Scope),
		ScopeName: rep.ScopeName, Period: periodToProto(rep.Period), Boundaries: boundariesToProto(rep.Boundaries),
		Channel: sipasv1.Channel(rep.Channel), Respondents: rep.Respondents, Suppressed: rep.Suppressed,
		DisclosureThreshold: th.EffectiveDisclosure(), MinimumSample: th.MinSample, NationalMean: rep.NationalMean,
		FlaggedExcluded: excluded, FlaggedIncluded: included,
	}
	for _, r := range rep.Roots {
		out.Roots = append(out.Roots, nodeValueToProto(r))
	}
	if sc.UnitID != "" && (out.ScopeName == "" || out.ScopeName == sc.UnitID) {
		// A unit is named by its registered display name, as in RankUnits.
		if u, err := h.s.cfg.Store.GetUnit(ctx, sc.UnitID); err == nil && u.DisplayName != "" {
			out.ScopeName = u.DisplayName
		}
	}
	return &sipasv1.GetIndexResponse{Report: out}, nil
}

func boundariesToProto(b sipas.Boundaries) sipasv1.Boundaries {
	if b == sipas.BoundariesUnspecified {
		return sipasv1.Boundaries_BOUNDARIES_AS_COLLECTED
	}
	return sipasv1.Boundaries(b)
}

func nodeValueToProto(v *sipas.NodeValue) *sipasv1.IndexNode {
	out := &sipasv1.IndexNode{
		Code: v.Code, LabelVi: v.LabelVi, LabelEn: v.LabelEn, IsItem: v.IsItem, Role: sipasv1.ItemRole(v.Role),
		Value: v.Value, N: v.N, Positive: v.Positive, Valid: v.Valid, CiLow: v.CILow, CiHigh: v.CIHigh,
		Insufficient: v.Insufficient, Suppressed: v.Suppressed,
	}
	for _, c := range v.Children {
		out.Children = append(out.Children, nodeValueToProto(c))
	}
	return out
}

func rankingToProto(r *sipas.Ranking) *sipasv1.Ranking {
	out := &sipasv1.Ranking{QuestionnaireId: r.QuestionnaireID, FormulaVersion: r.FormulaVersion,
		Period: periodToProto(r.Period), PreviousPeriod: periodToProto(r.PreviousPeriod), NodeCode: r.NodeCode,
		Mean: r.Mean, Pooled: r.Pooled, Boundaries: boundariesToProto(r.Boundaries), Channel: sipasv1.Channel(r.Channel)}
	for _, row := range r.Rows {
		out.Rows = append(out.Rows, &sipasv1.RankRow{Id: row.ID, Name: row.Name, Value: row.Value, Rank: int32(row.Rank),
			N: row.N, Insufficient: row.Insufficient, Suppressed: row.Suppressed, PreviousValue: row.PreviousValue,
			PreviousRank: int32(row.PreviousRank), RankChange: int32(row.RankChange), ValueChange: row.ValueChange,
			CiLow: row.CILow, CiHigh: row.CIHigh})
	}
	return out
}

func (h *indexService) RankProvinces(ctx context.Context, req *sipasv1.RankProvincesRequest) (*sipasv1.RankProvincesResponse, error) {
	defer h.observe("RankProvinces", time.Now())
	if err := checkPeriod(req.GetPeriod(), "period"); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if err := h.allowScope(ctx, sipas.Scope{Nation: true}); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	q := sipas.Query{Context: ctx, QuestionnaireID: req.GetQuestionnaireId(), Period: periodFromProto(req.GetPeriod()),
		Boundaries: sipas.Boundaries(req.GetBoundaries()), Channel: sipas.Channel(req.GetChannel()), NodeCode: req.GetNodeCode()}
	r, err := h.rank(ctx, q, req.GetIncludeFlagged(), sipas.Scope{Nation: true}, (*sipas.Engine).RankProvinces)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &sipasv1.RankProvincesResponse{Ranking: r}, nil
}

func (h *indexService) RankUnits(ctx context.Context, req *sipasv1.RankUnitsRequest) (*sipasv1.RankUnitsResponse, error) {
	defer h.observe("RankUnits", time.Now())
	if err := checkPeriod(req.GetPeriod(), "period"); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	sc := sipas.Scope{ProvinceCode: req.GetProvinceCode()}
	if sc.ProvinceCode == "" {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("rank units", sipas.Violation{Field: "province_code", Reason: "REQUIRED", Description: "a province code is required"}))
	}
	if err := h.allowScope(ctx, sc); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	q := sipas.Query{Context: ctx, QuestionnaireID: req.GetQuestionnaireId(), Scope: sc,
		Period: periodFromProto(req.GetPeriod()), Channel: sipas.Channel(req.GetChannel()), NodeCode: req.GetNodeCode()}
	out, err := h.rank(ctx, q, req.GetIncludeFlagged(), sc, (*sipas.Engine).RankUnits)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	h.nameUnits(ctx, out.Rows)
	return &sipasv1.RankUnitsResponse{Ranking: out}, nil
}

// rank runs a ranking without the flagged responses or, when include is
// set, with them (in both periods compared), and says how many of them the
// ranked scope (the nation, or the province whose units are ranked) has in
// the period: left out, or counted.
func (h *indexService) rank(ctx context.Context, q sipas.Query, include bool, scope sipas.Scope,
	run func(*sipas.Engine, sipas.Query) (*sipas.Ranking, error)) (*sipasv1.Ranking, error) {
	eng, excluded, included, err := h.s.withFlags(ctx, q, scope, include)
	if err != nil {
		return nil, err
	}
	r, err := run(eng, q)
	if err != nil {
		return nil, err
	}
	out := rankingToProto(r)
	out.DisclosureThreshold, out.MinimumSample = h.thresholds()
	out.FlaggedExcluded, out.FlaggedIncluded = excluded, included
	return out, nil
}

// nameUnits fills unit display names from the unit registry.
func (h *indexService) nameUnits(ctx context.Context, rows []*sipasv1.RankRow) {
	for _, row := range rows {
		if row.Name != "" && row.Name != row.Id {
			continue
		}
		if u, err := h.s.cfg.Store.GetUnit(ctx, row.Id); err == nil {
			row.Name = u.DisplayName
		}
	}
}

func (h *indexService) GetSeries(ctx context.Context, req *sipasv1.GetSeriesRequest) (*sipasv1.GetSeriesResponse, error) {
	defer h.observe("GetSeries", time.Now())
	if err := checkPeriod(req.GetFrom(), "from"); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if err := checkPeriod(req.GetTo(), "to"); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	sc := scopeFromProto(req.GetScope())
	if sc == (sipas.Scope{}) {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("get series", sipas.Violation{Field: "scope", Reason: "REQUIRED",
			Description: "give a province_code, a unit_id or nation = true"}))
	}
	if err := h.allowScope(ctx, sc); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	q := sipas.Query{Context: ctx, QuestionnaireID: req.GetQuestionnaireId(), Scope: sc, Boundaries: sipas.Boundaries(req.GetBoundaries()),
		Channel: sipas.Channel(req.GetChannel()), NodeCode: req.GetNodeCode()}
	series, flagged, err := h.series(ctx, q, periodFromProto(req.GetFrom()), periodFromProto(req.GetTo()), req.GetIncludeFlagged())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	out := &sipasv1.Series{QuestionnaireId: series.QuestionnaireID, NodeCode: series.NodeCode, FormulaVersion: series.FormulaVersion}
	out.DisclosureThreshold, out.MinimumSample = h.thresholds()
	for i, p := range series.Points {
		pt := &sipasv1.SeriesPoint{Period: periodToProto(p.Period), Value: p.Value, N: p.N,
			CiLow: p.CILow, CiHigh: p.CIHigh, Insufficient: p.Insufficient, Suppressed: p.Suppressed}
		if flagged != nil {
			without, with := p, flagged[i]
			if req.GetIncludeFlagged() {
				without, with = flagged[i], p
			}
			pt.FlaggedExcluded, pt.FlaggedIncluded = flagCounts(without.N, with.N, without.Suppressed || with.Suppressed, req.GetIncludeFlagged())
		}
		out.Points = append(out.Points, pt)
	}
	return &sipasv1.GetSeriesResponse{Series: out}, nil
}

// series runs a series without the flagged responses or, when include is
// set, with them. When there are flagged responses in its years, it runs
// the other one too and returns its points as other (same periods), from
// which each point's flagged count is the difference of n.
func (h *indexService) series(ctx context.Context, q sipas.Query, from, to sipas.Period, include bool) (series *sipas.Series, other []sipas.SeriesPoint, err error) {
	fromMonth, _ := from.Months()
	_, toMonth := to.Months()
	flagged, err := h.s.flaggedEngine(ctx, q.QuestionnaireID, fromMonth, toMonth, q.Channel)
	if err != nil {
		return nil, nil, err
	}
	series, err = h.s.cfg.Engine.Series(q, from, to)
	if err != nil || flagged == nil {
		return series, nil, err
	}
	all, err := flagged.Series(q, from, to)
	if err != nil {
		return nil, nil, err
	}
	if len(all.Points) != len(series.Points) {
		return nil, nil, sipas.Errorf(sipas.KindOther, "get series", "series with flagged responses has %d points, without %d", len(all.Points), len(series.Points))
	}
	if include {
		return all, series.Points, nil
	}
	return series, all.Points, nil
}

func (h *indexService) GetWeakPoints(ctx context.Context, req *sipasv1.GetWeakPointsRequest) (*sipasv1.GetWeakPointsResponse, error) {
	defer h.observe("GetWeakPoints", time.Now())
	if err := checkPeriod(req.GetPeriod(), "period"); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	sc := sipas.Scope{ProvinceCode: req.GetProvinceCode()}
	if sc.ProvinceCode == "" {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("get weak points", sipas.Violation{Field: "province_code", Reason: "REQUIRED", Description: "a province code is required"}))
	}
	if err := h.allowScope(ctx, sc); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	limit := int(req.GetLimit())
	if limit <= 0 {
		limit = 10
	}
	q := sipas.Query{Context: ctx, QuestionnaireID: req.GetQuestionnaireId(), Scope: sc,
		Period: periodFromProto(req.GetPeriod()), Boundaries: sipas.Boundaries(req.GetBoundaries()), Channel: sipas.Channel(req.GetChannel())}
	eng, excluded, included, err := h.s.withFlags(ctx, q, sc, req.GetIncludeFlagged())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	w, err := eng.WeakPoints(q, limit)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	out := &sipasv1.WeakPoints{QuestionnaireId: w.QuestionnaireID, FormulaVersion: w.FormulaVersion,
		Period: periodToProto(w.Period), PreviousPeriod: periodToProto(w.PreviousPeriod),
		FlaggedExcluded: excluded, FlaggedIncluded: included}
	out.DisclosureThreshold, out.MinimumSample = h.thresholds()
	conv := func(wp sipas.WeakPoint) *sipasv1.WeakPoint {
		level := "group"
		switch {
		case wp.UnitID != "":
			level = "unit"
		case wp.IsItem:
			level = "item"
		}
		code := wp.Code
		if wp.UnitID != "" {
			code = wp.UnitID + "/" + wp.Code
		}
		v := wp.Value
		return &sipasv1.WeakPoint{Code: code, LabelVi: wp.LabelVi, LabelEn: wp.LabelEn, Level: level, Value: &v, N: wp.N,
			PreviousValue: wp.PreviousValue, Change: wp.Change, NationalValue: wp.National}
	}
	for _, wp := range w.Lowest {
		out.Lowest = append(out.Lowest, conv(wp))
	}
	for _, wp := range w.Units {
		out.Lowest = append(out.Lowest, conv(wp))
	}
	for _, wp := range w.Drops {
		out.LargestDrops = append(out.LargestDrops, conv(wp))
	}
	return &sipasv1.GetWeakPointsResponse{WeakPoints: out}, nil
}
