package server

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// Regression tests of issue 16 (hardening after an outside attack), one per
// row 47–55 of the bad-input catalogue in reliability.md and per item.

// errorReason returns the ErrorInfo reason of a status error.
func errorReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.Reason
		}
	}
	return ""
}

// hasViolation reports whether err carries a field violation of field with reason.
func hasViolation(err error, field, reason string) bool {
	for _, v := range fieldViolations(err) {
		if v.Field == field && v.Reason == reason {
			return true
		}
	}
	return false
}

// upload sends items (one per message, lines from 2) on a new stream of
// who and returns the summary and results.
func upload(t *testing.T, e *testEnv, who, batch string, rs ...*sipasv1.Response) (*sipasv1.BatchSummary, []*sipasv1.ItemResult) {
	t.Helper()
	st, err := e.survey.UploadBatch(e.as(who))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if err := st.Send(&sipasv1.UploadBatchRequest{BatchId: batch, Items: []*sipasv1.BatchItem{{Line: int64(i + 2), Response: r}}}); err != nil {
			t.Fatal(err)
		}
	}
	st.CloseSend()
	return drainUpload(t, st)
}

func withUnit(r *sipasv1.Response, unit string) *sipasv1.Response {
	r.UnitId = unit
	return r
}

// TestRow47UnitMustBeARegisteredUnitOfTheRowsProvince: a row naming an
// unregistered unit is refused as UNKNOWN_UNIT, one naming a unit of
// another province as UNIT_PROVINCE_MISMATCH, per row with its line and
// nothing stored; a row collected before the 2025 merger in a province
// merged into the unit's province is the unit's. Made-up units therefore
// never get cells.
func TestRow47UnitMustBeARegisteredUnitOfTheRowsProvince(t *testing.T) {
	e := surveyorEnv(t, nil)
	e.mustUnit("dn-1", "48")
	e.mustUnit("lc-1", "15")
	vn := sipas.VietnamZone
	now := time.Now()
	y2024 := time.Date(2024, 5, 10, 9, 0, 0, 0, vn)

	type row struct {
		r      *sipasv1.Response
		reason string // "" accepted
	}
	rows := []row{
		{withUnit(serviceResponse(t, e.cat, "48", now), "made-up-1"), "UNKNOWN_UNIT"},
		{withUnit(serviceResponse(t, e.cat, "48", now), "DN-1"), "UNKNOWN_UNIT"}, // ids are matched exactly
		{withUnit(serviceResponse(t, e.cat, "01", now), "dn-1"), "UNIT_PROVINCE_MISMATCH"},
		{withUnit(serviceResponse(t, e.cat, "01", y2024), "lc-1"), "UNIT_PROVINCE_MISMATCH"},
		{withUnit(serviceResponse(t, e.cat, "48", now), "dn-1"), ""},
		{withUnit(serviceResponse(t, e.cat, "10", y2024), "lc-1"), ""}, // old Lào Cai, merged into 15
		{withUnit(serviceResponse(t, e.cat, "15", y2024), "lc-1"), ""}, // Yên Bái, merged into 15
		{withUnit(serviceResponse(t, e.cat, "15", now), "lc-1"), ""},
	}
	var rs []*sipasv1.Response
	for _, r := range rows {
		rs = append(rs, r.r)
	}
	sum, res := upload(t, e, "surveyor", "", rs...)
	if len(res) != len(rows) {
		t.Fatalf("%d results for %d rows", len(res), len(rows))
	}
	accepted := int64(0)
	for i, r := range rows {
		got := res[i]
		if got.Line != int64(i+2) {
			t.Errorf("row %d: line %d, want %d", i, got.Line, i+2)
		}
		if r.reason == "" {
			accepted++
			if got.Outcome != sipasv1.ItemOutcome_ITEM_OUTCOME_ACCEPTED {
				t.Errorf("row %d (unit %s, province %s): %v %s %s, want accepted", i, r.r.UnitId, r.r.ProvinceCode, got.Outcome, got.Reason, got.Message)
			}
			continue
		}
		if got.Outcome != sipasv1.ItemOutcome_ITEM_OUTCOME_REJECTED || got.Reason != r.reason || got.Field != "unit_id" {
			t.Errorf("row %d (unit %s, province %s): %v %s field %q, want rejected %s on unit_id", i, r.r.UnitId, r.r.ProvinceCode, got.Outcome, got.Reason, got.Field, r.reason)
		}
	}
	if sum.Accepted != accepted || e.countResponses() != accepted {
		t.Fatalf("accepted %d, stored %d, want %d", sum.Accepted, e.countResponses(), accepted)
	}
	// Unary: the codes of the catalogue row, with ErrorInfo and the field.
	_, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: withUnit(serviceResponse(t, e.cat, "48", now), "made-up-2")})
	if status.Code(err) != codes.FailedPrecondition || errorReason(err) != "UNKNOWN_UNIT" || !hasViolation(err, "unit_id", "UNKNOWN_UNIT") {
		t.Errorf("unknown unit: %v (reason %s), want FAILED_PRECONDITION UNKNOWN_UNIT on unit_id", err, errorReason(err))
	}
	_, err = e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: withUnit(serviceResponse(t, e.cat, "01", now), "dn-1")})
	if status.Code(err) != codes.InvalidArgument || errorReason(err) != "UNIT_PROVINCE_MISMATCH" || !hasViolation(err, "unit_id", "UNIT_PROVINCE_MISMATCH") {
		t.Errorf("unit of another province: %v (reason %s), want INVALID_ARGUMENT UNIT_PROVINCE_MISMATCH on unit_id", err, errorReason(err))
	}
	if n := e.countResponses(); n != accepted {
		t.Fatalf("%d stored after refused unary calls, want %d", n, accepted)
	}
	// No made-up unit is ranked or has figures, and dn-1 counts only its
	// own province's rows.
	rank, err := e.index.RankUnits(e.as("admin"), &sipasv1.RankUnitsRequest{QuestionnaireId: "sipas-2023",
		ProvinceCode: "48", Period: &sipasv1.Period{Year: int32(now.Year())}})
	if err != nil {
		t.Fatal(err)
	}
	if rows := rank.GetRanking().GetRows(); len(rows) != 1 || rows[0].Id != "dn-1" {
		t.Errorf("units ranked in 48: %v, want dn-1 only", rows)
	}
	for _, u := range []string{"made-up-1", "made-up-2"} {
		idx, err := e.index.GetIndex(e.as("admin"), &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023",
			Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_UnitId{UnitId: u}}, Period: &sipasv1.Period{Year: int32(now.Year())}})
		if err != nil {
			t.Fatal(err)
		}
		if n := idx.GetReport().GetRespondents(); n != 0 {
			t.Errorf("made-up unit %s has %d respondents", u, n)
		}
	}
}

