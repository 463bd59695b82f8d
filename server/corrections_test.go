package server

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// TestItem5CorrectionsOverTheAPI: the codes and ErrorInfo reasons of
// corrections and closed periods over gRPC, the conflict message that says
// what to do, and the figures following a correction exactly once.
func TestItem5CorrectionsOverTheAPI(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RatePerSecond = -1 })
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, ProvinceCodes: []string{"48"}})
	e.mustCredential("other", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, ProvinceCodes: []string{"48"}})
	at := time.Now().Add(-time.Hour)
	r := serviceResponse(t, e.cat, "48", at)
	if _, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: r}); err != nil {
		t.Fatal(err)
	}
	changed := serviceResponse(t, e.cat, "48", at)
	changed.ResponseId = r.ResponseId
	for k := range changed.Answers {
		changed.Answers[k] = 1
	}
	_, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: changed})
	if status.Code(err) != codes.AlreadyExists || errorReason(err) != "RESPONSE_ID_CONFLICT" ||
		!strings.Contains(status.Convert(err).Message(), "--amend") || !strings.Contains(status.Convert(err).Message(), "withdraw") {
		t.Fatalf("conflict: %v (reason %s), want ALREADY_EXISTS RESPONSE_ID_CONFLICT saying to amend or withdraw", err, errorReason(err))
	}
	if _, err := e.survey.AmendResponse(e.as("surveyor"), &sipasv1.AmendResponseRequest{Response: changed}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("amend without a reason: %v", err)
	}
	if _, err := e.survey.AmendResponse(e.as("other"), &sipasv1.AmendResponseRequest{Response: changed, Reason: "x"}); status.Code(err) != codes.PermissionDenied || errorReason(err) != "NOT_SENDER" {
		t.Fatalf("amend by another team: %v", err)
	}
	am, err := e.survey.AmendResponse(e.as("surveyor"), &sipasv1.AmendResponseRequest{Response: changed, Reason: "keyed wrong"})
	if err != nil || am.Version != 2 || am.Unchanged {
		t.Fatalf("amend: %v %v", am, err)
	}
	if am, err = e.survey.AmendResponse(e.as("surveyor"), &sipasv1.AmendResponseRequest{Response: changed, Reason: "retry"}); err != nil || !am.Unchanged || am.Version != 2 {
		t.Fatalf("amend retried: %v %v", am, err)
	}
	if err := e.store.CheckAggregates(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := e.store.Cells(); len(n) == 0 {
		t.Fatal("no cells after an amendment")
	}
	if _, err := e.survey.WithdrawResponse(e.as("admin"), &sipasv1.WithdrawResponseRequest{ResponseId: "not-a-uuid", Reason: "x"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("withdraw of a malformed id: %v", err)
	}
	if _, err := e.survey.WithdrawResponse(e.as("admin"), &sipasv1.WithdrawResponseRequest{ResponseId: "0190c2a4-7d1e-7c3a-9b1e-2f4a5c6d7e8f", Reason: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("withdraw of an unknown id: %v", err)
	}

	// Close the period: changes are FAILED_PRECONDITION / PERIOD_CLOSED.
	year := int32(at.In(time.FixedZone("ICT", 7*3600)).Year())
	if _, err := e.admin.ClosePeriod(e.as("admin"), &sipasv1.ClosePeriodRequest{Period: &sipasv1.Period{Year: year}, Reason: "published"}); err != nil {
		t.Fatal(err)
	}
	closed := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.FailedPrecondition || errorReason(err) != "PERIOD_CLOSED" {
			t.Fatalf("%s in a closed period: %v (reason %s), want FAILED_PRECONDITION PERIOD_CLOSED", what, err, errorReason(err))
		}
	}
	_, err = e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: serviceResponse(t, e.cat, "48", at)})
	closed("new response", err)
	_, err = e.survey.WithdrawResponse(e.as("surveyor"), &sipasv1.WithdrawResponseRequest{ResponseId: r.ResponseId, Reason: "x"})
	closed("withdrawal", err)
	_, err = e.survey.AmendResponse(e.as("surveyor"), &sipasv1.AmendResponseRequest{Response: r, Reason: "x"})
	closed("amendment", err)
	if d, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: changed}); err != nil || !d.Duplicate {
		t.Fatalf("resend of the stored version in a closed period: %v %v, want a duplicate", d, err)
	}
	list, err := e.admin.ListClosedPeriods(e.as("admin"), &sipasv1.ListClosedPeriodsRequest{})
	if err != nil || len(list.ClosedPeriods) != 1 || list.ClosedPeriods[0].Period.Year != year || list.ClosedPeriods[0].Reason != "published" {
		t.Fatalf("closed periods: %v %v", list, err)
	}
	if _, err := e.admin.ReopenPeriod(e.as("admin"), &sipasv1.ReopenPeriodRequest{Period: &sipasv1.Period{Year: year}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("reopen without a reason: %v", err)
	}
	if _, err := e.admin.ReopenPeriod(e.as("admin"), &sipasv1.ReopenPeriodRequest{Period: &sipasv1.Period{Year: year}, Reason: "late batch"}); err != nil {
		t.Fatal(err)
	}
	w, err := e.survey.WithdrawResponse(e.as("surveyor"), &sipasv1.WithdrawResponseRequest{ResponseId: r.ResponseId, Reason: "keyed twice"})
	if err != nil || w.Version != 2 || w.AlreadyWithdrawn {
		t.Fatalf("withdraw: %v %v", w, err)
	}
	if len(e.store.Cells()) != 0 {
		t.Fatalf("cells left after the only response was withdrawn: %v", e.store.Cells())
	}
	h, err := e.survey.GetResponseHistory(e.as("surveyor"), &sipasv1.GetResponseHistoryRequest{ResponseId: r.ResponseId})
	if err != nil || !h.Withdrawn || len(h.Versions) != 2 || h.Versions[0].ReplacedBy != sipasv1.CorrectionKind_CORRECTION_KIND_AMENDMENT {
		t.Fatalf("history: %v %v", h, err)
	}
	if _, err := e.survey.GetResponseHistory(e.as("other"), &sipasv1.GetResponseHistoryRequest{ResponseId: r.ResponseId}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("history by another team: %v", err)
	}
	if err := e.store.CheckAggregates(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestItem5UploadWithAmend: an upload stream with amend (set on a first
// message without items) amends the conflicting items, reports them
// ITEM_OUTCOME_AMENDED and counts them in the summary; without a reason the
// stream is refused.
func TestItem5UploadWithAmend(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RatePerSecond = -1 })
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, ProvinceCodes: []string{"48"}})
	at := time.Now().Add(-time.Hour)
	a, b := serviceResponse(t, e.cat, "48", at), serviceResponse(t, e.cat, "48", at)
	upload := func(first *sipasv1.UploadBatchRequest, items ...*sipasv1.Response) ([]*sipasv1.ItemResult, *sipasv1.BatchSummary, error) {
		t.Helper()
		st, err := e.survey.UploadBatch(e.as("surveyor"))
		if err != nil {
			t.Fatal(err)
		}
		if first != nil {
			if err := st.Send(first); err != nil {
				t.Fatal(err)
			}
		}
		req := &sipasv1.UploadBatchRequest{}
		for i, r := range items {
			req.Items = append(req.Items, &sipasv1.BatchItem{Line: int64(i + 2), Response: r})
		}
		if err := st.Send(req); err != nil {
			t.Fatal(err)
		}
		st.CloseSend()
		var results []*sipasv1.ItemResult
		for {
			m, err := st.Recv()
			if err != nil {
				return results, nil, err
			}
			if s := m.GetSummary(); s != nil {
				return results, s, nil
			}
			results = append(results, m.GetChunk().GetResults()...)
		}
	}
	if _, _, err := upload(nil, a, b); err != nil {
		t.Fatal(err)
	}
	a2 := serviceResponse(t, e.cat, "48", at)
	a2.ResponseId = a.ResponseId
	for k := range a2.Answers {
		a2.Answers[k] = 5
	}
	res, sum, err := upload(nil, a2, b)
	if err != nil || sum.Rejected != 1 || res[0].Reason != "RESPONSE_ID_CONFLICT" || !strings.Contains(res[0].Message, "--amend") {
		t.Fatalf("without amend: %v %v %v", res, sum, err)
	}
	if _, _, err := upload(&sipasv1.UploadBatchRequest{Amend: true}, a2, b); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("amend without a reason: %v", err)
	}
	c := serviceResponse(t, e.cat, "48", at)
	res, sum, err = upload(&sipasv1.UploadBatchRequest{BatchId: "fix-1", Amend: true, AmendReason: "re-keyed"}, a2, b, c)
	if err != nil || sum.Amended != 1 || sum.Duplicate != 1 || sum.Accepted != 1 || sum.Rejected != 0 ||
		res[0].Outcome != sipasv1.ItemOutcome_ITEM_OUTCOME_AMENDED || res[1].Outcome != sipasv1.ItemOutcome_ITEM_OUTCOME_DUPLICATE ||
		res[2].Outcome != sipasv1.ItemOutcome_ITEM_OUTCOME_ACCEPTED {
		t.Fatalf("with amend: %v %v %v", res, sum, err)
	}
	hist, withdrawn, err := e.store.ResponseHistory(t.Context(), a.ResponseId)
	if err != nil || withdrawn || len(hist) != 2 || hist[0].Reason != "re-keyed" || hist[1].Version != 2 {
		t.Fatalf("history after the amending upload: %+v %v", hist, err)
	}
	if err := e.store.CheckAggregates(t.Context()); err != nil {
		t.Fatal(err)
	}
}
