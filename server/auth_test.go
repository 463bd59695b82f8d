package server

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// TestEveryMethodHasPolicy enumerates the methods the server registers and
// fails if one has no access policy (default deny would refuse it, but an
// unlisted method is a forgotten decision).
func TestEveryMethodHasPolicy(t *testing.T) {
	e := newTestEnv(t, nil)
	n := 0
	for svc, info := range e.srv.GRPC().GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			n++
			if _, ok := policies[full]; !ok {
				t.Errorf("method %s has no policy", full)
			}
		}
	}
	if n < 19 {
		t.Errorf("only %d methods registered; expected the three services and health", n)
	}
}

// TestUnknownMethodDenied checks default deny for a method without a policy.
func TestUnknownMethodDenied(t *testing.T) {
	a := &authenticator{}
	if _, _, err := a.authorize(context.Background(), "/sipas.v1.SurveyService/Nope"); err != errUnknownMethod {
		t.Fatalf("authorize(unknown) = %v, want errUnknownMethod", err)
	}
}

// matrixEnv prepares principals of every kind.
func matrixEnv(t *testing.T) *testEnv {
	e := newTestEnv(t, func(c *Config) { c.RatePerSecond = -1 })
	ctx := context.Background()
	e.mustUnit("dn-1", "48")
	e.mustCredential("kiosk", &sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-1"})
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, ProvinceCodes: []string{"48"}})
	e.mustCredential("analyst-all", &sipasv1.Credential{Role: sipasv1.Role_ROLE_ANALYST, AllProvinces: true})
	e.mustCredential("analyst-48", &sipasv1.Credential{Role: sipasv1.Role_ROLE_ANALYST, ProvinceCodes: []string{"48"}})
	e.mustCredential("revoked", &sipasv1.Credential{Role: sipasv1.Role_ROLE_ADMIN})
	if _, err := e.admin.RevokeCredential(e.as("admin"), &sipasv1.RevokeCredentialRequest{Name: "credentials/" + e.credIDs["revoked"]}); err != nil {
		t.Fatal(err)
	}
	tok, hash := NewToken()
	past := time.Now().Add(-time.Minute)
	if _, err := e.store.CreateCredential(ctx, store.Credential{TokenHash: hash, Credential: sipas.Credential{Role: sipas.RoleAdmin, ExpireTime: &past}}, store.AuditEvent{Actor: "test", Action: "credential.create"}); err != nil {
		t.Fatal(err)
	}
	e.tokens["expired"] = tok
	e.tokens["malformed"] = "sps_this-token-was-never-issued"
	e.tokens["missing"] = ""
	return e
}

// call is one RPC made with a principal's context.
type call func(e *testEnv, ctx context.Context) error

