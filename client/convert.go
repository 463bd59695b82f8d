package client

import (
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// This file is the client's one place where domain values become API messages.

// ResponseToProto converts a domain response into its API form (used by the
// client library and tests through the same mapping), with the answers in
// the form or forms r carries them in.
func ResponseToProto(r *sipas.Response) *sipasv1.Response {
	out := responseFieldsToProto(r)
	if len(r.Answers) > 0 {
		out.Answers = make(map[string]int32, len(r.Answers))
		for k, v := range r.Answers {
			out.Answers[k] = int32(v)
		}
	}
	out.PackedAnswers = r.Packed
	return out
}

// responseFieldsToProto converts every field but the answers.
func responseFieldsToProto(r *sipas.Response) *sipasv1.Response {
	out := &sipasv1.Response{
		ResponseId:      r.ID,
		QuestionnaireId: r.QuestionnaireID,
		ProvinceCode:    r.ProvinceCode,
		Channel:         sipasv1.Channel(r.Channel),
		UnitId:          r.UnitID,
	}
	for _, n := range r.Flags.Numbers() {
		out.Flags = append(out.Flags, sipasv1.ResponseFlag(n))
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
	return out
}

// assignID gives r a new UUIDv7 when it has no id, so that every send of it
// (retries, resends) carries the same one.
func assignID(r *sipas.Response) error {
	if r.ID != "" {
		return nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	r.ID = id.String()
	return nil
}

// itemOrder is a questionnaire's item codes in questionnaire order, as the
// server defines it, with each code's position.
type itemOrder struct {
	codes []string
	pos   map[string]int
}

// responseToWire is the API form in which the client sends r: the compact
// packed answer form (answer code + 1 per item in questionnaire order, 0 for
// an item not asked) when r carries it or when the order knows every item of
// its answer map, else the map: bulk uploads spend most of their time
// encoding and decoding the answer map otherwise. A response naming an item
// the order does not know keeps the map form, so the server reports that
// item. Both forms are the same response for the server (same content, same
// deduplication), so a response first sent one way may be retried the other.
func responseToWire(r *sipas.Response, order *itemOrder) *sipasv1.Response {
	if len(r.Packed) == 0 {
		if packed, ok := packMap(r.Answers, order); ok {
			out := responseFieldsToProto(r)
			out.PackedAnswers = packed
			return out
		}
	}
	return ResponseToProto(r)
}

// packMap returns answers in the packed form of order, trailing items not
// asked left off, or false when order is nil or does not know an item or a
// code cannot be represented.
func packMap[V int | int32](answers map[string]V, order *itemOrder) ([]uint32, bool) {
	if order == nil || len(answers) == 0 {
		return nil, false
	}
	packed := make([]uint32, len(order.codes))
	last := -1
	for code, a := range answers {
		i, ok := order.pos[code]
		if !ok || a < 0 {
			return nil, false
		}
		packed[i] = uint32(a) + 1
		last = max(last, i)
	}
	return packed[:last+1], true
}

// packAnswers moves the map answers of an API response into the packed
// form when packMap can; otherwise it leaves the response as it is.
func packAnswers(r *sipasv1.Response, order *itemOrder) {
	if len(r.PackedAnswers) > 0 {
		return
	}
	if packed, ok := packMap(r.Answers, order); ok {
		r.PackedAnswers, r.Answers = packed, nil
	}
}