// TestRow48SurveyorMayNameOnlyUnitsOfItsProvinces: PERMISSION_DENIED
// UNIT_OUT_OF_SCOPE per row, nothing stored.
func TestRow48SurveyorMayNameOnlyUnitsOfItsProvinces(t *testing.T) {
	e := newTestEnv(t, nil)
	e.mustUnit("dn-1", "48")
	e.mustUnit("hn-1", "01")
	e.mustCredential("surveyor-48", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, ProvinceCodes: []string{"48"}})
	r := withUnit(serviceResponse(t, e.cat, "48", time.Now()), "hn-1")
	_, err := e.survey.SubmitResponse(e.as("surveyor-48"), &sipasv1.SubmitResponseRequest{Response: r})
	if status.Code(err) != codes.PermissionDenied || errorReason(err) != "UNIT_OUT_OF_SCOPE" {
		t.Errorf("unit of another province: %v (reason %s), want PERMISSION_DENIED UNIT_OUT_OF_SCOPE", err, errorReason(err))
	}
	sum, res := upload(t, e, "surveyor-48", "", withUnit(serviceResponse(t, e.cat, "48", time.Now()), "hn-1"),
		withUnit(serviceResponse(t, e.cat, "48", time.Now()), "dn-1"))
	if sum.Accepted != 1 || res[0].Reason != "UNIT_OUT_OF_SCOPE" || res[0].Line != 2 || res[1].Outcome != sipasv1.ItemOutcome_ITEM_OUTCOME_ACCEPTED {
		t.Fatalf("batch: %v %v", sum, res)
	}
	if n := e.countResponses(); n != 1 {
		t.Fatalf("%d stored, want 1", n)
	}
}

