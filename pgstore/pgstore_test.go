package pgstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/internal/pgtest"
	"github.com/sipas-vn/sipas/store/storetest"
)

func openTest(t *testing.T, dsn string, o Options) *Store {
	t.Helper()
	cat, _ := storetest.Catalog(t)
	s, err := Open(context.Background(), dsn, cat, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPoolExhaustedIsAClearError: with every pooled connection busy, a call
// fails after AcquireTimeout with a KindUnavailable error that names the
// pool, instead of hanging.
func TestPoolExhaustedIsAClearError(t *testing.T) {
	s := openTest(t, pgtest.DSN(t), Options{MaxConns: 2, AcquireTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	for range 2 {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
	}
	start := time.Now()
	_, err := s.GetUnit(ctx, "x")
	var e *sipas.Error
	if sipas.KindOf(err) != sipas.KindUnavailable || !errors.As(err, &e) || e.Reason != "DB_POOL_EXHAUSTED" || !strings.Contains(e.Message, "--db-max-conns") {
		t.Fatalf("GetUnit with the pool exhausted: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the refusal took %s", d)
	}
	// Inserts too: the caller gets an indeterminate error, safe to retry.
	g := storetest.NewGen(t, 1)
	if _, err := s.Insert(ctx, []*sipas.Accepted{g.Accepted()}); sipas.KindOf(err) != sipas.KindUnavailable {
		t.Fatalf("Insert with the pool exhausted: %v", err)
	}
}

// TestSchemaVersionMismatchRefused: a database migrated by a newer replica
// is refused at Open, and a running replica turns not ready.
func TestSchemaVersionMismatchRefused(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := openTest(t, dsn, Options{})
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	var applied int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&applied); err != nil || applied != SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", applied, err, SchemaVersion())
	}
	// A reopen applies nothing twice.
	openTest(t, dsn, Options{})
	if _, err := s.pool.Exec(ctx, "INSERT INTO schema_migrations VALUES ($1, 'from_the_future.sql', 0, '')", SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	var e *sipas.Error
	if err := s.Ping(ctx); !errors.As(err, &e) || e.Reason != "SCHEMA_VERSION_MISMATCH" || !strings.Contains(e.Message, "upgrade this replica") {
		t.Fatalf("Ping on a newer schema: %v", err)
	}
	cat, _ := storetest.Catalog(t)
	if _, err := Open(ctx, dsn, cat, Options{}); !errors.As(err, &e) || e.Reason != "SCHEMA_VERSION_MISMATCH" {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

// TestConcurrentStoresShareCells: two stores (two replicas) over one
// database insert overlapping responses at once; each id is stored once,
// and both serve cells equal to a recount once refreshed.
func TestConcurrentStoresShareCells(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := openTest(t, dsn, Options{})
	b := openTest(t, dsn, Options{})
	g := storetest.NewGen(t, 9)
	ctx := context.Background()
	first := make([]*sipas.Accepted, 100)
	for i := range first {
		first[i] = g.Accepted()
	}
	if _, err := a.Insert(ctx, first); err != nil {
		t.Fatal(err)
	}
	// Both replicas read (and cache) the blocks of those cells; the
	// writes that follow must reach the cached blocks of both.
	for _, s := range []*Store{a, b} {
		if err := s.refresh(ctx); err != nil {
			t.Fatal(err)
		}
		storetest.Cells(t, s)
		if s.CacheStats().Blocks == 0 {
			t.Fatal("nothing cached")
		}
	}
	items := make([]*sipas.Accepted, 400)
	for i := range items {
		items[i] = g.Accepted()
	}
	done := make(chan [2]int, 2)
	for _, s := range []*Store{a, b} {
		go func() {
			var ins, dup int
			for off := 0; off < len(items); off += 25 {
				res, err := s.Insert(ctx, items[off:off+25])
				if err != nil {
					t.Error(err)
					break
				}
				for _, r := range res {
					if r.Duplicate {
						dup++
					} else if r.Err == nil {
						ins++
					}
				}
			}
			done <- [2]int{ins, dup}
		}()
	}
	r1, r2 := <-done, <-done
	if r1[0]+r2[0] != len(items) || r1[1]+r2[1] != len(items) {
		t.Fatalf("inserted %d+%d, duplicates %d+%d; want %d of each in total", r1[0], r2[0], r1[1], r2[1], len(items))
	}
	recount, err := a.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b} {
		if err := s.refresh(ctx); err != nil {
			t.Fatal(err)
		}
		storetest.CellsEqual(t, "replica cells vs recount", storetest.Cells(t, s), recount)
		if err := s.CheckAggregates(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBoundedCellCache: with a cache far smaller than the cells, reads
// return the same cells as a recount and the cache stays within its bound.
func TestBoundedCellCache(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	g := storetest.NewGen(t, 10)
	w := openTest(t, dsn, Options{})
	items := make([]*sipas.Accepted, 600)
	for i := range items {
		items[i] = g.Accepted()
	}
	if _, err := w.Insert(ctx, items); err != nil {
		t.Fatal(err)
	}
	recount, err := w.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, budget := range []int{1, 20_000, 64 << 20} {
		s := openTest(t, dsn, Options{CellCacheBytes: budget})
		for range 2 {
			storetest.CellsEqual(t, "cells read through a small cache vs recount", storetest.Cells(t, s), recount)
		}
		st := s.CacheStats()
		if st.Bytes > budget || st.Budget != budget {
			t.Fatalf("budget %d: cache holds %d bytes (%+v)", budget, st.Bytes, st)
		}
		if budget == 64<<20 && (st.Hits == 0 || st.Evictions != 0) {
			t.Fatalf("a cache large enough for every block: %+v", st)
		}
		if budget == 20_000 && st.Evictions == 0 {
			t.Fatalf("a small cache evicted nothing: %+v", st)
		}
	}
}

// TestReadWithoutDatabaseIsUnavailable: a read that cannot reach the
// database is a KindUnavailable error (UNAVAILABLE, safe to retry), not an
// internal one.
func TestReadWithoutDatabaseIsUnavailable(t *testing.T) {
	s := openTest(t, pgtest.DSN(t), Options{AcquireTimeout: 300 * time.Millisecond})
	s.pool.Close()
	ctx := context.Background()
	if _, err := s.GetUnit(ctx, "x"); sipas.KindOf(err) != sipas.KindUnavailable {
		t.Fatalf("GetUnit without the database: %v", err)
	}
	if _, err := s.CredentialByTokenHash(ctx, []byte("h")); sipas.KindOf(err) != sipas.KindUnavailable {
		t.Fatalf("CredentialByTokenHash without the database: %v", err)
	}
	if err := s.Ping(ctx); sipas.KindOf(err) != sipas.KindUnavailable {
		t.Fatalf("Ping without the database: %v", err)
	}
}
