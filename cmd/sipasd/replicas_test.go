package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas/internal/pgtest"
	"github.com/sipas-vn/sipas/pgstore"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
)

// replica is one sipasd over the shared PostgreSQL database of a test.
type replica struct {
	d    *daemon
	addr string
	dir  string
}

// startReplica starts sipasd in-process on loopback with --database dsn.
func startReplica(t *testing.T, dsn string, extra ...string) replica {
	t.Helper()
	dir := t.TempDir()
	d, addr, _ := startDaemon(t, dir, append([]string{"--database", dsn, "--rate-limit", "0"}, extra...)...)
	return replica{d: d, addr: addr, dir: dir}
}

// twoReplicas starts two replicas over a fresh schema and returns them
// with the admin token the first one wrote at first start.
func twoReplicas(t *testing.T) (dsn string, a, b replica, adminToken string) {
	t.Helper()
	dsn = pgtest.DSN(t)
	a = startReplica(t, dsn)
	b = startReplica(t, dsn)
	if _, err := os.Stat(filepath.Join(b.dir, "admin.token")); err == nil {
		t.Fatal("the second replica created a second first admin")
	}
	return dsn, a, b, readToken(t, a.dir)
}

func surveyorToken(t *testing.T, r replica, admin string) string {
	t.Helper()
	conn, ctx := dialAs(t, r.addr, admin)
	cr, err := sipasv1.NewAdminServiceClient(conn).CreateCredential(ctx, &sipasv1.CreateCredentialRequest{
		Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true}})
	if err != nil {
		t.Fatal(err)
	}
	return cr.Token
}

// response returns a field response for province 48 collected now, its
// answers varied by v.
func response(id string, v int) *sipasv1.Response {
	cat, _, _ := questionnaires.Load("")
	answers := map[string]int32{}
	for i, it := range cat.Get("sipas-2023").Items[45:60] {
		answers[it.Code] = int32(1 + (v+i)%5)
	}
	return &sipasv1.Response{ResponseId: id, QuestionnaireId: "sipas-2023", ProvinceCode: "48", CollectedAt: timestamppb.Now(),
		Channel: sipasv1.Channel_CHANNEL_FIELD, Answers: answers}
}

func openPG(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	cat, _, _ := questionnaires.Load("")
	st, err := pgstore.Open(context.Background(), dsn, cat, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestReplicasExactlyOnce sends each response id to two replicas at the
// same instant: one stores it, the other answers duplicate; a different
// response under a stored id is a conflict on either replica.
func TestReplicasExactlyOnce(t *testing.T) {
	dsn, a, b, admin := twoReplicas(t)
	tok := surveyorToken(t, a, admin)
	connA, ctx := dialAs(t, a.addr, tok)
	connB, _ := dialAs(t, b.addr, tok)
	sa, sb := sipasv1.NewSurveyServiceClient(connA), sipasv1.NewSurveyServiceClient(connB)
	const n = 60
	ids := make([]string, n)
	for i := range n {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		var wg sync.WaitGroup
		var res [2]*sipasv1.SubmitResponseResponse
		var errs [2]error
		start := make(chan struct{})
		req := &sipasv1.SubmitResponseRequest{Response: response(ids[i], i)}
		for j, c := range []sipasv1.SurveyServiceClient{sa, sb} {
			wg.Go(func() {
				<-start
				res[j], errs[j] = c.SubmitResponse(ctx, req)
			})
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("id %d: %v / %v", i, errs[0], errs[1])
		}
		if res[0].Duplicate == res[1].Duplicate {
			t.Fatalf("id %d: duplicate flags %v and %v, want exactly one stored and one duplicate", i, res[0].Duplicate, res[1].Duplicate)
		}
	}
	for i, c := range []sipasv1.SurveyServiceClient{sb, sa} {
		_, err := c.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: response(ids[i], i+1)})
		if status.Code(err) != codes.AlreadyExists {
			t.Fatalf("a different response under a stored id on replica %d: %v, want ALREADY_EXISTS", i, err)
		}
	}
	st := openPG(t, dsn)
	if got, _ := st.CountResponses(context.Background()); got != n {
		t.Fatalf("rows = %d, want %d", got, n)
	}
	if err := st.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func provinceIndex(ctx context.Context, c sipasv1.IndexServiceClient) (*sipasv1.GetIndexResponse, error) {
	return c.GetIndex(ctx, &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023",
		Scope:  &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: "48"}},
		Period: &sipasv1.Period{Year: int32(time.Now().In(time.FixedZone("ICT", 7*3600)).Year())}})
}

