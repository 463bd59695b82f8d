package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas/client"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
	"github.com/sipas-vn/sipas/store"
)

var env = func(string) string { return "" }

// startDaemon starts sipasd in-process on loopback ports chosen by the OS.
func startDaemon(t *testing.T, dataDir string, extra ...string) (*daemon, string, string) {
	t.Helper()
	args := append([]string{"--data-dir", dataDir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "text"}, extra...)
	cfg, err := parseConfig(args, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	d, err := start(context.Background(), cfg, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop() })
	return d, d.grpcLis.Addr().String(), out.String()
}

func dialAs(t *testing.T, addr, token string) (*grpc.ClientConn, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

func readToken(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestFirstStartWritesAdminTokenOnly(t *testing.T) {
	dir := t.TempDir()
	d, addr, out := startDaemon(t, dir)
	fi, err := os.Stat(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.token mode %v, want 0600", fi.Mode().Perm())
	}
	tok := readToken(t, dir)
	if strings.Contains(out, tok) || !strings.Contains(out, filepath.Join(dir, "admin.token")) {
		t.Fatalf("start-up output must name the token file and never the token: %q", out)
	}
	conn, ctx := dialAs(t, addr, tok)
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	qr, err := sipasv1.NewSurveyServiceClient(conn).GetQuestionnaire(ctx, &sipasv1.GetQuestionnaireRequest{Name: "questionnaires/sipas-2023"})
	if err != nil {
		t.Fatal(err)
	}
	q := qr.GetQuestionnaire()
	counts := map[sipasv1.ItemKind]int{}
	for _, it := range q.Items {
		counts[it.Kind]++
	}
	if counts[sipasv1.ItemKind_ITEM_KIND_ASSESSMENT] != 45 || counts[sipasv1.ItemKind_ITEM_KIND_SATISFACTION] != 51 || counts[sipasv1.ItemKind_ITEM_KIND_EXPECTATION] != 10 {
		t.Fatalf("sipas-2023 counts %v, want 45/51/10", counts)
	}
	// The first admin is issued as the AdminService issues credentials:
	// with its audit event, written with it.
	adm := sipasv1.NewAdminServiceClient(conn)
	creds, err := adm.ListCredentials(ctx, &sipasv1.ListCredentialsRequest{ShowInactive: true})
	if err != nil || len(creds.Credentials) != 1 || creds.Credentials[0].Role != sipasv1.Role_ROLE_ADMIN {
		t.Fatalf("credentials after first start = %v, %v; want one admin", creds, err)
	}
	evs, err := adm.ListAuditEvents(ctx, &sipasv1.ListAuditEventsRequest{})
	if err != nil || len(evs.Events) != 1 {
		t.Fatalf("audit after first start = %v, %v; want one event", evs, err)
	}
	if ev := evs.Events[0]; ev.Actor != "system" || ev.Action != "credential.create" || ev.Target != "credentials/"+creds.Credentials[0].CredentialId ||
		!strings.HasPrefix(ev.Detail, "role=admin") {
		t.Fatalf("first start audit event = %v", ev)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	// A second start keeps the first credential and writes no new token.
	_, _, out2 := startDaemon(t, dir)
	if strings.Contains(out2, "first start") || readToken(t, dir) != tok {
		t.Fatalf("second start re-created the admin token: %q", out2)
	}
}

func TestPlaintextOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--grpc-addr", "127.0.0.1:7443"}, true},
		{[]string{"--grpc-addr", "localhost:7443"}, true},
		{[]string{"--grpc-addr", "[::1]:7443"}, true},
		{[]string{"--grpc-addr", "0.0.0.0:7443"}, false},
		{[]string{"--grpc-addr", ":7443"}, false},
		{[]string{"--grpc-addr", "10.1.2.3:7443"}, false},
		{[]string{"--grpc-addr", "0.0.0.0:7443", "--insecure"}, true},
		{[]string{"--grpc-addr", "0.0.0.0:7443", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, true},
		{[]string{"--tls-cert", "c.pem"}, false},
		{[]string{"--disclosure-threshold", "3"}, false},
	} {
		_, err := parseConfig(tc.args, env, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("parseConfig(%v) error %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
	// Environment fallbacks fill the same fields.
	cfg, err := parseConfig(nil, func(k string) string {
		return map[string]string{"SIPAS_DATA_DIR": "/srv/sipas", "SIPAS_RATE_LIMIT": "5", "SIPAS_BACKUP_EVERY": "6h"}[k]
	}, io.Discard)
	if err != nil || cfg.DataDir != "/srv/sipas" || cfg.RatePerSecond != 5 || cfg.BackupEvery != 6*time.Hour {
		t.Fatalf("env fallbacks: %+v %v", cfg, err)
	}
}

// TestBadConfigurationIsAnError pins that no configuration value is dropped
// silently: a bad environment value is an error naming its variable, and a
// bad log level or threshold is refused before anything starts.
func TestBadConfigurationIsAnError(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string // in the error
	}{
		{env: map[string]string{"SIPAS_BACKUP_EVERY": "1d"}, want: "SIPAS_BACKUP_EVERY"},
		{env: map[string]string{"SIPAS_RATE_LIMIT": "fast"}, want: "SIPAS_RATE_LIMIT"},
		{env: map[string]string{"SIPAS_MIN_SAMPLE": "thirty"}, want: "SIPAS_MIN_SAMPLE"},
		{env: map[string]string{"SIPAS_PPROF": "yes"}, want: "SIPAS_PPROF"},
		{env: map[string]string{"SIPAS_INSECURE": "on"}, want: "SIPAS_INSECURE"},
		// A flag overriding a bad variable does not hide it.
		{env: map[string]string{"SIPAS_BACKUP_EVERY": "1d"}, args: []string{"--backup-every", "24h"}, want: "SIPAS_BACKUP_EVERY"},
		{args: []string{"--log-level", "verbose"}, want: "--log-level"},
		{env: map[string]string{"SIPAS_LOG_LEVEL": "loud"}, want: "--log-level"},
		{args: []string{"--log-format", "xml"}, want: "--log-format"},
		{args: []string{"--min-sample", "-1"}, want: "min_sample"},
		{args: []string{"--backup-every", "-1h"}, want: "--backup-every"},
	} {
		_, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("env %v args %v: error %v, want one naming %s", tc.env, tc.args, err, tc.want)
		}
	}
	// Good values of the same kinds pass.
	good := map[string]string{"SIPAS_BACKUP_EVERY": "24h", "SIPAS_PPROF": "false", "SIPAS_INSECURE": "0", "SIPAS_LOG_LEVEL": "DEBUG"}
	if _, err := parseConfig(nil, func(k string) string { return good[k] }, io.Discard); err != nil {
		t.Errorf("good environment refused: %v", err)
	}
}

func TestMalformedQuestionnaireFailsStartup(t *testing.T) {
	extra := t.TempDir()
	src := filepath.Join("..", "..", "questionnaires", "testdata", "sipas-2024")
	dst := filepath.Join(extra, "sipas-2024")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	// The good definition starts (TestExtraQuestionnaireServed reads it back).
	startDaemon(t, t.TempDir(), "--questionnaires", extra)
	// Corrupt line 12 of items.csv: an unknown scale.
	items := filepath.Join(dst, "items.csv")
	b, err := os.ReadFile(items)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	lines[11] = strings.Replace(lines[11], "FOLLOW4", "SAT6", 1)
	lines[11] = strings.Replace(lines[11], "TICK", "SAT6", 1)
	if err := os.WriteFile(items, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"--data-dir", t.TempDir(), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--questionnaires", extra}, env, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("start-up with a corrupted questionnaire succeeded")
	}
	if !regexp.MustCompile(`sipas-2024/items\.csv:12: .*SAT6`).MatchString(err.Error()) {
		t.Fatalf("error does not name file, line and problem: %v", err)
	}
}

func TestExtraQuestionnaireServed(t *testing.T) {
	extra := t.TempDir()
	if err := os.CopyFS(filepath.Join(extra, "sipas-2024"), os.DirFS(filepath.Join("..", "..", "questionnaires", "testdata", "sipas-2024"))); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, addr, _ := startDaemon(t, dir, "--questionnaires", extra)
	conn, ctx := dialAs(t, addr, readToken(t, dir))
	qr, err := sipasv1.NewSurveyServiceClient(conn).GetQuestionnaire(ctx, &sipasv1.GetQuestionnaireRequest{Name: "questionnaires/sipas-2024"})
	if err != nil {
		t.Fatal(err)
	}
	q := qr.GetQuestionnaire()
	counts := map[sipasv1.ItemKind]int{}
	for _, it := range q.Items {
		counts[it.Kind]++
	}
	if counts[sipasv1.ItemKind_ITEM_KIND_ASSESSMENT] != 42 || counts[sipasv1.ItemKind_ITEM_KIND_SATISFACTION] != 51 || counts[sipasv1.ItemKind_ITEM_KIND_EXPECTATION] != 10 {
		t.Fatalf("sipas-2024 counts %v, want 42/51/10", counts)
	}
}

func TestTLSAndMutualTLS(t *testing.T) {
	certs := t.TempDir()
	cmd := exec.Command("go", "run", "../devcerts", "-out", certs)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("devcerts: %v\n%s", err, out)
	}
	cert, key, ca := filepath.Join(certs, "server.pem"), filepath.Join(certs, "server-key.pem"), filepath.Join(certs, "ca.pem")
	dir := t.TempDir()
	_, addr, out := startDaemon(t, dir, "--tls-cert", cert, "--tls-key", key, "--client-ca", ca)
	if !strings.Contains(out, "mutual-tls") {
		t.Fatalf("start-up line does not say mutual-tls: %q", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// With the kiosk client certificate: works.
	c, err := client.Dial(client.Options{Server: addr, TokenFile: filepath.Join(dir, "admin.token"), CAFile: ca,
		CertFile: filepath.Join(certs, "kiosk.pem"), KeyFile: filepath.Join(certs, "kiosk-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Survey.ListQuestionnaires(ctx, &sipasv1.ListQuestionnairesRequest{}); err != nil {
		t.Fatalf("mutual TLS call: %v", err)
	}
	// Without a client certificate: refused at the handshake.
	c2, err := client.Dial(client.Options{Server: addr, TokenFile: filepath.Join(dir, "admin.token"), CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Survey.ListQuestionnaires(ctx, &sipasv1.ListQuestionnairesRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("call without client certificate: %v, want Unavailable (handshake refused)", err)
	}
	// Plaintext to a TLS listener fails too.
	c3, err := client.Dial(client.Options{Server: addr, TokenFile: filepath.Join(dir, "admin.token")})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if _, err := c3.Survey.ListQuestionnaires(ctx, &sipasv1.ListQuestionnairesRequest{}); err == nil {
		t.Fatal("plaintext call to a TLS listener succeeded")
	}
}

// TestGracefulShutdownUnderLoad stops the daemon while submissions are in
// flight and checks that every acknowledged response is stored.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	dir := t.TempDir()
	d, addr, _ := startDaemon(t, dir, "--rate-limit", "0")
	conn, ctx := dialAs(t, addr, readToken(t, dir))
	adm := sipasv1.NewAdminServiceClient(conn)
	cr, err := adm.CreateCredential(ctx, &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true}})
	if err != nil {
		t.Fatal(err)
	}
	_, sctx := dialAs(t, addr, cr.Token)
	survey := sipasv1.NewSurveyServiceClient(conn)
	cat, _, _ := questionnaires.Load("")
	var acked sync.Map
	var nAcked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := uuid.Must(uuid.NewV7()).String()
				answers := map[string]int32{}
				for _, it := range cat.Get("sipas-2023").Items[45:60] {
					answers[it.Code] = 4
				}
				_, err := survey.SubmitResponse(sctx, &sipasv1.SubmitResponseRequest{Response: &sipasv1.Response{
					ResponseId: id, QuestionnaireId: "sipas-2023", ProvinceCode: "48", CollectedAt: timestamppb.Now(),
					Channel: sipasv1.Channel_CHANNEL_FIELD, Answers: answers}})
				if err == nil {
					acked.Store(id, true)
					nAcked.Add(1)
				} else if status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
					return // the server is gone
				}
			}
		}()
	}
	for nAcked.Load() < 200 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	st, err := store.Open(context.Background(), filepath.Join(dir, dbFile), cat, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	missing := 0
	acked.Range(func(k, _ any) bool {
		if _, _, _, err := st.GetResponse(context.Background(), k.(string)); err != nil {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged responses missing after graceful shutdown", missing, nAcked.Load())
	}
	if err := st.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged responses, all stored", nAcked.Load())
}

// TestRateLimitZeroDisables: --rate-limit 0 means no limit (not the default).
func TestRateLimitZeroDisables(t *testing.T) {
	for _, tc := range []struct {
		rate      string
		throttled bool
	}{{"0", false}, {"1", true}} {
		dir := t.TempDir()
		_, addr, _ := startDaemon(t, dir, "--rate-limit", tc.rate, "--rate-burst", "2")
		conn, ctx := dialAs(t, addr, readToken(t, dir))
		survey := sipasv1.NewSurveyServiceClient(conn)
		throttled := false
		for range 20 {
			if _, err := survey.ListQuestionnaires(ctx, &sipasv1.ListQuestionnairesRequest{}); status.Code(err) == codes.ResourceExhausted {
				throttled = true
			}
		}
		if throttled != tc.throttled {
			t.Errorf("--rate-limit %s: throttled=%v, want %v", tc.rate, throttled, tc.throttled)
		}
	}
}

// TestHealthOnlyListener: --health-grpc-addr serves the health status in
// plaintext (for the kubelet's gRPC probes) and nothing else.
func TestHealthOnlyListener(t *testing.T) {
	dir := t.TempDir()
	d, _, out := startDaemon(t, dir, "--health-grpc-addr", "127.0.0.1:0")
	if !strings.Contains(out, "serving gRPC health (plaintext, health only) on "+d.healthLis.Addr().String()) {
		t.Fatalf("start-up output does not name the health listener: %q", out)
	}
	conn, ctx := dialAs(t, d.healthLis.Addr().String(), readToken(t, dir))
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health on the health-only listener: %v %v", h, err)
	}
	_, err = sipasv1.NewSurveyServiceClient(conn).ListQuestionnaires(ctx, &sipasv1.ListQuestionnairesRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("the health-only listener served the survey service: %v", err)
	}
}

func TestVersionFlag(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--version"}, env, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "sipasd ") {
		t.Errorf("sipasd --version: %v, output %q", err, out.String())
	}
}
