// Package pgstore is the PostgreSQL store: the same contract as the SQLite
// store (store.Backend), for several stateless sipasd replicas over one
// database.
//
// Everything shared lives in the database: responses (exactly once by their
// primary key, INSERT ... ON CONFLICT DO NOTHING in the insert
// transaction), the aggregate cells (updated by the same transaction, the
// counters added in SQL), units, credentials and the audit log. Each
// replica keeps only a cache of the aggregate cells, refreshed from the
// cells changed since its last read every RefreshInterval, so that a
// response acknowledged by any replica is in every replica's figures within
// FreshnessBound (see cells.go and docs/design.md).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

// FreshnessBound is the documented bound on how long a response
// acknowledged by one replica may be missing from another replica's
// figures, and a credential revoked through one replica may still be
// accepted by another (with the server's credential cache, whose lifetime
// is below it).
const FreshnessBound = 2 * time.Second

// Options tune a Store. The zero value is usable.
type Options struct {
	// MaxConns is the size of this replica's connection pool (default 16).
	// The sum over replicas must stay below the server's max_connections.
	MaxConns int
	// AcquireTimeout bounds the wait for a pooled connection (default 2s):
	// when every connection is busy for that long the call fails with a
	// KindUnavailable error (reason DB_POOL_EXHAUSTED) instead of hanging.
	AcquireTimeout time.Duration
	// MaxBatchItems caps the responses committed in one transaction
	// (default 4000, two upload chunks: every transaction rewrites the
	// cells it touches, so larger ones write fewer cells per response; a
	// single Insert call is never split).
	MaxBatchItems int
	// MaxQueuedItems bounds the responses waiting for the writer (default
	// 100000); beyond it Insert fails fast with KindUnavailable.
	MaxQueuedItems int
	// Writers is the number of response transactions this replica runs at
	// once (default 2): while one commits, the next is being written. Each
	// takes what is queued, up to MaxBatchItems.
	Writers int
	// TxTimeout bounds each write transaction (default 10s).
	TxTimeout time.Duration
	// RefreshInterval is how often the cache of aggregate cells reads the
	// cells other replicas changed (default 250ms; at most FreshnessBound/4).
	RefreshInterval time.Duration
	// CellCacheBytes bounds the aggregate cells this replica caches for
	// reads (default 32 MiB); the rest is read from the database by key.
	CellCacheBytes int
	// OnCommit, when set, is called after each successful commit of
	// responses with their number and the transaction's duration.
	OnCommit func(batchSize int, dur time.Duration)
	// BeforeCommit is a fault-injection hook for tests: called inside each
	// response transaction just before COMMIT; an error rolls it back.
	BeforeCommit func(batchSize int) error
	// Now is the clock of audit events, create times and expiry.
	Now func() time.Time
	// Logger receives failures (causes only, never response content).
	Logger *slog.Logger
}

func (o *Options) fill() {
	if o.MaxConns <= 0 {
		o.MaxConns = 16
	}
	if o.AcquireTimeout <= 0 {
		o.AcquireTimeout = 2 * time.Second
	}
	if o.MaxBatchItems <= 0 {
		o.MaxBatchItems = 4000
	}
	if o.MaxQueuedItems <= 0 {
		o.MaxQueuedItems = 100000
	}
	if o.Writers <= 0 {
		o.Writers = 2
	}
	if o.TxTimeout <= 0 {
		o.TxTimeout = 10 * time.Second
	}
	if o.RefreshInterval <= 0 || o.RefreshInterval > FreshnessBound/4 {
		o.RefreshInterval = 250 * time.Millisecond
	}
	if o.CellCacheBytes <= 0 {
		o.CellCacheBytes = 32 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is the PostgreSQL store. Its methods are safe for concurrent use.
type Store struct {
	cat  store.QuestionnaireSource
	opts Options
	pool *pgxpool.Pool

	cells *cellCache
	units sync.Map // unit id → store.Unit: the registry of units seen

	// Writer queue: Options.Writers goroutines group-commit what is queued,
	// each in a transaction of its own.
	qmu          sync.Mutex
	pending      []*request
	pendingItems int
	closed       bool
	wake         chan struct{}
	stop         chan struct{}
	writers      sync.WaitGroup
	refreshDone  chan struct{}
	stats        store.WriterStats
	closeOnce    sync.Once
}

// Open connects to the PostgreSQL database of dsn (a postgres:// URL or
// key=value string), applies pending migrations, loads the aggregate cells
// and starts the writer and the cache refresher.
func Open(ctx context.Context, dsn string, cat *sipas.Catalog, opts Options) (*Store, error) {
	const op = "pgstore.open"
	if cat == nil {
		return nil, errors.New(op + ": nil catalog")
	}
	opts.fill()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password: say what is wrong, not the DSN.
		return nil, fmt.Errorf("%s: bad database URL: %v", op, redact(err))
	}
	cfg.MaxConns = int32(opts.MaxConns)
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = time.Minute
	cfg.HealthCheckPeriod = 5 * time.Second
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > 5*time.Second {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "sipasd"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, redact(err))
	}
	s := &Store{
		cat: cat, opts: opts, pool: pool,
		cells:       newCellCache(opts.CellCacheBytes),
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		refreshDone: make(chan struct{}),
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.refresh(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: loading aggregates: %w", op, err)
	}
	if err := s.loadUnits(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for range opts.Writers {
		s.writers.Go(s.writeLoop)
	}
	go s.refreshLoop()
	return s, nil
}

// redact drops a connection error's DSN details that pgx may echo.
func redact(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("cannot parse the connection string")
	}
	return err
}

// Close stops accepting writes, lets the writer commit what is queued and
// closes the pool. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.qmu.Lock()
		s.closed = true
		s.qmu.Unlock()
		close(s.stop)
		s.writers.Wait()
		<-s.refreshDone
		s.pool.Close()
	})
	return nil
}