// TestReplicasFreshnessAndAgreement: responses acknowledged by replica A
// are in replica B's figures within pgstore.FreshnessBound, and both
// replicas serve the same figures, equal to a recount from the stored
// responses.
func TestReplicasFreshnessAndAgreement(t *testing.T) {
	dsn, a, b, admin := twoReplicas(t)
	tok := surveyorToken(t, a, admin)
	connA, sctx := dialAs(t, a.addr, tok)
	connB, _ := dialAs(t, b.addr, tok)
	_, actx := dialAs(t, a.addr, admin)
	ia, ib := sipasv1.NewIndexServiceClient(connA), sipasv1.NewIndexServiceClient(connB)
	var worst time.Duration
	total := 0
	for round := range 5 {
		// 40 responses split over both replicas, the last one through A.
		for i := range 40 {
			c := connA
			if i%2 == 0 && i != 39 {
				c = connB
			}
			if _, err := sipasv1.NewSurveyServiceClient(c).SubmitResponse(sctx, &sipasv1.SubmitResponseRequest{
				Response: response(uuid.Must(uuid.NewV7()).String(), round*40+i)}); err != nil {
				t.Fatal(err)
			}
		}
		acked := time.Now()
		total += 40
		for {
			r, err := provinceIndex(actx, ib)
			if err != nil {
				t.Fatal(err)
			}
			if r.GetReport().GetRespondents() == int64(total) {
				break
			}
			if time.Since(acked) > 2*pgstore.FreshnessBound {
				t.Fatalf("round %d: replica B serves %d respondents %s after A acknowledged the %dth", round, r.GetReport().GetRespondents(), time.Since(acked), total)
			}
			time.Sleep(10 * time.Millisecond)
		}
		worst = max(worst, time.Since(acked))
	}
	if worst > pgstore.FreshnessBound {
		t.Fatalf("a response acknowledged by A reached B's figures after %s, above the bound of %s", worst, pgstore.FreshnessBound)
	}
	t.Logf("worst freshness delay A → B: %s (bound %s)", worst, pgstore.FreshnessBound)
	ra, err := provinceIndex(actx, ia)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := provinceIndex(actx, ib)
	if !proto.Equal(ra, rb) {
		t.Fatalf("replicas disagree:\nA: %v\nB: %v", ra, rb)
	}
	st := openPG(t, dsn)
	recount, err := st.Recount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for k, c := range recount {
		if k.UnitID == "" && k.QuestionnaireID == "sipas-2023" {
			n += c.Respondents
		}
	}
	if n != int64(total) || ra.GetReport().GetRespondents() != n {
		t.Fatalf("recount %d respondents, served %d, sent %d", n, ra.GetReport().GetRespondents(), total)
	}
	if err := st.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestReplicasUnitsAndRevocation: a unit and a kiosk credential created
// through replica A work on replica B; the credential revoked through A is
// refused by B within pgstore.FreshnessBound.
func TestReplicasUnitsAndRevocation(t *testing.T) {
	_, a, b, admin := twoReplicas(t)
	connA, actx := dialAs(t, a.addr, admin)
	adm := sipasv1.NewAdminServiceClient(connA)
	if _, err := adm.CreateUnit(actx, &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{UnitId: "hue-mc-1", DisplayName: "Một cửa Huế", ProvinceCode: "46"}}); err != nil {
		t.Fatal(err)
	}
	cr, err := adm.CreateCredential(actx, &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "hue-mc-1"}})
	if err != nil {
		t.Fatal(err)
	}
	connB, kctx := dialAs(t, b.addr, cr.Token)
	sb := sipasv1.NewSurveyServiceClient(connB)
	submit := func(v int) error {
		r := response(uuid.Must(uuid.NewV7()).String(), v)
		r.ProvinceCode, r.UnitId, r.Channel = "46", "hue-mc-1", sipasv1.Channel_CHANNEL_KIOSK
		_, err := sb.SubmitResponse(kctx, &sipasv1.SubmitResponseRequest{Response: r})
		return err
	}
	if err := submit(0); err != nil {
		t.Fatalf("kiosk of a unit created on A, submitting through B: %v", err)
	}
	revoked := time.Now()
	if _, err := adm.RevokeCredential(actx, &sipasv1.RevokeCredentialRequest{Name: "credentials/" + cr.Credential.GetCredentialId()}); err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		err := submit(i)
		if status.Code(err) == codes.Unauthenticated {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(revoked) > 2*pgstore.FreshnessBound {
			t.Fatalf("replica B still accepts a credential revoked through A %s ago", time.Since(revoked))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(revoked); d > pgstore.FreshnessBound {
		t.Fatalf("replica B refused the revoked credential after %s, above the bound of %s", d, pgstore.FreshnessBound)
	} else {
		t.Logf("revocation through A refused by B after %s (bound %s)", d, pgstore.FreshnessBound)
	}
}

// readyzBody returns the body of /readyz.
func readyzBody(t *testing.T, d *daemon) string {
	resp, err := http.Get("http://" + d.httpLis.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// TestReplicaWithoutDatabaseNotReadyAndRecovers: a replica whose database
// connections are cut and refused reports not ready, then ready again by
// itself once the database is back; nothing acknowledged under load while
// the connections were cut (as in a PostgreSQL restart) is lost.
func TestReplicaWithoutDatabaseNotReadyAndRecovers(t *testing.T) {
	dsn := pgtest.DSN(t)
	proxy, viaDSN := pgtest.NewCutProxy(t, dsn)
	r := startReplica(t, viaDSN)
	waitReady(t, r.d, http.StatusOK, 5*time.Second)
	tok := surveyorToken(t, r, readToken(t, r.dir))
	conn, ctx := dialAs(t, r.addr, tok)
	survey := sipasv1.NewSurveyServiceClient(conn)

	var acked sync.Map
	var nAcked, nFailed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := uuid.Must(uuid.NewV7()).String()
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := survey.SubmitResponse(cctx, &sipasv1.SubmitResponseRequest{Response: response(id, w*1000+i)})
				cancel()
				if err == nil {
					acked.Store(id, true)
					nAcked.Add(1)
				} else {
					nFailed.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	for nAcked.Load() < 100 {
		time.Sleep(10 * time.Millisecond)
	}
	// The database goes away: every connection cut, new ones refused.
	proxy.Down()
	waitReady(t, r.d, http.StatusServiceUnavailable, 10*time.Second)
	if body := readyzBody(t, r.d); !strings.Contains(body, "not ready") {
		t.Fatalf("/readyz body %q", body)
	}
	before := nAcked.Load()
	proxy.Up()
	waitReady(t, r.d, http.StatusOK, 15*time.Second)
	for nAcked.Load() < before+100 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if nFailed.Load() == 0 {
		t.Fatal("no call failed while the database was away: the cut did not happen")
	}
	st := openPG(t, dsn)
	missing := 0
	acked.Range(func(k, _ any) bool {
		if _, _, _, err := st.GetResponse(context.Background(), k.(string)); err != nil {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged responses lost", missing, nAcked.Load())
	}
	if err := st.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged, %d refused while the database was away; none lost", nAcked.Load(), nFailed.Load())
}

// TestPostgresBackupRefusedWithProcedure: with PostgreSQL, the Backup RPC
// refuses and points to the documented pg_dump / PITR procedure, and
// scheduled backups are refused at start.
func TestPostgresBackupRefusedWithProcedure(t *testing.T) {
	dsn := pgtest.DSN(t)
	r := startReplica(t, dsn)
	conn, ctx := dialAs(t, r.addr, readToken(t, r.dir))
	stream, err := sipasv1.NewAdminServiceClient(conn).Backup(ctx, &sipasv1.BackupRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "docs/operations.md") ||
		!strings.Contains(status.Convert(err).Message(), "pg_dump") {
		t.Fatalf("Backup on PostgreSQL: %v, want FAILED_PRECONDITION pointing to pg_dump in docs/operations.md", err)
	}
	_, err = parseConfig([]string{"--database", dsn, "--backup-every", "1h", "--backup-dir", t.TempDir()}, env, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("--backup-every with PostgreSQL: %v", err)
	}
	if _, err := parseConfig([]string{"--database", "mysql://x"}, env, io.Discard); err == nil {
		t.Fatal("--database mysql:// accepted")
	}
}

// TestReplicasSurvivePostgresRestart restarts the local PostgreSQL server
// (pg_ctlcluster) while two replicas take load: connections are dialled
// again, both replicas come back ready by themselves, and nothing
// acknowledged is lost. It restarts a shared server, so it runs only when
// SIPAS_TEST_PG_RESTART=1 (docs/operations.md); the cut-connection test
// above covers the same path in every run.
func TestReplicasSurvivePostgresRestart(t *testing.T) {
	if os.Getenv("SIPAS_TEST_PG_RESTART") != "1" {
		t.Skip("set SIPAS_TEST_PG_RESTART=1 to restart the local PostgreSQL under load (it disrupts every other user of that server)")
	}
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		t.Skip("no local PostgreSQL cluster (/etc/postgresql)")
	}
	dsn, a, b, admin := twoReplicas(t)
	tok := surveyorToken(t, a, admin)
	var acked sync.Map
	var nAcked, nFailed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		r := []replica{a, b}[w%2]
		conn, ctx := dialAs(t, r.addr, tok)
		survey := sipasv1.NewSurveyServiceClient(conn)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := uuid.Must(uuid.NewV7()).String()
				req := &sipasv1.SubmitResponseRequest{Response: response(id, w*1000+i)}
				for {
					cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, err := survey.SubmitResponse(cctx, req)
					cancel()
					if err == nil {
						acked.Store(id, true)
						nAcked.Add(1)
						break
					}
					nFailed.Add(1)
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		})
	}
	for nAcked.Load() < 200 {
		time.Sleep(10 * time.Millisecond)
	}
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", versions[0].Name(), "main", "restart").CombinedOutput()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("pg_ctlcluster restart: %v\n%s", err, out)
	}
	before := nAcked.Load()
	for _, r := range []replica{a, b} {
		waitReady(t, r.d, http.StatusOK, 20*time.Second)
	}
	deadline := time.Now().Add(20 * time.Second)
	for nAcked.Load() < before+200 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if nAcked.Load() < before+200 {
		t.Fatalf("only %d responses acknowledged after the restart", nAcked.Load()-before)
	}
	st := openPG(t, dsn)
	missing := 0
	acked.Range(func(k, _ any) bool {
		if _, _, _, err := st.GetResponse(context.Background(), k.(string)); err != nil {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged responses lost across the PostgreSQL restart", missing, nAcked.Load())
	}
	if err := st.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged (%d failed attempts retried) across a PostgreSQL restart; none lost", nAcked.Load(), nFailed.Load())
}

// TestReplicasStartingTogetherCreateOneFirstAdmin: replicas started at the
// same time on an empty database create a single first admin between them,
// and only the replica that created it keeps a token file.
func TestReplicasStartingTogetherCreateOneFirstAdmin(t *testing.T) {
	dsn := pgtest.DSN(t)
	const n = 3
	dirs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		dirs[i] = t.TempDir()
		wg.Go(func() {
			cfg, err := parseConfig([]string{"--data-dir", dirs[i], "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--database", dsn}, env, io.Discard)
			if err != nil {
				t.Error(err)
				return
			}
			d, err := start(context.Background(), cfg, io.Discard, io.Discard)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { d.stop() })
		})
	}
	wg.Wait()
	tokens := 0
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "admin.token")); err == nil {
			tokens++
		}
	}
	st := openPG(t, dsn)
	if c, err := st.CountCredentials(context.Background()); err != nil || c != 1 || tokens != 1 {
		t.Fatalf("%d credentials (%v) and %d token files after %d replicas started together; want one of each", c, err, tokens, n)
	}
}

