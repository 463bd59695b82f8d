package server

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// TestAdminChangeWithoutItsAuditIsNotMade: when the audit trail cannot be
// written, the AdminService's CreateCredential, CreateUnit and
// RevokeCredential fail and change nothing: no credential is left active
// whose token the caller never received, no unit appears, no revocation
// goes unrecorded.
func TestAdminChangeWithoutItsAuditIsNotMade(t *testing.T) {
	e := newTestEnv(t, nil)
	e.mustUnit("dn-1", "48")
	e.mustCredential("analyst", &sipasv1.Credential{Role: sipasv1.Role_ROLE_ANALYST, AllProvinces: true})

	// From here on the database refuses the admin's audit events.
	db, err := sql.Open("sqlite3", e.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events WHEN NEW.actor = '` + e.credIDs["admin"] + `'
		BEGIN SELECT RAISE(ABORT, 'audit write refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	before, err := e.admin.ListCredentials(e.as("admin"), &sipasv1.ListCredentialsRequest{ShowInactive: true})
	if err != nil {
		t.Fatal(err)
	}

	resp, err := e.admin.CreateCredential(e.as("admin"), &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-1"}})
	if err == nil {
		t.Fatalf("CreateCredential = %v though its audit write failed", resp)
	}
	if c := status.Code(err); c == codes.OK || c == codes.InvalidArgument {
		t.Fatalf("CreateCredential: %v; want a storage error", err)
	}
	if !strings.Contains(e.logs.String(), "audit write refused by the test") {
		t.Fatalf("CreateCredential failed for another reason than the audit write: %v", err)
	}
	after, err := e.admin.ListCredentials(e.as("admin"), &sipasv1.ListCredentialsRequest{ShowInactive: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Credentials) != len(before.Credentials) {
		t.Fatalf("credentials %d → %d after a create whose audit write failed", len(before.Credentials), len(after.Credentials))
	}

	if _, err := e.admin.CreateUnit(e.as("admin"), &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{UnitId: "dn-2", DisplayName: "Một cửa", ProvinceCode: "48"}}); err == nil {
		t.Fatal("CreateUnit succeeded though its audit write failed")
	}
	if _, err := e.admin.GetUnit(e.as("admin"), &sipasv1.GetUnitRequest{Name: "units/dn-2"}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetUnit(dn-2) after a failed create: %v; want NotFound", err)
	}

	if _, err := e.admin.RevokeCredential(e.as("admin"), &sipasv1.RevokeCredentialRequest{Name: "credentials/" + e.credIDs["analyst"]}); err == nil {
		t.Fatal("RevokeCredential succeeded though its audit write failed")
	}
	if c, err := e.store.GetCredential(context.Background(), e.credIDs["analyst"]); err != nil || c.RevokeTime != nil {
		t.Fatalf("analyst's credential after a revocation whose audit write failed = %+v, %v; want it unrevoked", c, err)
	}
}