// TestItem1EveryResponseRecordsItsCredentialAndBatch: bad data can be
// traced to the credential and the upload that sent it.
func TestItem1EveryResponseRecordsItsCredentialAndBatch(t *testing.T) {
	e := surveyorEnv(t, nil)
	e.mustUnit("dn-1", "48")
	e.mustCredential("kiosk", &sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-1"})
	batch := uuid.NewString()
	a, b := serviceResponse(t, e.cat, "48", time.Now()), serviceResponse(t, e.cat, "48", time.Now())
	sum, _ := upload(t, e, "surveyor", batch, a)
	if sum.BatchId != batch {
		t.Errorf("summary batch id %q, want %q", sum.BatchId, batch)
	}
	sumB, _ := upload(t, e, "surveyor", "", b) // no batch id: the server names the stream
	if _, err := uuid.Parse(sumB.BatchId); err != nil {
		t.Errorf("server-assigned batch id %q: %v", sumB.BatchId, err)
	}
	k := serviceResponse(t, e.cat, "", time.Now())
	k.Channel = sipasv1.Channel_CHANNEL_KIOSK
	if _, err := e.survey.SubmitResponse(e.as("kiosk"), &sipasv1.SubmitResponseRequest{Response: k}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want sipas.Source
	}{
		{a.ResponseId, sipas.Source{CredentialID: e.credIDs["surveyor"], BatchID: batch}},
		{b.ResponseId, sipas.Source{CredentialID: e.credIDs["surveyor"], BatchID: sumB.BatchId}},
		{k.ResponseId, sipas.Source{CredentialID: e.credIDs["kiosk"]}},
	} {
		got, err := e.store.ResponseSource(context.Background(), tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("source of %s: %+v, want %+v", tc.id, got, tc.want)
		}
	}
	// A batch id that is not an id is refused, and nothing is stored.
	st, err := e.survey.UploadBatch(e.as("surveyor"))
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&sipasv1.UploadBatchRequest{BatchId: "a b\n", Items: []*sipasv1.BatchItem{{Line: 2, Response: serviceResponse(t, e.cat, "48", time.Now())}}})
	st.CloseSend()
	if err := drainStream(st.Recv); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad batch id: %v, want INVALID_ARGUMENT", err)
	}
	if n := e.countResponses(); n != 3 {
		t.Errorf("%d stored, want 3", n)
	}
}

// TestItem1UnaryDeadlineStopsGetWeakPoints: the unary deadline cap reaches
// the engine, which stops instead of answering OK late.
func TestItem1UnaryDeadlineStopsGetWeakPoints(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.UnaryTimeout = time.Nanosecond })
	// Issued in the store: every RPC of this server is past its deadline.
	tok, hash := NewToken()
	if _, err := e.store.CreateCredential(context.Background(), store.Credential{TokenHash: hash, Credential: sipas.Credential{Role: sipas.RoleAnalyst, AllProvinces: true}}, store.AuditEvent{Actor: "test", Action: "credential.create"}); err != nil {
		t.Fatal(err)
	}
	e.tokens["analyst"] = tok
	_, err := e.index.GetWeakPoints(e.as("analyst"), &sipasv1.GetWeakPointsRequest{QuestionnaireId: "sipas-2023",
		ProvinceCode: "48", Period: &sipasv1.Period{Year: 2026}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("GetWeakPoints past the deadline cap: %v, want DEADLINE_EXCEEDED", err)
	}
}