func drainStream[T any](recv func() (T, error)) error {
	for {
		if _, err := recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

var seq atomic.Int64

// sentBySurveyor submits a new response as the matrix's surveyor and
// returns it.
func (e *testEnv) sentBySurveyor() *sipasv1.Response {
	e.t.Helper()
	r := serviceResponse(e.t, e.cat, "48", time.Now())
	if _, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: r}); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func matrixCalls() map[string]call {
	year := int32(time.Now().In(time.FixedZone("ICT", 7*3600)).Year())
	period := &sipasv1.Period{Year: year}
	prov48 := &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: "48"}}
	return map[string]call{
		sipasv1.SurveyService_GetQuestionnaire_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.survey.GetQuestionnaire(ctx, &sipasv1.GetQuestionnaireRequest{Name: "questionnaires/sipas-2023"})
			return err
		},
		sipasv1.SurveyService_ListQuestionnaires_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.survey.ListQuestionnaires(ctx, &sipasv1.ListQuestionnairesRequest{})
			return err
		},
		sipasv1.SurveyService_SubmitResponse_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.survey.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: serviceResponse(e.t, e.cat, "48", time.Now())})
			return err
		},
		sipasv1.SurveyService_UploadBatch_FullMethodName: func(e *testEnv, ctx context.Context) error {
			st, err := e.survey.UploadBatch(ctx)
			if err != nil {
				return err
			}
			if err := st.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: 2, Response: serviceResponse(e.t, e.cat, "48", time.Now())}}}); err != nil && err != io.EOF {
				return err
			}
			if err := st.CloseSend(); err != nil {
				return err
			}
			return drainStream(st.Recv)
		},
		sipasv1.IndexService_GetIndex_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.index.GetIndex(ctx, &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023", Scope: prov48, Period: period})
			return err
		},
		sipasv1.IndexService_RankProvinces_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.index.RankProvinces(ctx, &sipasv1.RankProvincesRequest{QuestionnaireId: "sipas-2023", Period: period})
			return err
		},
		sipasv1.IndexService_RankUnits_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.index.RankUnits(ctx, &sipasv1.RankUnitsRequest{QuestionnaireId: "sipas-2023", ProvinceCode: "48", Period: period})
			return err
		},
		sipasv1.IndexService_GetSeries_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.index.GetSeries(ctx, &sipasv1.GetSeriesRequest{QuestionnaireId: "sipas-2023", Scope: prov48,
				From: &sipasv1.Period{Year: year - 1}, To: period})
			return err
		},
		sipasv1.IndexService_GetWeakPoints_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.index.GetWeakPoints(ctx, &sipasv1.GetWeakPointsRequest{QuestionnaireId: "sipas-2023", ProvinceCode: "48", Period: period})
			return err
		},
		sipasv1.AdminService_CreateUnit_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.admin.CreateUnit(ctx, &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{
				UnitId: fmt.Sprintf("u-%d", seq.Add(1)), DisplayName: "Một cửa", ProvinceCode: "48"}})
			return err
		},
		sipasv1.AdminService_GetUnit_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.admin.GetUnit(ctx, &sipasv1.GetUnitRequest{Name: "units/dn-1"})
			return err
		},
		sipasv1.AdminService_ListUnits_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.admin.ListUnits(ctx, &sipasv1.ListUnitsRequest{})
			return err
		},
		sipasv1.AdminService_CreateCredential_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.admin.CreateCredential(ctx, &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{
				Role: sipasv1.Role_ROLE_ANALYST, ProvinceCodes: []string{"48"}}})
			return err
		},
		sipasv1.AdminService_ListCredentials_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.admin.ListCredentials(ctx, &sipasv1.ListCredentialsRequest{})
			return err
		},
		sipasv1.AdminService_RevokeCredential_FullMethodName: func(e *testEnv, ctx context.Context) error {
			// A fresh victim each time, issued by the real admin.
			victim, err := e.admin.CreateCredential(e.as("admin"), &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{
				Role: sipasv1.Role_ROLE_ANALYST, AllProvinces: true}})
			if err != nil {
				e.t.Fatal(err)
			}
			_, err = e.admin.RevokeCredential(ctx, &sipasv1.RevokeCredentialRequest{Name: victim.Credential.Name})
			return err
		},
		sipasv1.AdminService_Backup_FullMethodName: func(e *testEnv, ctx context.Context) error {
			st, err := e.admin.Backup(ctx, &sipasv1.BackupRequest{})
			if err != nil {
				return err
			}
			return drainStream(st.Recv)
		},
		sipasv1.AdminService_ListAuditEvents_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.admin.ListAuditEvents(ctx, &sipasv1.ListAuditEventsRequest{})
			return err
		},
		sipasv1.AdminService_ListKiosks_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.admin.ListKiosks(ctx, &sipasv1.ListKiosksRequest{})
			return err
		},
		sipasv1.SurveyService_ReportKioskHeartbeat_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.survey.ReportKioskHeartbeat(ctx, &sipasv1.ReportKioskHeartbeatRequest{SendTime: timestamppb.Now(), AgentVersion: "test"})
			return err
		},
		sipasv1.AdminService_CountResponses_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.admin.CountResponses(ctx, &sipasv1.CountResponsesRequest{Period: period})
			return err
		},
		// Corrections: of a response the surveyor sent just before, so that
		// the surveyor (its sender) and an admin may, and nobody else.
		sipasv1.SurveyService_WithdrawResponse_FullMethodName: func(e *testEnv, ctx context.Context) error {
			id := e.sentBySurveyor().ResponseId
			_, err := e.survey.WithdrawResponse(ctx, &sipasv1.WithdrawResponseRequest{ResponseId: id, Reason: "matrix"})
			return err
		},
		sipasv1.SurveyService_AmendResponse_FullMethodName: func(e *testEnv, ctx context.Context) error {
			r := e.sentBySurveyor()
			r.Channel = sipasv1.Channel_CHANNEL_PHONE
			_, err := e.survey.AmendResponse(ctx, &sipasv1.AmendResponseRequest{Response: r, Reason: "matrix"})
			return err
		},
		sipasv1.SurveyService_GetResponseHistory_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.survey.GetResponseHistory(ctx, &sipasv1.GetResponseHistoryRequest{ResponseId: e.sentBySurveyor().ResponseId})
			return err
		},
		sipasv1.AdminService_ClosePeriod_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.admin.ClosePeriod(ctx, &sipasv1.ClosePeriodRequest{Period: &sipasv1.Period{Year: 2019}, Reason: "matrix"})
			return err
		},
		sipasv1.AdminService_ListClosedPeriods_FullMethodName: func(e *testEnv, ctx context.Context) error {
			_, err := e.admin.ListClosedPeriods(ctx, &sipasv1.ListClosedPeriodsRequest{})
			return err
		},
		sipasv1.AdminService_ReopenPeriod_FullMethodName: func(e *testEnv, ctx context.Context) error {
			if _, err := e.admin.ClosePeriod(e.as("admin"), &sipasv1.ClosePeriodRequest{Period: &sipasv1.Period{Year: 2018}}); err != nil {
				e.t.Fatal(err)
			}
			_, err := e.admin.ReopenPeriod(ctx, &sipasv1.ReopenPeriodRequest{Period: &sipasv1.Period{Year: 2018}, Reason: "matrix"})
			return err
		},
		"/grpc.health.v1.Health/Check": func(e *testEnv, ctx context.Context) error {
			_, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		},
	}
}

