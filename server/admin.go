package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// adminService implements sipas.v1.AdminService. Every change is recorded
// in the audit trail with the calling credential as actor.
type adminService struct {
	sipasv1.UnimplementedAdminServiceServer
	s *Server
}

func actorOf(ctx context.Context) string {
	if p := principalFrom(ctx); p != nil {
		return p.CredentialID
	}
	return "system"
}

func (h *adminService) audit(ctx context.Context, action, target, detail string) error {
	return h.s.cfg.Store.AppendAudit(ctx, actorOf(ctx), action, target, detail)
}

// auditEvent is the audit event of an action of the caller, written by the
// store in the transaction of the change it records.
func auditEvent(ctx context.Context, action, target, detail string) store.AuditEvent {
	return store.AuditEvent{Actor: actorOf(ctx), Action: action, Target: target, Detail: detail}
}

func unitToProto(u *store.Unit) *sipasv1.Unit {
	return &sipasv1.Unit{Name: "units/" + u.ID, UnitId: u.ID, DisplayName: u.DisplayName, ProvinceCode: u.ProvinceCode,
		CommuneCode: u.CommuneCode, CreateTime: timestamppb.New(u.CreateTime)}
}

func (h *adminService) CreateUnit(ctx context.Context, req *sipasv1.CreateUnitRequest) (*sipasv1.CreateUnitResponse, error) {
	u := req.GetUnit()
	su := store.Unit{ID: u.GetUnitId(), DisplayName: strings.TrimSpace(u.GetDisplayName()), ProvinceCode: u.GetProvinceCode(),
		CommuneCode: u.GetCommuneCode(), CreateTime: h.s.cfg.Now()}
	if err := sipas.CheckUnit(su, su.CreateTime, h.s.cfg.Registry); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if err := h.s.cfg.Store.CreateUnit(ctx, su, auditEvent(ctx, "unit.create", "units/"+su.ID, "province="+su.ProvinceCode)); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &sipasv1.CreateUnitResponse{Unit: unitToProto(&su)}, nil
}

func (h *adminService) GetUnit(ctx context.Context, req *sipasv1.GetUnitRequest) (*sipasv1.GetUnitResponse, error) {
	id, ok := strings.CutPrefix(req.GetName(), "units/")
	if !ok || id == "" {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("get unit", sipas.Violation{Field: "name", Reason: "INVALID_NAME", Description: `must be "units/{unit_id}"`}))
	}
	u, err := h.s.cfg.Store.GetUnit(ctx, id)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &sipasv1.GetUnitResponse{Unit: unitToProto(u)}, nil
}

func (h *adminService) ListUnits(ctx context.Context, req *sipasv1.ListUnitsRequest) (*sipasv1.ListUnitsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	units, err := h.s.cfg.Store.ListUnits(ctx, req.GetProvinceCode(), req.GetPageToken(), size+1)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	out := &sipasv1.ListUnitsResponse{}
	for i := range units {
		if i == size {
			out.NextPageToken = units[size-1].ID
			break
		}
		out.Units = append(out.Units, unitToProto(&units[i]))
	}
	return out, nil
}

func credentialToProto(c *store.Credential) *sipasv1.Credential {
	out := &sipasv1.Credential{Name: "credentials/" + c.ID, CredentialId: c.ID, Role: sipasv1.Role(c.Role), UnitId: c.UnitID,
		ProvinceCodes: c.Provinces, AllProvinces: c.AllProvinces, Description: c.Description, CreateTime: timestamppb.New(c.CreateTime)}
	if c.ExpireTime != nil {
		out.ExpireTime = timestamppb.New(*c.ExpireTime)
	}
	if c.RevokeTime != nil {
		out.RevokeTime = timestamppb.New(*c.RevokeTime)
	}
	return out
}

