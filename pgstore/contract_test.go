package pgstore_test

import (
	"context"
	"testing"

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
		s, err := pgstore.Open(context.Background(), pgtest.DSN(t), cat, pgstore.Options{Now: o.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
