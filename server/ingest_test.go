package server

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// badInput is one entry of the bad-input catalogue (reliability.md §2.2).
type badInput struct {
	name   string
	mutate func(r *sipasv1.Response)
	code   codes.Code
	field  string
	reason string
}

func badInputCatalogue() []badInput {
	I, F := codes.InvalidArgument, codes.FailedPrecondition
	setAnswer := func(code string, v int32) func(r *sipasv1.Response) {
		return func(r *sipasv1.Response) { r.Answers[code] = v }
	}
	demo := func(f func(d *sipasv1.Demographics)) func(r *sipasv1.Response) {
		return func(r *sipasv1.Response) {
			if r.Demographics == nil {
				r.Demographics = &sipasv1.Demographics{}
			}
			f(r.Demographics)
		}
	}
	at := func(t time.Time) func(r *sipasv1.Response) {
		return func(r *sipasv1.Response) { r.CollectedAt = timestamppb.New(t) }
	}
	vn := time.FixedZone("ICT", 7*3600)
	return []badInput{
		{"empty id", func(r *sipasv1.Response) { r.ResponseId = "" }, I, "response_id", "REQUIRED"},
		{"id not a uuid", func(r *sipasv1.Response) { r.ResponseId = "row-17" }, I, "response_id", "INVALID_UUID"},
		{"id nil uuid", func(r *sipasv1.Response) { r.ResponseId = uuid.Nil.String() }, I, "response_id", "NIL_UUID"},
		{"id too long", func(r *sipasv1.Response) { r.ResponseId += "0" }, I, "response_id", "INVALID_UUID"},
		{"id with sql", func(r *sipasv1.Response) { r.ResponseId = "'; DROP TABLE responses; --" }, I, "response_id", "INVALID_UUID"},
		{"id binary", func(r *sipasv1.Response) { r.ResponseId = "\x00\x01\u202e" }, I, "response_id", "INVALID_UUID"},
		{"empty questionnaire", func(r *sipasv1.Response) { r.QuestionnaireId = "" }, I, "questionnaire_id", "REQUIRED"},
		{"unknown questionnaire", func(r *sipasv1.Response) { r.QuestionnaireId = "sipas-2099" }, F, "questionnaire_id", "UNKNOWN_QUESTIONNAIRE"},
		{"questionnaire wrong case", func(r *sipasv1.Response) { r.QuestionnaireId = "SIPAS-2023" }, F, "questionnaire_id", "UNKNOWN_QUESTIONNAIRE"},
		{"empty province", func(r *sipasv1.Response) { r.ProvinceCode = "" }, I, "province_code", "REQUIRED"},
		{"province one digit", func(r *sipasv1.Response) { r.ProvinceCode = "1" }, I, "province_code", "INVALID_PROVINCE_CODE"},
		{"province three digits", func(r *sipasv1.Response) { r.ProvinceCode = "048" }, I, "province_code", "INVALID_PROVINCE_CODE"},
		{"province letters", func(r *sipasv1.Response) { r.ProvinceCode = "DN" }, I, "province_code", "INVALID_PROVINCE_CODE"},
		{"province never existed", func(r *sipasv1.Response) { r.ProvinceCode = "99" }, I, "province_code", "UNKNOWN_PROVINCE"},
		{"province gap code 03", func(r *sipasv1.Response) { r.ProvinceCode = "03" }, I, "province_code", "UNKNOWN_PROVINCE"},
		{"no collected_at", func(r *sipasv1.Response) { r.CollectedAt = nil }, I, "collected_at", "REQUIRED"},
		{"collected in the future", at(time.Now().Add(2 * time.Hour)), I, "collected_at", "IN_FUTURE"},
		{"collected next year", at(time.Now().AddDate(1, 0, 0)), I, "collected_at", "IN_FUTURE"},
		{"collected in 1970", at(time.Unix(0, 0)), I, "collected_at", "TOO_EARLY"},
		{"collected 2014", at(time.Date(2014, 12, 31, 23, 0, 0, 0, vn)), I, "collected_at", "TOO_EARLY"},
		{"no channel", func(r *sipasv1.Response) { r.Channel = sipasv1.Channel_CHANNEL_UNSPECIFIED }, I, "channel", "REQUIRED"},
		{"channel out of range", func(r *sipasv1.Response) { r.Channel = 42 }, I, "channel", "INVALID_CHANNEL"},
		{"channel negative", func(r *sipasv1.Response) { r.Channel = -1 }, I, "channel", "INVALID_CHANNEL"},
		{"unit with space", func(r *sipasv1.Response) { r.UnitId = "dn 1" }, I, "unit_id", "INVALID_UNIT_ID"},
		{"unit too long", func(r *sipasv1.Response) { r.UnitId = strings.Repeat("u", 65) }, I, "unit_id", "INVALID_UNIT_ID"},
		{"unit with path", func(r *sipasv1.Response) { r.UnitId = "../../etc" }, I, "unit_id", "INVALID_UNIT_ID"},
		{"no answers", func(r *sipasv1.Response) { r.Answers = nil }, I, "answers", "NO_ANSWERS"},
		{"unknown item", setAnswer("V23.HL.99", 4), I, "answers[V23.HL.99]", "UNKNOWN_ITEM"},
		{"item of another version", setAnswer("V17.HL.TC", 4), I, "answers[V17.HL.TC]", "UNKNOWN_ITEM"},
		{"item code empty", setAnswer("", 4), I, "answers[]", "UNKNOWN_ITEM"},
		{"answer 0 on SAT5", setAnswer("V23.HL.31", 0), I, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer 6 on SAT5", setAnswer("V23.HL.31", 6), I, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer 7 on SAT5", setAnswer("V23.HL.31", 7), I, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer 10", setAnswer("V23.HL.31", 10), I, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer negative", setAnswer("V23.HL.31", -4), I, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer huge", setAnswer("V23.HL.31", 1<<30), I, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer 5 on FOLLOW4", setAnswer("V23.NX.01", 5), I, "answers[V23.NX.01]", "INVALID_ANSWER_CODE"},
		{"answer 3 on YESNO", setAnswer("V23.NX.44", 3), I, "answers[V23.NX.44]", "INVALID_ANSWER_CODE"},
		{"answer 2 on TICK", setAnswer("V23.NX.10", 2), I, "answers[V23.NX.10]", "INVALID_ANSWER_CODE"},
		{"underage", demo(func(d *sipasv1.Demographics) { d.BirthYear = int32(time.Now().Year() - 10) }), I, "demographics.birth_year", "UNDERAGE"},
		{"seventeen", demo(func(d *sipasv1.Demographics) { d.BirthYear = int32(time.Now().Year() - 17) }), I, "demographics.birth_year", "UNDERAGE"},
		{"birth year two digits", demo(func(d *sipasv1.Demographics) { d.BirthYear = 85 }), I, "demographics.birth_year", "INVALID_BIRTH_YEAR"},
		{"birth year 1850", demo(func(d *sipasv1.Demographics) { d.BirthYear = 1850 }), I, "demographics.birth_year", "BIRTH_YEAR_OUT_OF_RANGE"},
		{"gender out of set", demo(func(d *sipasv1.Demographics) { d.Gender = 9 }), I, "demographics.gender", "INVALID_ENUM"},
		{"ethnicity out of set", demo(func(d *sipasv1.Demographics) { d.Ethnicity = 3 }), I, "demographics.ethnicity", "INVALID_ENUM"},
		{"education out of set", demo(func(d *sipasv1.Demographics) { d.Education = 8 }), I, "demographics.education", "INVALID_ENUM"},
		{"occupation out of set", demo(func(d *sipasv1.Demographics) { d.Occupation = 99 }), I, "demographics.occupation", "INVALID_ENUM"},
		{"residence out of set", demo(func(d *sipasv1.Demographics) { d.Residence = -1 }), I, "demographics.residence", "INVALID_ENUM"},
		{"respondent type out of set", demo(func(d *sipasv1.Demographics) { d.RespondentType = 3 }), I, "demographics.respondent_type", "INVALID_ENUM"},
	}
}

func fieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br.FieldViolations
		}
	}
	return nil
}

// TestBadInputCatalogue sends each bad input through SubmitResponse and
// through UploadBatch and asserts the code, the field violation and that no
// row was written.
func TestBadInputCatalogue(t *testing.T) {
	e := surveyorEnv(t, func(c *Config) { c.RatePerSecond = -1 })
	cat := badInputCatalogue()
	if len(cat) < 40 {
		t.Fatalf("catalogue has %d entries, want at least 40", len(cat))
	}
	for _, bi := range cat {
		t.Run(bi.name, func(t *testing.T) {
			r := serviceResponse(t, e.cat, "48", time.Now())
			bi.mutate(r)
			_, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: r})
			if got := status.Code(err); got != bi.code {
				t.Fatalf("code %v (%v), want %v", got, err, bi.code)
			}
			found := false
			for _, v := range fieldViolations(err) {
				if v.Field == bi.field && v.Reason == bi.reason {
					found = true
				}
			}
			if !found {
				t.Fatalf("no violation %s/%s in %v", bi.field, bi.reason, fieldViolations(err))
			}
			// The same item in a batch is rejected with the same reason and line.
			st, err := e.survey.UploadBatch(e.as("surveyor"))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: 7, Response: r}}}); err != nil {
				t.Fatal(err)
			}
			st.CloseSend()
			sum, res := drainUpload(t, st)
			if sum.GetRejected() != 1 || len(res) != 1 || res[0].Line != 7 || res[0].Outcome != sipasv1.ItemOutcome_ITEM_OUTCOME_REJECTED {
				t.Fatalf("batch: summary %v results %v", sum, res)
			}
			if !strings.Contains(res[0].Message, bi.field) {
				t.Errorf("batch message %q does not name field %s", res[0].Message, bi.field)
			}
		})
	}
	if n := e.countResponses(); n != 0 {
		t.Fatalf("%d rows written by bad inputs", n)
	}
	// Nothing reached the aggregates either.
	if cells := e.store.Cells(); len(cells) != 0 {
		t.Fatalf("%d aggregate cells after bad inputs", len(cells))
	}
}

