package sipas_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/questionnaires"
)

func loadAll(t *testing.T) (*sipas.Catalog, *sipas.Registry) {
	t.Helper()
	cat, reg, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	return cat, reg
}

var testNow = time.Date(2026, 3, 15, 10, 0, 0, 0, sipas.VietnamZone)

func goodResponse() *sipas.Response {
	yes := true
	return &sipas.Response{
		ID:              "0190F3B4-7C1E-7A3B-9F00-123456789ABC",
		QuestionnaireID: "sipas-2023",
		ProvinceCode:    "48",
		CollectedAt:     time.Date(2026, 3, 1, 9, 30, 0, 0, sipas.VietnamZone),
		Channel:         sipas.ChannelKiosk,
		UnitID:          "dn.hc-01",
		Demographics: sipas.Demographics{Gender: 2, BirthYear: 1980, Ethnicity: 1, Education: 5,
			Occupation: 3, Residence: 1, RespondentType: 1, DidProcedure: &yes},
		Answers: map[string]int{"V23.HL.29": 5, "V23.HL.30": 4, "V23.HL.31": 4, "V23.NX.10": 0, "V23.NX.27": 2, "V23.MD.01": 8, "V23.HL.40": 9},
	}
}

func TestValidateGood(t *testing.T) {
	cat, reg := loadAll(t)
	cases := []struct {
		name     string
		mod      func(r *sipas.Response)
		province string
		warn     string
	}{
		{"kiosk partial", func(r *sipas.Response) {}, "48@2025-07-01", ""},
		{"no demographics, no unit", func(r *sipas.Response) { r.Demographics = sipas.Demographics{}; r.UnitID = "" }, "48@2025-07-01", ""},
		{"only 8 and 9", func(r *sipas.Response) { r.Answers = map[string]int{"V23.HL.01": 8, "V23.HL.02": 9} }, "48@2025-07-01", ""},
		{"old code after merger", func(r *sipas.Response) { r.ProvinceCode = "10" }, "15@2025-07-01",
			"mã tỉnh 10 đã hợp nhất vào 15 (Tỉnh Lào Cai) từ 2025-07-01 / province code 10 was merged into 15 (Lao Cai)"},
		{"old code before merger", func(r *sipas.Response) {
			r.ProvinceCode = "10"
			r.CollectedAt = time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
		}, "10@2008-08-01", ""},
		{"reused code 15 before merger", func(r *sipas.Response) {
			r.ProvinceCode = "15"
			r.CollectedAt = time.Date(2025, 6, 30, 16, 59, 0, 0, time.UTC)
		}, "15@2008-08-01", ""},
		{"legacy questionnaire", func(r *sipas.Response) {
			r.QuestionnaireID = "sipas-2017"
			r.Answers = map[string]int{"V17.TC.01": 1, "V17.HL.TC": 5, "V17.HL.PA": 8}
		}, "48@2025-07-01", ""},
		{"full answers", func(r *sipas.Response) {
			q := cat.Get("sipas-2023")
			r.Answers = map[string]int{}
			for _, it := range q.Items {
				r.Answers[it.Code] = it.Scale.Codes[len(it.Scale.Codes)-1].Code
			}
		}, "48@2025-07-01", ""},
		{"5 minutes in the future", func(r *sipas.Response) { r.CollectedAt = testNow.Add(5 * time.Minute) }, "48@2025-07-01", ""},
		{"first day accepted", func(r *sipas.Response) {
			r.CollectedAt = time.Date(2015, 1, 1, 0, 0, 0, 0, sipas.VietnamZone)
			r.Demographics.BirthYear = 1997
		}, "48@2008-08-01", ""},
		{"18 in the Vietnam year, 17 in the UTC year", func(r *sipas.Response) {
			r.CollectedAt = time.Date(2025, 12, 31, 17, 30, 0, 0, time.UTC) // 2026-01-01 00:30 in Vietnam
			r.Demographics.BirthYear = 2008
		}, "48@2025-07-01", ""},
		{"age exactly 18", func(r *sipas.Response) { r.Demographics.BirthYear = 2008 }, "48@2025-07-01", ""},
		{"age exactly 120", func(r *sipas.Response) { r.Demographics.BirthYear = 1906 }, "48@2025-07-01", ""},
		{"every channel: phone", func(r *sipas.Response) { r.Channel = sipas.ChannelPhone }, "48@2025-07-01", ""},
		{"uuid without dashes", func(r *sipas.Response) { r.ID = "0190f3b47c1e7a3b9f00123456789abc" }, "48@2025-07-01", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := goodResponse()
			tc.mod(r)
			acc, err := sipas.Validate(cat, reg, r, testNow)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if r.ID != "0190f3b4-7c1e-7a3b-9f00-123456789abc" {
				t.Errorf("ID not normalised: %s", r.ID)
			}
			if acc.Province.ID != tc.province {
				t.Errorf("province %s, want %s", acc.Province.ID, tc.province)
			}
			if tc.warn == "" && len(acc.Warnings) != 0 {
				t.Errorf("warnings %v", acc.Warnings)
			}
			if tc.warn != "" && (len(acc.Warnings) != 1 || !strings.Contains(acc.Warnings[0], tc.warn)) {
				t.Errorf("warnings %v, want %q", acc.Warnings, tc.warn)
			}
			if acc.Hash != sipas.ContentHash(cat.Get(r.QuestionnaireID), r) || acc.Hash == ([32]byte{}) {
				t.Error("hash not set")
			}
			if acc.Response != r {
				t.Error("response not set")
			}
		})
	}
}

