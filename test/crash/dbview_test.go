package crash

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/pgstore"
	"github.com/sipas-vn/sipas/store"
)

// storedRow is what the checker reads of one stored response.
type storedRow struct {
	hash []byte
	n    int // rows with this id
}

// dbView is how the checker reads the server's database, for each backend.
type dbView interface {
	// acknowledged reads the stored rows of ids, while the server runs.
	acknowledged(ids []string) (map[string]storedRow, error)
	// integrity checks the database's own consistency.
	integrity() error
	// open opens the store for the final check (the server is stopped).
	open(ctx context.Context, cat *sipas.Catalog) (store.Backend, error)
	// uniqueOnID reports whether the database enforces one row per id.
	uniqueOnID() (bool, error)
	// storedIDs returns the rows of each stored id, straight from SQL.
	storedIDs() (map[string]int, error)
	// correctedRows returns the responses with a correction in effect or
	// recorded, by id.
	correctedRows() (map[string]correctedRow, error)
}

// correctedRow is a response that is amended or withdrawn, or has a
// correction recorded.
type correctedRow struct {
	hash      []byte
	version   int
	withdrawn bool
	n         int // rows in the corrections table
}

func (v sqliteView) correctedRows() (map[string]correctedRow, error) {
	db, err := v.db()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT r.response_id, r.content_hash, r.version, r.withdrawn,
		(SELECT count(*) FROM corrections c WHERE c.response_seq = r.seq) FROM responses r WHERE r.version > 1 OR r.withdrawn = 1
		OR EXISTS (SELECT 1 FROM corrections c WHERE c.response_seq = r.seq)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := map[string]correctedRow{}
	for rows.Next() {
		var b []byte
		var st correctedRow
		if err := rows.Scan(&b, &st.hash, &st.version, &st.withdrawn, &st.n); err != nil {
			return nil, err
		}
		u, err := uuid.FromBytes(b)
		if err != nil {
			return nil, err
		}
		got[u.String()] = st
	}
	return got, rows.Err()
}

func (v *pgView) correctedRows() (map[string]correctedRow, error) {
	c, err := v.conn()
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), `SELECT r.response_id::text, r.content_hash, r.version, r.withdrawn,
		(SELECT count(*) FROM corrections c WHERE c.response_id = r.response_id) FROM responses r WHERE r.version > 1 OR r.withdrawn
		OR EXISTS (SELECT 1 FROM corrections c WHERE c.response_id = r.response_id)`)
	if err != nil {
		return nil, err
	}
	got := map[string]correctedRow{}
	var id string
	var st correctedRow
	var version int32
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&id, &st.hash, &version, &st.withdrawn, &n}, func() error {
		got[id] = correctedRow{hash: append([]byte(nil), st.hash...), version: int(version), withdrawn: st.withdrawn, n: int(n)}
		return nil
	})
	return got, err
}

// sqliteView reads the SQLite file through read-only connections of its own
// (WAL allows it while the server runs; each is closed before the next
// kill, so the server's -wal and -shm files are left to the server).
type sqliteView struct{ path string }

func (v sqliteView) db() (*sql.DB, error) {
	db, err := sql.Open("sqlite3", "file:"+v.path+"?mode=ro&_busy_timeout=5000")
	if err == nil {
		db.SetMaxOpenConns(1)
	}
	return db, err
}

func (v sqliteView) acknowledged(ids []string) (map[string]storedRow, error) {
	db, err := v.db()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	stmt, err := tx.Prepare("SELECT content_hash, (SELECT count(*) FROM responses r2 WHERE r2.response_id = r.response_id) FROM responses r WHERE response_id = ?")
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	out := map[string]storedRow{}
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, err
		}
		var r storedRow
		err = stmt.QueryRow(u[:]).Scan(&r.hash, &r.n)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, nil
}