func (h *adminService) CreateCredential(ctx context.Context, req *sipasv1.CreateCredentialRequest) (*sipasv1.CreateCredentialResponse, error) {
	const op = "create credential"
	c := req.GetCredential()
	now := h.s.cfg.Now()
	cred := sipas.Credential{Role: sipas.CredentialRole(c.GetRole()), UnitID: c.GetUnitId(), Provinces: c.GetProvinceCodes(),
		AllProvinces: c.GetAllProvinces(), Description: c.GetDescription(), CreateTime: now}
	// What the request says about expiry (ttl or expire_time) is checked
	// here; the rules of the credential, in sipas.CheckCredential.
	var vs []sipas.Violation
	bad := func(field, reason, desc string) {
		vs = append(vs, sipas.Violation{Field: field, Reason: reason, Description: desc})
	}
	switch {
	case req.GetTtl() != nil && c.GetExpireTime() != nil:
		bad("ttl", "CONFLICT", "give ttl or credential.expire_time, not both")
	case req.GetTtl() != nil:
		if d := req.GetTtl().AsDuration(); d <= 0 {
			bad("ttl", "NOT_POSITIVE", "must be positive")
		} else {
			t := now.Add(d)
			cred.ExpireTime = &t
		}
	case c.GetExpireTime() != nil && c.GetExpireTime().CheckValid() != nil:
		bad("credential.expire_time", "INVALID_TIMESTAMP", "not a valid Timestamp: nanos must be 0 to 999999999 and the year 1 to 9999")
	case c.GetExpireTime() != nil:
		t := c.GetExpireTime().AsTime()
		cred.ExpireTime = &t
	}
	if cred.Role == sipas.RoleKiosk && cred.UnitID != "" {
		if _, err := h.s.cfg.Store.GetUnit(ctx, cred.UnitID); err != nil {
			if sipas.KindOf(err) != sipas.KindNotFound {
				return nil, toStatus(ctx, h.s.log, err)
			}
			bad("credential.unit_id", "UNKNOWN_UNIT", "no such unit; create it first with 'sipas admin units create'")
		}
	}
	sc, token, audit, err := NewCredential(cred, h.s.cfg.Registry, actorOf(ctx))
	if e, ok := err.(*sipas.Error); ok && e.Kind == sipas.KindInvalid {
		vs = append(e.Violations, vs...)
	} else if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if len(vs) > 0 {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid(op, vs...))
	}
	stored, err := h.s.cfg.Store.CreateCredential(ctx, sc, audit)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &sipasv1.CreateCredentialResponse{Credential: credentialToProto(stored), Token: token}, nil
}

func (h *adminService) ListCredentials(ctx context.Context, req *sipasv1.ListCredentialsRequest) (*sipasv1.ListCredentialsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	creds, err := h.s.cfg.Store.ListCredentials(ctx, req.GetPageToken(), size+1, req.GetShowInactive())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	out := &sipasv1.ListCredentialsResponse{}
	for i, c := range creds {
		if i == size {
			out.NextPageToken = creds[size-1].ID
			break
		}
		out.Credentials = append(out.Credentials, credentialToProto(c))
	}
	return out, nil
}

func (h *adminService) RevokeCredential(ctx context.Context, req *sipasv1.RevokeCredentialRequest) (*sipasv1.RevokeCredentialResponse, error) {
	id, ok := strings.CutPrefix(req.GetName(), "credentials/")
	if !ok || id == "" {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("revoke credential", sipas.Violation{Field: "name", Reason: "INVALID_NAME", Description: `must be "credentials/{credential_id}"`}))
	}
	if err := h.s.cfg.Store.RevokeCredential(ctx, id, h.s.cfg.Now(), auditEvent(ctx, "credential.revoke", "credentials/"+id, "")); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	h.s.auth.forget(id)
	c, err := h.s.cfg.Store.GetCredential(ctx, id)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &sipasv1.RevokeCredentialResponse{Credential: credentialToProto(c)}, nil
}

// backupChunk is the size of one Backup stream message (below MaxSendMsgSize).
const backupChunk = 1 << 20