func TestValidateBad(t *testing.T) {
	cat, reg := loadAll(t)
	cases := []struct {
		name   string
		mod    func(r *sipas.Response)
		kind   sipas.ErrorKind
		field  string
		reason string
	}{
		{"id empty", func(r *sipas.Response) { r.ID = "" }, sipas.KindInvalid, "response_id", "REQUIRED"},
		{"id not uuid", func(r *sipas.Response) { r.ID = "abc" }, sipas.KindInvalid, "response_id", "INVALID_UUID"},
		{"id too short", func(r *sipas.Response) { r.ID = "0190f3b4-7c1e-7a3b-9f00-123456789ab" }, sipas.KindInvalid, "response_id", "INVALID_UUID"},
		{"id bad hex", func(r *sipas.Response) { r.ID = "0190f3b4-7c1e-7a3b-9f00-123456789abz" }, sipas.KindInvalid, "response_id", "INVALID_UUID"},
		{"id nil", func(r *sipas.Response) { r.ID = "00000000-0000-0000-0000-000000000000" }, sipas.KindInvalid, "response_id", "NIL_UUID"},
		{"questionnaire empty", func(r *sipas.Response) { r.QuestionnaireID = "" }, sipas.KindInvalid, "questionnaire_id", "REQUIRED"},
		{"questionnaire unknown", func(r *sipas.Response) { r.QuestionnaireID = "sipas-2099" }, sipas.KindFailedPrecondition, "questionnaire_id", "UNKNOWN_QUESTIONNAIRE"},
		{"questionnaire wrong case", func(r *sipas.Response) { r.QuestionnaireID = "SIPAS-2023" }, sipas.KindFailedPrecondition, "questionnaire_id", "UNKNOWN_QUESTIONNAIRE"},
		{"province empty", func(r *sipas.Response) { r.ProvinceCode = "" }, sipas.KindInvalid, "province_code", "REQUIRED"},
		{"province one digit", func(r *sipas.Response) { r.ProvinceCode = "1" }, sipas.KindInvalid, "province_code", "INVALID_PROVINCE_CODE"},
		{"province three digits", func(r *sipas.Response) { r.ProvinceCode = "001" }, sipas.KindInvalid, "province_code", "INVALID_PROVINCE_CODE"},
		{"province letters", func(r *sipas.Response) { r.ProvinceCode = "HN" }, sipas.KindInvalid, "province_code", "INVALID_PROVINCE_CODE"},
		{"province never existed 99", func(r *sipas.Response) { r.ProvinceCode = "99" }, sipas.KindInvalid, "province_code", "UNKNOWN_PROVINCE"},
		{"province never existed 03", func(r *sipas.Response) { r.ProvinceCode = "03" }, sipas.KindInvalid, "province_code", "UNKNOWN_PROVINCE"},
		{"collected_at missing", func(r *sipas.Response) { r.CollectedAt = time.Time{} }, sipas.KindInvalid, "collected_at", "REQUIRED"},
		{"collected_at 11 minutes ahead", func(r *sipas.Response) { r.CollectedAt = testNow.Add(11 * time.Minute) }, sipas.KindInvalid, "collected_at", "IN_FUTURE"},
		{"collected_at next year", func(r *sipas.Response) { r.CollectedAt = testNow.AddDate(1, 0, 0) }, sipas.KindInvalid, "collected_at", "IN_FUTURE"},
		{"collected_at before 2015", func(r *sipas.Response) {
			r.CollectedAt = time.Date(2014, 12, 31, 16, 59, 0, 0, time.UTC)
		}, sipas.KindInvalid, "collected_at", "TOO_EARLY"},
		{"channel unspecified", func(r *sipas.Response) { r.Channel = sipas.ChannelUnspecified }, sipas.KindInvalid, "channel", "REQUIRED"},
		{"channel out of range", func(r *sipas.Response) { r.Channel = 6 }, sipas.KindInvalid, "channel", "INVALID_CHANNEL"},
		{"channel negative", func(r *sipas.Response) { r.Channel = -1 }, sipas.KindInvalid, "channel", "INVALID_CHANNEL"},
		{"unit with space", func(r *sipas.Response) { r.UnitID = "unit 1" }, sipas.KindInvalid, "unit_id", "INVALID_UNIT_ID"},
		{"unit too long", func(r *sipas.Response) { r.UnitID = strings.Repeat("a", 65) }, sipas.KindInvalid, "unit_id", "INVALID_UNIT_ID"},
		{"unit with slash", func(r *sipas.Response) { r.UnitID = "a/b" }, sipas.KindInvalid, "unit_id", "INVALID_UNIT_ID"},
		{"unit non-ascii", func(r *sipas.Response) { r.UnitID = "Huế" }, sipas.KindInvalid, "unit_id", "INVALID_UNIT_ID"},
		{"no answers nil", func(r *sipas.Response) { r.Answers = nil }, sipas.KindInvalid, "answers", "NO_ANSWERS"},
		{"no answers empty", func(r *sipas.Response) { r.Answers = map[string]int{} }, sipas.KindInvalid, "answers", "NO_ANSWERS"},
		{"unknown item", func(r *sipas.Response) { r.Answers["V23.HL.99"] = 4 }, sipas.KindInvalid, "answers[V23.HL.99]", "UNKNOWN_ITEM"},
		{"item of other questionnaire", func(r *sipas.Response) { r.Answers["V17.HL.TC"] = 4 }, sipas.KindInvalid, "answers[V17.HL.TC]", "UNKNOWN_ITEM"},
		{"item code lower case", func(r *sipas.Response) { r.Answers["v23.hl.31"] = 4 }, sipas.KindInvalid, "answers[v23.hl.31]", "UNKNOWN_ITEM"},
		{"answer code 6 on SAT5", func(r *sipas.Response) { r.Answers["V23.HL.31"] = 6 }, sipas.KindInvalid, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer code 0 on SAT5", func(r *sipas.Response) { r.Answers["V23.HL.31"] = 0 }, sipas.KindInvalid, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer code 7", func(r *sipas.Response) { r.Answers["V23.HL.31"] = 7 }, sipas.KindInvalid, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer code 10", func(r *sipas.Response) { r.Answers["V23.HL.31"] = 10 }, sipas.KindInvalid, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer code negative", func(r *sipas.Response) { r.Answers["V23.HL.31"] = -1 }, sipas.KindInvalid, "answers[V23.HL.31]", "INVALID_ANSWER_CODE"},
		{"answer code 3 on YESNO", func(r *sipas.Response) { r.Answers["V23.NX.26"] = 3 }, sipas.KindInvalid, "answers[V23.NX.26]", "INVALID_ANSWER_CODE"},
		{"answer code 2 on TICK", func(r *sipas.Response) { r.Answers["V23.NX.10"] = 2 }, sipas.KindInvalid, "answers[V23.NX.10]", "INVALID_ANSWER_CODE"},
		{"answer code 5 on FOLLOW4", func(r *sipas.Response) { r.Answers["V23.NX.01"] = 5 }, sipas.KindInvalid, "answers[V23.NX.01]", "INVALID_ANSWER_CODE"},
		{"too many answers", func(r *sipas.Response) {
			r.QuestionnaireID = "sipas-2017"
			r.Answers = map[string]int{}
			for i := 0; i < 30; i++ {
				r.Answers[strings.Repeat("X", i+1)] = 1
			}
		}, sipas.KindInvalid, "answers", "TOO_MANY_ANSWERS"},
		{"birth year 2 digits", func(r *sipas.Response) { r.Demographics.BirthYear = 80 }, sipas.KindInvalid, "demographics.birth_year", "INVALID_BIRTH_YEAR"},
		{"birth year 5 digits", func(r *sipas.Response) { r.Demographics.BirthYear = 19800 }, sipas.KindInvalid, "demographics.birth_year", "INVALID_BIRTH_YEAR"},
		{"birth year negative", func(r *sipas.Response) { r.Demographics.BirthYear = -1980 }, sipas.KindInvalid, "demographics.birth_year", "INVALID_BIRTH_YEAR"},
		{"respondent 17", func(r *sipas.Response) { r.Demographics.BirthYear = 2009 }, sipas.KindInvalid, "demographics.birth_year", "UNDERAGE"},
		{"born in the future", func(r *sipas.Response) { r.Demographics.BirthYear = 2030 }, sipas.KindInvalid, "demographics.birth_year", "UNDERAGE"},
		{"respondent 121", func(r *sipas.Response) { r.Demographics.BirthYear = 1905 }, sipas.KindInvalid, "demographics.birth_year", "BIRTH_YEAR_OUT_OF_RANGE"},
		{"underage in Vietnam year", func(r *sipas.Response) {
			r.CollectedAt = time.Date(2025, 12, 31, 16, 30, 0, 0, time.UTC) // 23:30 on 31 Dec in Vietnam
			r.Demographics.BirthYear = 2008
		}, sipas.KindInvalid, "demographics.birth_year", "UNDERAGE"},
		{"gender 4", func(r *sipas.Response) { r.Demographics.Gender = 4 }, sipas.KindInvalid, "demographics.gender", "INVALID_ENUM"},
		{"gender negative", func(r *sipas.Response) { r.Demographics.Gender = -1 }, sipas.KindInvalid, "demographics.gender", "INVALID_ENUM"},
		{"ethnicity 3", func(r *sipas.Response) { r.Demographics.Ethnicity = 3 }, sipas.KindInvalid, "demographics.ethnicity", "INVALID_ENUM"},
		{"education 8", func(r *sipas.Response) { r.Demographics.Education = 8 }, sipas.KindInvalid, "demographics.education", "INVALID_ENUM"},
		{"occupation 9", func(r *sipas.Response) { r.Demographics.Occupation = 9 }, sipas.KindInvalid, "demographics.occupation", "INVALID_ENUM"},
		{"residence 3", func(r *sipas.Response) { r.Demographics.Residence = 3 }, sipas.KindInvalid, "demographics.residence", "INVALID_ENUM"},
		{"respondent type 3", func(r *sipas.Response) { r.Demographics.RespondentType = 3 }, sipas.KindInvalid, "demographics.respondent_type", "INVALID_ENUM"},
		{"province 00", func(r *sipas.Response) { r.ProvinceCode = "00" }, sipas.KindInvalid, "province_code", "UNKNOWN_PROVINCE"},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := goodResponse()
			tc.mod(r)
			acc, err := sipas.Validate(cat, reg, r, testNow)
			if err == nil {
				t.Fatalf("accepted: %+v", acc)
			}
			var e *sipas.Error
			if !errors.As(err, &e) {
				t.Fatalf("err %T %v, want *sipas.Error", err, err)
			}
			if e.Kind != tc.kind {
				t.Errorf("kind %v, want %v (%v)", e.Kind, tc.kind, err)
			}
			found := false
			for _, v := range e.Violations {
				if v.Field == tc.field && v.Reason == tc.reason {
					found = true
				}
				if v.Description == "" || strings.ToUpper(v.Reason) != v.Reason || strings.Contains(v.Reason, " ") {
					t.Errorf("bad violation %+v", v)
				}
			}
			if !found {
				t.Errorf("no violation %s/%s in %v", tc.field, tc.reason, e.Violations)
			}
			// Demographic values never appear in the error.
			if by := r.Demographics.BirthYear; by != 0 && strings.Contains(err.Error(), strconv.Itoa(by)) {
				t.Errorf("error leaks birth year: %v", err)
			}
		})
	}
}

