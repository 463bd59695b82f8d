package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

func sample() *Table {
	v, lo := 71.25, 60.5
	t := &Table{Name: "t", TitleVi: "Bảng", TitleEn: "Table", Meta: []Meta{{"period", "Kỳ", "Period", "2026"}},
		Columns: []Column{{"name", "Tên", "Name", Text}, {"value", "Giá trị", "Value", Number}, {"ci_low", "Thấp", "Low", Number}, {"n", "n", "n", Integer}}}
	t.Add("=HYPERLINK(\"http://x\")", &v, &lo, int64(40))
	t.Add("-2+3", -3.5, nil, nil)
	t.Add("@SUM(A1)", nil, nil, int64(0))
	t.Add("+1", nil, nil, 1)
	t.Add("Thành phố Hà Nội", nil, nil, nil)
	return t
}

var now = time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)

func TestCSVNeutralisesFormulasNotNumbers(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteCSV(&b, En, now); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "\uFEFF") {
		t.Fatal("no BOM")
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(b.String(), "\uFEFF")))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for i, rec := range recs {
		if len(rec) == 4 && rec[0] == "Name" {
			rows = recs[i+1:]
		}
	}
	want := [][]string{
		{"'=HYPERLINK(\"http://x\")", "71.25", "60.5", "40"},
		{"'-2+3", "-3.5", "", ""},
		{"'@SUM(A1)", "", "", "0"},
		{"'+1", "", "", "1"},
		{"Thành phố Hà Nội", "", "", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %q", rows)
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d: %q, want %q", i, rows[i], want[i])
		}
	}
	if !strings.Contains(b.String(), "Exported at,2026-07-01T08:00:00Z") || !strings.Contains(b.String(), "Period,2026") {
		t.Errorf("header block missing:\n%s", b.String())
	}
}

func TestXLSXNumbersAreNumeric(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteXLSX(&b, Vi, now); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	sh := f.GetSheetName(0)
	rows, _ := f.GetRows(sh, excelize.Options{RawCellValue: true})
	head := -1
	for i, r := range rows {
		if len(r) > 0 && r[0] == "Tên" {
			head = i
		}
	}
	if head < 0 {
		t.Fatalf("no column headers: %q", rows)
	}
	for _, c := range []struct {
		cell string
		want string
	}{{"B", "71.25"}, {"C", "60.5"}, {"D", "40"}} {
		name := c.cell + itoa(head+2)
		typ, _ := f.GetCellType(sh, name)
		v, _ := f.GetCellValue(sh, name, excelize.Options{RawCellValue: true})
		if v != c.want || typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
			t.Errorf("%s: %q type %v, want the number %s", name, v, typ, c.want)
		}
	}
	if v, _ := f.GetCellValue(sh, "A"+itoa(head+2)); v != "=HYPERLINK(\"http://x\")" {
		t.Errorf("text cell %q", v) // stored as text, never as a formula
	}
	if fm, _ := f.GetCellFormula(sh, "A"+itoa(head+2)); fm != "" {
		t.Errorf("a text cell became formula %q", fm)
	}
}

func TestJSONIsAnObjectWithMetadata(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteJSON(&b, now); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Metadata map[string]string `json:"metadata"`
		Rows     []map[string]any  `json:"rows"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Metadata["period"] != "2026" || len(doc.Rows) != 5 || doc.Rows[0]["value"] != 71.25 || doc.Rows[1]["ci_low"] != nil {
		t.Fatalf("json %s", b.String())
	}
}

func TestStateOf(t *testing.T) {
	v := 50.0
	for _, c := range []struct {
		v            *float64
		n            int64
		insufficient bool
		suppressed   bool
		want         State
	}{
		{nil, 0, false, false, StateNoData},
		{nil, 0, false, true, StateSuppressed},
		{&v, 3, true, false, StateInsufficient},
		{nil, 12, false, false, StateNotComputed},
		{&v, 50, false, false, StateOK},
	} {
		if got := StateOf(c.v, c.n, c.insufficient, c.suppressed); got != c.want {
			t.Errorf("%+v: %s, want %s", c, got, c.want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
