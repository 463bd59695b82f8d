package client

import (
	"context"
	"time"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// CorrectionResult is the server's acknowledgement of a withdrawal or an
// amendment.
type CorrectionResult struct {
	ResponseID string
	// Version is the response's version now (for a withdrawal, the version
	// withdrawn).
	Version int
	// Unchanged: nothing was to do (already withdrawn; same content).
	Unchanged    bool
	ProvinceCode string
	Warnings     []string
}

// retryCorrection calls fn, retrying indeterminate outcomes like Submit:
// a correction repeated is answered Unchanged, so retrying is safe.
func retryCorrection[T any](ctx context.Context, c *Client, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	var last error
	for i := 1; ; i++ {
		cctx, cancel := c.WithTimeout(ctx)
		v, err := fn(cctx)
		cancel()
		if err == nil {
			return v, nil
		}
		last = FromStatus(err)
		if Definite(last) || i >= 5 || ctx.Err() != nil {
			return zero, last
		}
		if err := sleep(ctx, retryAfter(Backoff{}, i, last)); err != nil {
			return zero, last
		}
	}
}

// Withdraw takes a stored response out of every figure, with a reason.
func (c *Client) Withdraw(ctx context.Context, responseID, reason string) (*CorrectionResult, error) {
	resp, err := retryCorrection(ctx, c, func(ctx context.Context) (*sipasv1.WithdrawResponseResponse, error) {
		return c.Survey.WithdrawResponse(ctx, &sipasv1.WithdrawResponseRequest{ResponseId: responseID, Reason: reason})
	})
	if err != nil {
		return nil, err
	}
	return &CorrectionResult{ResponseID: resp.ResponseId, Version: int(resp.Version), Unchanged: resp.AlreadyWithdrawn}, nil
}

// Amend replaces a stored response by a new version (same id), with a reason.
func (c *Client) Amend(ctx context.Context, r *sipas.Response, reason string) (*CorrectionResult, error) {
	req := &sipasv1.AmendResponseRequest{Response: c.WireResponse(ctx, r), Reason: reason}
	resp, err := retryCorrection(ctx, c, func(ctx context.Context) (*sipasv1.AmendResponseResponse, error) {
		return c.Survey.AmendResponse(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	return &CorrectionResult{ResponseID: resp.ResponseId, Version: int(resp.Version), Unchanged: resp.Unchanged,
		ProvinceCode: resp.ProvinceCode, Warnings: resp.Warnings}, nil
}

// ResponseVersion is one version of a stored response in its trail.
type ResponseVersion struct {
	Version int
	// ReplacedBy is "amendment" or "withdrawal" for a version a correction
	// replaced, "" for the current version.
	ReplacedBy  string
	ReplaceTime *time.Time
	CorrectedBy string // the credential that made the correction
	Reason      string
	ContentHash string // hex SHA-256 of the version's content
}

// ResponseHistory is the trail of a stored response, oldest version first.
type ResponseHistory struct {
	Versions  []ResponseVersion
	Withdrawn bool
}

// ResponseHistory reads the versions of a stored response (no answers, no
// demographics).
func (c *Client) ResponseHistory(ctx context.Context, responseID string) (*ResponseHistory, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	resp, err := c.Survey.GetResponseHistory(cctx, &sipasv1.GetResponseHistoryRequest{ResponseId: responseID})
	if err != nil {
		return nil, FromStatus(err)
	}
	h := &ResponseHistory{Withdrawn: resp.Withdrawn}
	for _, v := range resp.Versions {
		rv := ResponseVersion{Version: int(v.Version), ReplaceTime: optionalTime(v.ReplaceTime), CorrectedBy: v.CorrectedBy,
			Reason: v.Reason, ContentHash: v.ContentHash}
		switch v.ReplacedBy {
		case sipasv1.CorrectionKind_CORRECTION_KIND_AMENDMENT:
			rv.ReplacedBy = "amendment"
		case sipasv1.CorrectionKind_CORRECTION_KIND_WITHDRAWAL:
			rv.ReplacedBy = "withdrawal"
		}
		h.Versions = append(h.Versions, rv)
	}
	return h, nil
}

// ClosedPeriod is a period whose figures are frozen.
type ClosedPeriod struct {
	Period    sipas.Period
	CloseTime *time.Time
	ClosedBy  string // the credential that closed it
	Reason    string
}

func closedPeriodFromProto(p *sipasv1.ClosedPeriod) ClosedPeriod {
	return ClosedPeriod{Period: PeriodFromProto(p.GetPeriod()), CloseTime: optionalTime(p.GetCloseTime()), ClosedBy: p.GetClosedBy(), Reason: p.GetReason()}
}

// ClosePeriod freezes a period (admins); alreadyClosed reports a period
// that was closed before.
func (c *Client) ClosePeriod(ctx context.Context, p sipas.Period, reason string) (cp ClosedPeriod, alreadyClosed bool, err error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	resp, err := c.Admin.ClosePeriod(cctx, &sipasv1.ClosePeriodRequest{Period: PeriodToProto(p), Reason: reason})
	if err != nil {
		return ClosedPeriod{}, false, FromStatus(err)
	}
	return closedPeriodFromProto(resp.ClosedPeriod), resp.AlreadyClosed, nil
}

// ReopenPeriod reopens a closed period (admins), with a reason.
func (c *Client) ReopenPeriod(ctx context.Context, p sipas.Period, reason string) error {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	_, err := c.Admin.ReopenPeriod(cctx, &sipasv1.ReopenPeriodRequest{Period: PeriodToProto(p), Reason: reason})
	return FromStatus(err)
}

// ClosedPeriods lists the closed periods (admins).
func (c *Client) ClosedPeriods(ctx context.Context) ([]ClosedPeriod, error) {
	var out []ClosedPeriod
	token := ""
	for {
		cctx, cancel := c.WithTimeout(ctx)
		resp, err := c.Admin.ListClosedPeriods(cctx, &sipasv1.ListClosedPeriodsRequest{PageToken: token, PageSize: 1000})
		cancel()
		if err != nil {
			return nil, FromStatus(err)
		}
		for _, p := range resp.ClosedPeriods {
			out = append(out, closedPeriodFromProto(p))
		}
		if token = resp.NextPageToken; token == "" {
			return out, nil
		}
	}
}