// All violations are collected, not just the first.
func TestValidateCollectsAll(t *testing.T) {
	cat, reg := loadAll(t)
	r := goodResponse()
	r.ID = "x"
	r.ProvinceCode = "99"
	r.Channel = 9
	r.UnitID = "bad unit"
	r.Answers = map[string]int{"V23.HL.31": 7, "NOPE": 1}
	r.Demographics.BirthYear = 2015
	r.Demographics.Gender = 7
	_, err := sipas.Validate(cat, reg, r, testNow)
	var e *sipas.Error
	if !errors.As(err, &e) || e.Kind != sipas.KindInvalid || e.Reason != "INVALID_ARGUMENT" {
		t.Fatalf("err %v", err)
	}
	want := []string{"response_id/INVALID_UUID", "province_code/UNKNOWN_PROVINCE", "channel/INVALID_CHANNEL", "unit_id/INVALID_UNIT_ID",
		"answers[NOPE]/UNKNOWN_ITEM", "answers[V23.HL.31]/INVALID_ANSWER_CODE", "demographics.birth_year/UNDERAGE", "demographics.gender/INVALID_ENUM"}
	var got []string
	for _, v := range e.Violations {
		got = append(got, v.Field+"/"+v.Reason)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("violations\n got %v\nwant %v", got, want)
	}
	msg := err.Error()
	if strings.Contains(msg, "2015") || !strings.Contains(msg, "respondent must be 18 or older") {
		t.Errorf("message %q", msg)
	}
}