func (h *adminService) Backup(_ *sipasv1.BackupRequest, stream sipasv1.AdminService_BackupServer) error {
	ctx := stream.Context()
	if h.s.cfg.Store.BackupDir() == "" {
		// This backend makes no copies (PostgreSQL): its refusal says how
		// it is backed up.
		_, err := h.s.cfg.Store.Backup(ctx, "")
		return toStatus(ctx, h.s.log, err)
	}
	dir, err := os.MkdirTemp(h.s.cfg.Store.BackupDir(), ".backup-")
	if err != nil {
		return toStatus(ctx, h.s.log, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "backup.db")
	n, err := h.s.cfg.Store.Backup(ctx, tmp)
	if err != nil {
		return toStatus(ctx, h.s.log, err)
	}
	if err := h.audit(ctx, "backup", "api", "responses="+strconv.FormatInt(n, 10)); err != nil {
		return toStatus(ctx, h.s.log, err)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return toStatus(ctx, h.s.log, err)
	}
	defer f.Close()
	sum := sha256.New()
	buf := make([]byte, backupChunk)
	for {
		k, rerr := io.ReadFull(f, buf)
		if k > 0 {
			sum.Write(buf[:k])
			if err := stream.Send(&sipasv1.BackupResponse{Data: buf[:k]}); err != nil {
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return toStatus(ctx, h.s.log, rerr)
		}
	}
	h.s.NoteBackup()
	return stream.Send(&sipasv1.BackupResponse{Responses: n, Sha256: hex.EncodeToString(sum.Sum(nil))})
}

func (h *adminService) ListAuditEvents(ctx context.Context, req *sipasv1.ListAuditEventsRequest) (*sipasv1.ListAuditEventsResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	var before int64
	if t := req.GetPageToken(); t != "" {
		if before, err = strconv.ParseInt(t, 10, 64); err != nil || before <= 0 {
			return nil, toStatus(ctx, h.s.log, sipas.Invalid("list audit events", sipas.Violation{Field: "page_token", Reason: "INVALID_PAGE_TOKEN", Description: "use a next_page_token of a previous call"}))
		}
	}
	evs, err := h.s.cfg.Store.ListAudit(ctx, before, size+1)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	out := &sipasv1.ListAuditEventsResponse{}
	for i, ev := range evs {
		if i == size {
			out.NextPageToken = strconv.FormatInt(evs[size-1].Seq, 10)
			break
		}
		out.Events = append(out.Events, &sipasv1.AuditEvent{Sequence: ev.Seq, Time: timestamppb.New(ev.Time), Actor: ev.Actor,
			Action: ev.Action, Target: ev.Target, Detail: ev.Detail})
	}
	return out, nil
}

// CountResponses returns exact response counts for operations (see the
// proto): admins only, counts only, no disclosure control.
func (h *adminService) CountResponses(ctx context.Context, req *sipasv1.CountResponsesRequest) (*sipasv1.CountResponsesResponse, error) {
	if err := checkPeriod(req.GetPeriod(), "period"); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	rows, err := h.s.cfg.Engine.Counts(sipas.CountQuery{QuestionnaireID: req.GetQuestionnaireId(), Period: periodFromProto(req.GetPeriod()),
		ProvinceCode: req.GetProvinceCode(), UnitID: req.GetUnitId(), Channel: sipas.Channel(req.GetChannel())})
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	out := &sipasv1.CountResponsesResponse{Counts: make([]*sipasv1.ResponseCount, 0, len(rows))}
	for _, r := range rows {
		out.Counts = append(out.Counts, &sipasv1.ResponseCount{QuestionnaireId: r.QuestionnaireID, ProvinceCode: r.ProvinceCode, UnitId: r.UnitID,
			Month: &sipasv1.Period{Year: int32(r.Month / 100), Month: int32(r.Month % 100)}, Channel: sipasv1.Channel(r.Channel), Responses: r.Responses})
	}
	return out, nil
}
