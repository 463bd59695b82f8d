// Package kiosk is the kiosk agent (`sipas kiosk serve`): it runs on the
// kiosk machine, holds the kiosk credential and the durable outbox, serves
// the touch-screen questionnaire app on loopback, drains the outbox to
// sipasd whether or not a browser is open, and reports a heartbeat every
// minute. Nothing the citizen answers depends on browser storage: a
// questionnaire is in the fsync'd outbox before the thank-you screen shows.
package kiosk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/internal/atomicfile"
	"github.com/sipas-vn/sipas/internal/loopback"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Config configures an Agent.
type Config struct {
	// Client talks to sipasd with the kiosk's credential.
	Client *client.Client
	// DataDir holds the outbox (outbox.db) and the copy of the
	// questionnaire; it is created 0700.
	DataDir string
	// QuestionnaireID is the questionnaire asked (default sipas-2023).
	QuestionnaireID string
	// Part is the formula node whose items the kiosk asks (default DV, the
	// satisfaction with public administrative services).
	Part string
	// IdleTimeout resets an abandoned questionnaire to the attract screen
	// (default 60 s).
	IdleTimeout time.Duration
	// SendPartial sends the answers of a questionnaire abandoned by idle
	// reset; by default they are discarded.
	SendPartial bool
	// ThankYou is how long the thank-you screen shows (default 8 s).
	ThankYou time.Duration
	// Misuse are the data-quality rules.
	Misuse MisuseRules
	// OperatorPIN opens the operator screen; empty disables it.
	OperatorPIN string
	// Version is the agent's version, shown to operators and reported.
	Version string
	// Heartbeat is the interval of heartbeats (default 1 min).
	Heartbeat time.Duration
	// Outbox tunes the outbox's sender.
	Outbox client.OutboxOptions
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// Logf receives operational log lines (never answers or tokens).
	Logf func(format string, args ...any)
}

// Agent is a running kiosk agent.
type Agent struct {
	cfg    Config
	outbox *client.Outbox
	misuse misuseState

	mu          sync.Mutex
	form        *Form
	formErr     error
	sessions    map[string]time.Time // started questionnaires, by response id
	finished    map[string]bool      // response ids already queued or discarded
	reachable   bool
	lastContact time.Time
	clockOffset time.Duration
	offsetKnown bool

	op operatorAuth
}

