package server

import (
	"context"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Reader is the index query layer for in-process callers such as the web
// dashboard. It runs the very handlers of the gRPC IndexService (the same
// scope checks, the same engine calls, the same disclosure control and the
// same conversion to the API's messages), after the same role policy the
// auth interceptor applies, so a page can show nothing the API would not
// return to the same credential for the same query. Errors are gRPC status
// errors, exactly as a gRPC client receives them.
//
// It also lists the kiosk fleet (AdminService.ListKiosks), for admins only,
// by the same handler and role policy.
type Reader struct {
	s *Server
	h *indexService
	a *adminService
}

// Reader returns the server's index query layer.
func (s *Server) Reader() *Reader {
	return &Reader{s: s, h: &indexService{s: s}, a: &adminService{s: s}}
}

// Thresholds are the disclosure threshold k and the minimum sample in force.
func (r *Reader) Thresholds() sipas.Thresholds { return r.s.cfg.Engine.Thresholds }

// SignIn authenticates a bearer token for reading indices. It returns the
// caller and the hash to keep in a session (see Principal); credentials
// whose role may not read indices (kiosks, surveyors) are refused with
// PERMISSION_DENIED, unknown, expired or revoked ones with UNAUTHENTICATED.
func (r *Reader) SignIn(ctx context.Context, token string) (*Principal, [32]byte, error) {
	p, err := r.s.auth.byToken(ctx, token)
	if err != nil {
		return nil, [32]byte{}, toStatus(ctx, r.s.log, err)
	}
	if err := r.allowed(ctx, p, sipasv1.IndexService_GetIndex_FullMethodName); err != nil {
		return nil, [32]byte{}, err
	}
	return p, [32]byte(HashToken(token)), nil
}

// Principal authenticates again the credential of a session by its token
// hash, so that a revoked or expired credential ends its sessions at once.
func (r *Reader) Principal(ctx context.Context, hash [32]byte) (*Principal, error) {
	p, err := r.s.auth.byHash(ctx, hash)
	if err != nil {
		return nil, toStatus(ctx, r.s.log, err)
	}
	if err := r.allowed(ctx, p, sipasv1.IndexService_GetIndex_FullMethodName); err != nil {
		return nil, err
	}
	return p, nil
}

// allowed applies the method's role policy, as the auth interceptor does.
func (r *Reader) allowed(ctx context.Context, p *Principal, method string) error {
	if p == nil {
		return toStatus(ctx, r.s.log, errUnauthenticated)
	}
	if pol := policies[method]; !pol.allows(p.Role) {
		return toStatus(ctx, r.s.log, errPermissionDenied)
	}
	return nil
}

// callAs runs handler h as the gRPC server would after its auth interceptor.
func callAs[Req, Resp any](ctx context.Context, r *Reader, p *Principal, method string, req Req, h func(context.Context, Req) (Resp, error)) (Resp, error) {
	if err := r.allowed(ctx, p, method); err != nil {
		var zero Resp
		return zero, err
	}
	return h(context.WithValue(ctx, principalKey{}, p), req)
}

// MayReadNation reports whether p may read national figures and the ranking
// of all provinces (an admin or an all-provinces analyst).
func (r *Reader) MayReadNation(ctx context.Context, p *Principal) bool {
	return p != nil && r.h.allowScope(context.WithValue(ctx, principalKey{}, p), sipas.Scope{Nation: true}) == nil
}

// GetIndex is IndexService.GetIndex for caller p.
func (r *Reader) GetIndex(ctx context.Context, p *Principal, req *sipasv1.GetIndexRequest) (*sipasv1.GetIndexResponse, error) {
	return callAs(ctx, r, p, sipasv1.IndexService_GetIndex_FullMethodName, req, r.h.GetIndex)
}

// RankProvinces is IndexService.RankProvinces for caller p.
func (r *Reader) RankProvinces(ctx context.Context, p *Principal, req *sipasv1.RankProvincesRequest) (*sipasv1.RankProvincesResponse, error) {
	return callAs(ctx, r, p, sipasv1.IndexService_RankProvinces_FullMethodName, req, r.h.RankProvinces)
}

// RankUnits is IndexService.RankUnits for caller p.
func (r *Reader) RankUnits(ctx context.Context, p *Principal, req *sipasv1.RankUnitsRequest) (*sipasv1.RankUnitsResponse, error) {
	return callAs(ctx, r, p, sipasv1.IndexService_RankUnits_FullMethodName, req, r.h.RankUnits)
}

// GetSeries is IndexService.GetSeries for caller p.
func (r *Reader) GetSeries(ctx context.Context, p *Principal, req *sipasv1.GetSeriesRequest) (*sipasv1.GetSeriesResponse, error) {
	return callAs(ctx, r, p, sipasv1.IndexService_GetSeries_FullMethodName, req, r.h.GetSeries)
}

// GetWeakPoints is IndexService.GetWeakPoints for caller p.
func (r *Reader) GetWeakPoints(ctx context.Context, p *Principal, req *sipasv1.GetWeakPointsRequest) (*sipasv1.GetWeakPointsResponse, error) {
	return callAs(ctx, r, p, sipasv1.IndexService_GetWeakPoints_FullMethodName, req, r.h.GetWeakPoints)
}

// MayListKiosks reports whether p may list the kiosk fleet (an admin).
func (r *Reader) MayListKiosks(ctx context.Context, p *Principal) bool {
	return p != nil && r.allowed(ctx, p, sipasv1.AdminService_ListKiosks_FullMethodName) == nil
}

// ListKiosks is AdminService.ListKiosks for caller p: refused
// (PERMISSION_DENIED) to anyone but an admin.
func (r *Reader) ListKiosks(ctx context.Context, p *Principal, req *sipasv1.ListKiosksRequest) (*sipasv1.ListKiosksResponse, error) {
	return callAs(ctx, r, p, sipasv1.AdminService_ListKiosks_FullMethodName, req, r.a.ListKiosks)
}
