package crash

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/internal/pgtest"
	"github.com/sipas-vn/sipas/internal/sipasdtest"
	"github.com/sipas-vn/sipas/pgstore"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
)

// TestTwoReplicasKillAndDatabaseCut is the check of issue 14 run small:
// two sipasd replicas (child processes) over one PostgreSQL take unary
// submissions split over both (a caller whose replica fails retries the
// same response on the other, as a load balancer would) and a batch upload;
// one replica is killed with SIGKILL and later restarted, and every
// database connection is cut for a second, while the load runs. Then every
// acknowledged response is stored once, and both replicas serve the same
// figures, equal to a recount from the stored responses.
func TestTwoReplicasKillAndDatabaseCut(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short")
	}
	dsn := pgtest.DSN(t)
	proxy, viaDSN := pgtest.NewCutProxy(t, dsn)
	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a := sipasdtest.Start(t, binPath, dirA, "127.0.0.1:0", "--database", viaDSN)
	b := sipasdtest.Start(t, binPath, dirB, "127.0.0.1:0", "--database", viaDSN)
	bearer := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	dial := func(addr string) *grpc.ClientConn {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	admin := a.AdminToken()
	cr, err := sipasv1.NewAdminServiceClient(dial(a.Addr)).CreateCredential(bearer(admin), &sipasv1.CreateCredentialRequest{
		Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true}})
	if err != nil {
		t.Fatal(err)
	}
	tok := cr.Token
	items := cat.Get(questionnaire).Items[45:60]
	response := func(id string, v int) *sipasv1.Response {
		answers := map[string]int32{}
		for i, it := range items {
			answers[it.Code] = int32(1 + (v+i)%5)
		}
		return &sipasv1.Response{ResponseId: id, QuestionnaireId: questionnaire, ProvinceCode: province,
			CollectedAt: timestamppb.Now(), Channel: sipasv1.Channel_CHANNEL_FIELD, Answers: answers}
	}

	var mu sync.Mutex
	addrs := [2]string{a.Addr, b.Addr}
	conns := [2]*grpc.ClientConn{dial(a.Addr), dial(b.Addr)}
	replica := func(i int) sipasv1.SurveyServiceClient {
		mu.Lock()
		defer mu.Unlock()
		return sipasv1.NewSurveyServiceClient(conns[i])
	}
	var acked sync.Map
	var nAcked, nRetried atomic.Int64
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
				req := &sipasv1.SubmitResponseRequest{Response: response(id, w*100000+i)}
				for r := w % 2; ; r = 1 - r { // the other replica on a failure
					ctx, cancel := context.WithTimeout(bearer(tok), 3*time.Second)
					_, err := replica(r).SubmitResponse(ctx, req)
					cancel()
					if err == nil {
						acked.Store(id, true)
						nAcked.Add(1)
						break
					}
					nRetried.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	// A batch upload through the replica that is not killed.
	const batchN = 3000
	var batchErr error
	var batchSum *client.UploadSummary
	wg.Go(func() {
		cl, err := client.Dial(client.Options{Server: a.Addr, Token: tok, Timeout: 30 * time.Second})
		if err != nil {
			batchErr = err
			return
		}
		defer cl.Close()
		bi := make([]client.BatchItem, batchN)
		for i := range bi {
			r := response(uuid.Must(uuid.NewV7()).String(), 7_000_000+i)
			bi[i] = client.BatchItem{Line: int64(i + 2), Response: &sipas.Response{ID: r.ResponseId, QuestionnaireID: r.QuestionnaireId,
				ProvinceCode: r.ProvinceCode, CollectedAt: r.CollectedAt.AsTime(), Channel: sipas.ChannelField, Answers: map[string]int{}}}
			for k, v := range r.Answers {
				bi[i].Response.Answers[k] = int(v)
			}
		}
		batchSum, batchErr = cl.Upload(context.Background(), client.UploadSlice(bi), client.UploadOptions{})
	})

	waitAcks := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for nAcked.Load() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if nAcked.Load() < n {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d responses acknowledged, want %d", nAcked.Load(), n)
		}
	}
	waitAcks(300)
	b.Kill() // SIGKILL, while calls are in flight
	waitAcks(nAcked.Load() + 300)
	proxy.Down() // every database connection cut: a restart of PostgreSQL
	time.Sleep(time.Second)
	proxy.Up()
	waitAcks(nAcked.Load() + 300)
	b = sipasdtest.Start(t, binPath, dirB, "127.0.0.1:0", "--database", viaDSN)
	mu.Lock()
	addrs[1] = b.Addr
	conns[1] = dial(b.Addr)
	mu.Unlock()
	waitAcks(nAcked.Load() + 300)
	close(stop)
	wg.Wait()
	if batchErr != nil || batchSum.Accepted+batchSum.Duplicate != batchN {
		t.Fatalf("batch upload: %+v, %v", batchSum, batchErr)
	}

	st, err := pgstore.Open(context.Background(), dsn, cat, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	lost := 0
	acked.Range(func(k, _ any) bool {
		if _, _, _, err := st.GetResponse(ctx, k.(string)); err != nil {
			lost++
		}
		return true
	})
	n, err := st.CountResponses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lost > 0 || n != nAcked.Load()+batchN {
		t.Fatalf("%d acknowledged responses lost; %d stored, want %d acknowledged + %d uploaded", lost, n, nAcked.Load(), batchN)
	}
	if err := st.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	// Both replicas serve the same figures, equal to the recount.
	recount, err := st.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for k, c := range recount {
		if k.UnitID == "" && k.QuestionnaireID == questionnaire {
			want += c.Respondents
		}
	}
	index := func(addr string) (*sipasv1.GetIndexResponse, error) {
		return sipasv1.NewIndexServiceClient(dial(addr)).GetIndex(bearer(admin), &sipasv1.GetIndexRequest{QuestionnaireId: questionnaire,
			Scope:  &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: province}},
			Period: &sipasv1.Period{Year: int32(time.Now().In(sipas.VietnamZone).Year())}})
	}
	deadline := time.Now().Add(pgstore.FreshnessBound)
	for {
		ra, errA := index(addrs[0])
		rb, errB := index(addrs[1])
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if proto.Equal(ra, rb) && ra.GetReport().GetRespondents() == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: replica A serves %d respondents, B %d, recount %d (equal reports: %v)",
				pgstore.FreshnessBound, ra.GetReport().GetRespondents(), rb.GetReport().GetRespondents(), want, proto.Equal(ra, rb))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d acknowledged submissions (%d attempts retried on the other replica) and %d uploaded, one replica killed and restarted, the database cut once: none lost or doubled; both replicas serve %d respondents, as the recount",
		nAcked.Load(), nRetried.Load(), batchN, want)
}
