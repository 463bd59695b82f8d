package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sipas-vn/sipas/store"
	"github.com/sipas-vn/sipas/store/storetest"
)

// TestContract runs the backend contract suite on the SQLite store.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Backend {
		cat, _ := storetest.Catalog(t)
		s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "sipas.db"), cat, store.Options{Now: o.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
