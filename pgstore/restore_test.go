package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/internal/pgtest"
	"github.com/sipas-vn/sipas/store"
	"github.com/sipas-vn/sipas/store/storetest"
)

// TestPgDumpRestore follows the backup procedure of docs/operations.md
// ("PostgreSQL backups"): pg_dump --format=custom, pg_restore into a new
// database, a replica opened on it. Every response, unit, credential and
// aggregate cell comes back, and the cells equal a recount.
func TestPgDumpRestore(t *testing.T) {
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dsn := pgtest.DSN(t)
	base := pgtest.Require(t)
	ctx := context.Background()
	src := openTest(t, dsn, Options{})
	g := storetest.NewGen(t, 11)
	items := make([]*sipas.Accepted, 300)
	for i := range items {
		items[i] = g.Accepted()
	}
	if _, err := src.Insert(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateUnit(ctx, store.Unit{ID: "u-restore", ProvinceCode: "48"}, store.AuditEvent{Actor: "test", Action: "unit.create"}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.CreateCredential(ctx, store.Credential{TokenHash: []byte("h-restore"), Credential: sipas.Credential{ID: "c-restore", Role: 1, UnitID: "u-restore"}}, store.AuditEvent{Actor: "test", Action: "credential.create"}); err != nil {
		t.Fatal(err)
	}
	want, err := src.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}

	u, _ := url.Parse(dsn)
	schema := u.Query().Get("search_path")
	dump := filepath.Join(t.TempDir(), "sipas.dump")
	if out, err := exec.Command("pg_dump", "--format=custom", "--schema="+schema, "--file="+dump, base).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	b := make([]byte, 6)
	rand.Read(b)
	dbName := "sipas_restore_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	ru, _ := url.Parse(base)
	ru.Path = "/" + dbName
	if out, err := exec.Command("pg_restore", "--no-owner", "--exit-on-error", "--dbname="+ru.String(), dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	restored := openTest(t, pgtest.WithSchema(t, ru.String(), schema), Options{})
	if n, err := restored.CountResponses(ctx); err != nil || n != int64(len(items)) {
		t.Fatalf("restored responses = %d, %v; want %d", n, err, len(items))
	}
	if c, err := restored.GetCredential(ctx, "c-restore"); err != nil || c.UnitID != "u-restore" {
		t.Fatalf("restored credential = %+v, %v", c, err)
	}
	if err := restored.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CellsEqual(t, "restored cells vs the source's recount", storetest.Cells(t, restored), want)
	// The restored database takes writes as the original did.
	if res, err := restored.Insert(ctx, items[:5]); err != nil || !res[0].Duplicate {
		t.Fatalf("resending into the restored database: %+v, %v", res, err)
	}
}
