package server

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// MaxClockSkew is how far a kiosk's clock may be off the server's before
// its responses are flagged (sipas.FlagClockSkew).
const MaxClockSkew = 5 * time.Minute

// SilentAfter is how much working time without a heartbeat makes a kiosk
// silent: 2 hours of Monday–Saturday 07:00–17:00, Vietnam time.
const SilentAfter = 2 * time.Hour

// vietnam is Vietnam's time zone (UTC+7 all year, no daylight saving), fixed
// so that the server needs no time-zone database.
var vietnam = time.FixedZone("ICT", 7*3600)

// WorkingTimeBetween returns how much of [from, to] falls in working hours:
// Monday to Saturday, 07:00 to 17:00 Vietnam time.
func WorkingTimeBetween(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	var total time.Duration
	from, to = from.In(vietnam), to.In(vietnam)
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, vietnam)
	for ; day.Before(to); day = day.AddDate(0, 0, 1) {
		if day.Weekday() == time.Sunday {
			continue
		}
		start, end := day.Add(7*time.Hour), day.Add(17*time.Hour)
		if from.After(start) {
			start = from
		}
		if to.Before(end) {
			end = to
		}
		if end.After(start) {
			total += end.Sub(start)
		}
	}
	return total
}

// kioskTracker keeps, per kiosk credential, the clock offset of its last
// heartbeat (to flag its responses) and when it last had a response stored
// (written with its next heartbeat). It is memory only: after a restart a
// kiosk's next heartbeat fills it in again.
type kioskTracker struct {
	mu       sync.Mutex
	offset   map[string]time.Duration
	lastSeen map[string]time.Time
}

func newKioskTracker() *kioskTracker {
	return &kioskTracker{offset: map[string]time.Duration{}, lastSeen: map[string]time.Time{}}
}

// skewFlag returns FlagClockSkew when the kiosk's last measured clock offset
// exceeds MaxClockSkew.
func (k *kioskTracker) skewFlag(credentialID string) sipas.Flags {
	k.mu.Lock()
	defer k.mu.Unlock()
	if d := k.offset[credentialID]; d > MaxClockSkew || d < -MaxClockSkew {
		return sipas.FlagClockSkew
	}
	return 0
}

// stored notes that the kiosk had a response stored at t.
func (k *kioskTracker) stored(credentialID string, t time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t.After(k.lastSeen[credentialID]) {
		k.lastSeen[credentialID] = t
	}
}

func (k *kioskTracker) heartbeat(credentialID string, offset time.Duration) *time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.offset[credentialID] = offset
	if t, ok := k.lastSeen[credentialID]; ok {
		return &t
	}
	return nil
}

// noteKioskResponse records that a kiosk had a response stored.
func (s *Server) noteKioskResponse(p *Principal) {
	if p != nil && p.Role == sipasv1.Role_ROLE_KIOSK {
		s.kiosks.stored(p.CredentialID, s.cfg.Now())
	}
}

// kioskFlags returns the flags the server adds to a kiosk's response.
func (s *Server) kioskFlags(p *Principal) sipas.Flags {
	if p == nil || p.Role != sipasv1.Role_ROLE_KIOSK {
		return 0
	}
	return s.kiosks.skewFlag(p.CredentialID)
}

func (h *surveyService) ReportKioskHeartbeat(ctx context.Context, req *sipasv1.ReportKioskHeartbeatRequest) (*sipasv1.ReportKioskHeartbeatResponse, error) {
	p := principalFrom(ctx)
	now := h.s.cfg.Now()
	var vs []sipas.Violation
	if err := req.GetSendTime().CheckValid(); err != nil {
		vs = append(vs, sipas.Violation{Field: "send_time", Reason: "REQUIRED", Description: "send_time must be the kiosk's clock at sending"})
	}
	if req.GetQueueDepth() < 0 || req.GetDeadLetters() < 0 || req.GetOldestPendingAge().AsDuration() < 0 {
		vs = append(vs, sipas.Violation{Field: "queue_depth", Reason: "NEGATIVE", Description: "queue_depth, dead_letters and oldest_pending_age must not be negative"})
	}
	if len(req.GetAgentVersion()) > 100 {
		vs = append(vs, sipas.Violation{Field: "agent_version", Reason: "TOO_LONG", Description: "agent_version is at most 100 bytes"})
	}
	if len(vs) > 0 {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("report kiosk heartbeat", vs...))
	}
	// The server's own measure of the offset (kiosk minus server, one-way
	// latency included), not the agent's, decides the clock-skew flag.
	offset := req.GetSendTime().AsTime().Sub(now)
	hb := store.KioskHeartbeat{
		CredentialID: p.CredentialID, Time: now, QueueDepth: req.GetQueueDepth(),
		OldestPending: req.GetOldestPendingAge().AsDuration(), DeadLetters: req.GetDeadLetters(),
		AgentVersion: req.GetAgentVersion(), ClockOffset: offset,
		LastResponse: h.s.kiosks.heartbeat(p.CredentialID, offset),
	}
	if hb.LastResponse == nil && req.GetLastSendTime() != nil {
		// Known from the agent only (e.g. after a server restart): its
		// clock, corrected by the measured offset.
		t := req.GetLastSendTime().AsTime().Add(-offset)
		hb.LastResponse = &t
	}
	if err := h.s.cfg.Store.RecordKioskHeartbeat(ctx, hb); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &sipasv1.ReportKioskHeartbeatResponse{ServerTime: timestamppb.New(now)}, nil
}

