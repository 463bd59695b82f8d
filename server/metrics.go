package server

import (
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipas-vn/sipas/store"
)

// Metrics are the server's Prometheus metrics, registered on an injected
// registry. Labels take only small fixed value sets: method, code, channel,
// outcome, reason. Never ids of respondents, kiosks, credentials or requests.
type Metrics struct {
	grpc *grpcprom.ServerMetrics
	// ResponsesIngested counts batch and kiosk items by channel and outcome
	// (accepted, duplicate, rejected).
	ResponsesIngested *prometheus.CounterVec
	// Refusals counts refused items and calls by machine reason.
	Refusals *prometheus.CounterVec
	// Corrections counts withdrawals and amendments by kind (withdrawal,
	// amendment) and outcome (applied, unchanged).
	Corrections *prometheus.CounterVec
	// IndexReadSeconds is the latency of index reads by method.
	IndexReadSeconds *prometheus.HistogramVec
	// CommitBatchSize and CommitSeconds describe each group commit.
	CommitBatchSize prometheus.Histogram
	CommitSeconds   prometheus.Histogram
	// LastBackup is the Unix time of the last successful backup.
	LastBackup prometheus.Gauge
	// UploadStreamsOpen is the number of open upload streams.
	UploadStreamsOpen prometheus.Gauge

	reg prometheus.Registerer
}

// ObserveCommit records one group commit; it is the store's OnCommit hook.
func (m *Metrics) ObserveCommit(batchSize int, d time.Duration) {
	m.CommitBatchSize.Observe(float64(batchSize))
	m.CommitSeconds.Observe(d.Seconds())
}

// watchStore exports the store's queue depth and file sizes, read at scrape time.
func (m *Metrics) watchStore(st store.Backend) error {
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipas_writer_queue_depth", Help: "Write requests waiting for the writer."},
			func() float64 { return float64(st.Stats().QueueDepth) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipas_commit_failures_total",
			Help: "Response transactions rolled back (their callers got an indeterminate error; retrying is safe)."},
			func() float64 { return float64(st.Stats().FailedCommits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipas_tally_checkpoints_total",
			Help: "Checkpoints of the aggregates' deltas into the database."},
			func() float64 { return float64(st.Stats().Checkpoints) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipas_tally_checkpoint_failures_total",
			Help: "Failed checkpoints of the aggregates (nothing is lost: a start re-counts the responses after the last good one)."},
			func() float64 { return float64(st.Stats().FailedCheckpoints) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipas_tally_cells_written_total",
			Help: "Aggregate cells written by checkpoints (only cells that changed are written)."},
			func() float64 { return float64(st.Stats().CellsWritten) }),
	}
	// A bounded cache of aggregate cells.
	if c, ok := st.(interface{ CacheStats() store.CacheStats }); ok {
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipas_cell_cache_bytes", Help: "Bytes of aggregate cells in the read cache."},
				func() float64 { return float64(c.CacheStats().Bytes) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipas_cell_cache_budget_bytes", Help: "Bound of the aggregate cell cache (--cell-cache-mib)."},
				func() float64 { return float64(c.CacheStats().Budget) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipas_cell_cache_blocks", Help: "Blocks of cells in the read cache."},
				func() float64 { return float64(c.CacheStats().Blocks) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipas_cell_cache_hits_total", Help: "Block reads served by the cell cache."},
				func() float64 { return float64(c.CacheStats().Hits) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipas_cell_cache_misses_total", Help: "Block reads that went to the database."},
				func() float64 { return float64(c.CacheStats().Misses) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipas_cell_cache_evictions_total", Help: "Blocks evicted from the cell cache to stay within its budget."},
				func() float64 { return float64(c.CacheStats().Evictions) }))
	}
	// File sizes exist for a store in a file (SQLite) only.
	if f, ok := st.(interface{ Sizes() (db, wal int64) }); ok {
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipas_db_size_bytes", Help: "Size of the database file."},
				func() float64 { db, _ := f.Sizes(); return float64(db) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipas_wal_size_bytes", Help: "Size of the write-ahead log."},
				func() float64 { _, wal := f.Sizes(); return float64(wal) }))
	}
	// Connection pool use exists for a store over a database server.
	if p, ok := st.(interface{ PoolStats() (inUse, size int) }); ok {
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipas_db_pool_in_use", Help: "Database connections of this replica in use."},
				func() float64 { n, _ := p.PoolStats(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipas_db_pool_size", Help: "Size of this replica's database connection pool."},
				func() float64 { _, n := p.PoolStats(); return float64(n) }))
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// NewMetrics creates the metrics and registers them on reg. Create them before
// the store so that ObserveCommit can be its OnCommit hook.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		CommitBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sipas_commit_batch_size", Help: "Responses per group commit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048},
		}),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sipas_commit_duration_seconds", Help: "Duration of group commits (BEGIN to end of COMMIT, fsync included).",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}),
		LastBackup: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sipas_last_backup_timestamp_seconds", Help: "Unix time of the last successful backup (0: none since start).",
		}),
		UploadStreamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sipas_upload_streams_open", Help: "Upload streams open now (capped per credential and in total).",
		}),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}))),
		ResponsesIngested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipas_responses_ingested_total",
			Help: "Responses received, by channel and outcome (accepted, duplicate, rejected).",
		}, []string{"channel", "outcome"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipas_refusals_total",
			Help: "Refused responses by machine-readable reason.",
		}, []string{"reason"}),
		Corrections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipas_corrections_total",
			Help: "Withdrawals and amendments of stored responses, by kind and outcome (applied, unchanged).",
		}, []string{"kind", "outcome"}),
		IndexReadSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sipas_index_read_seconds",
			Help:    "Latency of index computations by method.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
		}, []string{"method"}),
	}
	for _, c := range []prometheus.Collector{m.grpc, m.ResponsesIngested, m.Refusals, m.Corrections, m.IndexReadSeconds,
		m.CommitBatchSize, m.CommitSeconds, m.LastBackup, m.UploadStreamsOpen} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