// TestRow49KioskChannelIsKioskAndCollectedAtIsRecent: a kiosk's response is
// channel kiosk whatever it says (with a warning); collected_at older than
// the configured age, or before the credential existed less the grace, is
// INVALID_ARGUMENT.
func TestRow49KioskChannelIsKioskAndCollectedAtIsRecent(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.KioskMaxAge = 72 * time.Hour; c.KioskClockGrace = time.Hour })
	e.mustUnit("dn-1", "48")
	e.mustCredential("kiosk", &sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-1"})
	now := time.Now()

	r := serviceResponse(t, e.cat, "", now)
	r.Channel = sipasv1.Channel_CHANNEL_FIELD
	resp, err := e.survey.SubmitResponse(e.as("kiosk"), &sipasv1.SubmitResponseRequest{Response: r})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Warnings) == 0 {
		t.Error("no warning that the channel was replaced")
	}
	stored, _, _, err := e.store.GetResponse(context.Background(), r.ResponseId)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Channel != sipas.ChannelKiosk {
		t.Errorf("stored channel %v, want kiosk", stored.Channel)
	}

	for _, tc := range []struct {
		at     time.Time
		reason string
	}{
		{now.Add(-73 * time.Hour), "KIOSK_TOO_OLD"},
		{now.Add(-2 * time.Hour), "BEFORE_CREDENTIAL"}, // the credential is seconds old; grace 1h
	} {
		r := serviceResponse(t, e.cat, "", tc.at)
		r.Channel = sipasv1.Channel_CHANNEL_KIOSK
		_, err := e.survey.SubmitResponse(e.as("kiosk"), &sipasv1.SubmitResponseRequest{Response: r})
		if status.Code(err) != codes.InvalidArgument || !hasViolation(err, "collected_at", tc.reason) {
			t.Errorf("collected %s ago: %v %v, want INVALID_ARGUMENT %s on collected_at", now.Sub(tc.at).Round(time.Minute), err, fieldViolations(err), tc.reason)
		}
	}
	// Within the grace: accepted (a kiosk clock a little behind).
	r = serviceResponse(t, e.cat, "", now.Add(-30*time.Minute))
	r.Channel = sipasv1.Channel_CHANNEL_KIOSK
	if _, err := e.survey.SubmitResponse(e.as("kiosk"), &sipasv1.SubmitResponseRequest{Response: r}); err != nil {
		t.Errorf("collected 30 min before the credential, grace 1h: %v", err)
	}
	if n := e.countResponses(); n != 2 {
		t.Errorf("%d stored, want 2", n)
	}
}

// itemsMsg is one upload message of items.
func itemsMsg(rs ...*sipasv1.Response) *sipasv1.UploadBatchRequest {
	m := &sipasv1.UploadBatchRequest{}
	for i, r := range rs {
		m.Items = append(m.Items, &sipasv1.BatchItem{Line: int64(i + 2), Response: r})
	}
	return m
}

// waitOpenStreams waits up to 5 s for the open upload streams to be n.
func waitOpenStreams(t *testing.T, e *testEnv, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g := testutil.ToFloat64(e.srv.metrics.UploadStreamsOpen)
		if int(g) == n && e.srv.streams.count() == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v upload streams open (%d slots), want %d", g, e.srv.streams.count(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRow50IdleTimeoutCountsItemsNotMessages: a stream of empty messages is
// ended by the idle timeout and its handler released.
func TestRow50IdleTimeoutCountsItemsNotMessages(t *testing.T) {
	e := surveyorEnv(t, func(c *Config) { c.StreamIdleTimeout = 300 * time.Millisecond })
	ctx, cancel := context.WithCancel(e.as("surveyor"))
	defer cancel()
	st, err := e.survey.UploadBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if st.Send(&sipasv1.UploadBatchRequest{BatchId: "keepalive"}) != nil {
				return
			}
		}
	}()
	defer close(stop)
	// The client never cancels within 10 s; the server must end it first.
	timer := time.AfterFunc(10*time.Second, cancel)
	defer timer.Stop()
	err = drainStream(st.Recv)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("stream of empty messages ended with %v, want DEADLINE_EXCEEDED from the idle timeout", err)
	}
	waitOpenStreams(t, e, 0)
}

