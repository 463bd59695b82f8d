package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sipas-vn/sipas/store"
	"github.com/sipas-vn/sipas/store/storetest"
)

// TestContract runs the backend contract suite on the SQLite store.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Backend {
		cat, _ := storetest.Catalog(t)
		path := filepath.Join(t.TempDir(), "sipas.db")
		s, err := store.Open(context.Background(), path, cat, store.Options{Now: o.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if o.RefuseAuditActor != "" {
			db, err := sql.Open("sqlite3", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events WHEN NEW.actor = ` + quote(o.RefuseAuditActor) + `
				BEGIN SELECT RAISE(ABORT, 'audit write refused by the test'); END`); err != nil {
				t.Fatal(err)
			}
		}
		return s
	})
}

// quote is s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
