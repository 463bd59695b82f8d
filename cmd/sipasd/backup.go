package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sipas-vn/sipas/store"
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
	// The copy is made under a hidden name and renamed when complete, so a
	// file named like a backup is always a whole one (retention, operators
	// and restore scripts never see one half written).
	partial := filepath.Join(d.cfg.BackupDir, "."+name+".partial")
	n, err := d.store.Backup(ctx, partial)
	if err != nil {
		return err
	}
	if err := os.Rename(partial, dest); err != nil {
		os.Remove(partial)
		return err
	}
	if dir, err := os.Open(d.cfg.BackupDir); err == nil {
		_ = dir.Sync() // the rename survives a crash
		dir.Close()
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
// checking its integrity (store.Restore). The server must not be running.
// The database it replaces is kept beside it as
// sipas.db.before-restore-TIMESTAMP.
func restore(ctx context.Context, cfg Config, stdout io.Writer) error {
	dest := filepath.Join(cfg.DataDir, dbFile)
	r, err := store.Restore(ctx, cfg.RestoreFrom, dest)
	if r.Previous != "" {
		fmt.Fprintf(stdout, "sipasd: previous database kept as %s\n", r.Previous)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sipasd: restored %s into %s (%d responses, integrity ok)\n", cfg.RestoreFrom, dest, r.Responses)
	return nil
}
