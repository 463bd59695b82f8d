package store

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

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

// BenchmarkInsertBatch500 measures one caller sending chunks of 500.
func BenchmarkInsertBatch500(b *testing.B) {
	s := openTest(b, "", Options{})
	g := newGen(b, 43)
	items := make([]*sipas.Accepted, b.N)
	for i := range items {
		items[i] = g.accepted()
	}
	b.ResetTimer()
	for i := 0; i < len(items); i += 500 {
		if _, err := s.Insert(context.Background(), items[i:min(i+500, len(items))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}
