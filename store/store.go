// Package store persists SIPAS responses in SQLite and keeps the aggregate
// cells that indices are computed from.
//
// The database is opened twice: one writer connection (WAL, synchronous=FULL,
// BEGIN IMMEDIATE, foreign keys) owned by a single writer goroutine that
// group-commits concurrent submissions, and a separate read-only pool for
// queries. Every connection setting comes from the DSN and is asserted on each
// new connection (see connector and writerDSN).
//
// The aggregate cells are stored sparse in the tallies table, read by key
// range through a cache bounded in bytes; what commits add to them is kept
// as deltas in memory, updated only after the transaction holding the
// responses they count has committed, and written to the table by
// checkpoints with the seq of the last response counted; at start-up only
// the responses after it are replayed (see checkpoint.go), so the
// aggregates never disagree with the stored responses, also after a crash,
// and memory and start-up do not grow with history.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/sipas-vn/sipas"
)

// busyTimeoutMillis is the busy timeout of every connection. It is kept well
// below the RPC deadline because SQLite's busy wait cannot be interrupted by a
// context: a call must not wait on a lock longer than its deadline.
const busyTimeoutMillis = 2000

// Options tune a Store. The zero value is usable.
type Options struct {
	// ReadConns is the size of the read-only pool (default 8).
	ReadConns int
	// MaxBatchItems caps the responses committed in one group commit
	// (default 2000). A single Insert call is never split, so a batch may
	// exceed the cap when one call alone does.
	MaxBatchItems int
	// MaxQueuedItems bounds the responses waiting for the writer
	// (default 100000); beyond it Insert fails fast with KindUnavailable.
	MaxQueuedItems int
	// TxTimeout bounds each write transaction (default 10s). Write
	// transactions never see the caller's context (see writer.go: a context
	// interrupt inside a transaction could leave later statements outside it).
	TxTimeout time.Duration
	// CommitLinger: when fewer than a few dozen responses are queued, the
	// writer waits up to this long for more before it begins a transaction
	// (0, the default, never waits). Each transaction costs a WAL write and an
	// fsync whatever its size, so under concurrent load a short wait makes
	// commits larger and cheaper per response; sipasd sets 500µs.
	CommitLinger time.Duration
	// CheckpointRows, MaxDirtyCells and CheckpointInterval: the deltas of
	// the aggregates are checkpointed into the tallies table after this many
	// new responses (default 100000), when this many cells have a delta
	// (default 16384), or this long after the previous checkpoint (default
	// 30s), whichever comes first, and on Close. They bound the responses
	// replayed at start-up after a crash and the memory the deltas hold.
	CheckpointRows     int
	MaxDirtyCells      int
	CheckpointInterval time.Duration
	// MaxDeltaBytes also makes a checkpoint due when the deltas hold about
	// this many bytes (default 32 MiB): cells of full questionnaires take
	// more than kiosk cells.
	MaxDeltaBytes int
	// CellCacheBytes bounds the stored cells kept in memory for reads
	// (default 32 MiB); the rest are read from the table by key range.
	CellCacheBytes int
	// OnCommit, when set, is called by the writer after each successful
	// group commit of responses with the number of responses in it and the
	// time from BEGIN to the end of COMMIT.
	OnCommit func(batchSize int, dur time.Duration)
	// BeforeCommit is a fault-injection hook for tests: it is called inside
	// each response transaction just before COMMIT, and a non-nil error
	// aborts (rolls back) the transaction.
	BeforeCommit func(batchSize int) error
	// Now returns the current time (default time.Now); used for audit
	// events, create times and credential expiry.
	Now func() time.Time
	// Logger receives failures of write transactions (causes only, never
	// response content); nil discards.
	Logger *slog.Logger
}

