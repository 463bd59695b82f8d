package client_test

import (
	"context"
	"fmt"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/internal/sipasdtest"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// fieldItems makes n valid field responses for province 48 with fresh
// UUIDv7 ids; lines start at 2 (line 1 is a CSV header).
func fieldItems(n int) []client.BatchItem {
	items := make([]client.BatchItem, n)
	at := time.Date(2026, 3, 10, 9, 0, 0, 0, sipas.VietnamZone)
	for i := range items {
		id, _ := uuid.NewV7()
		a := make(map[string]int, 51)
		for j := 1; j <= 51; j++ {
			a[fmt.Sprintf("V23.HL.%02d", j)] = 1 + (i*7+j)%5
		}
		items[i] = client.BatchItem{Line: int64(i + 2), Response: &sipas.Response{ID: id.String(), QuestionnaireID: "sipas-2023",
			ProvinceCode: "48", CollectedAt: at.Add(time.Duration(i) * time.Second), Channel: sipas.ChannelField,
			Demographics: sipas.Demographics{Gender: sipas.Gender(1 + i%2), BirthYear: 1960 + i%40}, Answers: a}}
	}
	return items
}

func surveyor(t testing.TB) (*daemon, *client.Client) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	token := d.credential(&sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, ProvinceCodes: []string{"48"}})
	cl, err := client.Dial(client.Options{Server: d.Addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return d, cl
}

func TestUpload10kThenDuplicates(t *testing.T) {
	const n = 10_000
	d, cl := surveyor(t)
	items := fieldItems(n)
	var calls atomic.Int64
	start := time.Now()
	sum, err := cl.Upload(context.Background(), client.UploadSlice(items), client.UploadOptions{
		Progress: func(client.UploadProgress) { calls.Add(1) }})
	el := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Items != n || sum.Accepted != n || sum.Duplicate != 0 || sum.Rejected != 0 {
		t.Fatalf("summary %+v", sum)
	}
	if calls.Load() < n/2000 { // the server acknowledges chunks of 2000
		t.Errorf("progress called %d times, want one per chunk", calls.Load())
	}
	t.Logf("library upload: %d rows in %s = %.0f rows/s (%d streams)", n, el.Round(time.Millisecond), n/el.Seconds(), sum.Streams)
	if rows, distinct := sipasdtest.Counts(t, d.Dir); rows != n || distinct != n {
		t.Fatalf("stored %d (%d distinct)", rows, distinct)
	}
	// Resending everything is safe.
	sum, err = cl.Upload(context.Background(), client.UploadSlice(items), client.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 0 || sum.Duplicate != n {
		t.Fatalf("resend: %+v", sum)
	}
	if rows, _ := sipasdtest.Counts(t, d.Dir); rows != n {
		t.Fatalf("stored %d after resend", rows)
	}
}

func TestUploadRejectionsWithLines(t *testing.T) {
	_, cl := surveyor(t)
	items := fieldItems(1200)
	items[10].Response.Answers["V23.HL.31"] = 6
	items[700].Response.ProvinceCode = "01" // outside the credential's scope
	conflict := *items[5].Response
	conflict.Answers = map[string]int{"V23.HL.31": 1}
	items = append(items, client.BatchItem{Line: 9999, Response: &conflict})
	ch := make(chan client.BatchItem)
	go func() {
		defer close(ch)
		for _, it := range items {
			ch <- it
		}
	}()
	sum, err := cl.Upload(context.Background(), client.UploadChan(ch), client.UploadOptions{Window: 100, MaxStreamItems: 450})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 1198 || sum.Rejected != 3 || sum.Streams < 3 {
		t.Fatalf("summary %+v", sum)
	}
	want := map[int64]string{12: "INVALID_ANSWER_CODE", 702: "PROVINCE_OUT_OF_SCOPE", 9999: "RESPONSE_ID_CONFLICT"}
	for _, r := range sum.Rejects {
		if want[r.Line] != r.Reason {
			t.Errorf("line %d: reason %s (%s), want %s", r.Line, r.Reason, r.Message, want[r.Line])
		}
	}
}

// TestUploadResumesAfterServerKill: the server is SIGKILLed mid-upload and
// restarted on the same address; the upload reconnects, resends what was
// not acknowledged and every item is stored exactly once.
func TestUploadResumesAfterServerKill(t *testing.T) {
	const n = 20_000
	dataDir := t.TempDir()
	addr := sipasdtest.FreeAddr(t)
	d := startDaemon(t, dataDir, addr)
	token := d.credential(&sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, ProvinceCodes: []string{"48"}})
	cl, err := client.Dial(client.Options{Server: addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	items := fieldItems(n)
	restarted := make(chan *daemon, 1)
	var killed atomic.Bool
	seq := iter.Seq[client.BatchItem](func(yield func(client.BatchItem) bool) {
		for i, it := range items {
			if i == n/3 {
				go func() {
					waitCount(t, dataDir, 2000, 30*time.Second)
					d.Kill()
					killed.Store(true)
					time.Sleep(300 * time.Millisecond)
					restarted <- startDaemon(t, dataDir, addr)
				}()
			}
			if !yield(it) {
				return
			}
		}
	})
	var retries atomic.Int64
	sum, err := cl.Upload(context.Background(), seq, client.UploadOptions{
		Backoff: client.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}, Attempts: 20,
		OnRetry: func(int, time.Duration, error) { retries.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	<-restarted
	if !killed.Load() || retries.Load() == 0 || sum.Streams < 2 {
		t.Fatalf("the kill did not land mid-upload: killed %v retries %d streams %d", killed.Load(), retries.Load(), sum.Streams)
	}
	if sum.Items != n || sum.Accepted+sum.Duplicate != n || sum.Rejected != 0 {
		t.Fatalf("summary %+v", sum)
	}
	if rows, distinct := sipasdtest.Counts(t, dataDir); rows != n || distinct != n {
		t.Fatalf("stored %d (%d distinct), want exactly %d", rows, distinct, n)
	}
	t.Logf("resumed after SIGKILL: %d streams, %d items resent, %d duplicates", sum.Streams, sum.Resent, sum.Duplicate)
}

func TestUploadDefiniteStreamError(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	token := d.credential(&sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-k"})
	cl, err := client.Dial(client.Options{Server: d.Addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	_, err = cl.Upload(context.Background(), client.UploadSlice(fieldItems(10)), client.UploadOptions{})
	if !client.Definite(err) || sipas.KindOf(err) != sipas.KindPermissionDenied {
		t.Fatalf("a kiosk may not upload batches: got %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("a definite refusal was retried")
	}
}

func BenchmarkUpload(b *testing.B) {
	_, cl := surveyor(b)
	const n = 10_000
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		items := fieldItems(n)
		b.StartTimer()
		sum, err := cl.Upload(context.Background(), client.UploadSlice(items), client.UploadOptions{})
		if err != nil || sum.Accepted != n {
			b.Fatal(err, sum)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestUploadLargeItemsStayUnderMessageLimit: items that cannot take the
// packed form (here each names an item the questionnaire lacks, so it goes
// in the answer map, about 1 KiB each) still share messages only up to the
// size the server accepts: every item gets its own outcome, and none is
// stored.
func TestUploadLargeItemsStayUnderMessageLimit(t *testing.T) {
	const n = 600
	d, cl := surveyor(t)
	items := fieldItems(n)
	for _, it := range items {
		it.Response.Answers["NOT-AN-ITEM"] = 1
	}
	sum, err := cl.Upload(context.Background(), client.UploadSlice(items), client.UploadOptions{})
	if err != nil {
		t.Fatalf("upload: %v (summary %+v)", err, sum)
	}
	if sum.Items != n || sum.Rejected != n || sum.Accepted != 0 || sum.Streams != 1 {
		t.Fatalf("summary: %d items, %d accepted, %d rejected over %d streams; want %d rejected in one stream",
			sum.Items, sum.Accepted, sum.Rejected, sum.Streams, n)
	}
	for _, r := range sum.Rejects {
		if r.Reason != "UNKNOWN_ITEM" {
			t.Fatalf("rejection %+v, want UNKNOWN_ITEM", r)
		}
	}
	if rows, _ := sipasdtest.Counts(t, d.Dir); rows != 0 {
		t.Fatalf("%d rows stored", rows)
	}
}
