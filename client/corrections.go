package client

import (
	"context"

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