// TestAuthorizationMatrix runs every RPC as every kind of caller and asserts
// the exact status code.
func TestAuthorizationMatrix(t *testing.T) {
	e := matrixEnv(t)
	const (
		OK = codes.OK
		PD = codes.PermissionDenied
		UA = codes.Unauthenticated
	)
	principals := []string{"admin", "kiosk", "surveyor", "analyst-all", "analyst-48", "revoked", "expired", "malformed", "missing"}
	// Expected codes for the valid principals; invalid tokens always get UA
	// (except on the open health service).
	allowed := map[string]map[string]codes.Code{}
	set := func(method string, codesByPrincipal ...codes.Code) {
		m := map[string]codes.Code{}
		for i, p := range principals[:5] {
			m[p] = codesByPrincipal[i]
		}
		allowed[method] = m
	}
	//                                                        admin kiosk surveyor analyst-all analyst-48
	set(sipasv1.SurveyService_GetQuestionnaire_FullMethodName, OK, OK, OK, OK, OK)
	set(sipasv1.SurveyService_ListQuestionnaires_FullMethodName, OK, OK, OK, OK, OK)
	set(sipasv1.SurveyService_SubmitResponse_FullMethodName, PD, OK, OK, PD, PD)
	set(sipasv1.SurveyService_UploadBatch_FullMethodName, PD, PD, OK, PD, PD)
	set(sipasv1.SurveyService_ReportKioskHeartbeat_FullMethodName, PD, OK, PD, PD, PD)
	set(sipasv1.SurveyService_WithdrawResponse_FullMethodName, OK, PD, OK, PD, PD)
	set(sipasv1.SurveyService_AmendResponse_FullMethodName, OK, PD, OK, PD, PD)
	set(sipasv1.SurveyService_GetResponseHistory_FullMethodName, OK, PD, OK, PD, PD)
	set(sipasv1.IndexService_GetIndex_FullMethodName, OK, PD, PD, OK, OK)
	set(sipasv1.IndexService_RankProvinces_FullMethodName, OK, PD, PD, OK, PD)
	set(sipasv1.IndexService_RankUnits_FullMethodName, OK, PD, PD, OK, OK)
	set(sipasv1.IndexService_GetSeries_FullMethodName, OK, PD, PD, OK, OK)
	set(sipasv1.IndexService_GetWeakPoints_FullMethodName, OK, PD, PD, OK, OK)
	for _, m := range []string{
		sipasv1.AdminService_CreateUnit_FullMethodName, sipasv1.AdminService_GetUnit_FullMethodName,
		sipasv1.AdminService_ListUnits_FullMethodName, sipasv1.AdminService_CreateCredential_FullMethodName,
		sipasv1.AdminService_ListCredentials_FullMethodName, sipasv1.AdminService_RevokeCredential_FullMethodName,
		sipasv1.AdminService_Backup_FullMethodName, sipasv1.AdminService_ListAuditEvents_FullMethodName,
		sipasv1.AdminService_ListKiosks_FullMethodName,
		sipasv1.AdminService_CountResponses_FullMethodName,
		sipasv1.AdminService_ClosePeriod_FullMethodName, sipasv1.AdminService_ListClosedPeriods_FullMethodName,
		sipasv1.AdminService_ReopenPeriod_FullMethodName,
	} {
		set(m, OK, PD, PD, PD, PD)
	}
	set("/grpc.health.v1.Health/Check", OK, OK, OK, OK, OK)

	calls := matrixCalls()
	methods := make([]string, 0, len(calls))
	for m := range calls {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	cases := 0
	for _, m := range methods {
		for _, p := range principals {
			want, ok := allowed[m][p]
			if !ok {
				want = UA
				if strings.HasPrefix(m, "/grpc.health") {
					want = OK
				}
			}
			cases++
			t.Run(strings.TrimPrefix(m, "/")+"/"+p, func(t *testing.T) {
				err := calls[m](e, e.as(p))
				if got := status.Code(err); got != want {
					t.Errorf("%s as %s: code %v (%v), want %v", m, p, got, err, want)
				}
			})
		}
	}
	if cases < 60 {
		t.Fatalf("only %d cases", cases)
	}
	// Every method the server registers is in the matrix.
	for svc, info := range e.srv.GRPC().GetServiceInfo() {
		for _, mi := range info.Methods {
			full := "/" + svc + "/" + mi.Name
			if _, ok := calls[full]; !ok && !strings.HasPrefix(full, "/grpc.health") {
				t.Errorf("method %s is not in the authorization matrix", full)
			}
		}
	}
}

// TestKioskScopeFromCredential: a kiosk's unit and province come from its
// credential; a body naming another unit or province is refused.
func TestKioskScopeFromCredential(t *testing.T) {
	e := matrixEnv(t)
	e.mustUnit("hn-1", "01")
	before := e.countResponses()
	r := serviceResponse(t, e.cat, "", time.Now())
	r.UnitId = "hn-1"
	_, err := e.survey.SubmitResponse(e.as("kiosk"), &sipasv1.SubmitResponseRequest{Response: r})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("kiosk naming another unit: %v, want PermissionDenied", err)
	}
	r = serviceResponse(t, e.cat, "01", time.Now())
	_, err = e.survey.SubmitResponse(e.as("kiosk"), &sipasv1.SubmitResponseRequest{Response: r})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("kiosk naming another province: %v, want PermissionDenied", err)
	}
	if n := e.countResponses(); n != before {
		t.Fatalf("refused submissions stored rows: %d -> %d", before, n)
	}
	// Without unit and province, the credential's are used.
	r = serviceResponse(t, e.cat, "", time.Now())
	r.Channel = 0
	ack, err := e.survey.SubmitResponse(e.as("kiosk"), &sipasv1.SubmitResponseRequest{Response: r})
	if err != nil {
		t.Fatal(err)
	}
	if ack.ProvinceCode != "48" {
		t.Errorf("counted for province %q, want 48", ack.ProvinceCode)
	}
	got, _, _, err := e.store.GetResponse(context.Background(), r.ResponseId)
	if err != nil {
		t.Fatal(err)
	}
	if got.UnitID != "dn-1" || got.ProvinceCode != "48" || got.Channel != 1 {
		t.Errorf("stored unit %q province %q channel %d, want dn-1, 48, kiosk", got.UnitID, got.ProvinceCode, got.Channel)
	}
}

