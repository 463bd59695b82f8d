package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sipas-vn/sipas"
)

// callInfo is filled in by the interceptors of one call and logged at its end.
type callInfo struct {
	role string
}

type callInfoKey struct{}

// logUnary and logStream write one structured line per RPC: method, code,
// duration and caller role. Never payloads, tokens or demographics. Calls
// refused for want of a credential are sampled (see peerRefusals): a flood
// of them must not become a flood of log lines.
func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ci := &callInfo{role: "anonymous"}
	start := time.Now()
	resp, err := handler(context.WithValue(ctx, callInfoKey{}, ci), req)
	s.logCall(ctx, info.FullMethod, ci, start, err)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ci := &callInfo{role: "anonymous"}
	start := time.Now()
	err := handler(srv, &wrappedStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callInfoKey{}, ci)})
	s.logCall(ss.Context(), info.FullMethod, ci, start, err)
	return err
}

func (s *Server) logCall(ctx context.Context, method string, ci *callInfo, start time.Time, err error) {
	code := status.Code(err)
	if ci.role == "anonymous" && (code == codes.Unauthenticated || code == codes.ResourceExhausted) &&
		!s.refusals.sample(ctx, s.log) {
		return
	}
	level := slog.LevelInfo
	if code == codes.Internal || code == codes.Unknown {
		level = slog.LevelError
	}
	s.log.Log(ctx, level, "rpc", "method", method, "code", code.String(),
		"duration_ms", float64(time.Since(start).Microseconds())/1000, "role", ci.role)
}

// authUnary and authStream enforce the access policies for every call.
func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.admit(ctx, info.FullMethod)
	if err != nil {
		s.undecodable.take(req) // refused before the decode check: forget it
		return nil, toStatus(ctx, s.log, err)
	}
	return handler(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.admit(ss.Context(), info.FullMethod)
	if err != nil {
		return toStatus(ctx, s.log, err)
	}
	return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
}

// admit authenticates, authorizes and rate-limits one call.
func (s *Server) admit(ctx context.Context, method string) (context.Context, error) {
	ctx, p, err := s.auth.authorize(ctx, method)
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok && p != nil {
		ci.role = p.RoleName()
	}
	if err != nil {
		if sipas.KindOf(err) == sipas.KindUnauthenticated && !s.refusals.allow(peerHost(ctx)) {
			return ctx, errRefusalRate
		}
		return ctx, err
	}
	if p != nil && !s.limits.allow(p.CredentialID) {
		return ctx, errRateLimited
	}
	return ctx, nil
}

var errRateLimited = &sipas.Error{Kind: sipas.KindResourceExhausted, Reason: "RATE_LIMITED",
	Message: "too many requests for this credential; retry after the delay in RetryInfo"}

// retryDelay is the RetryInfo delay sent with UNAVAILABLE and RESOURCE_EXHAUSTED.
const retryDelay = time.Second

// rateLimits keeps one token bucket per credential.
type rateLimits struct {
	mu      sync.Mutex
	perSec  rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

func newRateLimits(perSec float64, burst int) *rateLimits {
	return &rateLimits{perSec: rate.Limit(perSec), burst: burst, buckets: map[string]*rate.Limiter{}}
}

func (r *rateLimits) allow(credentialID string) bool {
	if r.perSec <= 0 {
		return true
	}
	r.mu.Lock()
	l, ok := r.buckets[credentialID]
	if !ok {
		l = rate.NewLimiter(r.perSec, r.burst)
		r.buckets[credentialID] = l
	}
	r.mu.Unlock()
	return l.Allow()
}

// wrappedStream replaces the context of a server stream.
type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }
