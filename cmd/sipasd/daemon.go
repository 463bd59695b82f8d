package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/internal/atomicfile"
	"github.com/sipas-vn/sipas/pgstore"
	"github.com/sipas-vn/sipas/questionnaires"
	"github.com/sipas-vn/sipas/server"
	"github.com/sipas-vn/sipas/store"
	"github.com/sipas-vn/sipas/web"
)

// dbFile is the database file name inside --data-dir.
const dbFile = "sipas.db"

// daemon is a running sipasd: store, gRPC and HTTP listeners.
type daemon struct {
	cfg     Config
	log     *slog.Logger
	store   store.Backend
	srv     *server.Server
	httpSrv *http.Server
	grpcLis net.Listener
	httpLis net.Listener
	// health serves the gRPC health service alone, in plaintext, when
	// --health-grpc-addr is set.
	health    *grpc.Server
	healthLis net.Listener
	ready     atomic.Bool
	whyNot    atomic.Value // string: why the store is not ready
	cancel    context.CancelFunc
	bgDone    chan struct{}
	serveErr  chan error
	stopOnce  sync.Once
	stopErr   error
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // parseConfig checked it
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// start opens everything and starts serving; it returns once the listeners
// are bound (their addresses are printed, so tests can use port 0).
func start(ctx context.Context, cfg Config, stdout, stderr io.Writer) (*daemon, error) {
	log := newLogger(cfg, stderr)
	cat, reg, err := questionnaires.Load(cfg.Questionnaires)
	if err != nil {
		return nil, fmt.Errorf("loading questionnaires: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	tightenDataDir(cfg.DataDir, log)
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := server.NewMetrics(reg2)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg, cat, metrics, log)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	d := &daemon{cfg: cfg, log: log, store: st, bgDone: make(chan struct{}), serveErr: make(chan error, 2)}
	fail := func(err error) (*daemon, error) {
		st.Close()
		return nil, err
	}
	if err := d.firstStart(ctx, stdout); err != nil {
		return fail(err)
	}
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		if tlsCfg, err = loadTLS(cfg); err != nil {
			return fail(err)
		}
	}
	engine := &sipas.Engine{Catalog: cat, Registry: reg, Source: st,
		Thresholds: cfg.Thresholds()}
	d.srv, err = server.New(server.Config{
		Catalog: cat, Registry: reg, Store: st, Engine: engine, Logger: log, Metrics: metrics, TLS: tlsCfg,
		RatePerSecond: rateLimit(cfg.RatePerSecond), RateBurst: cfg.RateBurst, StreamMaxItems: cfg.StreamMaxItems,
		KioskMaxAge: cfg.KioskMaxAge, StreamsPerCredential: cfg.StreamsPerCredential, StreamsTotal: cfg.StreamsTotal,
		StreamSendTimeout: cfg.StreamSendTimeout,
	})
	if err != nil {
		return fail(err)
	}
	if d.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return fail(err)
	}
	if d.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		d.grpcLis.Close()
		return fail(err)
	}
	if cfg.HealthAddr != "" {
		if d.healthLis, err = net.Listen("tcp", cfg.HealthAddr); err != nil {
			d.grpcLis.Close()
			d.httpLis.Close()
			return fail(err)
		}
		d.health = d.srv.HealthServer()
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg2, promhttp.HandlerOpts{Registry: reg2}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.ready.Load() {
			http.Error(w, "not ready: "+d.notReady(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	dash, err := web.New(web.Config{Reader: d.srv.Reader(), Catalog: cat, Registry: reg, Logger: log, SecureCookies: cfg.WebSecureCookies})
	if err != nil {
		d.grpcLis.Close()
		d.httpLis.Close()
		if d.healthLis != nil {
			d.healthLis.Close()
		}
		return fail(err)
	}
	dash.Register(mux)
	d.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	bg, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.checkReady(bg)
	go d.background(bg)
	go func() { d.serveErr <- d.srv.GRPC().Serve(d.grpcLis) }()
	if d.health != nil {
		go func() { d.serveErr <- d.health.Serve(d.healthLis) }()
		fmt.Fprintf(stdout, "sipasd: serving gRPC health (plaintext, health only) on %s\n", d.healthLis.Addr())
	}
	go func() {
		if err := d.httpSrv.Serve(d.httpLis); !errors.Is(err, http.ErrServerClosed) {
			d.serveErr <- err
		}
	}()
	mode := "plaintext"
	if tlsCfg != nil {
		mode = "tls"
		if cfg.ClientCA != "" {
			mode = "mutual-tls"
		}
	}
	fmt.Fprintf(stdout, "sipasd: serving gRPC on %s (%s), HTTP on %s, data in %s\n", d.grpcLis.Addr(), mode, d.httpLis.Addr(), cfg.DataDir)
	log.Info("started", "grpc", d.grpcLis.Addr().String(), "http", d.httpLis.Addr().String(), "tls", mode)
	return d, nil
}

// openStore opens the configured backend: the SQLite database in
// --data-dir, or the PostgreSQL database of --database.
func openStore(ctx context.Context, cfg Config, cat *sipas.Catalog, metrics *server.Metrics, log *slog.Logger) (store.Backend, error) {
	if cfg.Postgres() {
		return pgstore.Open(ctx, cfg.Database, cat, pgstore.Options{OnCommit: metrics.ObserveCommit, Logger: log,
			MaxConns: cfg.DBMaxConns, AcquireTimeout: cfg.DBAcquireTimeout})
	}
	return store.Open(ctx, filepath.Join(cfg.DataDir, dbFile), cat, store.Options{OnCommit: metrics.ObserveCommit, Logger: log, CommitLinger: 500 * time.Microsecond,
		CellCacheBytes: cfg.CellCacheMiB << 20})
}

// firstStart creates the first admin credential on an empty database and
// writes its token to DATA_DIR/admin.token (mode 0600), printing only the path.
func (d *daemon) firstStart(ctx context.Context, stdout io.Writer) error {
	n, err := d.store.CountCredentials(ctx)
	if err != nil || n > 0 {
		return err
	}
	first, token, audit, err := server.NewCredential(sipas.Credential{Role: sipas.RoleAdmin,
		Description: "first admin, created at first start", CreateTime: time.Now()}, nil, "system")
	if err != nil {
		return err
	}
	audit.Detail += ", at first start"
	// The token is on disk before the credential is stored: a credential
	// whose token nobody has would lock the operator out.
	path := filepath.Join(d.cfg.DataDir, "admin.token")
	if err := atomicfile.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing admin token: %w", err)
	}
	if fc, ok := d.store.(interface {
		CreateFirstCredential(context.Context, store.Credential, store.AuditEvent) (*store.Credential, error)
	}); ok {
		// Replicas starting together on an empty database: one creates the
		// first admin, the others find it there and keep no token.
		cred, err := fc.CreateFirstCredential(ctx, first, audit)
		if err != nil {
			return err
		}
		if cred == nil {
			return os.Remove(path)
		}
	} else if _, err := d.store.CreateCredential(ctx, first, audit); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sipasd: first start: admin token written to %s\n", path)
	return nil
}

func loadTLS(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificate: %w", err)
	}
	t := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("reading client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s holds no PEM certificate", cfg.ClientCA)
		}
		t.ClientCAs = pool
		t.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return t, nil
}