// TestSurveyorBatchOutOfScope: items of provinces outside the surveyor's
// scope are rejected one by one; the others go in.
func TestSurveyorBatchOutOfScope(t *testing.T) {
	e := matrixEnv(t)
	st, err := e.survey.UploadBatch(e.as("surveyor"))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"48", "01", "48", "79"} {
		if err := st.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: int64(i + 2), Response: serviceResponse(t, e.cat, p, time.Now())}}}); err != nil {
			t.Fatal(err)
		}
	}
	st.CloseSend()
	var results []*sipasv1.ItemResult
	var summary *sipasv1.BatchSummary
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if c := m.GetChunk(); c != nil {
			results = append(results, c.Results...)
		}
		if s := m.GetSummary(); s != nil {
			summary = s
		}
	}
	if summary == nil || summary.Accepted != 2 || summary.Rejected != 2 || summary.Received != 4 {
		t.Fatalf("summary %v, want 2 accepted 2 rejected of 4", summary)
	}
	for _, r := range results {
		wantRejected := r.Line == 3 || r.Line == 5
		if (r.Outcome == sipasv1.ItemOutcome_ITEM_OUTCOME_REJECTED) != wantRejected {
			t.Errorf("line %d outcome %v", r.Line, r.Outcome)
		}
		if wantRejected && r.Reason != "PROVINCE_OUT_OF_SCOPE" {
			t.Errorf("line %d reason %q, want PROVINCE_OUT_OF_SCOPE", r.Line, r.Reason)
		}
	}
	if n := e.countResponses(); n != 2 {
		t.Fatalf("%d rows stored, want 2", n)
	}
}

