package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sipas-vn/sipas"
)

// TestRestore: a file that is not a sound database is refused and the
// database in place is left as it was; a backup replaces the database, which
// is kept beside it, and the restored store holds the backup's responses.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	g := newGen(t, 7)
	src := openTest(t, filepath.Join(dir, "src.db"), Options{})
	var batch []*sipas.Accepted
	for range 40 {
		batch = append(batch, g.accepted())
	}
	mustInsert(t, src, batch...)
	backup := filepath.Join(dir, "backup.db")
	if _, err := src.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}

	live := filepath.Join(dir, "data", "sipas.db")
	if err := os.MkdirAll(filepath.Dir(live), 0o700); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, live, Options{})
	mustInsert(t, s, g.accepted())
	s.Close()
	before, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}

	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("code,name\n01,Hà Nội\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(ctx, junk, live)
	if err == nil || !strings.Contains(err.Error(), "checking backup") || r.Previous != "" {
		t.Fatalf("restore of a CSV file: %+v %v", r, err)
	}
	if after, err := os.ReadFile(live); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("a refused restore changed the database (%v)", err)
	}

	r, err = Restore(ctx, backup, live)
	if err != nil {
		t.Fatal(err)
	}
	if r.Responses != 40 || !strings.HasPrefix(r.Previous, live+".before-restore-") {
		t.Fatalf("restore: %+v", r)
	}
	if kept, err := os.ReadFile(r.Previous); err != nil || !bytes.Equal(kept, before) {
		t.Fatalf("the replaced database was not kept as %s (%v)", r.Previous, err)
	}
	if fi, err := os.Stat(live); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored file: %v %v", fi, err)
	}
	restored := openTest(t, live, Options{})
	if n, err := restored.CountResponses(ctx); err != nil || n != 40 {
		t.Fatalf("restored store has %d responses (%v), want 40", n, err)
	}
}
