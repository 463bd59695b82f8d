package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storeMetrics exposes the writer's counters and the file sizes. Counters
// and gauges are read from Stats and Sizes at scrape time; the histograms
// are observed by the writer after each commit. No label carries an id.
type storeMetrics struct {
	s *Store

	batchSize  prometheus.Histogram
	commitTime prometheus.Histogram

	queueDepth    *prometheus.Desc
	commits       *prometheus.Desc
	failedCommits *prometheus.Desc
	outcomes      *prometheus.Desc
	fileBytes     *prometheus.Desc
}

func newStoreMetrics(s *Store) *storeMetrics {
	return &storeMetrics{
		s: s,
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sipas_store_commit_batch_size",
			Help:    "Responses per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sipas_store_commit_duration_seconds",
			Help:    "Time of a group commit transaction, BEGIN to end of COMMIT (fsync included).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		queueDepth: prometheus.NewDesc("sipas_store_queue_depth",
			"Responses and other writes waiting for the writer.", nil, nil),
		commits: prometheus.NewDesc("sipas_store_commits_total",
			"Successful group commits of responses.", nil, nil),
		failedCommits: prometheus.NewDesc("sipas_store_commit_failures_total",
			"Response transactions rolled back (callers got an indeterminate error).", nil, nil),
		outcomes: prometheus.NewDesc("sipas_store_responses_total",
			"Committed response outcomes.", []string{"outcome"}, nil),
		fileBytes: prometheus.NewDesc("sipas_store_file_bytes",
			"Size of the database files.", []string{"file"}, nil),
	}
}

func (m *storeMetrics) observe(batch int, d time.Duration) {
	m.batchSize.Observe(float64(batch))
	m.commitTime.Observe(d.Seconds())
}

func (m *storeMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.batchSize.Describe(ch)
	m.commitTime.Describe(ch)
	for _, d := range []*prometheus.Desc{m.queueDepth, m.commits, m.failedCommits, m.outcomes, m.fileBytes} {
		ch <- d
	}
}

func (m *storeMetrics) Collect(ch chan<- prometheus.Metric) {
	m.batchSize.Collect(ch)
	m.commitTime.Collect(ch)
	st := m.s.Stats()
	ch <- prometheus.MustNewConstMetric(m.queueDepth, prometheus.GaugeValue, float64(st.QueueDepth))
	ch <- prometheus.MustNewConstMetric(m.commits, prometheus.CounterValue, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(m.failedCommits, prometheus.CounterValue, float64(st.FailedCommits))
	ch <- prometheus.MustNewConstMetric(m.outcomes, prometheus.CounterValue, float64(st.Inserted), "inserted")
	ch <- prometheus.MustNewConstMetric(m.outcomes, prometheus.CounterValue, float64(st.Duplicates), "duplicate")
	ch <- prometheus.MustNewConstMetric(m.outcomes, prometheus.CounterValue, float64(st.Conflicts), "conflict")
	db, wal := m.s.Sizes()
	ch <- prometheus.MustNewConstMetric(m.fileBytes, prometheus.GaugeValue, float64(db), "db")
	ch <- prometheus.MustNewConstMetric(m.fileBytes, prometheus.GaugeValue, float64(wal), "wal")
}
