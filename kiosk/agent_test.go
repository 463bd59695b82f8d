package kiosk_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/kiosk"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// storedFlags returns the flags of every stored response by id (hex).
func storedFlags(t *testing.T, dataDir string) map[string]sipas.Flags {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dataDir, "sipas.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT lower(hex(response_id)), flags FROM responses")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]sipas.Flags{}
	for rows.Next() {
		var id string
		var f int64
		if err := rows.Scan(&id, &f); err != nil {
			t.Fatal(err)
		}
		out[id] = sipas.Flags(f)
	}
	return out
}

// TestKioskIdleReset: a questionnaire left untouched goes back to the
// attract screen after the idle timeout; its answers are discarded, or sent
// when the agent is configured to send partial answers.
func TestKioskIdleReset(t *testing.T) {
	srvDir := t.TempDir()
	srv := startServer(t, srvDir, "")
	token := srv.addKiosk("U-IDLE")
	for _, sendPartial := range []bool{false, true} {
		a := startAgent(t, srv.Addr, token, kiosk.Config{IdleTimeout: 2 * time.Second, SendPartial: sendPartial})
		ctx := browser(t, 800, 1280)
		run(t, ctx, chromedp.Navigate(a.URL), screen("attract"), tap("#start"))
		waitQuestion(t, ctx, 1)
		run(t, ctx, answer(5))
		waitQuestion(t, ctx, 2)
		run(t, ctx, answer(2))
		waitQuestion(t, ctx, 3)
		run(t, ctx, tap("#contrast")) // reset to the default look too
		id := eval[string](t, ctx, "S.session")
		start := time.Now()
		run(t, ctx, screen("attract"))
		if waited := time.Since(start); waited > 4*time.Second {
			t.Errorf("idle reset after %s, want about 2 s", waited)
		}
		if eval[bool](t, ctx, `document.documentElement.classList.contains("contrast")`) {
			t.Error("the next citizen inherits high contrast")
		}
		time.Sleep(time.Second) // the agent has the abandoned answers by now
		if err := a.Outbox().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := storedIDs(t, srvDir)
		if sendPartial && got[hexID(id)] != 1 {
			t.Errorf("send-partial: the abandoned questionnaire was stored %d times, want once", got[hexID(id)])
		}
		if !sendPartial && got[hexID(id)] != 0 {
			t.Errorf("discard: the abandoned questionnaire arrived")
		}
		a.stop()
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// TestKioskMisuseFlags crafts timings: a questionnaire completed too fast
// and too soon after the previous one, and a run of three identical ones,
// are stored flagged with their reasons; the others are not flagged. A
// response from a kiosk whose clock is 10 minutes off is flagged by the
// server.
func TestKioskMisuseFlags(t *testing.T) {
	srvDir := t.TempDir()
	srv := startServer(t, srvDir, "")
	token := srv.addKiosk("U-MISUSE")
	base := time.Now() // the first heartbeat finds the clock right; the steps then move it on
	clk := &fakeClock{t: base}
	a := startAgent(t, srv.Addr, token, kiosk.Config{Now: clk.Now, Heartbeat: time.Hour,
		Misuse: kiosk.MisuseRules{MinPerQuestion: 1500 * time.Millisecond, MinInterval: 20 * time.Second, IdenticalRun: 3}})
	A := map[string]int{"V23.HL.29": 4, "V23.HL.30": 5}
	B := map[string]int{"V23.HL.29": 5, "V23.HL.30": 5}
	C := map[string]int{"V23.HL.29": 3, "V23.HL.31": 2}
	steps := []struct {
		start, finish time.Duration // after base
		answers       map[string]int
		want          sipas.Flags
	}{
		{0, 60 * time.Second, A, 0},
		{61 * time.Second, 62 * time.Second, B, sipas.FlagTooFast | sipas.FlagTooSoon}, // 1 s for 2 questions, 2 s after the previous
		{100 * time.Second, 160 * time.Second, B, 0},                                   // two identical in a row: not yet a run
		{200 * time.Second, 260 * time.Second, B, sipas.FlagIdenticalRun},              // the third
		{300 * time.Second, 360 * time.Second, C, 0},
	}
	ids := make([]string, len(steps))
	for i, s := range steps {
		clk.Set(base.Add(s.start))
		ids[i] = post(t, a.URL, "api/start", map[string]any{})["session"].(string)
		clk.Set(base.Add(s.finish))
		post(t, a.URL, "api/finish", map[string]any{"session": ids[i], "answers": s.answers, "elapsed_ms": 999999})
	}
	// A retry of a finished questionnaire is not judged again.
	post(t, a.URL, "api/finish", map[string]any{"session": ids[4], "answers": C, "elapsed_ms": 1})
	if err := a.Outbox().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := storedFlags(t, srvDir)
	for i, s := range steps {
		if f, ok := got[hexID(ids[i])]; !ok || f != s.want {
			t.Errorf("questionnaire %d: stored %v with flags %q, want %q", i+1, ok, f, s.want)
		}
	}

	// Clock skew: the server measures the kiosk's clock at its heartbeat.
	cl, err := client.Dial(client.Options{Server: srv.Addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Survey.ReportKioskHeartbeat(ctx, &sipasv1.ReportKioskHeartbeatRequest{
		SendTime: timestamppb.New(time.Now().Add(10 * time.Minute)), AgentVersion: "skewed"}); err != nil {
		t.Fatal(err)
	}
	r := &sipas.Response{QuestionnaireID: "sipas-2023", CollectedAt: time.Now(), Channel: sipas.ChannelKiosk, Answers: A}
	if _, err := cl.Submit(ctx, r, 3, client.Backoff{}); err != nil {
		t.Fatal(err)
	}
	if f := storedFlags(t, srvDir)[hexID(r.ID)]; f != sipas.FlagClockSkew {
		t.Errorf("response of a kiosk 10 min off: flags %q, want clock_skew", f)
	}
}

// TestKioskOperatorAPI: the operator screen needs the PIN (five wrong ones
// lock it), shows the outbox and server figures, and its test submission
// goes through the outbox to the server.
func TestKioskOperatorAPI(t *testing.T) {
	srvDir := t.TempDir()
	srv := startServer(t, srvDir, "")
	token := srv.addKiosk("U-OPERATOR")
	a := startAgent(t, srv.Addr, token, kiosk.Config{OperatorPIN: "1357", Heartbeat: 100 * time.Millisecond})
	call := func(method, path, opToken string, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, a.URL+path, nil)
		if body != "" {
			req, _ = http.NewRequest(method, a.URL+path, stringsReader(body))
		}
		req.Header.Set("X-Kiosk", "1")
		if opToken != "" {
			req.Header.Set("X-Operator", opToken)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, _ := call("GET", "api/operator/status", "", ""); code != http.StatusUnauthorized {
		t.Errorf("status without PIN: %d", code)
	}
	if code, _ := call("POST", "api/operator/login", "", `{"pin":"0000"}`); code != http.StatusUnauthorized {
		t.Errorf("wrong PIN: %d", code)
	}
	code, out := call("POST", "api/operator/login", "", `{"pin":"1357"}`)
	if code != http.StatusOK {
		t.Fatalf("right PIN: %d", code)
	}
	op := out["token"].(string)
	code, out = call("POST", "api/operator/test", op, "{}")
	if code != http.StatusOK {
		t.Fatalf("test submission: %d %v", code, out)
	}
	testID := out["response_id"].(string)
	if err := a.Outbox().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if storedIDs(t, srvDir)[hexID(testID)] != 1 {
		t.Error("the test submission did not reach the server")
	}
	time.Sleep(300 * time.Millisecond) // a heartbeat measured the clock
	_, st := call("GET", "api/operator/status", op, "")
	if st["queue_depth"].(float64) != 0 || st["last_send"] == "" || st["server_reachable"] != true ||
		st["version"] != "sipas test" || st["clock_offset_known"] != true {
		t.Errorf("status = %v", st)
	}
	// A write without the app's header is refused (another page cannot make it).
	req, _ := http.NewRequest("POST", a.URL+"api/finish", stringsReader(`{}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("write without X-Kiosk: %v %v", resp.StatusCode, err)
	}
	// A response the server refuses for good is kept as a dead letter and
	// shown with its reason: here the kiosk's credential is revoked.
	adm := srv.admin()
	actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := adm.Admin.RevokeCredential(actx, &sipasv1.RevokeCredentialRequest{Name: "credentials/" + srv.credentialID}); err != nil {
		t.Fatal(err)
	}
	if code, out := call("POST", "api/operator/test", op, "{}"); code != http.StatusOK {
		t.Fatalf("test submission: %d %v", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, st = call("GET", "api/operator/status", op, "")
		dls, _ := st["dead_letters"].([]any)
		if len(dls) == 1 {
			d := dls[0].(map[string]any)
			if d["code"] != "unauthenticated" || d["reason"] == "" {
				t.Errorf("dead letter %v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter: %v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A page reached under another host name (DNS rebinding) is refused.
	req, _ = http.NewRequest("GET", a.URL+"api/form", nil)
	req.Host = "kiosk.attacker.example"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host: %v %v", resp.StatusCode, err)
	}
	// Five wrong PINs lock the screen, even for the right one.
	for range 5 {
		call("POST", "api/operator/login", "", `{"pin":"9999"}`)
	}
	if code, _ := call("POST", "api/operator/login", "", `{"pin":"1357"}`); code != http.StatusUnauthorized {
		t.Errorf("right PIN during lockout: %d", code)
	}
}

// TestKioskFleetList: an agent's heartbeats show in `sipas admin kiosks
// list`, beside a kiosk that never reported.
func TestKioskFleetList(t *testing.T) {
	srvDir := t.TempDir()
	srv := startServer(t, srvDir, "")
	srv.addKiosk("U-QUIET")
	quiet := srv.credentialID
	token := srv.addKiosk("U-FLEET")
	live := srv.credentialID
	a := startAgent(t, srv.Addr, token, kiosk.Config{Heartbeat: 100 * time.Millisecond})
	s := post(t, a.URL, "api/start", map[string]any{})
	post(t, a.URL, "api/finish", map[string]any{"session": s["session"], "answers": map[string]int{"V23.HL.29": 4}, "elapsed_ms": 60000})
	if err := a.Outbox().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	cmd := exec.Command(filepath.Join(binDir, "sipas"), "admin", "kiosks", "list", "--server", srv.Addr, "--format", "json")
	cmd.Env = []string{"SIPAS_TOKEN=" + srv.AdminToken()}
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("admin kiosks list: %v", err)
	}
	var out struct {
		Kiosks []struct {
			CredentialID  string  `json:"credential_id"`
			UnitID        string  `json:"unit_id"`
			LastHeartbeat *string `json:"last_heartbeat"`
			LastResponse  *string `json:"last_response"`
			QueueDepth    int64   `json:"queue_depth"`
			AgentVersion  string  `json:"agent_version"`
			Silent        bool    `json:"silent"`
		} `json:"kiosks"`
	}
	if err := json.Unmarshal(outb, &out); err != nil {
		t.Fatalf("%v: %s", err, outb)
	}
	seen := map[string]bool{}
	for _, k := range out.Kiosks {
		seen[k.CredentialID] = true
		switch k.CredentialID {
		case live:
			if k.UnitID != "U-FLEET" || k.LastHeartbeat == nil || k.LastResponse == nil || k.AgentVersion != "sipas test" || k.QueueDepth != 0 || k.Silent {
				t.Errorf("live kiosk: %+v", k)
			}
		case quiet:
			if k.LastHeartbeat != nil || k.LastResponse != nil || k.UnitID != "U-QUIET" {
				t.Errorf("quiet kiosk: %+v", k)
			}
		}
	}
	if !seen[live] || !seen[quiet] || len(out.Kiosks) != 2 {
		t.Errorf("listed %v, want the two kiosks", seen)
	}
	a.stop()
}

// TestKioskAsksTheServedDefinition: the app asks what the served definition
// puts under the configured formula node; a questionnaire version the
// server loaded from a folder (unknown to this binary) needs no code change.
func TestKioskAsksTheServedDefinition(t *testing.T) {
	extra := t.TempDir()
	if err := os.CopyFS(filepath.Join(extra, "sipas-2024"), os.DirFS(filepath.Join("..", "questionnaires", "testdata", "sipas-2024"))); err != nil {
		t.Fatal(err)
	}
	srvDir := t.TempDir()
	srv := startServer(t, srvDir, "", "--questionnaires", extra)
	token := srv.addKiosk("U-2024")
	for _, c := range []struct {
		part  string
		items int
		first string
	}{{"DV", 23, "V24."}, {"TT", 5, "V24."}} {
		a := startAgent(t, srv.Addr, token, kiosk.Config{QuestionnaireID: "sipas-2024", Part: c.part})
		resp, err := http.Get(a.URL + "api/form")
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Ready bool        `json:"ready"`
			Form  *kiosk.Form `json:"form"`
		}
		err = json.NewDecoder(resp.Body).Decode(&cfg)
		resp.Body.Close()
		if err != nil || !cfg.Ready || cfg.Form.QuestionnaireID != "sipas-2024" || len(cfg.Form.Items) != c.items {
			t.Fatalf("part %s: form %+v (%v)", c.part, cfg.Form, err)
		}
		for _, it := range cfg.Form.Items {
			if !strings.HasPrefix(it.Code, c.first) || len(it.Scale) != 5 || it.LabelVi == "" || it.LabelEn == "" {
				t.Errorf("part %s: item %+v", c.part, it)
			}
		}
		s := post(t, a.URL, "api/start", map[string]any{})
		post(t, a.URL, "api/finish", map[string]any{"session": s["session"], "answers": map[string]int{cfg.Form.Items[0].Code: 4}, "elapsed_ms": 60000})
		// An item of another part is refused: the app never sends one.
		req, _ := http.NewRequest("POST", a.URL+"api/finish", stringsReader(`{"session":"`+newUUID(t)+`","answers":{"V23.HL.29":4}}`))
		req.Header.Set("X-Kiosk", "1")
		if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusBadRequest {
			t.Errorf("an item outside the form: %v %v", r.StatusCode, err)
		}
		if err := a.Outbox().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if storedIDs(t, srvDir)[hexID(s["session"].(string))] != 1 {
			t.Errorf("part %s: the sipas-2024 questionnaire was not stored", c.part)
		}
		a.stop()
	}
}

func newUUID(t *testing.T) string {
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// TestKioskMisuseStateSurvivesRestart: the too-soon and identical-run rules
// compare the first questionnaire after an agent restart with the last one
// before it: the agent keeps what they need (when the previous one was
// finished, a hash of its answers, the run length) in its data directory,
// 0600, without the answers themselves.
func TestKioskMisuseStateSurvivesRestart(t *testing.T) {
	srvDir, dataDir := t.TempDir(), t.TempDir()
	srv := startServer(t, srvDir, "")
	token := srv.addKiosk("U-RESTART")
	base := time.Now()
	clk := &fakeClock{t: base}
	cfg := kiosk.Config{DataDir: dataDir, Now: clk.Now, Heartbeat: time.Hour,
		Misuse: kiosk.MisuseRules{MinPerQuestion: time.Second, MinInterval: 20 * time.Second, IdenticalRun: 3}}
	B := map[string]int{"V23.HL.29": 5, "V23.HL.30": 5}
	C := map[string]int{"V23.HL.29": 3, "V23.HL.31": 2}
	finish := func(a *agent, start, end time.Duration, answers map[string]int) string {
		clk.Set(base.Add(start))
		id := post(t, a.URL, "api/start", map[string]any{})["session"].(string)
		clk.Set(base.Add(end))
		post(t, a.URL, "api/finish", map[string]any{"session": id, "answers": answers, "elapsed_ms": 999999})
		return id
	}
	a := startAgent(t, srv.Addr, token, cfg)
	first := finish(a, 0, 60*time.Second, B)
	second := finish(a, 100*time.Second, 160*time.Second, B) // two identical in a row: not yet a run
	if err := a.Outbox().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.stop()

	fi, err := os.Stat(filepath.Join(dataDir, "misuse-state.json"))
	if err != nil {
		t.Fatalf("no misuse state kept: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("misuse state mode %v, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(filepath.Join(dataDir, "misuse-state.json")); strings.Contains(string(b), "V23.HL") {
		t.Errorf("misuse state holds answers: %s", b)
	}

	a = startAgent(t, srv.Addr, token, cfg)
	third := finish(a, 165*time.Second, 170*time.Second+500*time.Millisecond, B) // 10.5 s after the second, the third B in a row
	fourth := finish(a, 300*time.Second, 360*time.Second, C)
	if err := a.Outbox().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := storedFlags(t, srvDir)
	for _, c := range []struct {
		name, id string
		want     sipas.Flags
	}{
		{"first", first, 0},
		{"second", second, 0},
		{"third (after the restart)", third, sipas.FlagTooSoon | sipas.FlagIdenticalRun},
		{"fourth", fourth, 0},
	} {
		if f, ok := got[hexID(c.id)]; !ok || f != c.want {
			t.Errorf("%s questionnaire: stored %v with flags %q, want %q", c.name, ok, f, c.want)
		}
	}
}