// TestExactlyOnce: same id and content is a duplicate; same id and other
// content is ALREADY_EXISTS and the stored response stays as it was.
func TestExactlyOnce(t *testing.T) {
	e := surveyorEnv(t, nil)
	r := serviceResponse(t, e.cat, "48", time.Now())
	first, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: r})
	if err != nil || first.Duplicate {
		t.Fatalf("first submit: %v %v", first, err)
	}
	again, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: proto.Clone(r).(*sipasv1.Response)})
	if err != nil || !again.Duplicate {
		t.Fatalf("resubmit: %v %v, want duplicate", again, err)
	}
	changed := proto.Clone(r).(*sipasv1.Response)
	changed.Answers["V23.HL.31"] = 1 + changed.Answers["V23.HL.31"]%5
	_, err = e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: changed})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("conflicting resubmit: %v, want AlreadyExists", err)
	}
	var reason string
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			reason = ei.Reason
		}
	}
	if reason != "RESPONSE_ID_CONFLICT" {
		t.Errorf("ErrorInfo reason %q, want RESPONSE_ID_CONFLICT", reason)
	}
	stored, _, _, err := e.store.GetResponse(context.Background(), r.ResponseId)
	if err != nil {
		t.Fatal(err)
	}
	if int32(stored.Answers["V23.HL.31"]) != r.Answers["V23.HL.31"] {
		t.Fatalf("stored answer changed to %d", stored.Answers["V23.HL.31"])
	}
	if n := e.countResponses(); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

// TestConcurrentDuplicatesThroughServer: many connections send the same
// response at once; exactly one is accepted, the rest are duplicates.
func TestConcurrentDuplicatesThroughServer(t *testing.T) {
	e := surveyorEnv(t, func(c *Config) { c.RatePerSecond = -1 })
	r := serviceResponse(t, e.cat, "48", time.Now())
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, dups := 0, 0
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: proto.Clone(r).(*sipasv1.Response)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("concurrent duplicate: %v", err)
			case ack.Duplicate:
				dups++
			default:
				accepted++
			}
		}()
	}
	wg.Wait()
	if accepted != 1 || dups != 31 || e.countResponses() != 1 {
		t.Fatalf("accepted %d duplicates %d rows %d; want 1, 31, 1", accepted, dups, e.countResponses())
	}
}

// TestMergedProvinceWarning: a retired code after 2025-06-30 is counted for
// its successor and the acknowledgement says so.
func TestMergedProvinceWarning(t *testing.T) {
	e := surveyorEnv(t, nil)
	r := serviceResponse(t, e.cat, "10", time.Date(2025, 9, 1, 10, 0, 0, 0, time.UTC)) // old Lào Cai
	ack, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: r})
	if err != nil {
		t.Fatal(err)
	}
	if ack.ProvinceCode != "15" || len(ack.Warnings) == 0 || !strings.Contains(ack.Warnings[0], "15") {
		t.Fatalf("ack %v: want province 15 with a merger warning", ack)
	}
}