// TestRow50SendTimeoutEndsAStreamWhoseClientStopsReading: a client that
// keeps sending but never reads its acknowledgements is cut off, and the
// handler and its buffers are released.
func TestRow50SendTimeoutEndsAStreamWhoseClientStopsReading(t *testing.T) {
	e := surveyorEnv(t, func(c *Config) {
		c.StreamSendTimeout = 300 * time.Millisecond
		c.ChunkItems = 100
		c.StreamIdleTimeout = time.Minute
	})
	// A client whose windows do not grow: HTTP/2 flow control stops the
	// server's sends once 64 KiB of acknowledgements are unread.
	conn, err := grpc.NewClient(e.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(e.as("surveyor"), 30*time.Second)
	defer cancel()
	st, err := sipasv1.NewSurveyServiceClient(conn).UploadBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Rejected items (every answer code invalid) cost no commit, and each
	// result carries a message of about 1 KiB: a chunk's acknowledgement is
	// larger than the client's window.
	bad := func() *sipasv1.Response {
		r := serviceResponse(t, e.cat, "48", time.Now())
		for k := range r.Answers {
			r.Answers[k] = 77
		}
		return r
	}
	// The client sends until the server stops reading; it never reads.
	go func() {
		for st.Send(itemsMsg(bad(), bad(), bad(), bad())) == nil {
		}
	}()
	waitOpenStreams(t, e, 1)
	// The handler ends at the send timeout: its chunks and its stream slot
	// are released, and the call is logged with its code.
	waitOpenStreams(t, e, 0)
	// The stream slot is released before the logging interceptor writes
	// the call's line: give it a moment.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) &&
		!strings.Contains(e.logs.String(), `"method":"/sipas.v1.SurveyService/UploadBatch","code":"ResourceExhausted"`); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(e.logs.String(), `"method":"/sipas.v1.SurveyService/UploadBatch","code":"ResourceExhausted"`) {
		t.Fatalf("no UploadBatch ended with RESOURCE_EXHAUSTED in the log:\n%s", e.logs.String())
	}
	if n := e.countResponses(); n != 0 {
		t.Fatalf("%d stored", n)
	}
}

// TestRow50OpenUploadStreamsAreCapped: per credential and in total.
func TestRow50OpenUploadStreamsAreCapped(t *testing.T) {
	e := surveyorEnv(t, func(c *Config) {
		c.StreamsPerCredential, c.StreamsTotal = 2, 3
		c.ChunkDelay = 10 * time.Millisecond
	})
	e.mustCredential("surveyor-2", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// open starts a stream and waits for its first acknowledgement, so that
	// it holds its slot.
	open := func(who string) (sipasv1.SurveyService_UploadBatchClient, error) {
		c := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.tokens[who])
		st, err := e.survey.UploadBatch(c)
		if err != nil {
			return nil, err
		}
		// A refused stream may end before the send: its status is in Recv.
		st.Send(itemsMsg(serviceResponse(t, e.cat, "48", time.Now())))
		_, err = st.Recv()
		return st, err
	}
	var held []sipasv1.SurveyService_UploadBatchClient
	for range 2 {
		st, err := open("surveyor")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, st)
	}
	if _, err := open("surveyor"); status.Code(err) != codes.ResourceExhausted || errorReason(err) != "STREAM_LIMIT" {
		t.Fatalf("third stream of one credential: %v, want RESOURCE_EXHAUSTED STREAM_LIMIT", err)
	}
	st, err := open("surveyor-2") // another credential: within the total
	if err != nil {
		t.Fatalf("stream of another credential: %v", err)
	}
	held = append(held, st)
	if _, err := open("surveyor-2"); status.Code(err) != codes.ResourceExhausted || errorReason(err) != "STREAM_LIMIT" {
		t.Fatalf("fourth stream in total: %v, want RESOURCE_EXHAUSTED STREAM_LIMIT", err)
	}
	// Finishing a stream frees its slot.
	held[0].CloseSend()
	drainStream(held[0].Recv)
	if _, err := open("surveyor"); err != nil {
		t.Fatalf("stream after one finished: %v", err)
	}
}

