package kiosk_test

import (
	"bufio"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sipas-vn/sipas/internal/sipasdtest"
)

// agentProc is a `sipas kiosk serve` child process.
type agentProc struct {
	cmd *exec.Cmd
	URL string
}

func startAgentProc(t *testing.T, srvAddr, listen, dataDir, tokenFile string, extra ...string) *agentProc {
	t.Helper()
	args := append([]string{"kiosk", "serve", "--server", srvAddr, "--data-dir", dataDir, "--listen", listen,
		"--heartbeat", "500ms", "--retry-max", "300ms", "--min-interval", "-1s", "--identical-run", "0"}, extra...)
	if tokenFile != "" {
		args = append(args, "--token-file", tokenFile)
	}
	cmd := exec.Command(filepath.Join(binDir, "sipas"), args...)
	cmd.Env = append(os.Environ(), "SIPAS_TOKEN=", "SIPAS_TOKEN_FILE=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "sipas: kiosk: serving") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the kiosk agent did not start")
	}
	p := &agentProc{cmd: cmd, URL: "http://" + listen + "/"}
	t.Cleanup(p.kill)
	return p
}

// kill ends the agent with SIGKILL (a crash, a power cut).
func (p *agentProc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// outboxDepth reads the agent's outbox file.
func outboxDepth(t *testing.T, dataDir string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dataDir, "outbox.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// outboxIDs returns the response ids (hex, as storedIDs) the agent's
// outbox holds, with the number of rows of each.
func outboxIDs(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dataDir, "outbox.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT response_id FROM outbox")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[hexID(strings.ToLower(id))]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantOutbox fails unless the outbox holds exactly the responses ids, once each.
func wantOutbox(t *testing.T, dataDir, step string, ids []string) {
	t.Helper()
	got := outboxIDs(t, dataDir)
	want := map[string]bool{}
	for _, id := range ids {
		want[hexID(id)] = true
	}
	for id, n := range got {
		if !want[id] || n != 1 {
			t.Errorf("%s: the outbox holds %s %d times (expected: %v)", step, id, n, want[id])
		}
	}
	for id := range want {
		if got[id] == 0 {
			t.Errorf("%s: %s is missing from the outbox", step, id)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// waitOutboxEmpty waits until the agent's outbox is empty: everything in it
// was sent and acknowledged.
func waitOutboxEmpty(t *testing.T, dataDir string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for outboxDepth(t, dataDir) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the outbox still holds %d after %v", outboxDepth(t, dataDir), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// storedIDs returns the response ids the server stored, with the number
// of rows of each.
func storedIDs(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dataDir, "sipas.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT lower(hex(response_id)) FROM responses")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id]++
	}
	return out
}

func hexID(uuid string) string { return strings.ReplaceAll(uuid, "-", "") }

// fillIn answers every question of the open questionnaire (the face of code
// v) and waits for the review screen; it returns the questionnaire's id.
func fillIn(t *testing.T, ctx context.Context, from, v int) string {
	t.Helper()
	for i := from; i <= 23; i++ {
		waitQuestion(t, ctx, i)
		run(t, ctx, answer(v))
	}
	run(t, ctx, screen("review"))
	return eval[string](t, ctx, "S.session")
}

// TestKioskExactlyOnceThroughKills completes questionnaires in a real
// browser through a `sipas kiosk serve` process against a real sipasd,
// while the server is stopped for a while and the agent is killed
// mid-questionnaire, at the moment of submitting and mid-drain: every
// finished questionnaire arrives exactly once and the unfinished one never.
func TestKioskExactlyOnceThroughKills(t *testing.T) {
	srvDir, agentDir := t.TempDir(), t.TempDir()
	addr, listen := sipasdtest.FreeAddr(t), sipasdtest.FreeAddr(t)
	srv := startServer(t, srvDir, addr)
	token := srv.addKiosk("U-KILL")
	tokenFile := filepath.Join(t.TempDir(), "kiosk.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ag := startAgentProc(t, addr, listen, agentDir, tokenFile)
	for _, f := range []string{"outbox.db", "kiosk.token"} {
		if fi, err := os.Stat(filepath.Join(agentDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	ctx := browser(t, 1280, 800)
	run(t, ctx, chromedp.Navigate(ag.URL), screen("attract"))
	var finished []string

	// 1. The server is up.
	run(t, ctx, tap("#start"))
	id := fillIn(t, ctx, 1, 4)
	run(t, ctx, tap("#submit"), screen("thanks"), tap("#done"), screen("attract"))
	finished = append(finished, id)
	// It is sent while the server is up. The outbox sends in the
	// background: the server is stopped only once it has acknowledged, so
	// that what the outbox holds below is known exactly (a questionnaire
	// still on its way when the server stops stays queued, and arrives
	// once, later).
	if n := waitCount(t, srvDir, 1, 30*time.Second); n != 1 {
		t.Fatalf("the first questionnaire: the server stored %d", n)
	}
	waitOutboxEmpty(t, agentDir, 30*time.Second)

	// 2. The server is down: the citizen sees nothing of it, and the
	// questionnaire is in the outbox when the thank-you shows.
	srv.Kill()
	run(t, ctx, tap("#start"))
	id = fillIn(t, ctx, 1, 3)
	run(t, ctx, tap("#submit"), screen("thanks"))
	finished = append(finished, id)
	wantOutbox(t, agentDir, "thank-you shown with the server down", finished[1:])
	if txt := eval[string](t, ctx, "document.body.innerText"); strings.Contains(strings.ToLower(txt), "error") || strings.Contains(txt, "lỗi") || strings.Contains(txt, "mạng") {
		t.Errorf("the citizen sees a problem: %q", txt)
	}
	run(t, ctx, tap("#done"), screen("attract"))

	// 3. The agent is killed mid-questionnaire and again at the moment of
	// submitting; the app keeps the answers and waits on its saving
	// screen until the agent is back.
	run(t, ctx, tap("#start"))
	waitQuestion(t, ctx, 1)
	for i := 1; i <= 5; i++ {
		waitQuestion(t, ctx, i)
		run(t, ctx, answer(5))
	}
	ag.kill()
	id = fillIn(t, ctx, 6, 2)
	ag = startAgentProc(t, addr, listen, agentDir, "")
	ag.kill()
	run(t, ctx, tap("#submit"), screen("saving"))
	time.Sleep(time.Second)
	run(t, ctx, screen("saving"))
	ag = startAgentProc(t, addr, listen, agentDir, "") // the token comes from the agent's own copy
	run(t, ctx, screen("thanks"), tap("#done"), screen("attract"))
	finished = append(finished, id)

	// 4. An unfinished questionnaire: the agent dies and the browser is
	// restarted; it must never arrive.
	run(t, ctx, tap("#start"))
	for i := 1; i <= 3; i++ {
		waitQuestion(t, ctx, i)
		run(t, ctx, answer(1))
	}
	unfinished := eval[string](t, ctx, "S.session")
	ag.kill()
	ag = startAgentProc(t, addr, listen, agentDir, "")
	run(t, ctx, chromedp.Navigate(ag.URL), screen("attract"))

	// 5. A backlog while the server is still down (the app's API, as the
	// browser calls it).
	const backlog = 300
	for i := range backlog {
		s := post(t, ag.URL, "api/start", map[string]any{})
		answers := map[string]int{"V23.HL.29": 1 + i%5, "V23.HL.30": 1 + (i/5)%5}
		post(t, ag.URL, "api/finish", map[string]any{"session": s["session"], "answers": answers, "elapsed_ms": 60000})
		finished = append(finished, s["session"].(string))
	}
	// Exactly the questionnaires finished since the server stopped, once
	// each: not the unfinished one, none twice.
	wantOutbox(t, agentDir, "backlog", finished[1:])
	if d := outboxDepth(t, agentDir); d != backlog+2 {
		t.Fatalf("outbox holds %d, want %d", d, backlog+2)
	}

	// 6. The server comes back; the agent is killed mid-drain.
	srv = startServer(t, srvDir, addr)
	killedAt := waitCount(t, srvDir, 1, 30*time.Second)
	ag.kill()
	left := outboxDepth(t, agentDir)
	if killedAt == 0 || left == 0 {
		// Validity: the kill must land inside the drain, or this part
		// proves nothing.
		t.Fatalf("the kill did not land mid-drain: %d stored, %d left in the outbox", killedAt, left)
	}
	ag = startAgentProc(t, addr, listen, agentDir, "")
	if n := waitCount(t, srvDir, len(finished), 60*time.Second); n < len(finished) {
		t.Fatalf("stored %d of %d finished questionnaires", n, len(finished))
	}
	time.Sleep(500 * time.Millisecond) // anything extra would arrive now
	got := storedIDs(t, srvDir)
	for _, id := range finished {
		if got[hexID(id)] != 1 {
			t.Errorf("finished questionnaire %s stored %d times", id, got[hexID(id)])
		}
	}
	if got[hexID(unfinished)] != 0 {
		t.Errorf("the unfinished questionnaire %s arrived", unfinished)
	}
	if len(got) != len(finished) {
		t.Errorf("the server holds %d responses, want the %d finished", len(got), len(finished))
	}
	t.Logf("%d finished questionnaires stored exactly once; the agent was killed mid-drain with %d stored and %d still in its outbox", len(finished), killedAt, left)
}
