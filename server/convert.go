package server

import (
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

// responseFromProto converts an API response into the domain form, with the
// answers in whichever form they were sent (the packed form is used as it
// is, not copied). Checks of content are the domain's (sipas.Validate).
func responseFromProto(r *sipasv1.Response) *sipas.Response {
	out := responseFieldsFromProto(r)
	out.Packed = r.GetPackedAnswers()
	return out
}

// responseFieldsFromProto copies every field but the packed answers.
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
	}
	for _, f := range r.GetFlags() {
		out.Flags |= sipas.FlagFromNumber(int32(f))
	}
	if len(r.GetAnswers()) > 0 {
		out.Answers = make(map[string]int, len(r.GetAnswers()))
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