// TestRow51RevokedOrExpiredCredentialEndsItsOpenStream: within 5 s, with
// UNAUTHENTICATED; what is sent after the end is not stored.
func TestRow51RevokedOrExpiredCredentialEndsItsOpenStream(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.ChunkDelay = 10 * time.Millisecond })
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true})
	resp, err := e.admin.CreateCredential(e.as("admin"), &sipasv1.CreateCredentialRequest{
		Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true}, Ttl: durationpb.New(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	e.tokens["short-lived"] = resp.Token

	for _, tc := range []struct {
		who string
		end func()
	}{
		{"surveyor", func() {
			if _, err := e.admin.RevokeCredential(e.as("admin"), &sipasv1.RevokeCredentialRequest{Name: "credentials/" + e.credIDs["surveyor"]}); err != nil {
				t.Fatal(err)
			}
		}},
		{"short-lived", func() { time.Sleep(time.Until(resp.Credential.ExpireTime.AsTime())) }},
	} {
		t.Run(tc.who, func(t *testing.T) {
			before := e.countResponses()
			ctx, cancel := context.WithCancel(e.as(tc.who))
			defer cancel()
			st, err := e.survey.UploadBatch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu       sync.Mutex
				acked    int64
				final    error
				finished = make(chan struct{})
			)
			go func() {
				defer close(finished)
				for {
					m, err := st.Recv()
					if err != nil {
						mu.Lock()
						final = err
						mu.Unlock()
						return
					}
					mu.Lock()
					for _, r := range m.GetChunk().GetResults() {
						if r.Outcome == sipasv1.ItemOutcome_ITEM_OUTCOME_ACCEPTED {
							acked++
						}
					}
					mu.Unlock()
				}
			}()
			// Keep sending items while the credential ends.
			go func() {
				for {
					select {
					case <-finished:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if st.Send(itemsMsg(serviceResponse(t, e.cat, "48", time.Now()))) != nil {
						return
					}
				}
			}()
			time.Sleep(300 * time.Millisecond)
			tc.end()
			select {
			case <-finished:
			case <-time.After(5 * time.Second):
				t.Fatal("the stream was still open 5 s after its credential ended")
			}
			mu.Lock()
			defer mu.Unlock()
			if status.Code(final) != codes.Unauthenticated {
				t.Fatalf("stream ended with %v, want UNAUTHENTICATED", final)
			}
			if acked == 0 {
				t.Fatal("nothing was acknowledged before the end: the test did not exercise an open stream")
			}
			// Give a chunk that was committing at the end time to land, then
			// compare: what was stored is what was acknowledged, plus at
			// most what was committing when the stream ended.
			time.Sleep(200 * time.Millisecond)
			stored := e.countResponses() - before
			if stored < acked || stored > acked+2 {
				t.Fatalf("%d stored, %d acknowledged", stored, acked)
			}
			later := e.countResponses()
			time.Sleep(300 * time.Millisecond)
			if n := e.countResponses(); n != later {
				t.Fatalf("%d responses stored after the stream ended", n-later)
			}
		})
	}
}

// TestItem3CredentialCacheRevocationRace: a lookup that read the credential
// before a revocation must not put it back into the cache after the
// revocation evicted it.
func TestItem3CredentialCacheRevocationRace(t *testing.T) {
	e := newTestEnv(t, nil)
	e.mustCredential("analyst", &sipasv1.Credential{Role: sipasv1.Role_ROLE_ANALYST, AllProvinces: true})
	var once sync.Once
	e.srv.auth.afterLookup = func() {
		once.Do(func() {
			// The revocation lands between the lookup's read and its caching.
			if err := e.store.RevokeCredential(context.Background(), e.credIDs["analyst"], time.Now(), store.AuditEvent{Actor: "test", Action: "credential.revoke"}); err != nil {
				t.Error(err)
			}
			e.srv.auth.forget(e.credIDs["analyst"])
		})
	}
	list := func() error {
		_, err := e.survey.ListQuestionnaires(e.as("analyst"), &sipasv1.ListQuestionnairesRequest{})
		return err
	}
	if err := list(); err != nil {
		t.Fatalf("the call overlapping the revocation: %v (it read the credential before the revocation and may pass)", err)
	}
	if err := list(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("call after the revocation: %v, want UNAUTHENTICATED (the revoked credential was re-cached)", err)
	}
}

// rawCodec sends and receives bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestRow52MalformedProtobufAndInvalidUTF8AreInvalidArgument: not INTERNAL.
func TestRow52MalformedProtobufAndInvalidUTF8AreInvalidArgument(t *testing.T) {
	e := surveyorEnv(t, nil)
	raw := grpc.ForceCodecV2(rawCodec{})
	for name, body := range map[string][]byte{
		"truncated varint":      {0x08, 0xff, 0xff},
		"bad wire type":         {0x0f, 0x01},
		"length past the end":   {0x0a, 0x7f, 'q'},
		"invalid UTF-8 in name": {0x0a, 0x03, 'q', 0xff, 0xfe},
		"invalid UTF-8 nested":  {0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28},
	} {
		for _, method := range []string{sipasv1.SurveyService_GetQuestionnaire_FullMethodName, sipasv1.SurveyService_SubmitResponse_FullMethodName} {
			var out []byte
			err := e.conn.Invoke(e.as("surveyor"), method, &body, &out, raw)
			if status.Code(err) != codes.InvalidArgument || errorReason(err) != "MALFORMED_MESSAGE" {
				t.Errorf("%s to %s: %v (reason %s), want INVALID_ARGUMENT MALFORMED_MESSAGE", name, method, err, errorReason(err))
			}
		}
	}
	// Without a credential the answer is UNAUTHENTICATED whatever is sent,
	// and the undecodable message is not kept.
	var out []byte
	body := []byte{0x08, 0xff, 0xff}
	if err := e.conn.Invoke(e.as(""), sipasv1.SurveyService_GetQuestionnaire_FullMethodName, &body, &out, raw); status.Code(err) != codes.Unauthenticated {
		t.Errorf("malformed bytes without a credential: %v, want UNAUTHENTICATED", err)
	}
	e.srv.undecodable.msgs.Range(func(k, _ any) bool {
		t.Errorf("undecodable message %p kept after its call", k)
		return true
	})
	// A stream message: the stream ends with INVALID_ARGUMENT.
	desc := &grpc.StreamDesc{StreamName: "UploadBatch", ClientStreams: true, ServerStreams: true}
	st, err := e.conn.NewStream(e.as("surveyor"), desc, sipasv1.SurveyService_UploadBatch_FullMethodName, raw)
	if err != nil {
		t.Fatal(err)
	}
	body = []byte{0x0a, 0x02, 0xff, 0xfe} // batch_id with invalid UTF-8
	if err := st.SendMsg(&body); err != nil {
		t.Fatal(err)
	}
	st.CloseSend()
	for err == nil {
		err = st.RecvMsg(&out)
	}
	if status.Code(err) != codes.InvalidArgument || errorReason(err) != "MALFORMED_MESSAGE" {
		t.Errorf("malformed stream message: %v, want INVALID_ARGUMENT MALFORMED_MESSAGE", err)
	}
	if n := e.countResponses(); n != 0 {
		t.Fatalf("%d stored", n)
	}
}

// TestRow53TimestampWithNegativeNanosIsRefused: and one beyond year 9999,
// in a response and as a credential's expiry.
func TestRow53TimestampWithNegativeNanosIsRefused(t *testing.T) {
	e := surveyorEnv(t, nil)
	for name, ts := range map[string]*timestamppb.Timestamp{
		"negative nanos":  {Seconds: time.Now().Unix(), Nanos: -1},
		"nanos too large": {Seconds: time.Now().Unix(), Nanos: 1_000_000_000},
		"year past 9999":  {Seconds: 253402300800},
	} {
		r := serviceResponse(t, e.cat, "48", time.Now())
		r.CollectedAt = ts
		_, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: r})
		if status.Code(err) != codes.InvalidArgument || !hasViolation(err, "collected_at", "INVALID_TIMESTAMP") {
			t.Errorf("%s: %v %v, want INVALID_ARGUMENT INVALID_TIMESTAMP on collected_at", name, err, fieldViolations(err))
		}
		sum, res := upload(t, e, "surveyor", "", r)
		if sum.Rejected != 1 || res[0].Reason != "INVALID_TIMESTAMP" {
			t.Errorf("%s in a batch: %v %v", name, sum, res)
		}
		_, err = e.admin.CreateCredential(e.as("admin"), &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{
			Role: sipasv1.Role_ROLE_ANALYST, AllProvinces: true, ExpireTime: ts}})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s as expire_time: %v, want INVALID_ARGUMENT", name, err)
		}
	}
	if n := e.countResponses(); n != 0 {
		t.Fatalf("%d stored", n)
	}
}