func (o *Options) fill() {
	if o.ReadConns <= 0 {
		o.ReadConns = 8
	}
	if o.MaxBatchItems <= 0 {
		o.MaxBatchItems = 2000
	}
	if o.MaxQueuedItems <= 0 {
		o.MaxQueuedItems = 100000
	}
	if o.TxTimeout <= 0 {
		o.TxTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckpointRows <= 0 {
		o.CheckpointRows = 100000
	}
	if o.MaxDirtyCells <= 0 {
		o.MaxDirtyCells = 16384
	}
	if o.MaxDeltaBytes <= 0 {
		o.MaxDeltaBytes = 32 << 20
	}
	if o.CellCacheBytes <= 0 {
		o.CellCacheBytes = 32 << 20
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// questionnaireSource is what the store needs of a *sipas.Catalog.
type questionnaireSource = QuestionnaireSource

// Store is the SQLite store. Its methods are safe for concurrent use.
type Store struct {
	path string
	cat  questionnaireSource
	opts Options

	writer *sql.DB   // one connection, owned by the writer goroutine after Open
	wconn  *sql.Conn // that connection
	reader *sql.DB   // read-only pool

	credByHash *sql.Stmt // prepared on the reader pool: the auth hot path

	// Block reads of the tallies table, prepared on the reader pool.
	provinceBlockStmt, unitBlockStmt, unitMonthStmt *sql.Stmt

	// The response transaction's statements, prepared once on the writer
	// pool: a transaction takes them with Tx.StmtContext, which reuses the
	// connection's prepared statement instead of preparing it again (and
	// prepares it anew on a replacement connection).
	insertStmt, insertGroupStmt, hashStmt *sql.Stmt

	sqliteVersion string

	units unitRegistry

	// What each goroutine owns (writer, applier, readers, callers) is in
	// the types embedded here; their comments give the rules.
	aggregates
	writerState
	writerQueue

	writerDone  chan struct{}  // closed when the writer goroutine ends
	applies     chan *applyJob // committed transactions, writer to applier
	applierDone chan struct{}  // closed when the applier goroutine ends
	closeOnce   sync.Once
	closeErr    error
}

// aggregates are the cells in memory, shared by the writer, the applier
// and the readers. The applier adds each commit to the deltas, holding
// cellsMu for writing; a checkpoint (writer goroutine) holds it for writing
// while it commits the cells, updates the cache and drops the deltas;
// readers hold it for reading while they read cells. commitMu is taken by
// the writer just before COMMIT and released by the applier once the
// deltas have the commit, so a checker can take a snapshot of the database
// and of memory that agree, and commits reach memory in order.
type aggregates struct {
	cellsMu    sync.RWMutex
	deltas     *deltas
	cache      *cellCache
	dirtyCells atomic.Int64 // deltas.len(), for the writer's checkpoint rule
	dirtyBytes atomic.Int64 // deltas.bytes, likewise
	commitMu   sync.Mutex
}

// writerState is owned by the writer goroutine (and by Open before it
// starts): the checkpoint positions, the closed periods and the checkpoint
// timing. No lock guards it; nothing else may touch it.
type writerState struct {
	// lastSeq and tallySeq are the seq of the last response counted in the
	// deltas and in the table (lastSeq-tallySeq responses wait for the next
	// checkpoint).
	lastSeq  int64
	tallySeq int64
	// lastCSeq and tallyCSeq are the same for corrections (corrections.go):
	// the cseq of the last correction in the deltas and in the table.
	lastCSeq  int64
	tallyCSeq int64
	// closedPeriods are the closed periods (periods.go).
	closedPeriods  []closedRange
	lastCheckpoint time.Time
	// checkpointRetryAt: after a failed checkpoint, none before this time.
	checkpointRetryAt time.Time
}

// writerQueue is how callers hand write requests to the writer goroutine.
// Callers enqueue and may withdraw (wait); the writer takes. Everything but
// the channels is guarded by qmu; wake and stop only signal.
type writerQueue struct {
	qmu          sync.Mutex
	pending      []*request
	pendingItems int
	closed       bool
	stats        WriterStats // the writer's counters
	// maxQueued and maxBatch are Options.MaxQueuedItems and MaxBatchItems.
	maxQueued, maxBatch int

	wake chan struct{} // a request was queued (buffered, 1)
	stop chan struct{} // closed by Close
}

// Open opens (creating if needed) the database at path, applies pending
// migrations, counts the responses stored after the last checkpoint of the
// aggregates and starts the writer.
// Questionnaires are looked up in cat by id.
func Open(ctx context.Context, path string, cat *sipas.Catalog, opts Options) (*Store, error) {
	if cat == nil {
		return nil, errors.New("store.open: nil catalog")
	}
	return open(ctx, path, cat, opts)
}

func open(ctx context.Context, path string, cat questionnaireSource, opts Options) (_ *Store, err error) {
	const op = "store.open"
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("%s: want a plain file path, got %q", op, path)
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("%s: path %q must not contain '?' or '#'", op, path)
	}
	opts.fill()
	// Create the file ourselves so that it (and the -wal and -shm files,
	// which SQLite creates with the database file's permissions) is 0600.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}

	s := &Store{
		path:        path,
		cat:         cat,
		opts:        opts,
		aggregates:  aggregates{deltas: newDeltas(), cache: newCellCache(opts.CellCacheBytes)},
		writerQueue: writerQueue{wake: make(chan struct{}, 1), stop: make(chan struct{}), maxQueued: opts.MaxQueuedItems, maxBatch: opts.MaxBatchItems},
		writerDone:  make(chan struct{}),
		applies:     make(chan *applyJob),
		applierDone: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			s.closeDBs()
		}
	}()

	// The writer first: it creates the WAL; read-only connections need it.
	s.writer = sql.OpenDB(newConnector(writerDSN(path), false))
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	if s.wconn, err = s.writer.Conn(ctx); err != nil {
		return nil, fmt.Errorf("%s: writer: %w", op, err)
	}
	if err := s.wconn.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&s.sqliteVersion); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.prepareWriterStmts(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}

	s.reader = sql.OpenDB(newConnector(readerDSN(path), true))
	s.reader.SetMaxOpenConns(opts.ReadConns)
	s.reader.SetMaxIdleConns(opts.ReadConns)
	s.reader.SetConnMaxLifetime(0)
	s.reader.SetConnMaxIdleTime(0)
	// Open every reader connection now, so that each one passes the PRAGMA
	// assertion (in the connector) before the store reports ready.
	conns := make([]*sql.Conn, 0, opts.ReadConns)
	for range opts.ReadConns {
		c, err := s.reader.Conn(ctx)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("%s: reader: %w", op, err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	if s.credByHash, err = s.reader.PrepareContext(ctx, "SELECT "+credentialColumns+" FROM credentials WHERE token_hash = ?"); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.loadUnits(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&s.provinceBlockStmt, provinceBlockSQL}, {&s.unitBlockStmt, unitBlockSQL}, {&s.unitMonthStmt, unitMonthSQL}} {
		if *p.st, err = s.reader.PrepareContext(ctx, p.sql); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	if err := s.loadClosedPeriods(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.recoverTallies(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	s.lastCheckpoint = time.Now()
	go s.applyLoop()
	go s.writeLoop()
	return s, nil
}

// SQLiteVersion returns the version of the embedded SQLite library.
func (s *Store) SQLiteVersion() string { return s.sqliteVersion }

// Path returns the database file path.
func (s *Store) Path() string { return s.path }

// Close stops accepting writes, lets the writer commit what is queued,
// checkpoints the aggregates into the tallies table and the WAL into the database file (TRUNCATE) and closes every
// connection. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.qmu.Lock()
		s.closed = true
		s.qmu.Unlock()
		close(s.stop)
		<-s.writerDone
		var errs []error
		for _, st := range []*sql.Stmt{s.credByHash, s.insertStmt, s.insertGroupStmt, s.hashStmt,
			s.provinceBlockStmt, s.unitBlockStmt, s.unitMonthStmt} {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
		// Readers first, so that the checkpoint is not blocked by them. The
		// field stays set: a late reader call gets "database is closed".
		errs = append(errs, s.reader.Close())
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.TxTimeout)
		defer cancel()
		var busy, logFrames, done int
		if c, err := s.conn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("store.close: checkpoint: %w", err))
		} else if err := c.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
			errs = append(errs, fmt.Errorf("store.close: checkpoint: %w", err))
		} else if busy != 0 {
			errs = append(errs, errors.New("store.close: checkpoint: database busy"))
		}
		errs = append(errs, s.closeDBs())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// closeDBs closes every connection (sql.DB.Close is idempotent).
func (s *Store) closeDBs() error {
	var errs []error
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	if s.wconn != nil {
		if err := s.wconn.Close(); err != nil && !errors.Is(err, sql.ErrConnDone) {
			errs = append(errs, err)
		}
	}
	if s.writer != nil {
		errs = append(errs, s.writer.Close())
	}
	return errors.Join(errs...)
}

// escapePath makes a file path safe inside a file: URI.
func escapePath(p string) string {
	return strings.ReplaceAll(p, "%", "%25")
}

// writerDSN is the writer's DSN: WAL, synchronous FULL, the busy timeout,
// BEGIN IMMEDIATE and foreign keys.
func writerDSN(path string) string {
	return fmt.Sprintf("file:%s?mode=rwc&_journal=WAL&_sync=FULL&_busy_timeout=%d&_txlock=immediate&_fk=1",
		escapePath(path), busyTimeoutMillis)
}

// readerDSN is the read-only pool's DSN. _sync and _fk change nothing for a
// connection that never writes, but they let the same PRAGMA assertion hold
// on every connection.
func readerDSN(path string) string {
	return fmt.Sprintf("file:%s?mode=ro&_busy_timeout=%d&_query_only=1&_sync=FULL&_fk=1",
		escapePath(path), busyTimeoutMillis)
}

// backupDSN is the DSN of the connection that makes backups: read-only at
// the file level (mode=ro) but without query_only, which forbids VACUUM INTO.
func backupDSN(path string) string {
	return fmt.Sprintf("file:%s?mode=ro&_busy_timeout=%d&_sync=FULL&_fk=1", escapePath(path), busyTimeoutMillis)
}

// connector opens connections with a driver whose ConnectHook asserts the
// connection settings, so a connection opened later by the pool is checked
// as well as the first one (a DSN setting silently ignored by the driver would
// otherwise go unnoticed). No global driver registration.
type connector struct {
	dsn string
	drv *sqlite3.SQLiteDriver
}

func newConnector(dsn string, readOnly bool) *connector {
	return &connector{dsn: dsn, drv: &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error { return assertPragmas(c, readOnly) },
	}}
}

func (c *connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c *connector) Driver() driver.Driver                        { return c.drv }

// assertPragmas checks the settings every connection must have.
func assertPragmas(c *sqlite3.SQLiteConn, readOnly bool) error {
	want := []struct {
		pragma string
		value  string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"},
		{"busy_timeout", fmt.Sprint(busyTimeoutMillis)},
		{"foreign_keys", "1"},
		{"query_only", map[bool]string{false: "0", true: "1"}[readOnly]},
	}
	for _, w := range want {
		got, err := pragmaValue(c, w.pragma)
		if err != nil {
			return fmt.Errorf("store: PRAGMA %s: %w", w.pragma, err)
		}
		if !strings.EqualFold(got, w.value) {
			return fmt.Errorf("store: PRAGMA %s = %s, want %s", w.pragma, got, w.value)
		}
	}
	return nil
}

func pragmaValue(c *sqlite3.SQLiteConn, name string) (string, error) {
	rows, err := c.Query("PRAGMA "+name, nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		return "", err
	}
	switch v := dest[0].(type) {
	case []byte:
		return string(v), nil
	default:
		return fmt.Sprint(v), nil
	}
}
