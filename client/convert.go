package client

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// This file is the client's one place where domain values become API messages.

// ResponseToProto converts a domain response into its API form (used by the
// client library and tests through the same mapping).
func ResponseToProto(r *sipas.Response) *sipasv1.Response {
	out := &sipasv1.Response{
		ResponseId:      r.ID,
		QuestionnaireId: r.QuestionnaireID,
		ProvinceCode:    r.ProvinceCode,
		Channel:         sipasv1.Channel(r.Channel),
		UnitId:          r.UnitID,
		Answers:         make(map[string]int32, len(r.Answers)),
	}
	if !r.CollectedAt.IsZero() {
		out.CollectedAt = timestamppb.New(r.CollectedAt)
	}
	d := r.Demographics
	if d != (sipas.Demographics{}) {
		out.Demographics = &sipasv1.Demographics{
			Gender:         sipasv1.Gender(d.Gender),
			BirthYear:      int32(d.BirthYear),
			Ethnicity:      sipasv1.Ethnicity(d.Ethnicity),
			Education:      sipasv1.Education(d.Education),
			Occupation:     sipasv1.Occupation(d.Occupation),
			Residence:      sipasv1.Residence(d.Residence),
			RespondentType: sipasv1.RespondentType(d.RespondentType),
			DidProcedure:   d.DidProcedure,
		}
	}
	for k, v := range r.Answers {
		out.Answers[k] = int32(v)
	}
	return out
}
