package client_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// unavailableSurvey answers every call UNAVAILABLE and counts the calls that
// reach it.
type unavailableSurvey struct {
	sipasv1.UnimplementedSurveyServiceServer
	submits, reads atomic.Int64
}

func (u *unavailableSurvey) SubmitResponse(context.Context, *sipasv1.SubmitResponseRequest) (*sipasv1.SubmitResponseResponse, error) {
	u.submits.Add(1)
	return nil, status.Error(codes.Unavailable, "try later")
}

func (u *unavailableSurvey) ListQuestionnaires(context.Context, *sipasv1.ListQuestionnairesRequest) (*sipasv1.ListQuestionnairesResponse, error) {
	u.reads.Add(1)
	return nil, status.Error(codes.Unavailable, "try later")
}

// TestOneRetryLayer: Client.Submit with 5 attempts sends a response at most
// 5 times (gRPC's own retry policy does not multiply them), while a read is
// still retried by the policy.
func TestOneRetryLayer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc := &unavailableSurvey{}
	sipasv1.RegisterSurveyServiceServer(srv, svc)
	go srv.Serve(lis)
	defer srv.Stop()

	cl, err := client.Dial(client.Options{Server: lis.Addr().String(), Token: "sps_test", Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := &sipas.Response{QuestionnaireID: "sipas-2023", ProvinceCode: "48", CollectedAt: time.Now(), Channel: sipas.ChannelKiosk,
		Answers: map[string]int{"V23.HL.29": 5}}
	_, err = cl.Submit(context.Background(), r, 5, client.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond})
	if sipas.KindOf(client.FromStatus(err)) != sipas.KindUnavailable {
		t.Fatalf("Submit: %v, want unavailable", err)
	}
	if n := svc.submits.Load(); n != 5 {
		t.Fatalf("one response was sent %d times with 5 attempts, want 5", n)
	}
	// The policy's first retry comes within its initial backoff (0.5 s,
	// jittered down), so 1.5 s sees at least two tries.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err = cl.Survey.ListQuestionnaires(ctx, &sipasv1.ListQuestionnairesRequest{})
	if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
		t.Fatalf("ListQuestionnaires: %v", err)
	}
	if n := svc.reads.Load(); n < 2 {
		t.Fatalf("a read refused UNAVAILABLE was tried %d times, want it retried by the policy", n)
	}
}
