package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mattn/go-sqlite3"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/questionnaires"
	"github.com/sipas-vn/sipas/server"
	"github.com/sipas-vn/sipas/store"
)

// Regression tests of issue 16, item 6, for sipasd.

// TestItem6ReadinessTurnsUnreadyWhenCommitsFailForLackOfSpace: a batch
// commit that fails with SQLITE_FULL makes the server unready even though
// the small probe write still succeeds; a commit that succeeds again makes
// it ready.
func TestItem6ReadinessTurnsUnreadyWhenCommitsFailForLackOfSpace(t *testing.T) {
	cat, reg, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	var full atomic.Bool
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "sipas.db"), cat, store.Options{
		// The disk is "full" for response transactions only: the readiness
		// probe's one-row write still fits, as it does on a nearly full disk.
		BeforeCommit: func(int) error {
			if full.Load() {
				return sqlite3.Error{Code: sqlite3.ErrFull}
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{Catalog: cat, Registry: reg, Store: st, Logger: log,
		Engine: &sipas.Engine{Catalog: cat, Registry: reg, Source: st}})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: log, store: st, srv: srv}
	ctx := context.Background()
	insert := func() error {
		r := &sipas.Response{ID: uuid.NewString(), QuestionnaireID: "sipas-2023", ProvinceCode: "48", CollectedAt: time.Now(),
			Channel: sipas.ChannelField, Answers: map[string]int{cat.Get("sipas-2023").Items[0].Code: 1}}
		acc, err := sipas.Validate(cat, reg, r, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Insert(ctx, []*sipas.Accepted{acc})
		return err
	}
	if err := insert(); err != nil {
		t.Fatal(err)
	}
	d.checkReady(ctx)
	if !d.ready.Load() {
		t.Fatal("not ready at start")
	}
	full.Store(true)
	if err := insert(); sipas.KindOf(err) != sipas.KindUnavailable {
		t.Fatalf("insert on a full disk: %v, want an unavailable error", err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("the probe write must still succeed for this test to mean anything: %v", err)
	}
	d.checkReady(ctx)
	if d.ready.Load() {
		t.Fatal("ready although the last response commit failed for lack of space")
	}
	full.Store(false)
	if err := insert(); err != nil {
		t.Fatal(err)
	}
	d.checkReady(ctx)
	if !d.ready.Load() {
		t.Fatal("still unready after a commit succeeded again")
	}
}

// TestItem6ExistingDataDirIsTightenedTo0700: the data directory holds the
// database and admin.token.
func TestItem6ExistingDataDirIsTightenedTo0700(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, dir)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v after start, want 0700", fi.Mode().Perm())
	}
}

// TestItem2KioskMaxAgeFlag: --kiosk-max-age and SIPAS_KIOSK_MAX_AGE, 7 days by default.
func TestItem2KioskMaxAgeFlag(t *testing.T) {
	c, err := parseConfig(nil, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.KioskMaxAge != 7*24*time.Hour || c.StreamsPerCredential != 4 || c.StreamsTotal != 32 || c.StreamSendTimeout != 30*time.Second {
		t.Fatalf("defaults: %v %d %d %v", c.KioskMaxAge, c.StreamsPerCredential, c.StreamsTotal, c.StreamSendTimeout)
	}
	c, err = parseConfig(nil, func(k string) string {
		if k == "SIPAS_KIOSK_MAX_AGE" {
			return "48h"
		}
		return ""
	}, io.Discard)
	if err != nil || c.KioskMaxAge != 48*time.Hour {
		t.Fatalf("from the environment: %v %v", c.KioskMaxAge, err)
	}
	c, err = parseConfig([]string{"--kiosk-max-age", "240h"}, env, io.Discard)
	if err != nil || c.KioskMaxAge != 240*time.Hour {
		t.Fatalf("from the flag: %v %v", c.KioskMaxAge, err)
	}
	if _, err := parseConfig([]string{"--kiosk-max-age", "0s"}, env, io.Discard); err == nil {
		t.Fatal("--kiosk-max-age 0s accepted")
	}
}
