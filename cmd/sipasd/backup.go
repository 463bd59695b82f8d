package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver, for checking a backup before restoring it

	"github.com/sipas-vn/sipas/internal/atomicfile"
)

// backupPrefix names scheduled backup files: sipas-20260102T030405Z.db.
const backupPrefix = "sipas-"

// scheduledBackup writes one backup into --backup-dir and keeps the newest
// --backup-keep of them.
func (d *daemon) scheduledBackup(ctx context.Context) error {
	if err := os.MkdirAll(d.cfg.BackupDir, 0o700); err != nil {
		return err
	}
	name := backupPrefix + time.Now().UTC().Format("20060102T150405Z") + ".db"
	dest := filepath.Join(d.cfg.BackupDir, name)
	n, err := d.store.Backup(ctx, dest)
	if err != nil {
		return err
	}
	_ = d.store.AppendAudit(ctx, "system", "backup", dest, fmt.Sprintf("scheduled, responses=%d", n))
	d.srv.NoteBackup()
	d.log.Info("scheduled backup written", "file", dest, "responses", n)
	entries, err := os.ReadDir(d.cfg.BackupDir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), backupPrefix) && strings.HasSuffix(e.Name(), ".db") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // the timestamp format sorts chronologically
	for len(names) > d.cfg.BackupKeep && d.cfg.BackupKeep > 0 {
		if err := os.Remove(filepath.Join(d.cfg.BackupDir, names[0])); err != nil {
			return err
		}
		names = names[1:]
	}
	return nil
}

// restore replaces the database in --data-dir with a backup file after
// checking its integrity. The server must not be running. The database it
// replaces is kept beside it as sipas.db.before-restore-TIMESTAMP.
func restore(ctx context.Context, cfg Config, stdout io.Writer) error {
	src := cfg.RestoreFrom
	db, err := sql.Open("sqlite3", "file:"+src+"?mode=ro")
	if err != nil {
		return err
	}
	var check string
	var n int64
	err = db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check)
	if err == nil {
		err = db.QueryRowContext(ctx, "SELECT count(*) FROM responses").Scan(&n)
	}
	db.Close()
	if err != nil {
		return fmt.Errorf("checking backup %s: %w", src, err)
	}
	if check != "ok" {
		return fmt.Errorf("backup %s fails integrity_check: %s", src, check)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	dest := filepath.Join(cfg.DataDir, dbFile)
	if _, err := os.Stat(dest); err == nil {
		old := dest + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(dest, old); err != nil {
			return err
		}
		for _, suffix := range []string{"-wal", "-shm"} {
			_ = os.Rename(dest+suffix, old+suffix)
		}
		fmt.Fprintf(stdout, "sipasd: previous database kept as %s\n", old)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(dest, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sipasd: restored %s into %s (%d responses, integrity ok)\n", src, dest, n)
	return nil
}
