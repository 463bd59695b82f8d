package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/internal/sipasdtest"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// The tests in this package run against the real server binary, built once
// in TestMain, on loopback.

var sipasdBin string

func TestMain(m *testing.M) {
	dir, cleanup, err := sipasdtest.Build("sipasd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sipasdBin = filepath.Join(dir, "sipasd")
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// daemon is a running sipasd with the helpers these tests need.
type daemon struct{ *sipasdtest.Daemon }

func startDaemon(t testing.TB, dir, addr string) *daemon {
	t.Helper()
	return &daemon{sipasdtest.Start(t, sipasdBin, dir, addr)}
}

// credential creates a credential (and, for a kiosk, its unit in province
// 48) and returns its token.
func (d *daemon) credential(cred *sipasv1.Credential) string {
	adm, err := client.Dial(client.Options{Server: d.Addr, Token: d.AdminToken()})
	if err != nil {
		panic(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cred.Role == sipasv1.Role_ROLE_KIOSK {
		_, err := adm.Admin.CreateUnit(ctx, &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{UnitId: cred.UnitId, DisplayName: "Một cửa " + cred.UnitId, ProvinceCode: "48"}})
		if err != nil && !strings.Contains(err.Error(), "exist") {
			panic(err)
		}
	}
	resp, err := adm.Admin.CreateCredential(ctx, &sipasv1.CreateCredentialRequest{Credential: cred})
	if err != nil {
		panic(err)
	}
	return resp.Token
}

func waitCount(t testing.TB, dataDir string, atLeast int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, _ := sipasdtest.Counts(t, dataDir)
		if n >= atLeast || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var serviceItems = func() []string {
	var s []string
	for i := 29; i <= 51; i++ {
		s = append(s, fmt.Sprintf("V23.HL.%02d", i))
	}
	return s
}()

func kioskResponse(i int) *sipas.Response {
	a := map[string]int{}
	for j, c := range serviceItems {
		a[c] = 1 + (i+j)%5
	}
	return &sipas.Response{QuestionnaireID: "sipas-2023", CollectedAt: time.Now().Add(-time.Duration(i) * time.Millisecond),
		Channel: sipas.ChannelKiosk, Answers: a}
}

var fastBackoff = client.Backoff{Initial: 20 * time.Millisecond, Max: 300 * time.Millisecond}

// TestOutboxBacklogExactlyOnce builds a 10,000-response backlog while the
// server is down, then drains it while the server is SIGKILLed and
// restarted and the outbox itself is closed mid-drain and reopened: every
// response must be stored exactly once.
func TestOutboxBacklogExactlyOnce(t *testing.T) {
	const total = 10_000
	dataDir := t.TempDir()
	addr := sipasdtest.FreeAddr(t)
	// Provision a kiosk credential, then take the server down.
	d := startDaemon(t, dataDir, addr)
	token := d.credential(&sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-test"})
	d.Stop()

	cl, err := client.Dial(client.Options{Server: addr, Token: token, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	path := filepath.Join(t.TempDir(), "outbox.db")
	opts := client.OutboxOptions{Backoff: fastBackoff, Poll: 50 * time.Millisecond}
	ob, err := client.OpenOutbox(path, cl, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Start(); err != nil { // the sender runs, and fails, while the server is down
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	const single = 500
	for i := range single {
		if err := ob.Submit(ctx, kioskResponse(i)); err != nil {
			t.Fatal(err)
		}
	}
	perSubmit := time.Since(start) / single
	var batch []*sipas.Response
	for i := single; i < total; i++ {
		batch = append(batch, kioskResponse(i))
		if len(batch) == 500 {
			if err := ob.SubmitBatch(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	depth, oldest, dead := ob.Stats()
	if depth != total || dead != 0 || oldest <= 0 {
		t.Fatalf("backlog: depth %d oldest %s dead %d, want %d, >0, 0", depth, oldest, dead, total)
	}
	t.Logf("backlog of %d built while the server is down; one durable Submit takes %s", total, perSubmit)

	// Server up: drain; kill it mid-drain and restart it.
	drainStart := time.Now()
	d = startDaemon(t, dataDir, addr)
	if n := waitCount(t, dataDir, 2500, 60*time.Second); n < 2500 {
		t.Fatalf("drain stalled at %d", n)
	}
	d.Kill()
	killedAt, _ := sipasdtest.Counts(t, dataDir)
	time.Sleep(200 * time.Millisecond)
	d = startDaemon(t, dataDir, addr)
	if n := waitCount(t, dataDir, killedAt+2500, 60*time.Second); n < killedAt+2500 {
		t.Fatalf("drain stalled at %d after restart", n)
	}
	// Close the outbox mid-drain (no flush) and reopen it.
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	closedAt, _ := sipasdtest.Counts(t, dataDir)
	ob, err = client.OpenOutbox(path, cl, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if depth, _, _ := ob.Stats(); depth == 0 || depth > total-closedAt+opts.BatchSize+256 {
		t.Fatalf("after reopen: depth %d with %d stored", depth, closedAt)
	}
	if err := ob.Start(); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := ob.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	drain := time.Since(drainStart)
	rows, distinct := sipasdtest.Counts(t, dataDir)
	if rows != total || distinct != total {
		t.Fatalf("server holds %d rows (%d distinct), want exactly %d", rows, distinct, total)
	}
	depth, oldest, dead = ob.Stats()
	if depth != 0 || oldest != 0 || dead != 0 {
		t.Fatalf("after drain: depth %d oldest %s dead %d", depth, oldest, dead)
	}
	t.Logf("drained %d responses in %s (server SIGKILLed at %d, outbox reopened at %d)", total, drain.Round(time.Millisecond), killedAt, closedAt)
}

// TestOutboxDrainsLargeBacklogExactlyOnce: a kiosk that was offline for a
// long time drains a backlog of 10,000 responses, each stored exactly once.
// The drain rate is logged for information; speed is measured by make bench.
func TestOutboxDrainsLargeBacklogExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const total = 10_000
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	token := d.credential(&sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-speed"})
	cl, err := client.Dial(client.Options{Server: d.Addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ob, err := client.OpenOutbox(filepath.Join(t.TempDir(), "o.db"), cl, client.OutboxOptions{Backoff: fastBackoff})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	var rs []*sipas.Response
	for i := range total {
		rs = append(rs, kioskResponse(i))
	}
	if err := ob.SubmitBatch(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := ob.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ob.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if rows, distinct := sipasdtest.Counts(t, d.Dir); rows != total || distinct != total {
		t.Fatalf("stored %d (%d distinct), want %d", rows, distinct, total)
	}
	t.Logf("outbox drained %d responses in %s (%.0f/s)", total, el.Round(time.Millisecond), float64(total)/el.Seconds())
}

// TestOutboxDeadLetter: a definite refusal is kept in dead_letter with its
// reason, never retried and never dropped; the good ones go through.
func TestOutboxDeadLetter(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	token := d.credential(&sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-dead"})
	cl, err := client.Dial(client.Options{Server: d.Addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ob, err := client.OpenOutbox(filepath.Join(t.TempDir(), "o.db"), cl, client.OutboxOptions{Backoff: fastBackoff})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	ctx := context.Background()
	bad := kioskResponse(1)
	bad.Answers["V23.HL.31"] = 7
	other := kioskResponse(2)
	other.UnitID = "someone-else"
	for _, r := range []*sipas.Response{kioskResponse(0), bad, other, kioskResponse(3)} {
		if err := ob.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := ob.Start(); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := ob.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	depth, _, dead := ob.Stats()
	if depth != 0 || dead != 2 {
		t.Fatalf("depth %d dead %d, want 0 and 2", depth, dead)
	}
	dls, err := ob.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, dl := range dls {
		reasons[dl.ResponseID] = dl.Code + " " + dl.Reason
	}
	if r := reasons[bad.ID]; !strings.Contains(r, "INVALID_ANSWER_CODE") || !strings.Contains(r, "invalid") {
		t.Errorf("bad answer dead letter reason %q", r)
	}
	if r := reasons[other.ID]; !strings.Contains(r, "OTHER_UNIT") {
		t.Errorf("other unit dead letter reason %q", r)
	}
	if rows, _ := sipasdtest.Counts(t, d.Dir); rows != 2 {
		t.Errorf("server stored %d, want 2", rows)
	}
	// Resubmitting a stored id is harmless: acknowledged as duplicate.
	dup := kioskResponse(0)
	dup.ID = ""
	if err := ob.Submit(ctx, dup); err != nil {
		t.Fatal(err)
	}
	if err := ob.Flush(fctx); err != nil {
		t.Fatal(err)
	}
}

// TestOutboxConcurrentSubmit: Submit from several goroutines while the
// sender drains.
func TestOutboxConcurrentSubmit(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	token := d.credential(&sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-conc"})
	cl, err := client.Dial(client.Options{Server: d.Addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ob, err := client.OpenOutbox(filepath.Join(t.TempDir(), "o.db"), cl, client.OutboxOptions{Backoff: fastBackoff})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if err := ob.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := ob.Submit(context.Background(), kioskResponse(g*1000+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ob.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, distinct := sipasdtest.Counts(t, d.Dir); rows != 400 || distinct != 400 {
		t.Fatalf("stored %d (%d distinct), want 400", rows, distinct)
	}
	if ob.Acknowledged() != 400 {
		t.Fatalf("acknowledged %d", ob.Acknowledged())
	}
}

// TestOutboxFilesArePrivate: the outbox holds citizens' answers, so it and
// its WAL are readable by the kiosk's user only, and an outbox created
// world-readable by an older version is tightened on open.
func TestOutboxFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	ob, err := client.OpenOutbox(path, nil, client.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Submit(context.Background(), kioskResponse(1)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(p), m)
		}
	}
	ob.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	ob, err = client.OpenOutbox(path, nil, client.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("reopened outbox has mode %o, want 600", fi.Mode().Perm())
	}
	if depth, _, _ := ob.Stats(); depth != 1 {
		t.Errorf("queued after reopen: %d, want 1", depth)
	}
}