// TestRow54UnitNamesWithoutControlCharactersAndIdsUniqueRegardlessOfCase.
func TestRow54UnitNamesWithoutControlCharactersAndIdsUniqueRegardlessOfCase(t *testing.T) {
	e := newTestEnv(t, nil)
	for _, name := range []string{"Một cửa\nPhường 1", "Một cửa \x1b[31mđỏ", "Một cửa \u202eevil", "tab\there", "nul\x00"} {
		_, err := e.admin.CreateUnit(e.as("admin"), &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{UnitId: "u-1", DisplayName: name, ProvinceCode: "48"}})
		if status.Code(err) != codes.InvalidArgument || !hasViolation(err, "unit.display_name", "CONTROL_CHARACTER") {
			t.Errorf("name %q: %v, want INVALID_ARGUMENT CONTROL_CHARACTER", name, err)
		}
	}
	e.mustUnit("dn-Hai-Chau", "48")
	for _, id := range []string{"DN-HAI-CHAU", "dn-hai-chau", "dn-Hai-Chau"} {
		_, err := e.admin.CreateUnit(e.as("admin"), &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{UnitId: id, DisplayName: "Một cửa", ProvinceCode: "48"}})
		if status.Code(err) != codes.AlreadyExists {
			t.Errorf("unit %s after dn-Hai-Chau: %v, want ALREADY_EXISTS", id, err)
		}
	}
	list, err := e.admin.ListUnits(e.as("admin"), &sipasv1.ListUnitsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Units) != 1 {
		t.Fatalf("%d units, want 1", len(list.Units))
	}
}

