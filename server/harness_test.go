package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
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
	"github.com/sipas-vn/sipas/store"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv is a real server on loopback over a real SQLite file.
type testEnv struct {
	t        *testing.T
	cat      *sipas.Catalog
	reg      *sipas.Registry
	store    *store.Store
	srv      *Server
	conn     *grpc.ClientConn
	survey   sipasv1.SurveyServiceClient
	index    sipasv1.IndexServiceClient
	admin    sipasv1.AdminServiceClient
	logs     *syncBuffer
	tokens   map[string]string // by principal name
	credIDs  map[string]string
	now      time.Time
	adminTok string
}

// newTestEnv starts a server; tune may adjust the config before it is built.
func newTestEnv(t *testing.T, tune func(*Config)) *testEnv {
	t.Helper()
	return newTestEnvStore(t, store.Options{}, tune)
}

// newTestEnvStore is newTestEnv with store options.
func newTestEnvStore(t *testing.T, opts store.Options, tune func(*Config)) *testEnv {
	t.Helper()
	cat, reg, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "sipas.db"), cat, opts)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := Config{
		Catalog: cat, Registry: reg, Store: st,
		Engine: &sipas.Engine{Catalog: cat, Registry: reg, Source: st, Thresholds: sipas.Thresholds{MinSample: 3, Disclosure: 5}},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// Every test client calls from 127.0.0.1: the per-peer limit of
		// refusals is off unless a test turns it on.
		RefusalsPerPeer: -1,
	}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.GRPC().Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, cat: cat, reg: reg, store: st, srv: srv, conn: conn, logs: logs,
		survey: sipasv1.NewSurveyServiceClient(conn), index: sipasv1.NewIndexServiceClient(conn),
		admin:  sipasv1.NewAdminServiceClient(conn),
		tokens: map[string]string{}, credIDs: map[string]string{}, now: time.Now()}
	t.Cleanup(func() {
		conn.Close()
		srv.Shutdown(5 * time.Second)
		st.Close()
	})
	// The first admin, as sipasd creates it at first start.
	tok, hash := NewToken()
	c, err := st.CreateCredential(ctx, store.Credential{TokenHash: hash, Credential: sipas.Credential{Role: sipas.RoleAdmin}}, store.AuditEvent{Actor: "test", Action: "credential.create"})
	if err != nil {
		t.Fatal(err)
	}
	e.adminTok, e.tokens["admin"], e.credIDs["admin"] = tok, tok, c.ID
	return e
}

// as returns a context carrying the token of a named principal (or a raw token).
func (e *testEnv) as(who string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.t.Cleanup(cancel)
	tok, ok := e.tokens[who]
	if !ok {
		tok = who
	}
	if tok == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// mustUnit creates a unit.
func (e *testEnv) mustUnit(id, province string) {
	e.t.Helper()
	if _, err := e.admin.CreateUnit(e.as("admin"), &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{
		UnitId: id, DisplayName: "Một cửa " + id, ProvinceCode: province}}); err != nil {
		e.t.Fatalf("create unit %s: %v", id, err)
	}
}

// mustCredential issues a credential and remembers its token under name.
func (e *testEnv) mustCredential(name string, c *sipasv1.Credential) {
	e.t.Helper()
	resp, err := e.admin.CreateCredential(e.as("admin"), &sipasv1.CreateCredentialRequest{Credential: c})
	if err != nil {
		e.t.Fatalf("create credential %s: %v", name, err)
	}
	e.tokens[name] = resp.Token
	e.credIDs[name] = resp.Credential.CredentialId
}

// serviceResponse returns a valid sipas-2023 kiosk-style response with
// answers to the service block (DV) items.
func serviceResponse(t *testing.T, cat *sipas.Catalog, province string, at time.Time) *sipasv1.Response {
	t.Helper()
	q := cat.Get("sipas-2023")
	answers := map[string]int32{}
	i := 0
	for _, it := range q.Items {
		if it.Kind != sipas.KindSatisfaction {
			continue
		}
		for n := it.Node; n != nil; n = n.Parent {
			if n.Code == "DV" {
				answers[it.Code] = int32(1 + (i % 5))
				i++
				break
			}
		}
	}
	return &sipasv1.Response{
		ResponseId: uuid.Must(uuid.NewV7()).String(), QuestionnaireId: "sipas-2023", ProvinceCode: province,
		CollectedAt: timestamppb.New(at), Channel: sipasv1.Channel_CHANNEL_FIELD, Answers: answers,
	}
}

func (e *testEnv) countResponses() int64 {
	e.t.Helper()
	n, err := e.store.CountResponses(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}
