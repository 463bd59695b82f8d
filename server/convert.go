package server

import (
	"fmt"
	"strings"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// This file is the one place where API messages and domain values meet.

func questionnaireToProto(q *sipas.Questionnaire) *sipasv1.Questionnaire {
	out := &sipasv1.Questionnaire{
		Name:            "questionnaires/" + q.ID,
		QuestionnaireId: q.ID,
		TitleVi:         q.TitleVi,
		TitleEn:         q.TitleEn,
		Method:          q.Method,
		FormulaVersion:  q.FormulaVersion,
		Source:          q.Source,
	}
	for _, it := range q.Items {
		out.Items = append(out.Items, &sipasv1.Item{
			Code: it.Code, Kind: sipasv1.ItemKind(it.Kind), Group: it.Group, Role: sipasv1.ItemRole(it.Role),
			Scale: it.Scale.ID, LabelVi: it.LabelVi, LabelEn: it.LabelEn, Provenance: it.Provenance,
		})
	}
	for _, sc := range q.Scales {
		ps := &sipasv1.Scale{ScaleId: sc.ID}
		for _, c := range sc.Codes {
			ps.Codes = append(ps.Codes, &sipasv1.ScaleCode{Code: int32(c.Code), LabelVi: c.LabelVi, LabelEn: c.LabelEn, Positive: c.Positive})
		}
		out.Scales = append(out.Scales, ps)
	}
	for _, r := range q.Roots {
		out.Formula = append(out.Formula, nodeToProto(r))
	}
	return out
}

func nodeToProto(n *sipas.Node) *sipasv1.FormulaNode {
	out := &sipasv1.FormulaNode{
		Code: n.Code, Kind: sipasv1.ItemKind(n.Kind), Aggregation: sipasv1.Aggregation(n.Aggregation),
		Weight: n.Weight, LabelVi: n.LabelVi, LabelEn: n.LabelEn,
	}
	for _, c := range n.Children {
		out.Children = append(out.Children, nodeToProto(c))
	}
	for _, it := range n.Items {
		out.ItemCodes = append(out.ItemCodes, it.Code)
	}
	return out
}

// responseFromProto converts an API response into the domain form, reading
// the answers from either of their two forms. Checks of content are the
// domain's (sipas.Validate); this copies, and refuses only what the domain
// cannot see: both answer forms at once, or more packed answers than the
// questionnaire has items.
func responseFromProto(cat *sipas.Catalog, r *sipasv1.Response) (*sipas.Response, error) {
	out := responseFieldsFromProto(r)
	packed := r.GetPackedAnswers()
	if len(packed) == 0 {
		return out, nil
	}
	const op = "read answers"
	if len(r.GetAnswers()) > 0 {
		return out, sipas.Invalid(op, sipas.Violation{Field: "packed_answers", Reason: "BOTH_ANSWER_FORMS",
			Description: "send the answers either in answers or in packed_answers, not both"})
	}
	q := cat.Get(r.GetQuestionnaireId())
	if q == nil {
		return out, nil // validation reports the unknown questionnaire
	}
	if len(packed) > len(q.Items) {
		return out, sipas.Invalid(op, sipas.Violation{Field: "packed_answers", Reason: "TOO_MANY_ANSWERS",
			Description: fmt.Sprintf("%d packed answers, but questionnaire %s has %d items", len(packed), q.ID, len(q.Items))})
	}
	for i, v := range packed {
		if v != 0 {
			out.Answers[q.Items[i].Code] = int(int64(v) - 1)
		}
	}
	return out, nil
}

// responseFieldsFromProto copies every field, answers from the map form.
func responseFieldsFromProto(r *sipasv1.Response) *sipas.Response {
	if r == nil {
		return &sipas.Response{}
	}
	out := &sipas.Response{
		ID:              strings.TrimSpace(r.GetResponseId()),
		QuestionnaireID: r.GetQuestionnaireId(),
		ProvinceCode:    r.GetProvinceCode(),
		Channel:         sipas.Channel(r.GetChannel()),
		UnitID:          r.GetUnitId(),
		Answers:         make(map[string]int, len(r.GetAnswers())),
	}
	if r.GetCollectedAt() != nil {
		out.CollectedAt = r.GetCollectedAt().AsTime()
	}
	if d := r.GetDemographics(); d != nil {
		out.Demographics = sipas.Demographics{
			Gender:         sipas.Gender(d.GetGender()),
			BirthYear:      int(d.GetBirthYear()),
			Ethnicity:      sipas.Ethnicity(d.GetEthnicity()),
			Education:      sipas.Education(d.GetEducation()),
			Occupation:     sipas.Occupation(d.GetOccupation()),
			Residence:      sipas.Residence(d.GetResidence()),
			RespondentType: sipas.RespondentType(d.GetRespondentType()),
		}
		if d.DidProcedure != nil {
			v := d.GetDidProcedure()
			out.Demographics.DidProcedure = &v
		}
	}
	for k, v := range r.GetAnswers() {
		out.Answers[k] = int(v)
	}
	return out
}
