package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// MigrationFile is one numbered SQL file of a store's migrations directory.
type MigrationFile struct {
	Version int
	Name    string
	SQL     string
}

// ReadMigrations returns the migrations in dir of fsys in version order.
// File names are NNNN_name.sql; versions must be unique. Both stores (this
// one and pgstore) number their own files this way.
func ReadMigrations(fsys fs.FS, dir string) ([]MigrationFile, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []MigrationFile
	seen := map[int]string{}
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", base)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same version", other, base)
		}
		seen[v] = base
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, MigrationFile{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// migrations returns this store's embedded migrations in version order.
func migrations() ([]MigrationFile, error) { return ReadMigrations(migrationFS, "migrations") }

// migrate applies the pending migrations in one IMMEDIATE transaction on the
// writer connection and records each in schema_migrations, with the SQLite
// version that applied it. A database with a migration this binary does not
// know (written by a newer version) is refused.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	tx, err := s.wconn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version        INTEGER PRIMARY KEY,
		name           TEXT    NOT NULL,
		applied_at     INTEGER NOT NULL, -- unix nanoseconds
		sqlite_version TEXT    NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	known := map[int]bool{}
	for _, m := range ms {
		known[m.Version] = true
	}
	for v := range applied {
		if !known[v] {
			return fmt.Errorf("migrate: database has migration %d, unknown to this binary (newer schema?)", v)
		}
	}
	now := s.opts.Now().UnixNano()
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO schema_migrations (version, name, applied_at, sqlite_version) VALUES (?, ?, ?, ?)",
			m.Version, m.Name, now, s.sqliteVersion); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO meta (key, value) VALUES ('sqlite_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		s.sqliteVersion); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// Migration is one applied schema migration.
type Migration struct {
	Version       int
	Name          string
	AppliedAtUnix int64 // unix nanoseconds
	SQLiteVersion string
}

// Migrations lists the applied schema migrations in version order.
func (s *Store) Migrations(ctx context.Context) ([]Migration, error) {
	rows, err := s.reader.QueryContext(ctx, "SELECT version, name, applied_at, sqlite_version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("store.migrations: %w", err)
	}
	defer rows.Close()
	var ms []Migration
	for rows.Next() {
		var m Migration
		if err := rows.Scan(&m.Version, &m.Name, &m.AppliedAtUnix, &m.SQLiteVersion); err != nil {
			return nil, fmt.Errorf("store.migrations: %w", err)
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}
