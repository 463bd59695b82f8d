package main

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// kioskJSON is one kiosk as `admin kiosks list --format json` prints it.
type kioskJSON struct {
	CredentialID         string   `json:"credential_id"`
	UnitID               string   `json:"unit_id"`
	UnitName             string   `json:"unit_name"`
	ProvinceCode         string   `json:"province_code"`
	LastHeartbeat        *string  `json:"last_heartbeat"`
	LastResponse         *string  `json:"last_response"`
	QueueDepth           int64    `json:"queue_depth"`
	OldestPendingSeconds float64  `json:"oldest_pending_seconds"`
	DeadLetters          int64    `json:"dead_letters"`
	AgentVersion         string   `json:"agent_version"`
	ClockOffsetSeconds   *float64 `json:"clock_offset_seconds"`
	Silent               bool     `json:"silent"`
}

func optTime(ts *timestamppb.Timestamp) *string {
	if ts == nil {
		return nil
	}
	s := ts.AsTime().UTC().Format(time.RFC3339)
	return &s
}

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// kiosksList prints every active kiosk credential with its unit and the
// health its agent last reported.
func kiosksList(ctx context.Context, e *env, args []string) error {
	var c common
	var silentOnly bool
	fs := newFlags(e, "admin kiosks list", "sipas admin kiosks list [--silent] [--format table|csv|json]",
		"sipas admin kiosks list",
		"sipas admin kiosks list --silent --format csv   # kiosks without a heartbeat for 2 working hours")
	c.register(fs, e)
	fs.BoolVar(&silentOnly, "silent", false, "only kiosks silent for more than 2 hours of working time (Mon–Sat 07:00–17:00 Vietnam time)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	t := &table{header: []string{"credential", "unit", "province", "last_heartbeat", "last_response", "queue", "oldest_pending", "dead", "version", "clock_offset", "silent"}}
	var objs []kioskJSON
	token := ""
	for {
		cctx, cancel := cl.WithTimeout(ctx)
		resp, err := cl.Admin.ListKiosks(cctx, &sipasv1.ListKiosksRequest{PageToken: token, PageSize: 1000})
		cancel()
		if err != nil {
			return err
		}
		for _, k := range resp.Kiosks {
			if silentOnly && !k.Silent {
				continue
			}
			j := kioskJSON{CredentialID: k.CredentialId, UnitID: k.UnitId, UnitName: k.UnitDisplayName, ProvinceCode: k.ProvinceCode,
				LastHeartbeat: optTime(k.LastHeartbeatTime), LastResponse: optTime(k.LastResponseTime), QueueDepth: k.QueueDepth,
				OldestPendingSeconds: k.OldestPendingAge.AsDuration().Seconds(), DeadLetters: k.DeadLetters,
				AgentVersion: k.AgentVersion, Silent: k.Silent}
			offset := "-"
			if k.ClockOffset != nil {
				v := k.ClockOffset.AsDuration().Seconds()
				j.ClockOffsetSeconds = &v
				offset = k.ClockOffset.AsDuration().Round(time.Second).String()
			}
			objs = append(objs, j)
			silent := "no"
			if k.Silent {
				silent = "SILENT"
			}
			t.add(k.CredentialId, k.UnitId, k.ProvinceCode, orDash(j.LastHeartbeat), orDash(j.LastResponse), fmt.Sprint(k.QueueDepth),
				k.OldestPendingAge.AsDuration().Round(time.Second).String(), fmt.Sprint(k.DeadLetters), orDash(&k.AgentVersion), offset, silent)
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	if objs == nil {
		objs = []kioskJSON{}
	}
	t.objects = map[string]any{"kiosks": objs}
	return t.write(e.stdout, c.format)
}
