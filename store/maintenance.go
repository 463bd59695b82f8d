package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sipas-vn/sipas"
)

// Backup writes a consistent copy of the database to destPath with VACUUM
// INTO (never a file copy of a live database) and returns the number of
// responses in the copy. destPath must not exist; the copy is created 0600.
// The copy is made from a read-only connection, so ingestion goes on
// meanwhile.
func (s *Store) Backup(ctx context.Context, destPath string) (int64, error) {
	const op = "store.backup"
	if destPath == "" || strings.ContainsAny(destPath, "?#") {
		return 0, &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_ARGUMENT", Message: "bad backup path"}
	}
	// VACUUM INTO accepts an empty existing file: create it 0600 so that the
	// copy, which holds respondents' data, is never world-readable.
	f, err := os.OpenFile(destPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	f.Close()
	ok := false
	defer func() {
		if !ok {
			os.Remove(destPath)
		}
	}()
	// PRAGMA query_only forbids VACUUM INTO (it counts as a write), so the
	// reader pool cannot make the copy. A separate connection opened with
	// mode=ro can: SQLite itself refuses any write to the live database on
	// it, and unlike the writer it does not hold up ingestion for the length
	// of the copy.
	src := sql.OpenDB(newConnector(backupDSN(s.path), false))
	src.SetMaxOpenConns(1)
	_, err = src.ExecContext(ctx, "VACUUM INTO ?", destPath)
	src.Close()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	// Count in the copy itself, read-only.
	db, err := sql.Open("sqlite3", fmt.Sprintf("file:%s?mode=ro&_busy_timeout=%d", escapePath(destPath), busyTimeoutMillis))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM responses").Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: count in copy: %w", op, err)
	}
	ok = true
	return n, nil
}

// Checkpoint runs PRAGMA wal_checkpoint in the given mode (PASSIVE, FULL,
// RESTART or TRUNCATE) on the writer connection. A checkpoint that could not
// complete because of readers is reported as a KindUnavailable error.
func (s *Store) Checkpoint(ctx context.Context, mode string) error {
	const op = "store.checkpoint"
	mode = strings.ToUpper(mode)
	switch mode {
	case "PASSIVE", "FULL", "RESTART", "TRUNCATE":
	default:
		return &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_ARGUMENT", Message: fmt.Sprintf("unknown checkpoint mode %q", mode)}
	}
	var busy, logFrames, done int
	err := s.doConn(ctx, op, func(ctx context.Context, c *sql.Conn) error {
		return c.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &done)
	})
	if err != nil {
		return writeError(op, err)
	}
	if busy != 0 {
		return &sipas.Error{Kind: sipas.KindUnavailable, Op: op, Reason: "CHECKPOINT_BUSY",
			Message: fmt.Sprintf("checkpoint %s incomplete: %d of %d frames", mode, done, logFrames)}
	}
	return nil
}

// Sizes returns the sizes in bytes of the database file and of its WAL.
func (s *Store) Sizes() (db, wal int64) {
	if fi, err := os.Stat(s.path); err == nil {
		db = fi.Size()
	}
	if fi, err := os.Stat(s.path + "-wal"); err == nil {
		wal = fi.Size()
	}
	return db, wal
}

// Ping checks that the database is writable with a small durable write
// transaction through the writer, for readiness checks.
func (s *Store) Ping(ctx context.Context) error {
	const op = "store.ping"
	now := strconv.FormatInt(s.opts.Now().UnixNano(), 10)
	err := s.do(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('last_ping', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", now)
		return err
	})
	if err != nil {
		return writeError(op, err)
	}
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check and PRAGMA foreign_key_check
// and returns an error describing the first problems found, if any.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	return integrityCheck(ctx, s.reader)
}

func integrityCheck(ctx context.Context, db *sql.DB) error {
	const op = "store.integrity_check"
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return fmt.Errorf("%s: %w", op, err)
		}
		msgs = append(msgs, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("%s: %s", op, strings.Join(msgs, "; "))
	}
	rows, err = db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		bad = append(bad, fmt.Sprintf("%s row %d references missing %s", table, rowid.Int64, parent))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(bad) > 0 {
		return errors.New(op + ": foreign key violations: " + strings.Join(bad, "; "))
	}
	return nil
}
