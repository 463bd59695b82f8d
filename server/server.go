// Package server exposes the sipas.v1 gRPC services: it authenticates and
// authorizes every call, enforces limits, converts between the API and the
// domain, calls the domain and the store, and maps domain errors to status
// codes with details. Proto types stop here.
package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// Config holds what the server is built from. Zero limit values take the
// defaults of withDefaults (documented in docs/operations.md).
type Config struct {
	Catalog  *sipas.Catalog
	Registry *sipas.Registry
	Store    store.Backend
	Engine   *sipas.Engine
	Logger   *slog.Logger
	// Metrics are the server's metrics (see NewMetrics); nil creates them
	// on a private registry.
	Metrics *Metrics
	// TLS, when set, is used for the listener; nil means plaintext (the
	// caller is responsible for only listening on loopback then).
	TLS *tls.Config

	// RatePerSecond and RateBurst bound calls per credential (token bucket).
	RatePerSecond float64
	RateBurst     int
	// MaxRecvMsgSize bounds one request message (a response is < 8 KiB).
	MaxRecvMsgSize int
	// MaxConcurrentStreams bounds streams per HTTP/2 connection.
	MaxConcurrentStreams uint32
	// MaxHeaderListSize bounds request metadata.
	MaxHeaderListSize uint32
	// ConnectionTimeout bounds the connection handshake.
	ConnectionTimeout time.Duration
	// UnaryTimeout caps the deadline of unary calls.
	UnaryTimeout time.Duration
	// StreamIdleTimeout ends an upload stream that sends no item for this
	// long (messages without items do not count).
	StreamIdleTimeout time.Duration
	// StreamSendTimeout ends an upload stream whose client has not taken an
	// acknowledgement within this long (it stopped reading).
	StreamSendTimeout time.Duration
	// StreamsPerCredential and StreamsTotal cap the open upload streams of
	// one credential and of the whole server.
	StreamsPerCredential int
	StreamsTotal         int
	// CredentialRecheck is how often an open upload stream re-reads its
	// credential: a credential revoked or expired meanwhile ends the stream
	// within this long (default 1s; the promise is 5s).
	CredentialRecheck time.Duration
	// KioskMaxAge is how old a kiosk's collected_at may be (default 7 days);
	// KioskClockGrace how long before its credential was created (default
	// 24h, for kiosk clocks that are behind).
	KioskMaxAge     time.Duration
	KioskClockGrace time.Duration
	// RefusalsPerPeer and RefusalBurst bound the unauthenticated calls one
	// peer address gets refused with UNAUTHENTICATED per second; beyond
	// them its failed calls get RESOURCE_EXHAUSTED. A negative rate
	// disables the limit (tests whose clients all share one address).
	RefusalsPerPeer float64
	RefusalBurst    int
	// StreamMaxItems caps the items of one upload stream.
	StreamMaxItems int
	// ChunkItems and ChunkDelay say when an upload chunk is committed: at
	// ChunkItems items or ChunkDelay after its first item, whichever is first.
	ChunkItems int
	ChunkDelay time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&c.MaxRecvMsgSize, 64<<10)
	set(&c.RateBurst, 400)
	set(&c.StreamMaxItems, 250_000)
	set(&c.ChunkItems, 2000)
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 200
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = 32
	}
	if c.MaxHeaderListSize == 0 {
		c.MaxHeaderListSize = 8 << 10
	}
	if c.ConnectionTimeout == 0 {
		c.ConnectionTimeout = 10 * time.Second
	}
	if c.UnaryTimeout == 0 {
		c.UnaryTimeout = 10 * time.Second
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = 60 * time.Second
	}
	if c.StreamSendTimeout == 0 {
		c.StreamSendTimeout = 30 * time.Second
	}
	set(&c.StreamsPerCredential, 4)
	set(&c.StreamsTotal, 32)
	if c.CredentialRecheck == 0 {
		c.CredentialRecheck = time.Second
	}
	if c.KioskMaxAge == 0 {
		c.KioskMaxAge = 7 * 24 * time.Hour
	}
	if c.KioskClockGrace == 0 {
		c.KioskClockGrace = 24 * time.Hour
	}
	if c.RefusalsPerPeer == 0 {
		c.RefusalsPerPeer = 5
	}
	set(&c.RefusalBurst, 20)
	if c.ChunkDelay == 0 {
		c.ChunkDelay = 250 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server is the gRPC server with its services.
type Server struct {
	cfg     Config
	log     *slog.Logger
	auth    *authenticator
	limits  *rateLimits
	metrics *Metrics
	kiosks  *kioskTracker
	health  *health.Server
	grpc    *grpc.Server
	// streams counts the open upload streams; refusals limits and samples
	// unauthenticated refusals per peer; undecodable holds the request
	// messages the codec could not decode until an interceptor refuses them.
	streams     *streamSlots
	refusals    *peerRefusals
	undecodable *undecodable
}

// New builds the server: options, the interceptor chain in its fixed order
// (recovery → logging → metrics → auth → decode check → limits), and the
// services. The decode check comes after auth so that a caller without a
// credential gets UNAUTHENTICATED (limited and sampled) whatever it sends.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.Engine != nil && cfg.Engine.Units == nil && cfg.Store != nil {
		// Unit-only figures follow the unit's province lineage, by the
		// store's registry of units.
		cfg.Engine.Units = cfg.Store
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		auth:   &authenticator{store: cfg.Store, now: cfg.Now},
		limits: newRateLimits(cfg.RatePerSecond, cfg.RateBurst),
		health: health.NewServer(),
		kiosks: newKioskTracker(),
		streams: &streamSlots{perCredential: cfg.StreamsPerCredential, total: cfg.StreamsTotal,
			open: map[string]int{}},
		refusals:    newPeerRefusals(cfg.RefusalsPerPeer, cfg.RefusalBurst),
		undecodable: &undecodable{},
	}
	m := cfg.Metrics
	if m == nil {
		var err error
		if m, err = NewMetrics(prometheus.NewRegistry()); err != nil {
			return nil, err
		}
	}
	if err := m.watchStore(cfg.Store); err != nil {
		return nil, err
	}
	if err := m.watchKiosks(s); err != nil {
		return nil, err
	}
	s.metrics = m
	recoveryOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		s.log.ErrorContext(ctx, "panic in handler", "panic", p)
		return status.Error(codes.Internal, "internal error")
	})
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.MaxSendMsgSize(4 << 20),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(cfg.MaxHeaderListSize),
		grpc.ConnectionTimeout(cfg.ConnectionTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: 60 * time.Second, Timeout: 20 * time.Second,
			MaxConnectionIdle: 5 * time.Minute, MaxConnectionAge: 30 * time.Minute, MaxConnectionAgeGrace: 15 * time.Minute,
		}),
		grpc.WaitForHandlers(true),
		// Handlers run on a pool of long-lived goroutines whose stacks stay
		// grown, instead of a new goroutine per call that grows its stack
		// through the interceptor chain every time (≈ 7% of the server's CPU
		// under kiosk load went to stack growth).
		grpc.NumStreamWorkers(64),
		// Requests are decoded by a codec that hands undecodable messages
		// on (reset) instead of failing the call with INTERNAL; the decode
		// interceptors refuse them with INVALID_ARGUMENT.
		grpc.ForceServerCodecV2(s.undecodable.codec()),
		grpc.ChainUnaryInterceptor(
			recovery.UnaryServerInterceptor(recoveryOpt),
			s.logUnary,
			m.grpc.UnaryServerInterceptor(),
			s.authUnary,
			s.decodedUnary,
			s.deadlineUnary,
		),
		grpc.ChainStreamInterceptor(
			recovery.StreamServerInterceptor(recoveryOpt),
			s.logStream,
			m.grpc.StreamServerInterceptor(),
			s.authStream,
			s.decodedStream,
		),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	sipasv1.RegisterSurveyServiceServer(s.grpc, &surveyService{s: s})
	sipasv1.RegisterIndexServiceServer(s.grpc, &indexService{s: s})
	sipasv1.RegisterAdminServiceServer(s.grpc, &adminService{s: s})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	m.grpc.InitializeMetrics(s.grpc)
	s.SetServing(true)
	return s, nil
}