func TestValidateUnknownQuestionnaireKeepsOthers(t *testing.T) {
	cat, reg := loadAll(t)
	r := goodResponse()
	r.QuestionnaireID = "sipas-2031"
	r.Channel = 0
	_, err := sipas.Validate(cat, reg, r, testNow)
	var e *sipas.Error
	if !errors.As(err, &e) || e.Kind != sipas.KindFailedPrecondition || e.Reason != "UNKNOWN_QUESTIONNAIRE" {
		t.Fatalf("err %v", err)
	}
	if len(e.Violations) != 2 || e.Violations[0].Field != "questionnaire_id" || e.Violations[1].Field != "channel" {
		t.Errorf("violations %v", e.Violations)
	}
	if sipas.KindOf(err) != sipas.KindFailedPrecondition {
		t.Error("KindOf")
	}
}

func TestValidateNil(t *testing.T) {
	cat, reg := loadAll(t)
	if _, err := sipas.Validate(cat, reg, nil, testNow); sipas.KindOf(err) != sipas.KindInvalid {
		t.Errorf("nil response: %v", err)
	}
}

func TestValidateHugeItemCodeBounded(t *testing.T) {
	cat, reg := loadAll(t)
	r := goodResponse()
	r.Answers = map[string]int{strings.Repeat("Z", 10000) + "\x00": 1}
	_, err := sipas.Validate(cat, reg, r, testNow)
	if err == nil || len(err.Error()) > 1000 || strings.ContainsRune(err.Error(), 0) {
		t.Errorf("error not bounded: %d bytes", len(err.Error()))
	}
}

func TestValidateProvinceNotYetValid(t *testing.T) {
	cat, _ := loadAll(t)
	const csv = "code,name_vi,name_en,valid_from,valid_to,merged_into_code\n" +
		"50,Tỉnh Mới,New Province,2020-01-01,,\n"
	reg, err := sipas.LoadRegistry(strings.NewReader(csv), "test.csv")
	if err != nil {
		t.Fatal(err)
	}
	r := goodResponse()
	r.ProvinceCode = "50"
	r.CollectedAt = time.Date(2019, 12, 31, 16, 59, 0, 0, time.UTC) // 23:59 on 31 Dec 2019 in Vietnam
	_, err = sipas.Validate(cat, reg, r, testNow)
	var e *sipas.Error
	if !errors.As(err, &e) || e.Kind != sipas.KindInvalid || len(e.Violations) != 1 ||
		e.Violations[0].Field != "province_code" || e.Violations[0].Reason != "PROVINCE_NOT_YET_VALID" {
		t.Fatalf("err %v", err)
	}
	r.CollectedAt = r.CollectedAt.Add(time.Minute)
	if _, err := sipas.Validate(cat, reg, r, testNow); err != nil {
		t.Fatalf("first day refused: %v", err)
	}
}
