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

// itemOrder is a questionnaire's item codes in questionnaire order, as the
// server defines it, with each code's position.
type itemOrder struct {
	codes []string
	pos   map[string]int
}

// responseToProtoPacked is ResponseToProto with the answers in the compact
// packed form (answer code + 1 per item in questionnaire order, 0 for an
// item not asked): bulk uploads spend most of their time encoding and
// decoding the answer map otherwise. A response naming an item the order
// does not know keeps the map form, so the server reports that item.
func responseToProtoPacked(r *sipas.Response, order *itemOrder) *sipasv1.Response {
	out := ResponseToProto(r)
	packAnswers(out, order)
	return out
}

// packAnswers moves the map answers of an API response into the packed
// form, when the order knows every item and every code is representable;
// otherwise it leaves the response as it is. Both forms are the same
// response for the server (same content, same deduplication), so a
// response first sent one way may be retried the other.
func packAnswers(r *sipasv1.Response, order *itemOrder) {
	if order == nil || len(r.Answers) == 0 || len(r.PackedAnswers) > 0 {
		return
	}
	last := -1
	for code, a := range r.Answers {
		i, ok := order.pos[code]
		if !ok || a < 0 {
			return
		}
		last = max(last, i)
	}
	packed := make([]uint32, last+1)
	for code, a := range r.Answers {
		packed[order.pos[code]] = uint32(a) + 1
	}
	r.PackedAnswers, r.Answers = packed, nil
}