// Stats returns the writer's counters.
func (s *Store) Stats() store.WriterStats {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	st := s.stats
	st.QueueDepth = s.pendingItems
	return st
}

// PoolStats returns the number of connections in use and the pool size.
func (s *Store) PoolStats() (inUse, size int) {
	st := s.pool.Stat()
	return int(st.AcquiredConns()), int(st.MaxConns())
}

// acquire takes a pooled connection, waiting at most AcquireTimeout. Running
// out of connections is a clear KindUnavailable error, never a hang.
func (s *Store) acquire(ctx context.Context, op string) (*pgxpool.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, s.opts.AcquireTimeout)
	defer cancel()
	c, err := s.pool.Acquire(actx)
	if err == nil {
		return c, nil
	}
	if ctx.Err() == nil && actx.Err() != nil {
		st := s.pool.Stat()
		if st.AcquiredConns() >= st.MaxConns() {
			return nil, &sipas.Error{Kind: sipas.KindUnavailable, Op: op, Reason: "DB_POOL_EXHAUSTED",
				Message: fmt.Sprintf("all %d database connections of this sipasd are in use (pool size: --db-max-conns); retrying is safe", st.MaxConns()),
				Err:     err}
		}
	}
	return nil, dbError(op, err)
}

// dbError classifies a database failure: KindUnavailable (retrying is
// safe) with a reason that says what is wrong when it is known.
func dbError(op string, err error) error {
	var e *sipas.Error
	if errors.As(err, &e) {
		return err
	}
	se := store.StorageError(op, err)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "53300": // too_many_connections
			se.Reason = "DB_TOO_MANY_CONNECTIONS"
			se.Message = "PostgreSQL refused a connection: max_connections reached (lower --db-max-conns of the replicas or raise max_connections); retrying is safe"
		case "53100": // disk_full
			se.Reason = "STORAGE_FULL"
			se.Message = "the database server's storage is full; retrying is safe"
		}
	}
	return se
}

// retryable reports whether err is a serialization failure or a deadlock:
// the transaction was rolled back and can run again at once.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// write runs fn in a read-write transaction with TxTimeout, retrying
// serialization failures and deadlocks a few times.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.TxTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := s.tx(ctx, op, pgx.TxOptions{}, fn)
		if err == nil || !retryable(err) || attempt == 3 {
			return err
		}
	}
}

// tx runs fn in one transaction on a pooled connection.
func (s *Store) tx(ctx context.Context, op string, o pgx.TxOptions, fn func(ctx context.Context, tx pgx.Tx) error) error {
	c, err := s.acquire(ctx, op)
	if err != nil {
		return err
	}
	defer c.Release()
	tx, err := c.BeginTx(ctx, o)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// read runs fn on a pooled connection.
func (s *Store) read(ctx context.Context, op string, fn func(c *pgxpool.Conn) error) error {
	c, err := s.acquire(ctx, op)
	if err != nil {
		return err
	}
	defer c.Release()
	if err := fn(c); err != nil {
		return readError(op, err)
	}
	return nil
}

// readError classifies a failed read: domain errors pass through; an error
// the server reported about the statement is a fault of this program
// (KindOther, logged, INTERNAL); anything else — a lost connection, a
// timeout — is KindUnavailable, and retrying is safe.
func readError(op string, err error) error {
	var e *sipas.Error
	if errors.As(err, &e) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code != "57P01" && pe.Code != "57P02" && pe.Code != "57P03" && pe.Code[:2] != "08" && pe.Code[:2] != "53" {
		return fmt.Errorf("%s: %w", op, err)
	}
	return dbError(op, err)
}

// Ping checks readiness: a small durable write, the schema version this
// binary was built for (a replica of another version is refused clearly),
// and aggregates refreshed within FreshnessBound.
func (s *Store) Ping(ctx context.Context) error {
	const op = "pgstore.ping"
	host, _ := os.Hostname()
	now := strconv.FormatInt(s.opts.Now().UnixNano(), 10)
	var version int
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('last_ping ' || $1, $2)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, host, now); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&version)
	})
	if err != nil {
		return dbError(op, err)
	}
	if err := checkSchemaVersion(version); err != nil {
		return err
	}
	if age := s.cells.sinceRefresh(); age > FreshnessBound {
		return &sipas.Error{Kind: sipas.KindUnavailable, Op: op, Reason: "AGGREGATES_STALE",
			Message: fmt.Sprintf("aggregates last read from the database %s ago (bound %s)", age.Round(time.Millisecond), FreshnessBound)}
	}
	return nil
}

// Backup refuses: a PostgreSQL database is backed up with pg_dump or
// continuous archiving (PITR), as docs/operations.md describes.
func (s *Store) Backup(ctx context.Context, destPath string) (int64, error) {
	return 0, ErrBackupUnsupported
}

// ErrBackupUnsupported is Backup's refusal.
var ErrBackupUnsupported = &sipas.Error{Kind: sipas.KindFailedPrecondition, Op: "pgstore.backup", Reason: "BACKUP_USE_PG_DUMP",
	Message: "sipasd does not copy a PostgreSQL database: back it up with pg_dump or continuous archiving (PITR), see docs/operations.md, section \"PostgreSQL backups\""}

// BackupDir is "": Backup always refuses.
func (s *Store) BackupDir() string { return "" }
