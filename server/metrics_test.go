package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// TestMetricsAndLogs drives accepted, duplicate and refused submissions and
// an index read, then reads the metrics back and checks the RPC log lines.
func TestMetricsAndLogs(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// The store reports commits to the metrics, as in sipasd.
	e := newTestEnvStore(t, store.Options{OnCommit: m.ObserveCommit}, func(c *Config) { c.Metrics = m })
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true})
	ctx := e.as("surveyor")
	r := serviceResponse(t, e.cat, "48", time.Now())
	for range 2 { // accepted, then duplicate
		if _, err := e.survey.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: r}); err != nil {
			t.Fatal(err)
		}
	}
	bad := serviceResponse(t, e.cat, "48", time.Now())
	bad.Answers["V23.HL.31"] = 7
	e.survey.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: bad})
	if _, err := e.index.GetIndex(e.as("admin"), &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023",
		Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_Nation{Nation: true}}, Period: &sipasv1.Period{Year: int32(time.Now().Year())}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"accepted", testutil.ToFloat64(m.ResponsesIngested.WithLabelValues("field", "accepted")), 1},
		{"duplicate", testutil.ToFloat64(m.ResponsesIngested.WithLabelValues("field", "duplicate")), 1},
		{"rejected", testutil.ToFloat64(m.ResponsesIngested.WithLabelValues("field", "rejected")), 1},
		{"refusal reason", testutil.ToFloat64(m.Refusals.WithLabelValues("INVALID_ANSWER_CODE")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for name, min := range map[string]int{
		"sipas_commit_batch_size": 1, "sipas_commit_duration_seconds": 1, "sipas_index_read_seconds": 1,
		"sipas_writer_queue_depth": 1, "sipas_db_size_bytes": 1, "sipas_wal_size_bytes": 1,
		"grpc_server_handled_total": 1, "sipas_last_backup_timestamp_seconds": 1, "sipas_commit_failures_total": 1,
		"sipas_tally_checkpoints_total": 1, "sipas_tally_checkpoint_failures_total": 1,
	} {
		n, err := testutil.GatherAndCount(reg, name)
		if err != nil || n < min {
			t.Errorf("metric %s: %d series (%v)", name, n, err)
		}
	}
	// Labels are bounded: no response ids or credential ids in any label.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, metric := range mf.Metric {
			for _, l := range metric.Label {
				if strings.Contains(l.GetValue(), r.ResponseId) || strings.Contains(l.GetValue(), e.credIDs["surveyor"]) {
					t.Errorf("metric %s carries an id in label %s", mf.GetName(), l.GetName())
				}
			}
		}
	}
	// One structured line per RPC: method, code, duration and role.
	var lines int
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] != "rpc" {
			continue
		}
		lines++
		for _, k := range []string{"method", "code", "duration_ms", "role"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("rpc log line without %s: %q", k, line)
			}
		}
		if rec["method"] == sipasv1.SurveyService_SubmitResponse_FullMethodName && rec["role"] != "surveyor" {
			t.Errorf("submit logged with role %v", rec["role"])
		}
	}
	// mustCredential, 3 submits and 1 index read.
	if lines != 5 {
		t.Errorf("%d rpc log lines, want 5", lines)
	}
}
