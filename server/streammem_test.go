package server

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// maxStreamHeap is the memory one upload stream may hold, as docs/design.md
// states it (3 chunks of 2,000 items, the transport buffers included).
const maxStreamHeap = 16 << 20

// TestRow50UploadStreamMemoryIsBounded measures the heap one upload stream
// holds at most: its commits are held back (the store's commit hook waits),
// so the stream fills the chunk being read and keeps the two in flight —
// the most it ever holds — with full 106-item responses in the map form,
// the largest to decode. The figure is logged; the test fails above the
// bound the design states.
func TestRow50UploadStreamMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("measures memory with 6,000 full responses")
	}
	release := make(chan struct{})
	e := newTestEnvStore(t, store.Options{BeforeCommit: func(int) error { <-release; return nil }},
		// Chunks are flushed only when full, so the three held are full.
		func(c *Config) { c.StreamIdleTimeout, c.ChunkDelay = time.Minute, time.Minute })
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	q := e.cat.Get("sipas-2023")
	full := func() *sipasv1.Response {
		answers := map[string]int32{}
		for _, it := range q.Items {
			answers[it.Code] = int32(it.Scale.Codes[0].Code)
		}
		return &sipasv1.Response{ResponseId: uuid.Must(uuid.NewV7()).String(), QuestionnaireId: q.ID, ProvinceCode: "48",
			CollectedAt: timestamppb.New(time.Now()), Channel: sipasv1.Channel_CHANNEL_FIELD, Answers: answers}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.tokens["surveyor"])
	before := heapInUse()
	st, err := e.survey.UploadBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The client sends until the server stops reading (it holds three
	// chunks then); messages of 20 items stay under the message size limit.
	var sent atomic.Int64
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		for {
			m := &sipasv1.UploadBatchRequest{}
			for range 20 {
				m.Items = append(m.Items, &sipasv1.BatchItem{Response: full()})
			}
			if st.Send(m) != nil {
				return
			}
			sent.Add(1)
		}
	}()
	for last := int64(-1); sent.Load() != last; {
		last = sent.Load()
		time.Sleep(time.Second)
	}
	if n := sent.Load() * 20; n < 3*2000 {
		t.Fatalf("the client could send only %d items", n)
	}
	if e.srv.streams.count() != 1 {
		t.Fatal("the stream ended")
	}
	held := int64(heapInUse()) - int64(before)
	t.Logf("one upload stream holding 3 chunks of 2000 full map-form responses: %.1f MiB of heap", float64(held)/(1<<20))
	if held > maxStreamHeap {
		t.Fatalf("%d bytes held by one stream, above the stated %d", held, maxStreamHeap)
	}
	close(release)
	cancel() // ends the stream and the sender (which owns st's send side)
	<-senderDone
	drainStream(st.Recv)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
