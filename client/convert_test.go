package client

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

func TestResponseToWire(t *testing.T) {
	order := &itemOrder{codes: []string{"A", "B", "C", "D"}, pos: map[string]int{"A": 0, "B": 1, "C": 2, "D": 3}}
	r := &sipas.Response{ID: "x", QuestionnaireID: "q", Answers: map[string]int{"A": 0, "C": 9}}
	p := responseToWire(r, order)
	if len(p.Answers) != 0 || len(p.PackedAnswers) != 3 || p.PackedAnswers[0] != 1 || p.PackedAnswers[1] != 0 || p.PackedAnswers[2] != 10 {
		t.Fatalf("packed %v answers %v, want [1 0 10] and no map (trailing D left out)", p.PackedAnswers, p.Answers)
	}
	// An item the order does not know keeps the map form, for the server to report.
	r.Answers["Z"] = 4
	if p := responseToWire(r, order); len(p.PackedAnswers) != 0 || len(p.Answers) != 3 {
		t.Fatalf("unknown item: packed %v answers %v, want the map form", p.PackedAnswers, p.Answers)
	}
	// A response already in the packed form is sent as it is.
	r = &sipas.Response{ID: "x", QuestionnaireID: "q", Packed: []uint32{0, 3}}
	if p := responseToWire(r, order); len(p.Answers) != 0 || len(p.PackedAnswers) != 2 || p.PackedAnswers[1] != 3 {
		t.Fatalf("packed response: packed %v answers %v", p.PackedAnswers, p.Answers)
	}
}

func TestRetryDelayHonoursRetryInfo(t *testing.T) {
	st, _ := status.New(codes.ResourceExhausted, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(7 * time.Second)})
	err := FromStatus(st.Err()) // as the client's callers see it
	if d := RetryDelay(err); d != 7*time.Second {
		t.Fatalf("RetryDelay = %v, want 7s", d)
	}
	if d := retryAfter(Backoff{Initial: time.Millisecond, Max: time.Millisecond}, 1, err); d != 7*time.Second {
		t.Fatalf("retryAfter = %v, want the server's 7s over a 1ms backoff", d)
	}
	if d := RetryDelay(status.Error(codes.Unavailable, "x")); d != 0 {
		t.Fatalf("RetryDelay without RetryInfo = %v", d)
	}
}

// TestDomainEnumsMatchTheAPI pins the numbering the conversions rely on:
// each domain enum value converts to the API value of the same name.
func TestDomainEnumsMatchTheAPI(t *testing.T) {
	check := func(what string, domain, api string) {
		t.Helper()
		if !strings.EqualFold(strings.ReplaceAll(domain, "-", "_"), api) {
			t.Errorf("%s: domain %q is API %q", what, domain, api)
		}
	}
	for r := sipas.RoleKiosk; r <= sipas.RoleAdmin; r++ {
		check("credential role", r.String(), strings.TrimPrefix(sipasv1.Role(r).String(), "ROLE_"))
	}
	if len(sipasv1.Role_name) != int(sipas.RoleAdmin)+1 {
		t.Errorf("the API has %d roles, the domain %d", len(sipasv1.Role_name), sipas.RoleAdmin+1)
	}
	for _, c := range sipas.Channels {
		check("channel", c.String(), strings.TrimPrefix(sipasv1.Channel(c).String(), "CHANNEL_"))
	}
	if len(sipasv1.Channel_name) != len(sipas.Channels)+1 {
		t.Errorf("the API has %d channels, the domain %d", len(sipasv1.Channel_name), len(sipas.Channels)+1)
	}
	for _, b := range []sipas.Boundaries{sipas.BoundariesAsCollected, sipas.BoundariesCurrent} {
		check("boundaries", b.String(), strings.TrimPrefix(sipasv1.Boundaries(b).String(), "BOUNDARIES_"))
	}
	for _, k := range []sipas.Kind{sipas.KindAssessment, sipas.KindSatisfaction, sipas.KindExpectation} {
		check("kind", k.String(), strings.TrimPrefix(sipasv1.ItemKind(k).String(), "ITEM_KIND_"))
	}
	for _, r := range []sipas.Role{sipas.RoleContent, sipas.RoleOverall} {
		check("item role", r.String(), strings.TrimPrefix(sipasv1.ItemRole(r).String(), "ITEM_ROLE_"))
	}
	for _, a := range []sipas.Aggregation{sipas.AggregationMean, sipas.AggregationWeightedMean, sipas.AggregationNone} {
		check("aggregation", a.String(), strings.TrimPrefix(sipasv1.Aggregation(a).String(), "AGGREGATION_"))
	}
}
