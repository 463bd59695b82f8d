package client_test

import (
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/questionnaires"
)

const header = "response_id,questionnaire,province,collected_at,channel,unit,respondent_type,gender,birth_year,ethnicity,education,occupation,residence,did_procedure,V23.HL.29,V23.HL.31\n"

func readAll(t *testing.T, data, format string) []client.BatchRow {
	t.Helper()
	br, err := client.NewBatchReader(strings.NewReader(data), format)
	if err != nil {
		t.Fatal(err)
	}
	var rows []client.BatchRow
	for {
		r, err := br.Next()
		if err == io.EOF {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
}

func TestBatchCSVParse(t *testing.T) {
	data := header +
		"0190f3b4-7c1e-7a3b-9f00-123456789abc,sipas-2023,48,2026-03-14,field,dn-1,organisation,female,1980,kinh,lower_secondary,public_employee,urban,yes,5,\n" +
		"0190f3b4-7c1e-7a3b-9f00-123456789abd,sipas-2023,48,2026-03-14T09:30:00+07:00,kiosk,,,,,,,,,0,8,4\n" +
		"\"0190f3b4-7c1e-7a3b-9f00-123456789abe\",sipas-2023,48,\"2026-03-14\",post,,citizen,robot,19x0,,,,,maybe,x,4\n" +
		"short,row\n"
	rows := readAll(t, data, client.FormatCSV)
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0].Response
	if rows[0].Err != nil || rows[0].Line != 2 {
		t.Fatalf("row 1: %+v", rows[0])
	}
	want := time.Date(2026, 3, 14, 0, 0, 0, 0, sipas.VietnamZone)
	if !r.CollectedAt.Equal(want) || r.Channel != sipas.ChannelField || r.UnitID != "dn-1" || r.ProvinceCode != "48" {
		t.Errorf("row 1: %+v", r)
	}
	d := r.Demographics
	if d.Gender != 2 || d.RespondentType != 2 || d.BirthYear != 1980 || d.Ethnicity != 1 || d.Education != 3 ||
		d.Occupation != 4 || d.Residence != 1 || d.DidProcedure == nil || !*d.DidProcedure {
		t.Errorf("row 1 demographics: %+v", d)
	}
	if len(r.Answers) != 1 || r.Answers["V23.HL.29"] != 5 {
		t.Errorf("row 1 answers: %v", r.Answers)
	}
	r = rows[1].Response
	if rows[1].Err != nil || r.Channel != sipas.ChannelKiosk || r.Demographics.DidProcedure == nil || *r.Demographics.DidProcedure ||
		r.CollectedAt.UTC().Hour() != 2 || r.Answers["V23.HL.29"] != 8 {
		t.Errorf("row 2: %+v %v", r, rows[1].Err)
	}
	var de *sipas.Error
	if rows[2].Err == nil || !asErr(rows[2].Err, &de) || len(de.Violations) != 4 {
		t.Fatalf("row 3 should fail on gender, birth_year, did_procedure, answer: %v", rows[2].Err)
	}
	if strings.Contains(rows[2].Err.Error(), "robot") {
		t.Errorf("a demographic value was echoed: %v", rows[2].Err)
	}
	if rows[3].Err == nil || rows[3].Line != 5 {
		t.Errorf("short row: %+v", rows[3])
	}
}

func asErr(err error, de **sipas.Error) bool {
	e, ok := err.(*sipas.Error)
	*de = e
	return ok
}

func TestBatchCSVHeaderErrors(t *testing.T) {
	for _, data := range []string{"", "questionnaire,province\n", "response_id,questionnaire,province,collected_at,V1,V1\n"} {
		if _, err := client.NewBatchReader(strings.NewReader(data), client.FormatCSV); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", data, err)
		}
	}
	// A BOM from a spreadsheet is fine.
	if _, err := client.NewBatchReader(strings.NewReader("\ufeff"+header), client.FormatCSV); err != nil {
		t.Errorf("BOM: %v", err)
	}
}

func TestBatchJSONL(t *testing.T) {
	data := `{"response_id":"0190f3b4-7c1e-7a3b-9f00-123456789abc","questionnaire":"sipas-2023","province":"48","collected_at":"2026-03-14","channel":"online","birth_year":1990,"did_procedure":true,"answers":{"V23.HL.31":4,"V23.HL.32":null}}

not json
{"questionnaire":"sipas-2023","answers":{"V23.HL.31":"x"}}
`
	rows := readAll(t, data, client.FormatJSONL)
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0].Response
	if rows[0].Err != nil || rows[0].Line != 1 || r.Channel != sipas.ChannelOnline || r.Demographics.BirthYear != 1990 ||
		len(r.Answers) != 1 || r.Answers["V23.HL.31"] != 4 || !*r.Demographics.DidProcedure {
		t.Fatalf("row 1: %+v %v", r, rows[0].Err)
	}
	if rows[1].Err == nil || rows[1].Line != 3 || rows[2].Err == nil || rows[2].Line != 4 {
		t.Errorf("bad lines: %+v %+v", rows[1], rows[2])
	}
}

// The example file in testdata is valid against the embedded catalog.
func TestExampleFileValid(t *testing.T) {
	cat, reg, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../testdata/example-48.csv")
	if err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, string(data), client.FormatCSV)
	if len(rows) < 25 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		if r.Err != nil {
			t.Fatalf("line %d: %v", r.Line, r.Err)
		}
		if r.Response.ProvinceCode != "48" || r.Response.Channel != sipas.ChannelField {
			t.Errorf("line %d: %+v", r.Line, r.Response)
		}
		if _, err := sipas.Validate(cat, reg, r.Response, time.Now()); err != nil {
			t.Errorf("line %d: %v", r.Line, err)
		}
	}
}

