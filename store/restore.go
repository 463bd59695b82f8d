package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sipas-vn/sipas/internal/atomicfile"
)

// Restored is what Restore did.
type Restored struct {
	// Responses is the number of responses in the restored database.
	Responses int64
	// Previous is where the database it replaced was kept ("" when there
	// was none). It is set as soon as the old file is moved, so it is
	// valid even when Restore then fails.
	Previous string
}

// Restore replaces the database file dbPath with the backup file src (made
// by Backup) after checking the backup with PRAGMA integrity_check and
// counting its responses. No Store may have dbPath open. The database it
// replaces, with its -wal and -shm files, is kept beside it as
// dbPath.before-restore-TIMESTAMP; the new file is written 0600 and
// atomically (a crash leaves the old name empty or complete, never half a
// database).
func Restore(ctx context.Context, src, dbPath string) (Restored, error) {
	var out Restored
	db, err := sql.Open("sqlite3", "file:"+escapePath(src)+"?mode=ro")
	if err != nil {
		return out, err
	}
	var check string
	err = db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check)
	if err == nil {
		err = db.QueryRowContext(ctx, "SELECT count(*) FROM responses").Scan(&out.Responses)
	}
	db.Close()
	if err != nil {
		return out, fmt.Errorf("checking backup %s: %w", src, err)
	}
	if check != "ok" {
		return out, fmt.Errorf("backup %s fails integrity_check: %s", src, check)
	}
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return out, err
	}
	if _, err := os.Stat(dbPath); err == nil {
		old := dbPath + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(dbPath, old); err != nil {
			return out, err
		}
		for _, suffix := range []string{"-wal", "-shm"} {
			_ = os.Rename(dbPath+suffix, old+suffix)
		}
		out.Previous = old
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return out, err
	}
	if err := atomicfile.WriteFile(dbPath, data, 0o600); err != nil {
		return out, err
	}
	return out, nil
}