// GRPC returns the underlying gRPC server (to Serve on a listener, to stop).
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// HealthServer returns a plaintext gRPC server that serves only this
// server's health status (no data, no credentials), for probes that cannot
// speak TLS, such as the Kubernetes kubelet's.
func (s *Server) HealthServer() *grpc.Server {
	g := grpc.NewServer(grpc.ConnectionTimeout(s.cfg.ConnectionTimeout), grpc.MaxRecvMsgSize(1<<10),
		grpc.MaxConcurrentStreams(4), grpc.MaxHeaderListSize(s.cfg.MaxHeaderListSize))
	healthpb.RegisterHealthServer(g, s.health)
	return g
}

// NoteBackup records a successful backup in the metrics.
func (s *Server) NoteBackup() { s.metrics.LastBackup.SetToCurrentTime() }

// SetServing sets the health status of the whole server and of each service.
func (s *Server) SetServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, name := range []string{"", sipasv1.SurveyService_ServiceDesc.ServiceName,
		sipasv1.IndexService_ServiceDesc.ServiceName, sipasv1.AdminService_ServiceDesc.ServiceName} {
		s.health.SetServingStatus(name, st)
	}
}

// Shutdown marks the server not serving and stops it gracefully, waiting at
// most grace for in-flight calls before cutting them.
func (s *Server) Shutdown(grace time.Duration) {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.grpc.Stop()
		<-done
	}
}