func kioskToProto(k store.Kiosk, now time.Time) *sipasv1.Kiosk {
	out := &sipasv1.Kiosk{
		CredentialId: k.CredentialID, UnitId: k.Unit.ID, UnitDisplayName: k.Unit.DisplayName,
		ProvinceCode: k.Unit.ProvinceCode, Description: k.Description,
	}
	last := k.CreateTime
	if hb := k.Heartbeat; hb != nil {
		last = hb.Time
		out.LastHeartbeatTime = timestamppb.New(hb.Time)
		out.QueueDepth, out.DeadLetters, out.AgentVersion = hb.QueueDepth, hb.DeadLetters, hb.AgentVersion
		out.OldestPendingAge = durationpb.New(hb.OldestPending)
		out.ClockOffset = durationpb.New(hb.ClockOffset)
		if hb.LastResponse != nil {
			out.LastResponseTime = timestamppb.New(*hb.LastResponse)
		}
	}
	out.Silent = WorkingTimeBetween(last, now) > SilentAfter
	return out
}

func (h *adminService) ListKiosks(ctx context.Context, req *sipasv1.ListKiosksRequest) (*sipasv1.ListKiosksResponse, error) {
	size, err := pageSize(req.GetPageSize(), 100, 1000)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	ks, err := h.s.cfg.Store.ListKiosks(ctx, req.GetPageToken(), size+1)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	now := h.s.cfg.Now()
	out := &sipasv1.ListKiosksResponse{}
	for i, k := range ks {
		if i == size {
			out.NextPageToken = ks[size-1].CredentialID
			break
		}
		out.Kiosks = append(out.Kiosks, kioskToProto(k, now))
	}
	return out, nil
}

// kioskCollector exports, at scrape time, how many kiosk credentials are
// active and how many of them are silent (SilentAfter of working time
// without a heartbeat). No kiosk id is ever a label.
type kioskCollector struct {
	s             *Server
	kiosks, quiet *prometheus.Desc
}

func (c *kioskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.kiosks; ch <- c.quiet }

func (c *kioskCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.s.cfg.Now()
	total, silent := 0, 0
	after := ""
	for {
		ks, err := c.s.cfg.Store.ListKiosks(ctx, after, 1000)
		if err != nil {
			c.s.log.Warn("counting silent kiosks", "err", err)
			return
		}
		for _, k := range ks {
			total++
			if kioskToProto(k, now).Silent {
				silent++
			}
		}
		if len(ks) < 1000 {
			break
		}
		after = ks[len(ks)-1].CredentialID
	}
	ch <- prometheus.MustNewConstMetric(c.kiosks, prometheus.GaugeValue, float64(total))
	ch <- prometheus.MustNewConstMetric(c.quiet, prometheus.GaugeValue, float64(silent))
}

// watchKiosks registers the kiosk fleet gauges.
func (m *Metrics) watchKiosks(s *Server) error {
	return m.reg.Register(&kioskCollector{s: s,
		kiosks: prometheus.NewDesc("sipas_kiosks", "Active kiosk credentials.", nil, nil),
		quiet: prometheus.NewDesc("sipas_kiosks_silent",
			"Active kiosks without a heartbeat for more than 2 hours of working time (Monday–Saturday 07:00–17:00 Vietnam time).", nil, nil),
	})
}
