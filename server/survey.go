package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// surveyService implements sipas.v1.SurveyService.
type surveyService struct {
	sipasv1.UnimplementedSurveyServiceServer
	s *Server
}

func (h *surveyService) GetQuestionnaire(ctx context.Context, req *sipasv1.GetQuestionnaireRequest) (*sipasv1.GetQuestionnaireResponse, error) {
	id, ok := strings.CutPrefix(req.GetName(), "questionnaires/")
	if !ok || id == "" {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("get questionnaire", sipas.Violation{
			Field: "name", Reason: "INVALID_NAME", Description: `must be "questionnaires/{questionnaire_id}", e.g. "questionnaires/sipas-2023"`}))
	}
	q := h.s.cfg.Catalog.Get(id)
	if q == nil {
		return nil, toStatus(ctx, h.s.log, &sipas.Error{Kind: sipas.KindNotFound, Reason: "UNKNOWN_QUESTIONNAIRE",
			Op: "get questionnaire", Message: "no questionnaire " + quote(id)})
	}
	return &sipasv1.GetQuestionnaireResponse{Questionnaire: questionnaireToProto(q)}, nil
}

func (h *surveyService) ListQuestionnaires(ctx context.Context, req *sipasv1.ListQuestionnairesRequest) (*sipasv1.ListQuestionnairesResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 100)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	after := req.GetPageToken()
	out := &sipasv1.ListQuestionnairesResponse{}
	for _, q := range h.s.cfg.Catalog.List() {
		if q.ID <= after {
			continue
		}
		if len(out.Questionnaires) == size {
			out.NextPageToken = out.Questionnaires[size-1].QuestionnaireId
			break
		}
		out.Questionnaires = append(out.Questionnaires, questionnaireToProto(q))
	}
	return out, nil
}

func (h *surveyService) SubmitResponse(ctx context.Context, req *sipasv1.SubmitResponseRequest) (*sipasv1.SubmitResponseResponse, error) {
	p := principalFrom(ctx)
	if req.GetResponse() == nil {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("submit response", sipas.Violation{
			Field: "response", Reason: "REQUIRED", Description: "a response is required"}))
	}
	if err := checkTimestamps(req.GetResponse()); err != nil {
		h.s.countRefusal(sipas.Channel(req.GetResponse().GetChannel()), err)
		return nil, toStatus(ctx, h.s.log, err)
	}
	r := responseFromProto(req.GetResponse())
	acc, err := h.s.accept(p, r)
	if err != nil {
		h.s.countRefusal(r.Channel, err)
		return nil, toStatus(ctx, h.s.log, err)
	}
	if p != nil {
		acc.Source.CredentialID = p.CredentialID
	}
	results, err := h.s.cfg.Store.Insert(ctx, []*sipas.Accepted{acc})
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if err := results[0].Err; err != nil {
		h.s.countRefusal(r.Channel, err)
		return nil, toStatus(ctx, h.s.log, err)
	}
	h.s.noteKioskResponse(p)
	outcome := "accepted"
	if results[0].Duplicate {
		outcome = "duplicate"
	}
	h.s.metrics.ResponsesIngested.WithLabelValues(channelLabel(r.Channel), outcome).Inc()
	return &sipasv1.SubmitResponseResponse{
		ResponseId:   acc.Response.ID,
		Duplicate:    results[0].Duplicate,
		ProvinceCode: acc.Province.Code,
		Warnings:     acc.Warnings,
	}, nil
}

// checkTimestamps refuses a response whose Timestamp fields are not valid
// Timestamps (nanos outside 0..999,999,999, seconds outside years 1..9999),
// which AsTime would silently normalise.
func checkTimestamps(r *sipasv1.Response) error {
	if t := r.GetCollectedAt(); t != nil {
		if err := t.CheckValid(); err != nil {
			return sipas.Invalid("validate response", sipas.Violation{Field: "collected_at", Reason: "INVALID_TIMESTAMP",
				Description: "collected_at is not a valid Timestamp: nanos must be 0 to 999999999 and the year 1 to 9999"})
		}
	}
	return nil
}