// TestRow55UnauthenticatedRefusalsAreRateLimitedPerPeerAndLogSampled.
func TestRow55UnauthenticatedRefusalsAreRateLimitedPerPeerAndLogSampled(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RefusalsPerPeer, c.RefusalBurst = 1, 10 })
	e.mustCredential("analyst", &sipasv1.Credential{Role: sipasv1.Role_ROLE_ANALYST, AllProvinces: true})
	counts := map[codes.Code]int{}
	const calls = 300
	for i := range calls {
		tok := "sps_not-a-real-token"
		if i%2 == 0 {
			tok = "" // no token at all
		}
		_, err := e.survey.ListQuestionnaires(e.as(tok), &sipasv1.ListQuestionnairesRequest{})
		counts[status.Code(err)]++
	}
	if counts[codes.Unauthenticated] < 10 || counts[codes.Unauthenticated] > 20 || counts[codes.ResourceExhausted] < calls-20 {
		t.Fatalf("codes %v: want about 10 UNAUTHENTICATED (the burst), then RESOURCE_EXHAUSTED", counts)
	}
	// A valid credential from the same address is not affected.
	if _, err := e.survey.ListQuestionnaires(e.as("analyst"), &sipasv1.ListQuestionnairesRequest{}); err != nil {
		t.Fatalf("valid credential from the refused peer: %v", err)
	}
	// Logged sampled: a few lines a second, not one per refusal.
	lines := 0
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"rpc"`) && (strings.Contains(l, `"code":"Unauthenticated"`) || strings.Contains(l, `"code":"ResourceExhausted"`)) {
			lines++
		}
	}
	if lines == 0 || lines > 5*10 {
		t.Fatalf("%d log lines for %d refusals, want a few per second", lines, calls)
	}
}

// TestItem6BearerSchemeIsCaseInsensitive (RFC 6750).
func TestItem6BearerSchemeIsCaseInsensitive(t *testing.T) {
	e := newTestEnv(t, nil)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", scheme+" "+e.adminTok)
		if _, err := e.admin.ListUnits(ctx, &sipasv1.ListUnitsRequest{}); err != nil {
			t.Errorf("scheme %q: %v", scheme, err)
		}
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Basic "+e.adminTok)
	if _, err := e.admin.ListUnits(ctx, &sipasv1.ListUnitsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("scheme Basic: %v, want UNAUTHENTICATED", err)
	}
}
