package web_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
	"github.com/sipas-vn/sipas/server"
	"github.com/sipas-vn/sipas/store"
	"github.com/sipas-vn/sipas/web"
)

// env is a real store, a real gRPC server on loopback (the API the pages
// are compared with) and the dashboard on an httptest server, over a small
// data set of 2026:
//   - province 01: unit hn-a (30 responses, shown), unit hn-tiny (2
//     responses: suppressed) and unit hn-b (20 responses: suppressed by the
//     complementary rule, since hn-tiny alone would be recoverable);
//   - province 48: unit dn-a (40 responses, with the expectation items);
//   - province 79: 12 responses without a unit (insufficient: minimum 20);
//   - every other province: no data.
type env struct {
	t      *testing.T
	url    string
	rt     http.RoundTripper
	index  sipasv1.IndexServiceClient
	admin  sipasv1.AdminServiceClient
	survey sipasv1.SurveyServiceClient
	clock  *envClock // the server's clock
	tokens map[string]string
	ids    map[string]string // credential ids by name
}

const year = 2026

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvTLS(t, false)
}

// newEnvTLS is newEnv with the dashboard served over TLS or not.
func newEnvTLS(t *testing.T, useTLS bool) *env {
	t.Helper()
	cat, reg, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "sipas.db"), cat, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.DiscardHandler)
	clock := &envClock{}
	srv, err := server.New(server.Config{Catalog: cat, Registry: reg, Store: st, Logger: log, Now: clock.Now,
		Engine: &sipas.Engine{Catalog: cat, Registry: reg, Source: st, Thresholds: sipas.Thresholds{MinSample: 20, Disclosure: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.GRPC().Serve(lis)
	t.Cleanup(func() { srv.Shutdown(time.Second) })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	dash, err := web.New(web.Config{Reader: srv.Reader(), Catalog: cat, Registry: reg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(dash)
	if useTLS {
		hs.StartTLS()
	} else {
		hs.Start()
	}
	t.Cleanup(hs.Close)
	e := &env{t: t, url: hs.URL, rt: hs.Client().Transport, index: sipasv1.NewIndexServiceClient(conn),
		admin: sipasv1.NewAdminServiceClient(conn), clock: clock, tokens: map[string]string{}, ids: map[string]string{}}

	for _, u := range []store.Unit{
		{ID: "hn-a", DisplayName: "Một cửa Hoàn Kiếm", ProvinceCode: "01"},
		{ID: "hn-b", DisplayName: "Một cửa Ba Đình", ProvinceCode: "01"},
		{ID: "hn-tiny", DisplayName: "Một cửa Nhỏ Xíu", ProvinceCode: "01"},
		{ID: "dn-a", DisplayName: "Một cửa Hải Châu", ProvinceCode: "48"},
	} {
		if err := st.CreateUnit(ctx, u, store.AuditEvent{Actor: "system", Action: "unit.create"}); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]sipas.Credential{
		"admin":      {Role: sipas.RoleAdmin},
		"analyst48":  {Role: sipas.RoleAnalyst, Provinces: []string{"48"}},
		"surveyor":   {Role: sipas.RoleSurveyor, AllProvinces: true},
		"kiosk":      {Role: sipas.RoleKiosk, UnitID: "dn-a"},
		"kioskHN":    {Role: sipas.RoleKiosk, UnitID: "hn-a"},
		"kioskNew":   {Role: sipas.RoleKiosk, UnitID: "hn-b"},
		"analystAll": {Role: sipas.RoleAnalyst, AllProvinces: true},
	} {
		tok, hash := server.NewToken()
		cred, err := st.CreateCredential(ctx, store.Credential{Credential: c, TokenHash: hash}, store.AuditEvent{Actor: "system", Action: "credential.create"})
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[name], e.ids[name] = tok, cred.ID
	}
	survey := sipasv1.NewSurveyServiceClient(conn)
	e.survey = survey
	q := cat.Get("sipas-2023")
	rng := rand.New(rand.NewPCG(1, 2))
	submit := func(province, unit string, n int, bias float64) {
		for i := range n {
			answers := map[string]int32{}
			for _, it := range q.Items {
				if it.Kind == sipas.KindExpectation && province == "48" {
					answers[it.Code] = int32(1 + rng.IntN(5)) // Đà Nẵng's survey asks the expectations too
					continue
				}
				if it.Kind != sipas.KindSatisfaction || it.Node == nil {
					continue
				}
				a := int32(1 + rng.IntN(5))
				if rng.Float64() < bias {
					a = 5
				}
				answers[it.Code] = a
			}
			at := time.Date(year, time.Month(1+i%10), 10, 10, 0, 0, 0, sipas.VietnamZone)
			_, err := survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: &sipasv1.Response{
				ResponseId: uuid.Must(uuid.NewV7()).String(), QuestionnaireId: "sipas-2023", ProvinceCode: province, UnitId: unit,
				CollectedAt: timestamppb.New(at), Channel: sipasv1.Channel_CHANNEL_FIELD, Answers: answers}})
			if err != nil {
				t.Fatalf("submit %s/%s: %v", province, unit, err)
			}
		}
	}
	submit("01", "hn-a", 30, 0.5)
	submit("01", "hn-b", 20, 0.2)
	submit("01", "hn-tiny", 2, 0)
	submit("48", "dn-a", 40, 0.7)
	submit("79", "", 12, 0.3)
	return e
}

// envClock is the server's clock: the real one moved by an offset.
type envClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *envClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.offset) }

func (c *envClock) Set(offset time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.offset = offset }

// as is a gRPC context with a named credential.
func (e *env) as(who string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.tokens[who])
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// client signs in through the form with a named credential (or a raw
// token) and returns an HTTP client holding the session, and the response
// of the sign-in POST.
func (e *env) client(who string) (*http.Client, *http.Response) {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: e.rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	body := e.get(c, "/signin")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("no CSRF field in the sign-in form:\n%s", body)
	}
	tok, ok := e.tokens[who]
	if !ok {
		tok = who
	}
	resp, err := c.PostForm(e.url+"/signin", url.Values{"csrf": {m[1]}, "token": {tok}})
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return c, resp
}

func (e *env) get(c *http.Client, path string) string {
	e.t.Helper()
	resp, err := c.Get(e.url + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// status fetches path and returns the status code and body.
func (e *env) status(c *http.Client, path string) (int, string) {
	e.t.Helper()
	resp, err := c.Get(e.url + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func period() *sipasv1.Period { return &sipasv1.Period{Year: year} }

const query = "?q=sipas-2023&period=2026&b=current&ch=all"

func contains(s string, subs ...string) string {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return x
		}
	}
	return ""
}

// testWriter sends the dashboard's log to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
