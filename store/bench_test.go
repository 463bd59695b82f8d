package store

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
)

// BenchmarkInsertParallel64 measures group-committed single-response inserts
// from 64 concurrent callers (UUIDv7 ids, varied cells, synchronous=FULL).
func BenchmarkInsertParallel64(b *testing.B) {
	s := openTest(b, "", Options{})
	g := newGen(b, 42)
	items := make([]*sipas.Accepted, b.N)
	for i := range items {
		items[i] = g.accepted()
	}
	var next atomic.Int64
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a := items[next.Add(1)-1]
			if _, err := s.Insert(context.Background(), []*sipas.Accepted{a}); err != nil {
				b.Error(err)
			}
		}
	})
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	b.ReportMetric(float64(st.Inserted)/float64(max(st.Commits, 1)), "items/commit")
}

// BenchmarkInsertBatch2000 measures one caller sending chunks of 2000, as an
// upload stream does.
func BenchmarkInsertBatch2000(b *testing.B) {
	s := openTest(b, "", Options{})
	g := newGen(b, 43)
	items := make([]*sipas.Accepted, b.N)
	for i := range items {
		items[i] = g.accepted()
	}
	b.ResetTimer()
	for i := 0; i < len(items); i += 2000 {
		if _, err := s.Insert(context.Background(), items[i:min(i+2000, len(items))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}

// BenchmarkInsertKiosk64 measures the kiosk path: 64 concurrent callers,
// one response each, the ~23 service-block answers of one unit (two cells
// per commit), as in the unary_submit_c64 figure of make bench, without
// gRPC. It reports the store's CPU per insert, the figure to lower.
func BenchmarkInsertKiosk64(b *testing.B) {
	s := openTest(b, "", Options{})
	g := newGen(b, 7)
	q := g.cat.Get("sipas-2023")
	items := make([]*sipas.Accepted, b.N)
	for i := range items {
		r := &sipas.Response{ID: uuid.Must(uuid.NewV7()).String(), QuestionnaireID: q.ID, ProvinceCode: "48",
			CollectedAt: testNow.Add(-time.Hour), Channel: sipas.ChannelKiosk, UnitID: "dn-1", Answers: map[string]int{}}
		for j := 29; j <= 51; j++ {
			r.Answers[fmt.Sprintf("V23.HL.%02d", j)] = 1 + (i+j)%5
		}
		items[i] = g.accept(r)
	}
	var next atomic.Int64
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Insert(context.Background(), []*sipas.Accepted{items[next.Add(1)-1]}); err != nil {
				b.Error(err)
			}
		}
	})
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / time.Duration(b.N)
	st := s.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	b.ReportMetric(float64(st.Inserted)/float64(max(st.Commits, 1)), "items/commit")
	b.ReportMetric(float64(cpu.Microseconds()), "cpu-µs/insert")
}