// TestNoSecretsOrDemographicsInLogs sends canary tokens and canary
// demographic values through every RPC and finds none of them in the logs
// or in error messages.
func TestNoSecretsOrDemographicsInLogs(t *testing.T) {
	e := matrixEnv(t)
	canaryToken := "sps_CANARYTOKEN0123456789abcdefghijklmnopqrstuvw"
	const canaryBirth = 1903 // too old: refused, and the value must not be echoed
	const okBirth = 1961
	var errs []string
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
			for _, v := range fieldViolations(err) {
				errs = append(errs, v.Description)
			}
		}
	}
	// Every RPC with the canary token.
	for _, c := range matrixCalls() {
		collect(c(e, e.as(canaryToken)))
	}
	// Demographics through submit and batch, valid and refused.
	for _, by := range []int32{canaryBirth, okBirth} {
		r := serviceResponse(t, e.cat, "48", time.Now())
		r.Demographics = &sipasv1.Demographics{BirthYear: by, Gender: sipasv1.Gender_GENDER_FEMALE, Ethnicity: 7, Occupation: sipasv1.Occupation_OCCUPATION_FARMER}
		_, err := e.survey.SubmitResponse(e.as("surveyor"), &sipasv1.SubmitResponseRequest{Response: r})
		collect(err)
		st, err := e.survey.UploadBatch(e.as("surveyor"))
		if err != nil {
			t.Fatal(err)
		}
		st.Send(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: 2, Response: r}}})
		st.CloseSend()
		_, res := drainUpload(t, st)
		for _, x := range res {
			errs = append(errs, x.Message)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"method"`) {
		t.Fatal("no RPC log lines captured; the test would prove nothing")
	}
	for _, canary := range []string{canaryToken, "CANARYTOKEN", e.tokens["admin"], e.tokens["surveyor"], "FEMALE", "FARMER"} {
		if strings.Contains(logs, canary) {
			t.Errorf("logs contain canary %q", canary)
		}
		for _, m := range errs {
			if strings.Contains(m, canary) {
				t.Errorf("error message %q contains canary %q", m, canary)
			}
		}
	}
	// Birth years are numbers, which may occur by chance inside an id or a
	// duration: look for them as values of their own.
	for _, year := range []string{"1903", "1961"} {
		alone := regexp.MustCompile(`(^|[^0-9A-Za-z.\-])` + year + `([^0-9A-Za-z.\-]|$)`)
		if alone.MatchString(logs) {
			t.Errorf("logs contain the birth year %s", year)
		}
		for _, m := range errs {
			if alone.MatchString(m) {
				t.Errorf("error message %q contains the birth year %s", m, year)
			}
		}
	}
}

// pack moves a response's answers into the packed form.
func pack(t *testing.T, q *sipas.Questionnaire, r *sipasv1.Response) *sipasv1.Response {
	t.Helper()
	out := proto.Clone(r).(*sipasv1.Response)
	out.Answers = nil
	last := 0
	out.PackedAnswers = make([]uint32, len(q.Items))
	for i, it := range q.Items {
		if a, ok := r.Answers[it.Code]; ok {
			out.PackedAnswers[i] = uint32(a + 1)
			last = i + 1
		}
	}
	out.PackedAnswers = out.PackedAnswers[:last] // trailing items not asked left out
	return out
}

// TestPackedAnswers: the compact form is the same response as the map form
// (a duplicate, not a conflict), and its own mistakes are refused.
func TestPackedAnswers(t *testing.T) {
	e := surveyorEnv(t, nil)
	q := e.cat.Get("sipas-2023")
	ctx := e.as("surveyor")
	r := serviceResponse(t, e.cat, "48", time.Now())
	r.Answers["V23.NX.10"] = 0 // a TICK item's 0 is an answer, packed as 1
	first, err := e.survey.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: pack(t, q, r)})
	if err != nil || first.Duplicate {
		t.Fatalf("packed submit: %v %v", first, err)
	}
	again, err := e.survey.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: r})
	if err != nil || !again.Duplicate {
		t.Fatalf("the same response in map form: %v %v, want a duplicate", again, err)
	}
	stored, _, _, err := e.store.GetResponse(context.Background(), r.ResponseId)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Answers) != len(r.Answers) || stored.Answers["V23.NX.10"] != 0 || int32(stored.Answers["V23.HL.31"]) != r.Answers["V23.HL.31"] {
		t.Fatalf("stored answers %v, want %v", stored.Answers, r.Answers)
	}
	for _, c := range []struct {
		name   string
		mutate func(p *sipasv1.Response)
		field  string
		reason string
	}{
		{"both forms", func(p *sipasv1.Response) { p.Answers = map[string]int32{"V23.HL.31": 4} }, "packed_answers", "BOTH_ANSWER_FORMS"},
		{"too many", func(p *sipasv1.Response) { p.PackedAnswers = make([]uint32, len(q.Items)+1) }, "packed_answers", "TOO_MANY_ANSWERS"},
		{"bad code", func(p *sipasv1.Response) { p.PackedAnswers[q.Item("V23.HL.31").Index] = 7 + 1 }, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"none asked", func(p *sipasv1.Response) { p.PackedAnswers = []uint32{0, 0, 0} }, "answers", "NO_ANSWERS"},
	} {
		p := pack(t, q, serviceResponse(t, e.cat, "48", time.Now()))
		c.mutate(p)
		_, err := e.survey.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: p})
		found := false
		for _, v := range fieldViolations(err) {
			found = found || (v.Field == c.field && v.Reason == c.reason)
		}
		if status.Code(err) != codes.InvalidArgument || !found {
			t.Errorf("%s: %v, want InvalidArgument %s/%s", c.name, err, c.field, c.reason)
		}
	}
	if n := e.countResponses(); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}