// storageFullWindow is how long a response commit that failed for lack of
// space keeps the server unready: long enough for load balancers to notice,
// short enough that it turns ready again within seconds of space being
// freed (nothing else would, as an unready server gets no commits to
// succeed).
const storageFullWindow = 5 * time.Second

// checkReady probes the store with a small write and sets readiness: unready
// when the probe fails, or when a response commit failed for lack of space
// within storageFullWindow (a small probe write may still fit where a batch
// commit does not).
func (d *daemon) checkReady(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := d.store.Ping(pctx)
	if full := d.store.Stats().StorageFullAt; err == nil && !full.IsZero() && time.Since(full) < storageFullWindow {
		err = &sipas.Error{Kind: sipas.KindUnavailable, Reason: "STORAGE_FULL", Message: "a response commit failed for lack of space"}
	}
	if err != nil {
		why := "store not writable"
		var e *sipas.Error
		if errors.As(err, &e) && e.Reason != "" && e.Reason != "STORAGE_UNAVAILABLE" {
			why += ": " + e.Reason + ": " + e.Message
		}
		d.whyNot.Store(why)
	}
	was := d.ready.Swap(err == nil)
	if was != (err == nil) {
		d.srv.SetServing(err == nil)
		if err != nil {
			d.log.Warn("not ready: store not writable", "err", err)
		} else {
			d.log.Info("ready")
		}
	}
}

