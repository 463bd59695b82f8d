package pgstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sipas-vn/sipas/internal/pgtest"
	"github.com/sipas-vn/sipas/pgstore"
	"github.com/sipas-vn/sipas/store"
	"github.com/sipas-vn/sipas/store/storetest"
)

// TestContract runs the backend contract suite on the PostgreSQL store,
// each test in a schema of its own.
func TestContract(t *testing.T) {
	pgtest.Require(t)
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Backend {
		cat, _ := storetest.Catalog(t)
		dsn := pgtest.DSN(t)
		s, err := pgstore.Open(context.Background(), dsn, cat, pgstore.Options{Now: o.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if o.RefuseAuditActor != "" {
			ctx := context.Background()
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, `CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS
				$$ BEGIN RAISE EXCEPTION 'audit write refused by the test'; END $$`); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW
				WHEN (NEW.actor = '`+strings.ReplaceAll(o.RefuseAuditActor, "'", "''")+`') EXECUTE FUNCTION refuse_audit()`); err != nil {
				t.Fatal(err)
			}
		}
		return s
	})
}