// TestRevocationImmediate: a revoked token fails on the very next call.
func TestRevocationImmediate(t *testing.T) {
	e := matrixEnv(t)
	if _, err := e.index.RankProvinces(e.as("analyst-all"), &sipasv1.RankProvincesRequest{QuestionnaireId: "sipas-2023",
		Period: &sipasv1.Period{Year: int32(time.Now().Year())}}); err != nil {
		t.Fatal(err)
	}
	rv, err := e.admin.RevokeCredential(e.as("admin"), &sipasv1.RevokeCredentialRequest{Name: "credentials/" + e.credIDs["analyst-all"]})
	if err != nil {
		t.Fatal(err)
	}
	revoked := rv.GetCredential()
	if revoked.CredentialId != e.credIDs["analyst-all"] || revoked.RevokeTime == nil || revoked.Role != sipasv1.Role_ROLE_ANALYST {
		t.Fatalf("revoke answered %v, want the credential with its revoke time", revoked)
	}
	_, err = e.index.RankProvinces(e.as("analyst-all"), &sipasv1.RankProvincesRequest{QuestionnaireId: "sipas-2023",
		Period: &sipasv1.Period{Year: int32(time.Now().Year())}})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after revocation: %v, want Unauthenticated", err)
	}
	// The audit trail has the revocation with the admin as actor.
	evs, err := e.admin.ListAuditEvents(e.as("admin"), &sipasv1.ListAuditEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs.Events {
		if ev.Action == "credential.revoke" && ev.Target == "credentials/"+e.credIDs["analyst-all"] && ev.Actor == e.credIDs["admin"] {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit event for the revocation in %v", evs.Events)
	}
}

// TestExpiryWhileCached: a credential that expires fails at once, even
// though it was authenticated (and cached) a moment before.
func TestExpiryWhileCached(t *testing.T) {
	e := newTestEnv(t, nil)
	resp, err := e.admin.CreateCredential(e.as("admin"), &sipasv1.CreateCredentialRequest{
		Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_ANALYST, AllProvinces: true}, Ttl: durationpb.New(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.survey.ListQuestionnaires(e.as(resp.Token), &sipasv1.ListQuestionnairesRequest{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(resp.Credential.ExpireTime.AsTime()) + 50*time.Millisecond)
	if _, err := e.survey.ListQuestionnaires(e.as(resp.Token), &sipasv1.ListQuestionnairesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after expiry: %v, want Unauthenticated", err)
	}
}

// TestAnalystScopeCoversPredecessors: an analyst of a province formed by the
// 2025 merger reads its predecessors' history; other provinces stay out.
func TestAnalystScopeCoversPredecessors(t *testing.T) {
	e := newTestEnv(t, nil)
	e.mustCredential("lao-cai", &sipasv1.Credential{Role: sipasv1.Role_ROLE_ANALYST, ProvinceCodes: []string{"15"}})
	read := func(code string) error {
		_, err := e.index.GetIndex(e.as("lao-cai"), &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023",
			Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: code}}, Period: &sipasv1.Period{Year: 2023}})
		return err
	}
	for _, code := range []string{"15", "10"} { // Lào Cai now; old Lào Cai (10) merged into it
		if err := read(code); err != nil {
			t.Errorf("province %s: %v, want allowed", code, err)
		}
	}
	for _, code := range []string{"48", "01"} {
		if err := read(code); status.Code(err) != codes.PermissionDenied {
			t.Errorf("province %s: %v, want PermissionDenied", code, err)
		}
	}
}

// TestErrorMessagesNameNoInternals: a refusal says what is wrong in the
// domain's words; internal function names (store.revoke_credential) stay in
// the logs.
func TestErrorMessagesNameNoInternals(t *testing.T) {
	e := newTestEnv(t, nil)
	for name, call := range map[string]func() error{
		"revoke unknown": func() error {
			_, err := e.admin.RevokeCredential(e.as("admin"), &sipasv1.RevokeCredentialRequest{Name: "credentials/00000000-0000-0000-0000-000000000000"})
			return err
		},
		"unit of unknown province": func() error {
			_, err := e.admin.CreateUnit(e.as("admin"), &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{UnitId: "x-1", DisplayName: "X", ProvinceCode: "99"}})
			return err
		},
	} {
		err := call()
		st, _ := status.FromError(err)
		if err == nil || st.Code() == codes.Internal {
			t.Errorf("%s: %v, want a refusal", name, err)
			continue
		}
		if m := st.Message(); strings.Contains(m, "store.") || strings.Contains(m, "server.") || strings.Contains(m, "sipas.") {
			t.Errorf("%s: message %q names an internal function", name, m)
		}
	}
}
