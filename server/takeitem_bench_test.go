package server

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
	"github.com/sipas-vn/sipas/store"
)

// BenchmarkTakeItem measures the server's per-item work of an upload
// before the store: decoding a full packed response from the wire,
// converting and validating it into a chunk.
func BenchmarkTakeItem(b *testing.B) { benchTakeItem(b, "") }

// BenchmarkTakeItemWithUnit is BenchmarkTakeItem with rows naming a
// registered unit: the unit check is a lookup in the store's in-memory
// registry, not a query.
func BenchmarkTakeItemWithUnit(b *testing.B) { benchTakeItem(b, "dn-1") }

func benchTakeItem(b *testing.B, unit string) {
	cat, reg, err := questionnaires.Load("")
	if err != nil {
		b.Fatal(err)
	}
	q := cat.Get("sipas-2023")
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 4096
	wire := make([][]byte, n)
	for i := range wire {
		packed := make([]uint32, len(q.Items))
		for j, it := range q.Items {
			packed[j] = uint32(it.Scale.Codes[rng.IntN(len(it.Scale.Codes))].Code) + 1
		}
		r := &sipasv1.Response{ResponseId: uuid.Must(uuid.NewV7()).String(), QuestionnaireId: q.ID, ProvinceCode: "48",
			CollectedAt: timestamppb.New(now.Add(-time.Hour)), Channel: sipasv1.Channel_CHANNEL_FIELD, PackedAnswers: packed, UnitId: unit,
			Demographics: &sipasv1.Demographics{Gender: 1, BirthYear: 1980, Education: 3}}
		wire[i], err = proto.Marshal(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{{Line: int64(i + 2), Response: r}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "sipas.db"), cat, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateUnit(context.Background(), store.Unit{ID: "dn-1", DisplayName: "Một cửa", ProvinceCode: "48"}, store.AuditEvent{Actor: "test", Action: "unit.create"}); err != nil {
		b.Fatal(err)
	}
	s := &Server{cfg: Config{Catalog: cat, Registry: reg, Store: st, Now: time.Now}}
	b.ReportAllocs()
	b.ResetTimer()
	c := &uploadChunk{}
	for i := 0; i < b.N; i++ {
		var req sipasv1.UploadBatchRequest
		if err := proto.Unmarshal(wire[i%n], &req); err != nil {
			b.Fatal(err)
		}
		s.takeItem(nil, sipas.Source{}, req.Items[0], c)
		if len(c.accepted) != 1 {
			b.Fatalf("item refused: %+v", c.results[0])
		}
		c = &uploadChunk{}
	}
}