func TestAssignIDs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.csv")
	keep := "0190f3b4-7c1e-7a3b-9f00-123456789abc"
	data := header +
		",sipas-2023,48,2026-03-14,field,,,,,,,,,,5,\n" +
		keep + ",sipas-2023,48,2026-03-14,field,,,,,,,,,,4,\n" +
		",sipas-2023,48,\"2026-03-14\",field,,,,,,,,,,3,\"4\"\n"
	if err := os.WriteFile(path, []byte(data), 0o640); err != nil {
		t.Fatal(err)
	}
	n, err := client.AssignIDs(path, client.FormatCSV)
	if err != nil || n != 2 {
		t.Fatalf("AssignIDs: %d %v", n, err)
	}
	rows := readAll(t, mustRead(t, path), client.FormatCSV)
	if len(rows) != 3 || rows[1].Response.ID != keep {
		t.Fatalf("rows: %+v", rows)
	}
	for _, r := range []client.BatchRow{rows[0], rows[2]} {
		u, err := uuid.Parse(r.Response.ID)
		if err != nil || u.Version() != 7 {
			t.Errorf("line %d: id %q is not a UUIDv7", r.Line, r.Response.ID)
		}
	}
	if rows[2].Line != 4 || rows[2].Response.Answers["V23.HL.31"] != 4 {
		t.Errorf("line numbers or cells changed: %+v", rows[2])
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	before := mustRead(t, path)
	if n, err := client.AssignIDs(path, client.FormatCSV); n != 0 || err != nil || mustRead(t, path) != before {
		t.Errorf("second AssignIDs changed the file: %d %v", n, err)
	}

	jl := filepath.Join(dir, "b.jsonl")
	os.WriteFile(jl, []byte(`{"questionnaire":"sipas-2023","answers":{"V23.HL.31":4}}`+"\n"+`{"response_id":"`+keep+`"}`+"\n\n"+`{"response_id":""}`), 0o644)
	if n, err := client.AssignIDs(jl, client.FormatJSONL); n != 2 || err != nil {
		t.Fatalf("jsonl: %d %v", n, err)
	}
	lines := strings.Split(mustRead(t, jl), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], `"response_id":"`) || lines[1] != `{"response_id":"`+keep+`"}` || lines[2] != "" {
		t.Errorf("jsonl after: %q", lines)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteBatchCSVRoundTrip(t *testing.T) {
	yes := true
	in := []*sipas.Response{{ID: uuid.Must(uuid.NewV7()).String(), QuestionnaireID: "sipas-2023", ProvinceCode: "48",
		CollectedAt: time.Date(2026, 5, 1, 8, 0, 0, 0, sipas.VietnamZone), Channel: sipas.ChannelPhone,
		Demographics: sipas.Demographics{Gender: 3, BirthYear: 1970, Education: 7, Occupation: 8, Residence: 2, RespondentType: 1, Ethnicity: 2, DidProcedure: &yes},
		Answers:      map[string]int{"V23.HL.31": 4, "V23.HL.29": 9}}}
	var b bytes.Buffer
	if err := client.WriteBatchCSV(&b, nil, in); err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, b.String(), client.FormatCSV)
	if len(rows) != 1 || rows[0].Err != nil {
		t.Fatalf("%+v", rows)
	}
	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	q := cat.Get(in[0].QuestionnaireID)
	if sipas.ContentHash(q, rows[0].Response) != sipas.ContentHash(q, in[0]) || !maps.Equal(rows[0].Response.Answers, in[0].Answers) {
		t.Errorf("round trip changed the content:\n%+v\n%+v", rows[0].Response, in[0])
	}
}

func TestBackoff(t *testing.T) {
	b := client.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	for i, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 20 {
			if d := b.Delay(i + 1); d < want/2 || d > want {
				t.Fatalf("attempt %d: %s not in [%s, %s]", i+1, d, want/2, want)
			}
		}
	}
}

// TestBatchFlagsColumn: a batch file carries a kiosk's data-quality flags
// in an optional "flags" column; an unknown flag refuses the row.
func TestBatchFlagsColumn(t *testing.T) {
	data := "response_id,questionnaire,province,collected_at,channel,flags,V23.HL.29\n" +
		"0190f3b4-7c1e-7a3b-9f00-123456789abc,sipas-2023,48,2026-03-14,kiosk,too_fast+clock_skew,5\n" +
		"0190f3b4-7c1e-7a3b-9f00-123456789abd,sipas-2023,48,2026-03-14,kiosk,,4\n" +
		"0190f3b4-7c1e-7a3b-9f00-123456789abe,sipas-2023,48,2026-03-14,kiosk,sleepy,4\n"
	rows := readAll(t, data, client.FormatCSV)
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	if rows[0].Err != nil || rows[0].Response.Flags != sipas.FlagTooFast|sipas.FlagClockSkew || rows[0].Response.Answers["V23.HL.29"] != 5 {
		t.Errorf("row 1: %+v %v", rows[0].Response, rows[0].Err)
	}
	if rows[1].Err != nil || rows[1].Response.Flags != 0 {
		t.Errorf("row 2: %+v %v", rows[1].Response, rows[1].Err)
	}
	var de *sipas.Error
	if rows[2].Err == nil || !asErr(rows[2].Err, &de) || de.Violations[0].Field != "flags" || rows[2].Line != 4 {
		t.Errorf("row 3 should fail on flags at line 4: %+v", rows[2])
	}
	if got := client.ResponseToProto(rows[0].Response).GetFlags(); len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Errorf("flags sent as %v, want [TOO_FAST CLOCK_SKEW]", got)
	}
}
