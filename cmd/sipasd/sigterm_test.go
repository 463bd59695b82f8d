package main

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/internal/sipasdtest"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
	"github.com/sipas-vn/sipas/store"
)

// TestSIGTERMUnderLoad runs the real binary, sends it SIGTERM while kiosk
// submissions and an upload stream are in flight, and checks that every
// acknowledged response is stored and the aggregates agree.
func TestSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, cleanup, err := sipasdtest.Build("sipasd")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	dir := t.TempDir()
	d := sipasdtest.Start(t, filepath.Join(bin, "sipasd"), dir, "127.0.0.1:0")
	adm, err := client.Dial(client.Options{Server: d.Addr, Token: d.AdminToken()})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := context.Background()
	cr, err := adm.Admin.CreateCredential(ctx, &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true}})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.Dial(client.Options{Server: d.Addr, Token: cr.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cat, _, _ := questionnaires.Load("")
	newResponse := func(i int) *sipasv1.Response {
		answers := map[string]int32{}
		for j, it := range cat.Get("sipas-2023").Items[45:96] {
			answers[it.Code] = int32(1 + (i+j)%5)
		}
		return &sipasv1.Response{ResponseId: uuid.Must(uuid.NewV7()).String(), QuestionnaireId: "sipas-2023", ProvinceCode: "48",
			CollectedAt: timestamppb.Now(), Channel: sipasv1.Channel_CHANNEL_FIELD, Answers: answers}
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				r := newResponse(w*100000 + i)
				if _, err := cl.Survey.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: r}); err != nil {
					return // the server is going away
				}
				mu.Lock()
				acked[r.ResponseId] = true
				mu.Unlock()
				n.Add(1)
			}
		}()
	}
	// An upload stream whose acknowledged chunks must survive too.
	wg.Add(1)
	go func() {
		defer wg.Done()
		st, err := cl.Survey.UploadBatch(ctx)
		if err != nil {
			return
		}
		go func() {
			for i := range 5000 {
				if st.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: int64(i + 2), Response: newResponse(i)}}}) != nil {
					return
				}
			}
			st.CloseSend()
		}()
		for {
			m, err := st.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			for _, r := range m.GetChunk().GetResults() {
				if r.Outcome == sipasv1.ItemOutcome_ITEM_OUTCOME_ACCEPTED {
					acked[r.ResponseId] = true
				}
			}
			mu.Unlock()
		}
	}()
	for n.Load() < 300 {
		time.Sleep(10 * time.Millisecond)
	}
	d.Stop() // SIGTERM, and wait for the process to exit
	wg.Wait()
	st, err := store.Open(ctx, filepath.Join(dir, "sipas.db"), cat, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	missing := 0
	for id := range acked {
		if _, _, _, err := st.GetResponse(ctx, id); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged responses missing after SIGTERM", missing, len(acked))
	}
	if err := st.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGTERM under load: %d acknowledged responses, all stored", len(acked))
}
