package server

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// Corrections (issue 16 item 5): withdrawals and amendments of stored
// responses by the credential that sent them or an administrator, and
// closed periods. The store checks who may correct what, and closed
// periods, in the writer's transaction; the handlers validate, convert and
// map.

const opCorrect = "correct response"

// maxReason bounds the reason of a correction or a period change.
const maxReason = 500

// checkReason validates a reason field: required unless optional, at most
// maxReason characters, no control characters (it is printed in the audit log).
func checkReason(field, reason string, optional bool) error {
	switch {
	case reason == "" && optional:
		return nil
	case reason == "":
		return sipas.Invalid(opCorrect, sipas.Violation{Field: field, Reason: "REQUIRED",
			Description: "say why (1 to " + strconv.Itoa(maxReason) + " characters); it is kept in the audit log"})
	case !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxReason || sipas.HasControl(reason):
		return sipas.Invalid(opCorrect, sipas.Violation{Field: field, Reason: "INVALID_REASON",
			Description: "at most " + strconv.Itoa(maxReason) + " characters, without control characters"})
	}
	return nil
}

// actorFrom is the store's view of the caller.
func actorFrom(p *Principal) store.Actor {
	if p == nil {
		return store.Actor{Admin: true} // only without authentication (tests of the store path)
	}
	return store.Actor{CredentialID: p.CredentialID, Admin: p.Role == sipasv1.Role_ROLE_ADMIN}
}

func (h *surveyService) WithdrawResponse(ctx context.Context, req *sipasv1.WithdrawResponseRequest) (*sipasv1.WithdrawResponseResponse, error) {
	if err := checkReason("reason", req.GetReason(), false); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	res, err := h.s.cfg.Store.Correct(ctx, []store.Correction{{Kind: store.CorrectionWithdraw, ResponseID: req.GetResponseId(),
		Actor: actorFrom(principalFrom(ctx)), Reason: req.GetReason()}})
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	h.s.metrics.Corrections.WithLabelValues("withdrawal", outcomeLabel(res[0].Unchanged)).Inc()
	return &sipasv1.WithdrawResponseResponse{ResponseId: req.GetResponseId(), Version: int32(res[0].Version), AlreadyWithdrawn: res[0].Unchanged}, nil
}

func (h *surveyService) AmendResponse(ctx context.Context, req *sipasv1.AmendResponseRequest) (*sipasv1.AmendResponseResponse, error) {
	if req.GetResponse() == nil {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid(opCorrect, sipas.Violation{
			Field: "response", Reason: "REQUIRED", Description: "the new version of the response is required"}))
	}
	if err := checkReason("reason", req.GetReason(), false); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if err := checkTimestamps(req.GetResponse()); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	p := principalFrom(ctx)
	acc, err := h.s.accept(p, responseFromProto(req.GetResponse()))
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	res, err := h.s.cfg.Store.Correct(ctx, []store.Correction{{Kind: store.CorrectionAmend, Amended: acc, Actor: actorFrom(p), Reason: req.GetReason()}})
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	h.s.metrics.Corrections.WithLabelValues("amendment", outcomeLabel(res[0].Unchanged)).Inc()
	return &sipasv1.AmendResponseResponse{ResponseId: acc.Response.ID, Version: int32(res[0].Version), Unchanged: res[0].Unchanged,
		ProvinceCode: acc.Province.Code, Warnings: acc.Warnings}, nil
}

func outcomeLabel(unchanged bool) string {
	if unchanged {
		return "unchanged"
	}
	return "applied"
}

func (h *surveyService) GetResponseHistory(ctx context.Context, req *sipasv1.GetResponseHistoryRequest) (*sipasv1.GetResponseHistoryResponse, error) {
	const op = "get response history"
	src, err := h.s.cfg.Store.ResponseSource(ctx, req.GetResponseId())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if a := actorFrom(principalFrom(ctx)); !a.Admin && (src.CredentialID == "" || src.CredentialID != a.CredentialID) {
		return nil, toStatus(ctx, h.s.log, &sipas.Error{Kind: sipas.KindPermissionDenied, Op: op, Reason: "NOT_SENDER",
			Message: "only the credential that sent a response, or an administrator, may read its history"})
	}
	vs, withdrawn, err := h.s.cfg.Store.ResponseHistory(ctx, req.GetResponseId())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	out := &sipasv1.GetResponseHistoryResponse{Withdrawn: withdrawn}
	for _, v := range vs {
		pv := &sipasv1.ResponseVersion{Version: int32(v.Version), ReplacedBy: sipasv1.CorrectionKind(v.ReplacedBy),
			CorrectedBy: v.ReplacedByID, Reason: v.Reason, ContentHash: hex.EncodeToString(v.ContentHash[:])}
		if v.ReplacedBy != 0 {
			pv.ReplaceTime = timestamppb.New(v.ReplacedAt)
		}
		out.Versions = append(out.Versions, pv)
	}
	return out, nil
}

