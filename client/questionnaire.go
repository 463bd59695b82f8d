package client

import (
	"context"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Questionnaire fetches a questionnaire definition from the server and
// rebuilds it as a domain value, so that a client can validate responses
// locally against a version it does not carry (one the server loaded with
// --questionnaires).
func (c *Client) Questionnaire(ctx context.Context, id string) (*sipas.Questionnaire, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	q, err := c.Survey.GetQuestionnaire(cctx, &sipasv1.GetQuestionnaireRequest{Name: "questionnaires/" + id})
	if err != nil {
		return nil, FromStatus(err)
	}
	return QuestionnaireFromProto(q.GetQuestionnaire())
}

// Questionnaires lists the questionnaires the server knows, as domain
// values.
func (c *Client) Questionnaires(ctx context.Context) ([]*sipas.Questionnaire, error) {
	var out []*sipas.Questionnaire
	token := ""
	for {
		cctx, cancel := c.WithTimeout(ctx)
		resp, err := c.Survey.ListQuestionnaires(cctx, &sipasv1.ListQuestionnairesRequest{PageToken: token})
		cancel()
		if err != nil {
			return nil, FromStatus(err)
		}
		for _, pq := range resp.GetQuestionnaires() {
			q, err := QuestionnaireFromProto(pq)
			if err != nil {
				return nil, err
			}
			out = append(out, q)
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}
