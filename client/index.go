package client

import (
	"context"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Query is what an index read asks for: the engine's query (questionnaire,
// scope, period, boundaries, channel, node) and what only the server knows
// about.
type Query struct {
	sipas.Query
	// IncludeFlagged counts responses flagged for data quality too.
	IncludeFlagged bool
}

// Report reads the formula trees of q.Scope for q.Period (GetIndex); with
// q.NodeCode set, only that node's subtree.
func (c *Client) Report(ctx context.Context, q Query) (*sipas.Report, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	resp, err := c.Index.GetIndex(cctx, &sipasv1.GetIndexRequest{QuestionnaireId: q.QuestionnaireID, Scope: ScopeToProto(q.Scope),
		Period: PeriodToProto(q.Period), Boundaries: sipasv1.Boundaries(q.Boundaries), Channel: sipasv1.Channel(q.Channel),
		IncludeFlagged: q.IncludeFlagged})
	if err != nil {
		return nil, FromStatus(err)
	}
	return ReportFromProto(resp.GetReport()), nil
}

// RankProvinces ranks the provinces by q.NodeCode (default SIPAS).
func (c *Client) RankProvinces(ctx context.Context, q Query) (*sipas.Ranking, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	resp, err := c.Index.RankProvinces(cctx, &sipasv1.RankProvincesRequest{QuestionnaireId: q.QuestionnaireID,
		Period: PeriodToProto(q.Period), Boundaries: sipasv1.Boundaries(q.Boundaries), Channel: sipasv1.Channel(q.Channel),
		NodeCode: q.NodeCode, IncludeFlagged: q.IncludeFlagged})
	if err != nil {
		return nil, FromStatus(err)
	}
	out := RankingFromProto(resp.GetRanking())
	out.ScopeName = sipas.NationNameVi
	return out, nil
}

// RankUnits ranks the units of the province q.Scope.ProvinceCode. Units are
// ranked within the province as registered: boundaries do not apply.
func (c *Client) RankUnits(ctx context.Context, q Query) (*sipas.Ranking, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	resp, err := c.Index.RankUnits(cctx, &sipasv1.RankUnitsRequest{QuestionnaireId: q.QuestionnaireID,
		ProvinceCode: q.Scope.ProvinceCode, Period: PeriodToProto(q.Period), Channel: sipasv1.Channel(q.Channel),
		NodeCode: q.NodeCode, IncludeFlagged: q.IncludeFlagged})
	if err != nil {
		return nil, FromStatus(err)
	}
	out := RankingFromProto(resp.GetRanking())
	out.ScopeName = q.Scope.ProvinceCode
	return out, nil
}

// Series reads q.NodeCode (default SIPAS) of q.Scope for every period from
// from to to (q.Period is not used).
func (c *Client) Series(ctx context.Context, q Query, from, to sipas.Period) (*sipas.Series, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	req := &sipasv1.GetSeriesRequest{QuestionnaireId: q.QuestionnaireID, Scope: ScopeToProto(q.Scope), NodeCode: q.NodeCode,
		From: PeriodToProto(from), To: PeriodToProto(to), Boundaries: sipasv1.Boundaries(q.Boundaries), Channel: sipasv1.Channel(q.Channel),
		IncludeFlagged: q.IncludeFlagged}
	resp, err := c.Index.GetSeries(cctx, req)
	if err != nil {
		return nil, FromStatus(err)
	}
	return SeriesFromProto(resp.GetSeries(), req), nil
}

// WeakPoints reads the lowest figures and largest drops of the province
// q.Scope.ProvinceCode, at most limit rows per list (0: 10).
func (c *Client) WeakPoints(ctx context.Context, q Query, limit int) (*sipas.WeakPoints, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	req := &sipasv1.GetWeakPointsRequest{QuestionnaireId: q.QuestionnaireID, ProvinceCode: q.Scope.ProvinceCode,
		Period: PeriodToProto(q.Period), Boundaries: sipasv1.Boundaries(q.Boundaries), Channel: sipasv1.Channel(q.Channel),
		Limit: int32(limit), IncludeFlagged: q.IncludeFlagged}
	resp, err := c.Index.GetWeakPoints(cctx, req)
	if err != nil {
		return nil, FromStatus(err)
	}
	return WeakPointsFromProto(resp.GetWeakPoints(), req), nil
}
