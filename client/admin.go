package client

import (
	"context"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Counts reads the exact number of responses per questionnaire, province,
// unit, month and channel of q's period (admins only; see
// sipas.Engine.Counts).
func (c *Client) Counts(ctx context.Context, q sipas.CountQuery) ([]sipas.ResponseCount, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	resp, err := c.Admin.CountResponses(cctx, &sipasv1.CountResponsesRequest{QuestionnaireId: q.QuestionnaireID,
		Period: PeriodToProto(q.Period), ProvinceCode: q.ProvinceCode, UnitId: q.UnitID, Channel: sipasv1.Channel(q.Channel)})
	if err != nil {
		return nil, FromStatus(err)
	}
	out := make([]sipas.ResponseCount, 0, len(resp.GetCounts()))
	for _, r := range resp.GetCounts() {
		out = append(out, ResponseCountFromProto(r))
	}
	return out, nil
}