// notReady says why the store is not ready.
func (d *daemon) notReady() string {
	if why, ok := d.whyNot.Load().(string); ok {
		return why
	}
	return "store not writable"
}

// background runs readiness probes, the WAL janitor and scheduled backups.
func (d *daemon) background(ctx context.Context) {
	var janitor sync.WaitGroup
	if sq, ok := d.store.(*store.Store); ok {
		janitor.Add(1)
		go func() {
			defer janitor.Done()
			sq.RunJanitor(ctx, store.JanitorOptions{OnError: func(err error) {
				d.log.Warn("WAL checkpoint incomplete; retrying", "err", err)
			}})
		}()
	}
	defer func() { janitor.Wait(); close(d.bgDone) }()
	probe := time.NewTicker(2 * time.Second)
	defer probe.Stop()
	var backupC <-chan time.Time
	if d.cfg.BackupEvery > 0 && d.cfg.BackupDir != "" {
		t := time.NewTicker(d.cfg.BackupEvery)
		defer t.Stop()
		backupC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-probe.C:
			d.checkReady(ctx)
		case <-backupC:
			if err := d.scheduledBackup(ctx); err != nil {
				d.log.Error("scheduled backup failed", "err", err)
			}
		}
	}
}

// stop shuts down gracefully: health NOT_SERVING, stop accepting, let
// in-flight calls finish (bounded by --shutdown-grace), checkpoint, close.
// It is safe to call more than once.
func (d *daemon) stop() error {
	d.stopOnce.Do(func() { d.stopErr = d.shutdown() })
	return d.stopErr
}

func (d *daemon) shutdown() error {
	d.log.Info("shutting down", "grace", d.cfg.ShutdownGrace.String())
	d.srv.Shutdown(d.cfg.ShutdownGrace)
	if d.health != nil {
		d.health.Stop()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.httpSrv.Shutdown(sctx)
	d.cancel()
	<-d.bgDone
	err := d.store.Close()
	d.log.Info("stopped")
	return err
}

// rateLimit maps the --rate-limit flag to the server's setting: 0 on the
// command line disables the limit, where 0 in server.Config means the default.
func rateLimit(flag float64) float64 {
	if flag == 0 {
		return -1
	}
	return flag
}

// tightenDataDir makes an existing data directory private to the server's
// user (0700): it holds the database and admin.token. If that fails (a
// directory owned by someone else, a read-only mount), sipasd warns and
// goes on.
func tightenDataDir(dir string, log *slog.Logger) {
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	if err := os.Chmod(dir, fi.Mode().Perm()&0o700); err != nil {
		log.Warn("data directory is readable by other users and could not be restricted to 0700", "dir", dir, "mode", fi.Mode().Perm().String(), "err", err)
		return
	}
	log.Info("data directory restricted to its owner", "dir", dir, "was", fi.Mode().Perm().String())
}
