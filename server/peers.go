package server

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/peer"

	"github.com/sipas-vn/sipas"
)

// peerRefusals rate-limits the refusals of unauthenticated calls per peer
// address, and samples their log lines. A peer that keeps sending calls
// without a valid credential gets UNAUTHENTICATED up to a rate, then
// RESOURCE_EXHAUSTED; either way at most a few lines a second are logged for
// all such refusals together, with a count of those left out.
type peerRefusals struct {
	perSec rate.Limit
	burst  int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter

	// Log sampling: at most logPerSecond lines per one-second window; the
	// number left out is logged when the next window opens.
	logMu      sync.Mutex
	window     time.Time
	logged     int
	suppressed int
}

// logPerSecond is how many refusal lines are logged per second at most.
const logPerSecond = 5

func newPeerRefusals(perSec float64, burst int) *peerRefusals {
	return &peerRefusals{perSec: rate.Limit(perSec), burst: burst, buckets: map[string]*rate.Limiter{}}
}

// peerHost returns the peer's address without the port ("" when unknown):
// one client opening many connections is still one peer.
func peerHost(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	a := p.Addr.String()
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return a
}

// allow counts one refusal of host and reports whether it is within the
// peer's rate.
func (r *peerRefusals) allow(host string) bool {
	if r.perSec <= 0 {
		return true
	}
	r.mu.Lock()
	l, ok := r.buckets[host]
	if !ok {
		if len(r.buckets) >= 100_000 {
			r.buckets = map[string]*rate.Limiter{} // bounded: start over rather than grow
		}
		l = rate.NewLimiter(r.perSec, r.burst)
		r.buckets[host] = l
	}
	r.mu.Unlock()
	return l.Allow()
}

// sample reports whether a refusal line may be logged now; when a new
// window opens it first logs how many were left out of the last one.
func (r *peerRefusals) sample(ctx context.Context, log *slog.Logger) bool {
	now := time.Now()
	r.logMu.Lock()
	var left int
	if now.Sub(r.window) >= time.Second {
		left, r.suppressed, r.logged, r.window = r.suppressed, 0, 0, now
	}
	ok := r.logged < logPerSecond
	if ok {
		r.logged++
	} else {
		r.suppressed++
	}
	r.logMu.Unlock()
	if left > 0 {
		log.WarnContext(ctx, "unauthenticated calls refused without a log line", "count", left)
	}
	return ok
}

var errRefusalRate = &sipas.Error{Kind: sipas.KindResourceExhausted, Reason: "UNAUTHENTICATED_RATE_LIMITED",
	Message: "too many calls without a valid credential from this address; retry after the delay in RetryInfo"}