// TestReplicasCorrections: the same withdrawal or amendment sent to both
// replicas at the same instant is applied once (the other replica answers
// already withdrawn / unchanged), both replicas' figures follow within
// pgstore.FreshnessBound, and a period closed through one replica is closed
// for the other at once.
func TestReplicasCorrections(t *testing.T) {
	dsn, a, b, admin := twoReplicas(t)
	tok := surveyorToken(t, a, admin)
	connA, sctx := dialAs(t, a.addr, tok)
	connB, _ := dialAs(t, b.addr, tok)
	_, actx := dialAs(t, a.addr, admin)
	sa, sb := sipasv1.NewSurveyServiceClient(connA), sipasv1.NewSurveyServiceClient(connB)
	const n = 60
	ids := make([]string, n)
	sent := make([]*sipasv1.Response, n)
	for i := range n {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		sent[i] = response(ids[i], i)
		if _, err := sa.SubmitResponse(sctx, &sipasv1.SubmitResponseRequest{Response: sent[i]}); err != nil {
			t.Fatal(err)
		}
	}
	both := func(call func(c sipasv1.SurveyServiceClient) (bool, error)) [2]bool {
		var wg sync.WaitGroup
		var applied [2]bool
		var errs [2]error
		start := make(chan struct{})
		for j, c := range []sipasv1.SurveyServiceClient{sa, sb} {
			wg.Go(func() {
				<-start
				applied[j], errs[j] = call(c)
			})
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("%v / %v", errs[0], errs[1])
		}
		return applied
	}
	withdrawn := 0
	for i := range n / 2 {
		got := both(func(c sipasv1.SurveyServiceClient) (bool, error) {
			r, err := c.WithdrawResponse(sctx, &sipasv1.WithdrawResponseRequest{ResponseId: ids[i], Reason: "duplicate interview"})
			return err == nil && !r.AlreadyWithdrawn, err
		})
		if got[0] == got[1] {
			t.Fatalf("withdrawal %d sent to both replicas: applied %v, want exactly once", i, got)
		}
		withdrawn++
	}
	for i := n / 2; i < n; i++ {
		amended := response(ids[i], i+100)
		got := both(func(c sipasv1.SurveyServiceClient) (bool, error) {
			r, err := c.AmendResponse(sctx, &sipasv1.AmendResponseRequest{Response: amended, Reason: "keyed wrong"})
			if err == nil && r.Version != 2 {
				t.Errorf("amendment %d: version %d, want 2", i, r.Version)
			}
			return err == nil && !r.Unchanged, err
		})
		if got[0] == got[1] {
			t.Fatalf("amendment %d sent to both replicas: applied %v, want exactly once", i, got)
		}
	}
	acked := time.Now()
	ia, ib := sipasv1.NewIndexServiceClient(connA), sipasv1.NewIndexServiceClient(connB)
	for _, ic := range []sipasv1.IndexServiceClient{ia, ib} {
		for {
			r, err := provinceIndex(actx, ic)
			if err != nil {
				t.Fatal(err)
			}
			if r.GetReport().GetRespondents() == int64(n-withdrawn) {
				break
			}
			if time.Since(acked) > 2*pgstore.FreshnessBound {
				t.Fatalf("a replica serves %d respondents %s after the corrections, want %d", r.GetReport().GetRespondents(), time.Since(acked), n-withdrawn)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	year := int32(time.Now().In(time.FixedZone("ICT", 7*3600)).Year())
	if _, err := sipasv1.NewAdminServiceClient(connA).ClosePeriod(actx, &sipasv1.ClosePeriodRequest{Period: &sipasv1.Period{Year: year}, Reason: "published"}); err != nil {
		t.Fatal(err)
	}
	_, err := sb.SubmitResponse(sctx, &sipasv1.SubmitResponseRequest{Response: response(uuid.Must(uuid.NewV7()).String(), 7)})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "closed") {
		t.Fatalf("new response of a period closed through the other replica: %v, want FAILED_PRECONDITION (period closed)", err)
	}
	if _, err := sb.WithdrawResponse(sctx, &sipasv1.WithdrawResponseRequest{ResponseId: ids[n-1], Reason: "late"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("withdrawal in a period closed through the other replica: %v, want FAILED_PRECONDITION", err)
	}
	if r, err := sb.SubmitResponse(sctx, &sipasv1.SubmitResponseRequest{Response: sent[0]}); err != nil || !r.Duplicate {
		t.Fatalf("resend of a stored (withdrawn) response of a closed period: %v %v, want duplicate", r, err)
	}
	st := openPG(t, dsn)
	if err := st.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
	if hist, _, err := st.ResponseHistory(context.Background(), ids[n-1]); err != nil || len(hist) != 2 {
		t.Fatalf("history of an amended response: %+v %v, want 2 versions", hist, err)
	}
}