func (v sqliteView) integrity() error {
	db, err := v.db()
	if err != nil {
		return err
	}
	defer db.Close()
	var msg string
	if err := db.QueryRow("PRAGMA integrity_check(1)").Scan(&msg); err != nil {
		return err
	}
	if msg != "ok" {
		return fmt.Errorf("integrity_check: %s", msg)
	}
	return nil
}

func (v sqliteView) open(ctx context.Context, cat *sipas.Catalog) (store.Backend, error) {
	st, err := store.Open(ctx, v.path, cat, store.Options{})
	if err != nil {
		return nil, err
	}
	if err := st.IntegrityCheck(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func (v sqliteView) uniqueOnID() (bool, error) {
	db, err := v.db()
	if err != nil {
		return false, err
	}
	defer db.Close()
	var uniq int
	err = db.QueryRow(`SELECT count(*) FROM pragma_index_list('responses') il
		WHERE il."unique" = 1 AND (SELECT group_concat(name) FROM pragma_index_info(il.name)) = 'response_id'`).Scan(&uniq)
	return uniq > 0, err
}

func (v sqliteView) storedIDs() (map[string]int, error) {
	db, err := v.db()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query("SELECT response_id FROM responses")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	stored := map[string]int{}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		u, err := uuid.FromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("stored response_id %x: %w", b, err)
		}
		stored[u.String()]++
	}
	return stored, rows.Err()
}

// pgView reads the PostgreSQL schema of the test through a connection of
// its own.
type pgView struct {
	dsn    string
	cat    *sipas.Catalog
	checks int
	final  bool // the final check: the server is stopped
}

const pgRecountEvery = 10

func (v pgView) conn() (*pgx.Conn, error) {
	return pgx.Connect(context.Background(), v.dsn)
}

func (v pgView) acknowledged(ids []string) (map[string]storedRow, error) {
	c, err := v.conn()
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), "SELECT response_id::text, content_hash, count(*) OVER (PARTITION BY response_id) FROM responses WHERE response_id = ANY($1::uuid[])", ids)
	if err != nil {
		return nil, err
	}
	out := map[string]storedRow{}
	var id string
	var r storedRow
	_, err = pgx.ForEachRow(rows, []any{&id, &r.hash, &r.n}, func() error {
		out[id] = storedRow{hash: append([]byte(nil), r.hash...), n: r.n}
		return nil
	})
	return out, err
}

// integrity: PostgreSQL keeps its own pages consistent; what the service
// adds is the agreement of the shared aggregate cells with the responses,
// checked in one snapshot against a recount while the server runs. A
// recount reads every response, so after the first restarts it runs every
// pgRecountEvery-th one (and always in the final check), keeping 200 kills
// within make reliability's time.
func (v *pgView) integrity() error {
	v.checks++
	if v.checks > 5 && v.checks%pgRecountEvery != 0 && !v.final {
		return nil
	}
	st, err := pgstore.Open(context.Background(), v.dsn, v.cat, pgstore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	return st.CheckAggregates(context.Background())
}

func (v *pgView) open(ctx context.Context, cat *sipas.Catalog) (store.Backend, error) {
	v.final = true
	return pgstore.Open(ctx, v.dsn, cat, pgstore.Options{})
}

func (v pgView) uniqueOnID() (bool, error) {
	c, err := v.conn()
	if err != nil {
		return false, err
	}
	defer c.Close(context.Background())
	var n int
	err = c.QueryRow(context.Background(), `SELECT count(*) FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		WHERE i.indrelid = 'responses'::regclass AND i.indisunique AND i.indnatts = 1 AND a.attname = 'response_id'`).Scan(&n)
	return n > 0, err
}

func (v pgView) storedIDs() (map[string]int, error) {
	c, err := v.conn()
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), "SELECT response_id::text FROM responses")
	if err != nil {
		return nil, err
	}
	stored := map[string]int{}
	var id string
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error { stored[id]++; return nil })
	return stored, err
}
