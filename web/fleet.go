package web

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// The fleet page lists the kiosk credentials with the health their agents
// last reported, for admins only. It reads them through the server's
// Reader.ListKiosks: the very handler of AdminService.ListKiosks (and of
// `sipas admin kiosks list`), after the same role policy.

// maxClockOffset is the offset beyond which a kiosk's responses are
// flagged clock_skew (server.MaxClockSkew); the page marks it.
const maxClockOffset = 5 * time.Minute

// fleetRow is one kiosk as the fleet page shows it.
type fleetRow struct {
	Credential, Unit, UnitName, Province string
	LastHeartbeat, LastResponse          string
	QueueDepth, DeadLetters              int64
	OldestPending                        string
	Version                              string
	ClockOffset                          string
	ClockOff                             bool // beyond maxClockOffset
	Silent, Never                        bool
}

type fleetPage struct {
	frame
	Rows          []fleetRow
	Total, Silent int
	Now           string
}

// fleetPageSize is the page size the fleet page lists kiosks by.
const fleetPageSize = 1000

func (h *Handler) fleet(w http.ResponseWriter, r *http.Request, rq *request) {
	ctx, l := r.Context(), rq.prm.Lang
	if !h.cfg.Reader.MayListKiosks(ctx, rq.p) {
		h.render(w, http.StatusForbidden, "error.html", errorPage{frame: h.frame(ctx, rq, l.t("error")), Code: http.StatusForbidden, Message: l.t("err_admin")})
		return
	}
	pg := fleetPage{frame: h.frame(ctx, rq, l.t("fleet")), Now: h.cfg.Now().In(sipas.VietnamZone).Format("2006-01-02 15:04")}
	token := ""
	for {
		resp, err := h.cfg.Reader.ListKiosks(ctx, rq.p, &sipasv1.ListKiosksRequest{PageSize: fleetPageSize, PageToken: token})
		if err != nil {
			if status.Code(err) == codes.PermissionDenied {
				h.render(w, http.StatusForbidden, "error.html", errorPage{frame: pg.frame, Code: http.StatusForbidden, Message: l.t("err_admin")})
				return
			}
			h.fail(w, r, rq, err)
			return
		}
		for _, k := range resp.GetKiosks() {
			pg.Rows = append(pg.Rows, fleetRowOf(k, l))
			if k.Silent {
				pg.Silent++
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	// Silent kiosks first: they are what an admin looks for.
	sort.SliceStable(pg.Rows, func(i, j int) bool { return pg.Rows[i].Silent && !pg.Rows[j].Silent })
	pg.Total = len(pg.Rows)
	h.render(w, http.StatusOK, "fleet.html", pg)
}

func fleetRowOf(k *sipasv1.Kiosk, l lang) fleetRow {
	row := fleetRow{Credential: k.CredentialId, Unit: k.UnitId, UnitName: k.UnitDisplayName, Province: k.ProvinceCode,
		QueueDepth: k.QueueDepth, DeadLetters: k.DeadLetters, Version: k.AgentVersion, Silent: k.Silent,
		LastHeartbeat: l.t("never"), LastResponse: "—", ClockOffset: "—", OldestPending: "—"}
	if k.LastHeartbeatTime != nil {
		row.LastHeartbeat = k.LastHeartbeatTime.AsTime().In(sipas.VietnamZone).Format("2006-01-02 15:04")
	} else {
		row.Never = true
	}
	if k.LastResponseTime != nil {
		row.LastResponse = k.LastResponseTime.AsTime().In(sipas.VietnamZone).Format("2006-01-02 15:04")
	}
	if k.OldestPendingAge != nil && k.QueueDepth > 0 {
		row.OldestPending = k.OldestPendingAge.AsDuration().Round(time.Second).String()
	}
	if k.ClockOffset != nil {
		d := k.ClockOffset.AsDuration()
		switch secs := d.Round(time.Second) / time.Second; {
		case secs == 0:
			row.ClockOffset = "0 s"
		default:
			row.ClockOffset = fmt.Sprintf("%+d s", secs)
		}
		row.ClockOff = d > maxClockOffset || d < -maxClockOffset
	}
	return row
}