// accept applies the caller's scope to a response and validates it.
// A kiosk's unit and province come from its credential: a body naming
// another unit or province is refused; its channel is kiosk whatever the
// body says, and its collected_at must be recent (checkKioskTime). A
// surveyor may only send responses of provinces in its scope. A response
// naming a unit must name a registered unit of its province (checkUnit).
func (s *Server) accept(p *Principal, r *sipas.Response) (*sipas.Accepted, error) {
	kiosk := p != nil && p.Role == sipasv1.Role_ROLE_KIOSK
	forcedChannel := false
	if kiosk {
		if r.UnitID != "" && r.UnitID != p.UnitID {
			return nil, &sipas.Error{Kind: sipas.KindPermissionDenied, Reason: "OTHER_UNIT", Op: "submit response",
				Message: "a kiosk may only submit for its own unit; leave unit_id empty or use the credential's unit"}
		}
		if r.ProvinceCode != "" && r.ProvinceCode != p.UnitProvince {
			return nil, &sipas.Error{Kind: sipas.KindPermissionDenied, Reason: "OTHER_PROVINCE", Op: "submit response",
				Message: "a kiosk may only submit for its unit's province; leave province_code empty"}
		}
		r.UnitID, r.ProvinceCode = p.UnitID, p.UnitProvince
		r.Flags |= s.kioskFlags(p)
		forcedChannel = r.Channel != sipas.ChannelUnspecified && r.Channel != sipas.ChannelKiosk
		r.Channel = sipas.ChannelKiosk
	}
	acc, err := sipas.Validate(s.cfg.Catalog, s.cfg.Registry, r, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	if kiosk {
		if err := s.checkKioskTime(p, r.CollectedAt); err != nil {
			return nil, err
		}
		if forcedChannel {
			acc.Warnings = append(acc.Warnings, "kênh thu thập của kiosk luôn là kiosk / a kiosk credential's responses are channel kiosk: the channel sent was replaced")
		}
	}
	if p != nil && !kiosk {
		current := s.cfg.Registry.Current(acc.Province)
		if !p.InProvince(r.ProvinceCode) && !p.InProvince(acc.Province.Code) && !p.InProvince(current.Code) {
			return nil, &sipas.Error{Kind: sipas.KindPermissionDenied, Reason: "PROVINCE_OUT_OF_SCOPE", Op: "submit response",
				Message: "province " + quote(r.ProvinceCode) + " is outside this credential's scope"}
		}
	}
	if r.UnitID != "" && !kiosk {
		if err := s.checkUnit(p, acc); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

const opAccept = "submit response"

// checkKioskTime refuses a kiosk response collected before its credential
// existed (less KioskClockGrace, for clocks that are behind) or longer ago
// than KioskMaxAge: a kiosk can neither feed periods before it was set up
// nor rewrite closed ones. Older data goes through a surveyor's upload,
// where it is attributable to a survey team.
func (s *Server) checkKioskTime(p *Principal, at time.Time) error {
	if at.Before(s.cfg.Now().Add(-s.cfg.KioskMaxAge)) {
		return sipas.Invalid(opAccept, sipas.Violation{Field: "collected_at", Reason: "KIOSK_TOO_OLD",
			Description: "a kiosk may send responses collected within the last " + s.cfg.KioskMaxAge.String() +
				"; older responses are uploaded by a survey team (sipas upload)"})
	}
	if !p.CreateTime.IsZero() && at.Before(p.CreateTime.Add(-s.cfg.KioskClockGrace)) {
		return sipas.Invalid(opAccept, sipas.Violation{Field: "collected_at", Reason: "BEFORE_CREDENTIAL",
			Description: "collected_at lies before this kiosk's credential was issued (allowing " + s.cfg.KioskClockGrace.String() +
				" for a clock that is behind); check the kiosk's clock"})
	}
	return nil
}

// checkUnit checks the unit a (non-kiosk) response names: it must be
// registered (UNKNOWN_UNIT), in the caller's provinces (UNIT_OUT_OF_SCOPE),
// and the province the response is counted for must be, today, the unit's
// province (UNIT_PROVINCE_MISMATCH): a response collected before the 2025
// merger in a province that merged into the unit's province is the unit's.
// The unit is read from the store's in-memory registry, not the database.
func (s *Server) checkUnit(p *Principal, acc *sipas.Accepted) error {
	id := acc.Response.UnitID
	u, ok := s.cfg.Store.Unit(id)
	if !ok {
		return &sipas.Error{Kind: sipas.KindFailedPrecondition, Op: opAccept, Reason: "UNKNOWN_UNIT",
			Message: "unit " + quote(id) + " is not registered",
			Violations: []sipas.Violation{{Field: "unit_id", Reason: "UNKNOWN_UNIT",
				Description: "unit " + quote(id) + " is not registered; an administrator registers units (sipas admin units create), or leave unit_id empty"}}}
	}
	if p != nil && p.Role != sipasv1.Role_ROLE_ADMIN && !p.All && !s.inScopeCurrent(p, u.ProvinceCode) {
		return &sipas.Error{Kind: sipas.KindPermissionDenied, Op: opAccept, Reason: "UNIT_OUT_OF_SCOPE",
			Message: "unit " + quote(id) + " is in a province outside this credential's scope",
			Violations: []sipas.Violation{{Field: "unit_id", Reason: "UNIT_OUT_OF_SCOPE",
				Description: "unit " + quote(id) + " is in province " + u.ProvinceCode + ", outside this credential's provinces"}}}
	}
	// Units are registered in a province valid at the time, so the first
	// comparison decides; the second covers a unit whose province has since
	// merged into another.
	if cur := s.cfg.Registry.Current(acc.Province); cur == nil || (cur.Code != u.ProvinceCode && cur.Code != s.currentCode(u.ProvinceCode)) {
		return &sipas.Error{Kind: sipas.KindInvalid, Op: opAccept, Reason: "UNIT_PROVINCE_MISMATCH",
			Message: "unit " + quote(id) + " is not a unit of the response's province",
			Violations: []sipas.Violation{{Field: "unit_id", Reason: "UNIT_PROVINCE_MISMATCH",
				Description: "unit " + quote(id) + " is registered in province " + u.ProvinceCode + "; this response is counted for province " +
					acc.Province.Code + " (" + acc.Province.NameVi + ")"}}}
	}
	return nil
}

// currentCode returns the code of the province that code (a province valid
// today, or one merged into it) is part of today.
func (s *Server) currentCode(code string) string {
	if prov, _, err := s.cfg.Registry.Resolve(code, s.cfg.Now()); err == nil {
		return s.cfg.Registry.Current(prov).Code
	}
	return code
}

func (s *Server) countRefusal(ch sipas.Channel, err error) {
	reason := "INTERNAL"
	var de *sipas.Error
	if errors.As(err, &de) {
		reason = de.Reason
		if len(de.Violations) > 0 {
			reason = de.Violations[0].Reason
		}
	}
	s.metrics.ResponsesIngested.WithLabelValues(channelLabel(ch), "rejected").Inc()
	s.metrics.Refusals.WithLabelValues(reason).Inc()
}

// channelLabels are the channel metric labels, by channel.
var channelLabels = func() map[sipas.Channel]string {
	m := map[sipas.Channel]string{}
	for _, ch := range sipas.Channels {
		m[ch] = strings.ToLower(strings.TrimPrefix(sipasv1.Channel(ch).String(), "CHANNEL_"))
	}
	return m
}()

// channelLabel bounds the channel metric label to the known set.
func channelLabel(ch sipas.Channel) string {
	if l, ok := channelLabels[ch]; ok {
		return l
	}
	return "unspecified"
}
