package kiosk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/internal/browsertest"
	"github.com/sipas-vn/sipas/internal/sipasdtest"
	"github.com/sipas-vn/sipas/kiosk"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

var binDir string

func TestMain(m *testing.M) {
	dir, cleanup, err := sipasdtest.Build("sipasd", "sipas")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// server is a real sipasd with one kiosk credential.
type server struct {
	*sipasdtest.Daemon
	t            *testing.T
	token        string // the kiosk's
	credentialID string
}

// startServer starts sipasd in dir on addr ("" for a fresh port).
func startServer(t *testing.T, dir, addr string, extraArgs ...string) *server {
	t.Helper()
	if addr == "" {
		addr = sipasdtest.FreeAddr(t)
	}
	d := sipasdtest.Start(t, filepath.Join(binDir, "sipasd"), dir, addr, extraArgs...)
	return &server{Daemon: d, t: t}
}

func (s *server) admin() *client.Client {
	cl, err := client.Dial(client.Options{Server: s.Addr, Token: s.AdminToken()})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { cl.Close() })
	return cl
}

func (s *server) addKiosk(unit string) string {
	s.t.Helper()
	adm := s.admin()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := adm.Admin.CreateUnit(ctx, &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{UnitId: unit, DisplayName: "Bộ phận Một cửa " + unit, ProvinceCode: "48"}}); err != nil {
		s.t.Fatal(err)
	}
	resp, err := adm.Admin.CreateCredential(ctx, &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{
		Role: sipasv1.Role_ROLE_KIOSK, UnitId: unit, Description: "kiosk at " + unit}})
	if err != nil {
		s.t.Fatal(err)
	}
	s.token, s.credentialID = resp.Token, resp.Credential.CredentialId
	return resp.Token
}

// agent is an in-process kiosk agent.
type agent struct {
	*kiosk.Agent
	URL  string
	stop func()
}

// startAgent runs an agent against srvAddr with the kiosk token.
func startAgent(t *testing.T, srvAddr, token string, cfg kiosk.Config) *agent {
	t.Helper()
	cl, err := client.Dial(client.Options{Server: srvAddr, Token: token, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Client = cl
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Version == "" {
		cfg.Version = "sipas test"
	}
	if cfg.Outbox.Backoff.Initial == 0 {
		cfg.Outbox.Backoff = client.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}
		cfg.Outbox.Poll = 200 * time.Millisecond
	}
	cfg.Logf = t.Logf
	ctx, cancel := context.WithCancel(context.Background())
	a, err := kiosk.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, l) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		cl.Close()
	}
	t.Cleanup(stop)
	return &agent{Agent: a, URL: "http://" + l.Addr().String() + "/", stop: stop}
}

// post calls the agent's app API as the app does.
func post(t *testing.T, url, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(b))
	req.Header.Set("X-Kiosk", "1")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s %v", path, resp.Status, out)
	}
	return out
}

// browser opens a headless Chromium with touch emulation at w×h.
func browser(t *testing.T, w, h int) context.Context {
	t.Helper()
	ctx := browsertest.New(t, w, h)
	orient := chromedp.EmulateLandscape
	if h > w {
		orient = chromedp.EmulatePortrait
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), int64(h), chromedp.EmulateTouch, orient)); err != nil {
		t.Fatal(err)
	}
	_ = emulation.SetTouchEmulationEnabled
	return ctx
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// screen waits until the app shows the named screen.
func screen(name string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(`section[data-screen="` + name + `"].active`))
}

func tap(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Tap(chromedp.CSS(sel))
}

// answer taps the face with code on the current question and waits for
// the next screen (question i+1 of n, or the review).
func answer(code int) chromedp.Action[chromedp.Void] {
	return tap(fmt.Sprintf(`#choices .choice[data-code="%d"]`, code))
}

// waitQuestion waits until question i (1-based) shows.
func waitQuestion(t *testing.T, ctx context.Context, i int) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`S.screen === "question" && S.index === %d`, i-1), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("question %d did not show: %v", i, err)
	}
}

// waitCount waits until the server stored at least n responses.
func waitCount(t *testing.T, dataDir string, n int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rows, _ := sipasdtest.Counts(t, dataDir)
		if rows >= n || time.Now().After(deadline) {
			return rows
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