// amendConflicts turns the items of a committed upload chunk that conflict
// with a stored response into amendments (uploads with amend).
func (s *Server) amendConflicts(ctx context.Context, p *Principal, reason string, c *uploadChunk) error {
	var corr []store.Correction
	var idx []int
	for i, r := range c.inserted {
		var de *sipas.Error
		if r.Err != nil && errors.As(r.Err, &de) && de.Reason == sipas.ErrResponseConflict.Reason {
			corr = append(corr, store.Correction{Kind: store.CorrectionAmend, Amended: c.accepted[i], Actor: actorFrom(p), Reason: reason})
			idx = append(idx, i)
		}
	}
	if len(corr) == 0 {
		return nil
	}
	res, err := s.cfg.Store.Correct(ctx, corr)
	if err != nil {
		return err
	}
	c.amended = make([]bool, len(c.inserted))
	for j, i := range idx {
		switch {
		case res[j].Err != nil:
			c.inserted[i].Err = res[j].Err
		case res[j].Unchanged: // amended by an earlier send of the same file
			c.inserted[i] = store.InsertResult{Duplicate: true}
		default:
			c.inserted[i].Err = nil
			c.amended[i] = true
		}
	}
	return nil
}

func closedPeriodToProto(p store.ClosedPeriod) (*sipasv1.ClosedPeriod, error) {
	per, err := sipas.ParsePeriod(p.Period)
	if err != nil {
		return nil, err
	}
	return &sipasv1.ClosedPeriod{Name: "closedPeriods/" + p.Period, Period: periodToProto(per),
		CloseTime: timestamppb.New(p.CloseTime), ClosedBy: p.ClosedBy, Reason: p.Reason}, nil
}

func (h *adminService) ClosePeriod(ctx context.Context, req *sipasv1.ClosePeriodRequest) (*sipasv1.ClosePeriodResponse, error) {
	if err := checkPeriod(req.GetPeriod(), "period"); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if err := checkReason("reason", req.GetReason(), true); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	per := periodFromProto(req.GetPeriod())
	already, err := h.s.cfg.Store.ClosePeriod(ctx, per, actorOf(ctx), req.GetReason())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	ps, err := h.s.cfg.Store.ListClosedPeriods(ctx)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	out := &sipasv1.ClosePeriodResponse{AlreadyClosed: already}
	for _, p := range ps {
		if p.Period == per.String() {
			if out.ClosedPeriod, err = closedPeriodToProto(p); err != nil {
				return nil, toStatus(ctx, h.s.log, err)
			}
		}
	}
	return out, nil
}

func (h *adminService) ListClosedPeriods(ctx context.Context, req *sipasv1.ListClosedPeriodsRequest) (*sipasv1.ListClosedPeriodsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 100, 1000)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	skip := 0
	if t := req.GetPageToken(); t != "" {
		if skip, err = strconv.Atoi(t); err != nil || skip < 0 {
			return nil, toStatus(ctx, h.s.log, sipas.Invalid("list closed periods", sipas.Violation{Field: "page_token", Reason: "INVALID_PAGE_TOKEN",
				Description: "use a next_page_token of a previous call"}))
		}
	}
	ps, err := h.s.cfg.Store.ListClosedPeriods(ctx)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	out := &sipasv1.ListClosedPeriodsResponse{}
	for i := skip; i < len(ps); i++ {
		if len(out.ClosedPeriods) == size {
			out.NextPageToken = strconv.Itoa(i)
			break
		}
		cp, err := closedPeriodToProto(ps[i])
		if err != nil {
			return nil, toStatus(ctx, h.s.log, err)
		}
		out.ClosedPeriods = append(out.ClosedPeriods, cp)
	}
	return out, nil
}

func (h *adminService) ReopenPeriod(ctx context.Context, req *sipasv1.ReopenPeriodRequest) (*sipasv1.ReopenPeriodResponse, error) {
	if err := checkPeriod(req.GetPeriod(), "period"); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if err := checkReason("reason", req.GetReason(), false); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if err := h.s.cfg.Store.ReopenPeriod(ctx, periodFromProto(req.GetPeriod()), actorOf(ctx), req.GetReason()); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &sipasv1.ReopenPeriodResponse{}, nil
}
