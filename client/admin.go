package client

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"context"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Counts reads the exact number of responses per questionnaire, province,
// unit, month and channel of q's period (admins only; see
// sipas.Engine.Counts).
func (c *Client) Counts(ctx context.Context, q sipas.CountQuery) ([]sipas.ResponseCount, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	resp, err := c.Admin.CountResponses(cctx, &sipasv1.CountResponsesRequest{QuestionnaireId: q.QuestionnaireID,
		Period: PeriodToProto(q.Period), ProvinceCode: q.ProvinceCode, UnitId: q.UnitID, Channel: sipasv1.Channel(q.Channel)})
	if err != nil {
		return nil, FromStatus(err)
	}
	out := make([]sipas.ResponseCount, 0, len(resp.GetCounts()))
	for _, r := range resp.GetCounts() {
		out = append(out, ResponseCountFromProto(r))
	}
	return out, nil
}

// This file's other calls are the AdminService's, with domain values.

// CreateUnit registers a unit.
func (c *Client) CreateUnit(ctx context.Context, u sipas.Unit) (*sipas.Unit, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	resp, err := c.Admin.CreateUnit(cctx, &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{UnitId: u.ID, DisplayName: u.DisplayName,
		ProvinceCode: u.ProvinceCode, CommuneCode: u.CommuneCode}})
	if err != nil {
		return nil, FromStatus(err)
	}
	out := UnitFromProto(resp.GetUnit())
	return &out, nil
}

// Units lists the registered units, of one province when province is set.
func (c *Client) Units(ctx context.Context, province string) ([]sipas.Unit, error) {
	var out []sipas.Unit
	token := ""
	for {
		cctx, cancel := c.WithTimeout(ctx)
		resp, err := c.Admin.ListUnits(cctx, &sipasv1.ListUnitsRequest{PageToken: token, PageSize: 1000, ProvinceCode: province})
		cancel()
		if err != nil {
			return nil, FromStatus(err)
		}
		for _, u := range resp.GetUnits() {
			out = append(out, UnitFromProto(u))
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// CreateCredential issues a credential valid for ttl (0: no expiry) and
// returns it with its token, which the server shows only this once.
func (c *Client) CreateCredential(ctx context.Context, cred sipas.Credential, ttl time.Duration) (*sipas.Credential, string, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	req := &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{Role: sipasv1.Role(cred.Role), UnitId: cred.UnitID,
		ProvinceCodes: cred.Provinces, AllProvinces: cred.AllProvinces, Description: cred.Description}}
	if ttl > 0 {
		req.Ttl = durationpb.New(ttl)
	}
	resp, err := c.Admin.CreateCredential(cctx, req)
	if err != nil {
		return nil, "", FromStatus(err)
	}
	out := CredentialFromProto(resp.GetCredential())
	return &out, resp.GetToken(), nil
}

// Credentials lists the credentials (never their tokens); inactive ones
// (revoked or expired) too when includeInactive is set.
func (c *Client) Credentials(ctx context.Context, includeInactive bool) ([]sipas.Credential, error) {
	var out []sipas.Credential
	token := ""
	for {
		cctx, cancel := c.WithTimeout(ctx)
		resp, err := c.Admin.ListCredentials(cctx, &sipasv1.ListCredentialsRequest{PageToken: token, PageSize: 1000, ShowInactive: includeInactive})
		cancel()
		if err != nil {
			return nil, FromStatus(err)
		}
		for _, cr := range resp.GetCredentials() {
			out = append(out, CredentialFromProto(cr))
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// RevokeCredential revokes the credential with the given id.
func (c *Client) RevokeCredential(ctx context.Context, id string) (*sipas.Credential, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	resp, err := c.Admin.RevokeCredential(cctx, &sipasv1.RevokeCredentialRequest{Name: "credentials/" + id})
	if err != nil {
		return nil, FromStatus(err)
	}
	out := CredentialFromProto(resp.GetCredential())
	return &out, nil
}

// AuditEvents reads at most limit audit events, newest first.
func (c *Client) AuditEvents(ctx context.Context, limit int) ([]sipas.AuditEvent, error) {
	var out []sipas.AuditEvent
	token := ""
	for len(out) < limit {
		cctx, cancel := c.WithTimeout(ctx)
		resp, err := c.Admin.ListAuditEvents(cctx, &sipasv1.ListAuditEventsRequest{PageToken: token, PageSize: int32(min(limit-len(out), 1000))})
		cancel()
		if err != nil {
			return nil, FromStatus(err)
		}
		for _, ev := range resp.GetEvents() {
			out = append(out, sipas.AuditEvent{Seq: ev.GetSequence(), Time: ev.GetTime().AsTime().UTC(), Actor: ev.GetActor(),
				Action: ev.GetAction(), Target: ev.GetTarget(), Detail: ev.GetDetail()})
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	return out, nil
}

// Kiosks lists every active kiosk credential with the health its agent
// last reported.
func (c *Client) Kiosks(ctx context.Context) ([]sipas.KioskStatus, error) {
	var out []sipas.KioskStatus
	token := ""
	for {
		cctx, cancel := c.WithTimeout(ctx)
		resp, err := c.Admin.ListKiosks(cctx, &sipasv1.ListKiosksRequest{PageToken: token, PageSize: 1000})
		cancel()
		if err != nil {
			return nil, FromStatus(err)
		}
		for _, k := range resp.GetKiosks() {
			out = append(out, KioskStatusFromProto(k))
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// ErrBackupChecksum is returned by Backup when the copy received does not
// match the checksum the server computed.
var ErrBackupChecksum = errors.New("backup incomplete or corrupted in transfer (checksum mismatch)")

// Backup streams a consistent copy of the server's database into w and
// checks it against the server's SHA-256; it returns the number of
// responses the copy holds and its SHA-256 (hex).
func (c *Client) Backup(ctx context.Context, w io.Writer) (responses int64, sum string, err error) {
	stream, err := c.Admin.Backup(ctx, &sipasv1.BackupRequest{})
	if err != nil {
		return 0, "", FromStatus(err)
	}
	h := sha256.New()
	mw := io.MultiWriter(w, h)
	var last *sipasv1.BackupResponse
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, "", FromStatus(err)
		}
		if _, err := mw.Write(chunk.GetData()); err != nil {
			return 0, "", err
		}
		last = chunk
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if last == nil || last.GetSha256() != sum {
		return 0, "", ErrBackupChecksum
	}
	return last.GetResponses(), sum, nil
}
