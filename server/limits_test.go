package server

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Each limit of reliability.md §3 has a test that trips it.

func TestLimitMaxRecvMsgSize(t *testing.T) {
	e := newTestEnv(t, nil)
	e.mustUnit("dn-1", "48")
	e.mustCredential("kiosk", &sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: "dn-1"})
	r := serviceResponse(t, e.cat, "", time.Now())
	r.UnitId = strings.Repeat("x", 70<<10) // > 64 KiB message
	_, err := e.survey.SubmitResponse(e.as("kiosk"), &sipasv1.SubmitResponseRequest{Response: r})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized message: %v, want ResourceExhausted", err)
	}
	if n := e.countResponses(); n != 0 {
		t.Fatalf("%d rows after an oversized message", n)
	}
}

func TestLimitRatePerCredential(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RatePerSecond, c.RateBurst = 1, 3 })
	e.mustCredential("other", &sipasv1.Credential{Role: sipasv1.Role_ROLE_ANALYST, AllProvinces: true})
	var last error
	for range 5 {
		_, last = e.survey.ListQuestionnaires(e.as("admin"), &sipasv1.ListQuestionnairesRequest{})
	}
	st := status.Convert(last)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("5 calls at burst 3: %v, want ResourceExhausted", last)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.RetryDelay.AsDuration() <= 0 {
		t.Fatalf("no RetryInfo in %v", st.Details())
	}
	// The limit is per credential: another credential is not throttled.
	if _, err := e.survey.ListQuestionnaires(e.as("other"), &sipasv1.ListQuestionnairesRequest{}); err != nil {
		t.Fatalf("another credential was throttled: %v", err)
	}
}

func surveyorEnv(t *testing.T, tune func(*Config)) *testEnv {
	e := newTestEnv(t, tune)
	e.mustCredential("surveyor", &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true})
	return e
}

func TestLimitStreamIdleTimeout(t *testing.T) {
	e := surveyorEnv(t, func(c *Config) { c.StreamIdleTimeout = 300 * time.Millisecond })
	st, err := e.survey.UploadBatch(e.as("surveyor"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: 2, Response: serviceResponse(t, e.cat, "48", time.Now())}}}); err != nil {
		t.Fatal(err)
	}
	// Send nothing more: the server flushes what it has, then ends the stream.
	var acked int
	for {
		m, err := st.Recv()
		if err != nil {
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("idle stream ended with %v, want DeadlineExceeded", err)
			}
			break
		}
		acked += len(m.GetChunk().GetResults())
	}
	if acked != 1 || e.countResponses() != 1 {
		t.Fatalf("acked %d, stored %d; want the item before the idle time acknowledged and stored", acked, e.countResponses())
	}
}

func TestLimitStreamMaxItems(t *testing.T) {
	e := surveyorEnv(t, func(c *Config) { c.StreamMaxItems = 3; c.ChunkItems = 2 })
	st, err := e.survey.UploadBatch(e.as("surveyor"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range 10 {
			if st.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: int64(i + 2), Response: serviceResponse(t, e.cat, "48", time.Now())}}}) != nil {
				return
			}
		}
		st.CloseSend()
	}()
	var acked int
	var end error
	for {
		m, err := st.Recv()
		if err != nil {
			end = err
			break
		}
		acked += len(m.GetChunk().GetResults())
	}
	if status.Code(end) != codes.ResourceExhausted {
		t.Fatalf("stream over the item cap ended with %v, want ResourceExhausted", end)
	}
	if acked != 3 || e.countResponses() != 3 {
		t.Fatalf("acked %d stored %d, want the 3 items under the cap", acked, e.countResponses())
	}
}

func TestLimitMaxConcurrentStreams(t *testing.T) {
	e := surveyorEnv(t, func(c *Config) { c.MaxConcurrentStreams = 2; c.StreamIdleTimeout = 5 * time.Second })
	ctx, cancel := context.WithCancel(e.as("surveyor"))
	defer cancel()
	for range 2 { // two open, idle upload streams hold the connection's quota
		st, err := e.survey.UploadBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: 2, Response: serviceResponse(t, e.cat, "48", time.Now())}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil { // the chunk ack proves the stream is open on the server
			t.Fatal(err)
		}
	}
	short, cancelShort := context.WithTimeout(e.as("surveyor"), 300*time.Millisecond)
	defer cancelShort()
	_, err := e.survey.ListQuestionnaires(short, &sipasv1.ListQuestionnairesRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("third stream on the connection: %v, want DeadlineExceeded (no stream quota)", err)
	}
	cancel()
}

func TestLimitHeaderListSize(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := metadata.AppendToOutgoingContext(e.as("admin"), "x-padding", strings.Repeat("p", 16<<10))
	_, err := e.survey.ListQuestionnaires(ctx, &sipasv1.ListQuestionnairesRequest{})
	if err == nil {
		t.Fatal("16 KiB of metadata was accepted; want it refused (limit 8 KiB)")
	}
	if strings.Contains(e.logs.String(), "ListQuestionnaires") {
		t.Fatal("the oversized call reached the handler chain")
	}
}

func TestLimitUnaryDeadlineCap(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.UnaryTimeout = time.Nanosecond })
	// The client allows 10 s; the server caps the handler's deadline, so a
	// store read under a 1 ns cap cannot complete.
	_, err := e.admin.ListUnits(e.as("admin"), &sipasv1.ListUnitsRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("store read under a 1ns deadline cap: %v, want DeadlineExceeded", err)
	}
}

// drain reads an upload stream to its end and returns the summary.
func drainUpload(t *testing.T, st sipasv1.SurveyService_UploadBatchClient) (*sipasv1.BatchSummary, []*sipasv1.ItemResult) {
	t.Helper()
	var res []*sipasv1.ItemResult
	var sum *sipasv1.BatchSummary
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return sum, res
		}
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, m.GetChunk().GetResults()...)
		if s := m.GetSummary(); s != nil {
			sum = s
		}
	}
}

func TestLimitConnectionTimeout(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.ConnectionTimeout = 200 * time.Millisecond })
	// A client that opens TCP and never sends the HTTP/2 preface (a slow
	// handshake) is cut off after the connection timeout.
	raw, err := net.Dial("tcp", e.conn.Target())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	start := time.Now()
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(raw)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a silent connection open for 5 s")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("silent connection closed after %s, want about 200ms", took)
	}
}

// TestLimitKeepaliveEnforcement floods the server with HTTP/2 PINGs on an
// idle connection (faster than the 20 s minimum kiosks are allowed) and
// expects it to hang up with GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
func TestLimitKeepaliveEnforcement(t *testing.T) {
	e := newTestEnv(t, nil)
	raw, err := net.Dial("tcp", e.conn.Target())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(raw, raw)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range 50 {
			if fr.WritePing(false, [8]byte{byte(i)}) != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeEnhanceYourCalm || !strings.Contains(string(ga.DebugData()), "too_many_pings") {
				t.Fatalf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", ga.ErrCode, ga.DebugData())
			}
			return
		}
	}
}
