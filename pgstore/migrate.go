package pgstore

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the embedded PostgreSQL migrations in version order
// (file names NNNN_name.sql, versions unique, numbered from 0001).
func migrations() ([]store.MigrationFile, error) {
	return store.ReadMigrations(migrationFS, "migrations")
}

// SchemaVersion is the newest migration this binary knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// migrationLock is the advisory lock key that serializes migrations of
// replicas starting together.
const migrationLock = 0x5195a5_0001

// migrate applies the pending migrations in one transaction (PostgreSQL DDL
// is transactional: a failed migration leaves nothing), holding an advisory
// lock so that replicas starting together apply each migration once. A
// database with a migration this binary does not know (a newer replica
// migrated it) is refused.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return s.tx(ctx, "pgstore.migrate", pgx.TxOptions{}, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text    NOT NULL,
			applied_at bigint  NOT NULL, -- unix nanoseconds
			server_version text NOT NULL
		)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		applied := map[int]bool{}
		newest := 0
		for _, v := range versions {
			applied[int(v)] = true
			newest = max(newest, int(v))
		}
		if err := checkSchemaVersion(newest); err != nil && newest > SchemaVersion() {
			return err
		}
		var serverVersion string
		if err := tx.QueryRow(ctx, "SHOW server_version").Scan(&serverVersion); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		now := s.opts.Now().UnixNano()
		for _, m := range ms {
			if applied[m.Version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migrate: %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at, server_version) VALUES ($1, $2, $3, $4)",
				m.Version, m.Name, now, serverVersion); err != nil {
				return fmt.Errorf("migrate: %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

// checkSchemaVersion refuses a database whose schema is not the one this
// binary was built for: replicas of different versions must not serve the
// same database side by side.
func checkSchemaVersion(dbVersion int) error {
	want := SchemaVersion()
	switch {
	case dbVersion > want:
		return &sipas.Error{Kind: sipas.KindFailedPrecondition, Op: "pgstore.schema", Reason: "SCHEMA_VERSION_MISMATCH",
			Message: fmt.Sprintf("the database schema is at version %d, newer than this sipasd (version %d): a newer replica migrated it; upgrade this replica", dbVersion, want)}
	case dbVersion < want:
		return &sipas.Error{Kind: sipas.KindFailedPrecondition, Op: "pgstore.schema", Reason: "SCHEMA_VERSION_MISMATCH",
			Message: fmt.Sprintf("the database schema is at version %d, older than this sipasd (version %d): restart this replica to migrate it", dbVersion, want)}
	}
	return nil
}
