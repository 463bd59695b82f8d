package client

import (
	"fmt"
	"strings"
	"time"

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

// The index reads: API messages become domain values.

// PeriodToProto converts a domain period into its API form.
func PeriodToProto(p sipas.Period) *sipasv1.Period {
	return &sipasv1.Period{Year: int32(p.Year), Quarter: int32(p.Quarter), Month: int32(p.Month)}
}

// PeriodFromProto converts an API period; nil is the zero period.
func PeriodFromProto(p *sipasv1.Period) sipas.Period {
	return sipas.Period{Year: int(p.GetYear()), Quarter: int(p.GetQuarter()), Month: int(p.GetMonth())}
}

// ScopeToProto converts a domain scope (one of unit, province, nation).
func ScopeToProto(s sipas.Scope) *sipasv1.Scope {
	switch {
	case s.UnitID != "":
		return &sipasv1.Scope{Scope: &sipasv1.Scope_UnitId{UnitId: s.UnitID}}
	case s.ProvinceCode != "":
		return &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: s.ProvinceCode}}
	case s.Nation:
		return &sipasv1.Scope{Scope: &sipasv1.Scope_Nation{Nation: true}}
	}
	return nil
}

// ScopeFromProto converts an API scope.
func ScopeFromProto(s *sipasv1.Scope) sipas.Scope {
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

// boundariesFromProto: an unspecified value is as collected, as the server
// reads it.
func boundariesFromProto(b sipasv1.Boundaries) sipas.Boundaries {
	if b == sipasv1.Boundaries_BOUNDARIES_UNSPECIFIED {
		return sipas.BoundariesAsCollected
	}
	return sipas.Boundaries(b)
}

func thresholdsFromProto(disclosure, minSample int64) sipas.Thresholds {
	return sipas.Thresholds{Disclosure: disclosure, MinSample: minSample}
}

// ReportFromProto converts an index report.
func ReportFromProto(r *sipasv1.IndexReport) *sipas.Report {
	out := &sipas.Report{QuestionnaireID: r.GetQuestionnaireId(), FormulaVersion: r.GetFormulaVersion(),
		Scope: ScopeFromProto(r.GetScope()), ScopeName: r.GetScopeName(), Period: PeriodFromProto(r.GetPeriod()),
		Boundaries: boundariesFromProto(r.GetBoundaries()), Channel: sipas.Channel(r.GetChannel()),
		Respondents: r.GetRespondents(), Suppressed: r.GetSuppressed(), NationalMean: r.NationalMean,
		Thresholds:      thresholdsFromProto(r.GetDisclosureThreshold(), r.GetMinimumSample()),
		FlaggedExcluded: r.GetFlaggedExcluded(), FlaggedIncluded: r.GetFlaggedIncluded()}
	for _, n := range r.GetRoots() {
		out.Roots = append(out.Roots, nodeValueFromProto(n))
	}
	return out
}

func nodeValueFromProto(n *sipasv1.IndexNode) *sipas.NodeValue {
	out := &sipas.NodeValue{Code: n.GetCode(), LabelVi: n.GetLabelVi(), LabelEn: n.GetLabelEn(), IsItem: n.GetIsItem(),
		Role: sipas.Role(n.GetRole()), Value: n.Value, N: n.GetN(), Positive: n.GetPositive(), Valid: n.GetValid(),
		CILow: n.CiLow, CIHigh: n.CiHigh, Insufficient: n.GetInsufficient(), Suppressed: n.GetSuppressed()}
	for _, c := range n.GetChildren() {
		out.Children = append(out.Children, nodeValueFromProto(c))
	}
	return out
}

// RankingFromProto converts a ranking of provinces or units.
func RankingFromProto(r *sipasv1.Ranking) *sipas.Ranking {
	out := &sipas.Ranking{QuestionnaireID: r.GetQuestionnaireId(), FormulaVersion: r.GetFormulaVersion(),
		Period: PeriodFromProto(r.GetPeriod()), PreviousPeriod: PeriodFromProto(r.GetPreviousPeriod()),
		Boundaries: boundariesFromProto(r.GetBoundaries()), Channel: sipas.Channel(r.GetChannel()),
		NodeCode: r.GetNodeCode(), Mean: r.Mean, Pooled: r.Pooled,
		Thresholds:      thresholdsFromProto(r.GetDisclosureThreshold(), r.GetMinimumSample()),
		FlaggedExcluded: r.GetFlaggedExcluded(), FlaggedIncluded: r.GetFlaggedIncluded()}
	for _, row := range r.GetRows() {
		out.Rows = append(out.Rows, sipas.RankRow{ID: row.GetId(), Name: row.GetName(), Value: row.Value,
			CILow: row.CiLow, CIHigh: row.CiHigh, Rank: int(row.GetRank()), N: row.GetN(),
			Insufficient: row.GetInsufficient(), Suppressed: row.GetSuppressed(), PreviousValue: row.PreviousValue,
			PreviousRank: int(row.GetPreviousRank()), RankChange: int(row.GetRankChange()), ValueChange: row.ValueChange})
	}
	return out
}

// SeriesFromProto converts a series; the API message does not repeat what
// was asked, so scope, from, to, boundaries and channel come from the
// request.
func SeriesFromProto(s *sipasv1.Series, req *sipasv1.GetSeriesRequest) *sipas.Series {
	out := &sipas.Series{QuestionnaireID: s.GetQuestionnaireId(), FormulaVersion: s.GetFormulaVersion(),
		Scope: ScopeFromProto(req.GetScope()), NodeCode: s.GetNodeCode(),
		From: PeriodFromProto(req.GetFrom()), To: PeriodFromProto(req.GetTo()),
		Boundaries: boundariesFromProto(req.GetBoundaries()), Channel: sipas.Channel(req.GetChannel()),
		Thresholds: thresholdsFromProto(s.GetDisclosureThreshold(), s.GetMinimumSample())}
	for _, p := range s.GetPoints() {
		out.Points = append(out.Points, sipas.SeriesPoint{Period: PeriodFromProto(p.GetPeriod()), Value: p.Value,
			N: p.GetN(), CILow: p.CiLow, CIHigh: p.CiHigh, Insufficient: p.GetInsufficient(), Suppressed: p.GetSuppressed(),
			FlaggedExcluded: p.GetFlaggedExcluded(), FlaggedIncluded: p.GetFlaggedIncluded()})
	}
	return out
}

// WeakPointsFromProto converts a province's weak points. The API lists the
// province's own figures (level "item" or "group") and then its units' rows
// (level "unit", code "UNIT_ID/CODE") in one lowest list; they become Lowest
// and Units. The API message does not repeat the province, boundaries and
// channel asked for, so they come from the request.
func WeakPointsFromProto(w *sipasv1.WeakPoints, req *sipasv1.GetWeakPointsRequest) *sipas.WeakPoints {
	out := &sipas.WeakPoints{QuestionnaireID: w.GetQuestionnaireId(), FormulaVersion: w.GetFormulaVersion(),
		Scope: sipas.Scope{ProvinceCode: req.GetProvinceCode()}, Period: PeriodFromProto(w.GetPeriod()),
		PreviousPeriod: PeriodFromProto(w.GetPreviousPeriod()), Boundaries: boundariesFromProto(req.GetBoundaries()),
		Channel: sipas.Channel(req.GetChannel()), Thresholds: thresholdsFromProto(w.GetDisclosureThreshold(), w.GetMinimumSample()),
		FlaggedExcluded: w.GetFlaggedExcluded(), FlaggedIncluded: w.GetFlaggedIncluded()}
	conv := func(p *sipasv1.WeakPoint) sipas.WeakPoint {
		wp := sipas.WeakPoint{Code: p.GetCode(), LabelVi: p.GetLabelVi(), LabelEn: p.GetLabelEn(), IsItem: p.GetLevel() == "item",
			Value: p.GetValue(), N: p.GetN(), PreviousValue: p.PreviousValue, Change: p.Change, National: p.NationalValue}
		if p.GetLevel() == "unit" {
			wp.UnitID, wp.Code, _ = strings.Cut(p.GetCode(), "/")
		}
		return wp
	}
	for _, p := range w.GetLowest() {
		if p.GetLevel() == "unit" {
			out.Units = append(out.Units, conv(p))
		} else {
			out.Lowest = append(out.Lowest, conv(p))
		}
	}
	for _, p := range w.GetLargestDrops() {
		out.Drops = append(out.Drops, conv(p))
	}
	return out
}

// ResponseCountFromProto converts one row of response counts.
func ResponseCountFromProto(r *sipasv1.ResponseCount) sipas.ResponseCount {
	return sipas.ResponseCount{QuestionnaireID: r.GetQuestionnaireId(), ProvinceCode: r.GetProvinceCode(), UnitID: r.GetUnitId(),
		Month: int(r.GetMonth().GetYear())*100 + int(r.GetMonth().GetMonth()), Channel: sipas.Channel(r.GetChannel()), Responses: r.GetResponses()}
}

// QuestionnaireFromProto rebuilds a domain questionnaire from its API form
// through sipas.NewQuestionnaire, so the result is checked and laid out
// exactly like a definition loaded from files (the same item order, counter
// slots and tree).
func QuestionnaireFromProto(q *sipasv1.Questionnaire) (*sipas.Questionnaire, error) {
	def := sipas.QuestionnaireDef{ID: q.GetQuestionnaireId(), TitleVi: q.GetTitleVi(), TitleEn: q.GetTitleEn(),
		Method: q.GetMethod(), FormulaVersion: q.GetFormulaVersion(), Source: q.GetSource(), Scales: map[string]*sipas.Scale{}}
	if def.Source == "" {
		def.Source = "server"
	}
	for _, s := range q.GetScales() {
		sc := &sipas.Scale{ID: s.GetScaleId()}
		for _, c := range s.GetCodes() {
			sc.Codes = append(sc.Codes, sipas.ScaleCode{Code: int(c.GetCode()), LabelVi: c.GetLabelVi(), LabelEn: c.GetLabelEn(), Positive: c.GetPositive()})
		}
		def.Scales[sc.ID] = sc
	}
	var walk func(n *sipasv1.FormulaNode, parent string)
	walk = func(n *sipasv1.FormulaNode, parent string) {
		def.Nodes = append(def.Nodes, sipas.NodeDef{Code: n.GetCode(), Parent: parent, Kind: sipas.Kind(n.GetKind()),
			Aggregation: sipas.Aggregation(n.GetAggregation()), Weight: n.GetWeight(), LabelVi: n.GetLabelVi(), LabelEn: n.GetLabelEn()})
		for _, c := range n.GetChildren() {
			walk(c, n.GetCode())
		}
	}
	for _, r := range q.GetFormula() {
		walk(r, "")
	}
	for _, it := range q.GetItems() {
		def.Items = append(def.Items, sipas.ItemDef{Code: it.GetCode(), Kind: sipas.Kind(it.GetKind()), Group: it.GetGroup(),
			Role: sipas.Role(it.GetRole()), Scale: it.GetScale(), LabelVi: it.GetLabelVi(), LabelEn: it.GetLabelEn(),
			Provenance: it.GetProvenance()})
	}
	out, err := sipas.NewQuestionnaire(def)
	if err != nil {
		return nil, fmt.Errorf("questionnaire %s from the server: %w", q.GetQuestionnaireId(), err)
	}
	return out, nil
}

// The AdminService's messages as domain values.

// optionalTime is nil for a missing timestamp.
func optionalTime(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime().UTC()
	return &t
}

// UnitFromProto converts a unit.
func UnitFromProto(u *sipasv1.Unit) sipas.Unit {
	return sipas.Unit{ID: u.GetUnitId(), DisplayName: u.GetDisplayName(), ProvinceCode: u.GetProvinceCode(),
		CommuneCode: u.GetCommuneCode(), CreateTime: u.GetCreateTime().AsTime().UTC()}
}

// CredentialFromProto converts a credential.
func CredentialFromProto(c *sipasv1.Credential) sipas.Credential {
	return sipas.Credential{ID: c.GetCredentialId(), Role: sipas.CredentialRole(c.GetRole()), UnitID: c.GetUnitId(),
		Provinces: c.GetProvinceCodes(), AllProvinces: c.GetAllProvinces(), Description: c.GetDescription(),
		CreateTime: c.GetCreateTime().AsTime().UTC(), ExpireTime: optionalTime(c.GetExpireTime()), RevokeTime: optionalTime(c.GetRevokeTime())}
}

// KioskStatusFromProto converts a kiosk's status.
func KioskStatusFromProto(k *sipasv1.Kiosk) sipas.KioskStatus {
	out := sipas.KioskStatus{CredentialID: k.GetCredentialId(), UnitID: k.GetUnitId(), UnitDisplayName: k.GetUnitDisplayName(),
		ProvinceCode: k.GetProvinceCode(), Description: k.GetDescription(), LastHeartbeat: optionalTime(k.GetLastHeartbeatTime()),
		LastResponse: optionalTime(k.GetLastResponseTime()), QueueDepth: k.GetQueueDepth(), OldestPending: k.GetOldestPendingAge().AsDuration(),
		DeadLetters: k.GetDeadLetters(), AgentVersion: k.GetAgentVersion(), Silent: k.GetSilent()}
	if k.GetClockOffset() != nil {
		d := k.GetClockOffset().AsDuration()
		out.ClockOffset = &d
	}
	return out
}