// New opens the outbox in cfg.DataDir and reads the questionnaire (from the
// server, or the copy kept from an earlier run).
func New(ctx context.Context, cfg Config) (*Agent, error) {
	if cfg.Client == nil {
		return nil, errors.New("kiosk: no client")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("kiosk: no data directory")
	}
	if cfg.QuestionnaireID == "" {
		cfg.QuestionnaireID = "sipas-2023"
	}
	if cfg.Part == "" {
		cfg.Part = "DV"
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.ThankYou <= 0 {
		cfg.ThankYou = 8 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	cfg.Misuse = cfg.Misuse.withDefaults()
	if cfg.Outbox.Logf == nil {
		cfg.Outbox.Logf = cfg.Logf
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	ob, err := client.OpenOutbox(filepath.Join(cfg.DataDir, "outbox.db"), cfg.Client, cfg.Outbox)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, outbox: ob, sessions: map[string]time.Time{}, finished: map[string]bool{}}
	a.misuse.rules = cfg.Misuse
	a.misuse.load(filepath.Join(cfg.DataDir, misuseStateFile), cfg.Logf)
	a.op.pin = cfg.OperatorPIN
	// The copy kept from an earlier run lets the app start at once, even
	// offline; the server's definition replaces it as soon as it answers.
	if q, err := readQuestionnaireCopy(a.cachePath()); err == nil {
		if f, err := formFromQuestionnaire(q, cfg.Part); err == nil {
			a.form = f
		}
	}
	if a.form == nil {
		a.refreshForm(ctx)
	}
	return a, nil
}

func (a *Agent) cachePath() string {
	return filepath.Join(a.cfg.DataDir, "questionnaire-"+a.cfg.QuestionnaireID+".pb")
}

// Outbox returns the agent's outbox.
func (a *Agent) Outbox() *client.Outbox { return a.outbox }

func (a *Agent) refreshForm(ctx context.Context) {
	q, err := fetchQuestionnaire(ctx, a.cfg.Client, a.cfg.QuestionnaireID, a.cachePath())
	var f *Form
	if q != nil {
		var ferr error
		if f, ferr = formFromQuestionnaire(q, a.cfg.Part); ferr != nil {
			err = ferr
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if f != nil {
		a.form = f
	}
	if err != nil {
		a.cfg.Logf("kiosk: questionnaire: %v", err)
	}
	a.formErr = err
}

// Serve serves the app on l (a loopback listener), drains the outbox and
// sends heartbeats until ctx ends; then it closes the outbox.
func (a *Agent) Serve(ctx context.Context, l net.Listener) error {
	if !loopback.Addr(l.Addr().String()) {
		return fmt.Errorf("kiosk: the app is served on loopback only, not %s", l.Addr())
	}
	if err := a.outbox.Start(); err != nil {
		return err
	}
	defer a.outbox.Close()
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		a.heartbeats(ctx)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-hbDone
	return nil
}

// formRefresh is how often the agent re-reads the questionnaire definition.
const formRefresh = 10 * time.Minute

// heartbeats reports the agent's health every cfg.Heartbeat, starting now,
// and re-reads the questionnaire after a successful heartbeat when it has
// none from the server yet or formRefresh has passed.
func (a *Agent) heartbeats(ctx context.Context) {
	t := time.NewTicker(a.cfg.Heartbeat)
	defer t.Stop()
	var fetched time.Time
	for {
		a.heartbeat(ctx)
		a.mu.Lock()
		reachable, noForm := a.reachable, a.form == nil
		a.mu.Unlock()
		if noForm || (reachable && time.Since(fetched) > formRefresh) {
			a.refreshForm(ctx)
			a.mu.Lock()
			if a.formErr == nil {
				fetched = time.Now()
			}
			a.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) heartbeat(ctx context.Context) {
	depth, oldest, dead := a.outbox.Stats()
	a.mu.Lock()
	offset := a.clockOffset
	a.mu.Unlock()
	req := &sipasv1.ReportKioskHeartbeatRequest{
		QueueDepth: int64(depth), OldestPendingAge: durationpb.New(oldest), DeadLetters: int64(dead),
		AgentVersion: a.cfg.Version, ClockOffset: durationpb.New(offset),
	}
	if t := a.outbox.LastSent(); !t.IsZero() {
		req.LastSendTime = timestamppb.New(t)
	}
	sent := a.cfg.Now()
	req.SendTime = timestamppb.New(sent)
	cctx, cancel := a.cfg.Client.WithTimeout(ctx)
	resp, err := a.cfg.Client.Survey.ReportKioskHeartbeat(cctx, req)
	cancel()
	got := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.reachable = false
		if ctx.Err() == nil {
			a.cfg.Logf("kiosk: heartbeat: %v", client.FromStatus(err))
		}
		return
	}
	a.reachable, a.lastContact = true, got
	mid := sent.Add(got.Sub(sent) / 2)
	a.clockOffset, a.offsetKnown = mid.Sub(resp.GetServerTime().AsTime()), true
}

// Handler returns the app's HTTP handler.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", assets())
	mux.HandleFunc("GET /api/form", a.handleForm)
	mux.HandleFunc("POST /api/start", a.handleStart)
	mux.HandleFunc("POST /api/finish", a.handleFinish)
	mux.HandleFunc("POST /api/abandon", a.handleAbandon)
	mux.HandleFunc("POST /api/operator/login", a.handleOperatorLogin)
	mux.HandleFunc("GET /api/operator/status", a.operatorOnly(a.handleOperatorStatus))
	mux.HandleFunc("POST /api/operator/test", a.operatorOnly(a.handleOperatorTest))
	return guard(mux)
}

// guard refuses requests that did not come from the app on this machine:
// a Host other than loopback (DNS rebinding) and writes without the app's
// header (a page elsewhere cannot send it without a CORS preflight, which
// is never granted). Every answer forbids other hosts (CSP).
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet && r.Header.Get("X-Kiosk") != "1" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine: localhost
// or a loopback address, with or without a port.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// newResponseID returns a fresh UUIDv7.
func newResponseID() string {
	id, err := uuid.NewV7()
	if err != nil {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	return id.String()
}

// queue stores a questionnaire in the outbox (fsync'd before it returns).
// A session already queued or discarded is not queued again: the app
// retries until it gets an answer, so a retry must be harmless.
func (a *Agent) queue(ctx context.Context, id string, answers map[string]int, took time.Duration, partial bool) error {
	a.mu.Lock()
	if a.finished[id] {
		a.mu.Unlock()
		return nil
	}
	started, known := a.sessions[id]
	offset, offsetKnown := a.clockOffset, a.offsetKnown
	a.mu.Unlock()
	now := a.cfg.Now()
	if known {
		took = now.Sub(started)
	}
	var flags sipas.Flags
	if !partial {
		flags = a.misuse.judge(id, now, took, answers)
	}
	if offsetKnown && (offset > 5*time.Minute || offset < -5*time.Minute) {
		flags |= sipas.FlagClockSkew
	}
	r := &sipas.Response{ID: id, QuestionnaireID: a.formID(), CollectedAt: now, Channel: sipas.ChannelKiosk,
		Answers: answers, Flags: flags}
	if err := a.outbox.Submit(ctx, r); err != nil {
		return err
	}
	a.markFinished(id)
	return nil
}

func (a *Agent) formID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.form != nil {
		return a.form.QuestionnaireID
	}
	return a.cfg.QuestionnaireID
}

func (a *Agent) markFinished(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, id)
	if len(a.finished) > 10000 {
		clear(a.finished)
	}
	a.finished[id] = true
}

// TokenFileName is the agent's copy of its credential in the data directory.
const TokenFileName = "kiosk.token"

// KeepToken returns the token the agent uses: token when given (kept as a
// 0600 copy in dataDir, so that the service restarts without it), else the
// copy kept earlier.
func KeepToken(dataDir, token string) (string, error) {
	path := filepath.Join(dataDir, TokenFileName)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	if token != "" {
		if old, err := os.ReadFile(path); err == nil && string(old) == token+"\n" {
			return token, nil
		}
		if err := atomicfile.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("keeping the kiosk token: %w", err)
		}
		return token, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no kiosk token: give --token-file (or SIPAS_TOKEN) once; the agent keeps a copy in %s", path)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
