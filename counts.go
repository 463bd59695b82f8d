package sipas

import (
	"fmt"
	"sort"
)

// ResponseCount is the number of responses stored for one questionnaire,
// province (as collected), unit, month and channel.
type ResponseCount struct {
	QuestionnaireID string
	ProvinceCode    string // the code the responses are counted for, as collected
	UnitID          string // "" for the responses without a unit
	Month           int    // year*100 + month
	Channel         Channel
	Responses       int64
}

// CountQuery selects response counts. Only Period is required.
type CountQuery struct {
	QuestionnaireID string // "": every questionnaire
	Period          Period
	ProvinceCode    string // as collected
	UnitID          string
	Channel         Channel
}

// Counts returns the exact number of responses per questionnaire, province
// (as collected), unit, month and channel in the query's period, read from
// the aggregate cells: the responses without a unit are a province's cell
// minus its units' cells. It applies no disclosure control — it is for
// operators confirming that data arrived, and the server offers it to
// admins only — and returns counts only, never answers or figures. Rows
// are ordered by questionnaire, province, month, channel and unit; rows
// without responses are left out.
//
// Errors: KindInvalid for a malformed query, KindFailedPrecondition for an
// unknown questionnaire.
func (e *Engine) Counts(cq CountQuery) ([]ResponseCount, error) {
	const op = "count responses"
	var vs []Violation
	if err := cq.Period.Validate(); err != nil {
		vs = append(vs, err.(*Error).Violations...)
	}
	if cq.Channel < ChannelUnspecified || cq.Channel > ChannelPhone {
		vs = append(vs, Violation{Field: "channel", Reason: "INVALID_CHANNEL", Description: fmt.Sprintf("unknown channel %d", cq.Channel)})
	}
	if len(vs) > 0 {
		return nil, Invalid(op, vs...)
	}
	if e.Source == nil || e.Catalog == nil {
		return nil, Errorf(KindOther, op, "no cell source")
	}
	qns := e.Catalog.List()
	if cq.QuestionnaireID != "" {
		qn := e.Catalog.Get(cq.QuestionnaireID)
		if qn == nil {
			return nil, &Error{Kind: KindFailedPrecondition, Op: op, Reason: "UNKNOWN_QUESTIONNAIRE",
				Message: fmt.Sprintf("unknown questionnaire %q", cq.QuestionnaireID)}
		}
		qns = []*Questionnaire{qn}
	}
	ps := e.provinces()
	code := func(id string) string {
		if r := ps.byID[id]; r != nil {
			return r.p.Code
		}
		return id
	}
	from, to := cq.Period.Months()
	rows := map[CellKey]int64{}
	for _, qn := range qns {
		e.Source.EachCell(qn.ID, from, to, func(k CellKey, t *Tally) {
			if k.Month < from || k.Month > to || (cq.Channel != ChannelUnspecified && k.Channel != cq.Channel) ||
				(cq.ProvinceCode != "" && code(k.ProvinceID) != cq.ProvinceCode) {
				return
			}
			switch {
			case k.UnitID == "" && cq.UnitID == "":
				rows[k] += t.Respondents // all of the province; its units are taken off below
			case k.UnitID != "" && (cq.UnitID == "" || k.UnitID == cq.UnitID):
				rows[k] += t.Respondents
				if cq.UnitID == "" {
					direct := k
					direct.UnitID = ""
					rows[direct] -= t.Respondents
				}
			}
		})
	}
	out := make([]ResponseCount, 0, len(rows))
	for k, n := range rows {
		if n > 0 {
			out = append(out, ResponseCount{QuestionnaireID: k.QuestionnaireID, ProvinceCode: code(k.ProvinceID), UnitID: k.UnitID,
				Month: k.Month, Channel: k.Channel, Responses: n})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.QuestionnaireID != b.QuestionnaireID:
			return a.QuestionnaireID < b.QuestionnaireID
		case a.ProvinceCode != b.ProvinceCode:
			return a.ProvinceCode < b.ProvinceCode
		case a.Month != b.Month:
			return a.Month < b.Month
		case a.Channel != b.Channel:
			return a.Channel < b.Channel
		default:
			return a.UnitID < b.UnitID
		}
	})
	return out, nil
}
