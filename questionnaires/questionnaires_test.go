package questionnaires

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sipas-vn/sipas"
)

func mustLoad(t *testing.T, extra string) (*sipas.Catalog, *sipas.Registry) {
	t.Helper()
	cat, reg, err := Load(extra)
	if err != nil {
		t.Fatalf("Load(%q): %v", extra, err)
	}
	return cat, reg
}

func TestEmbeddedCounts(t *testing.T) {
	cat, reg := mustLoad(t, "")
	if got := len(cat.List()); got != 2 {
		t.Fatalf("%d questionnaires, want 2", got)
	}
	if cat.List()[0].ID != "sipas-2017" || cat.List()[1].ID != "sipas-2023" {
		t.Errorf("List not sorted by id: %s, %s", cat.List()[0].ID, cat.List()[1].ID)
	}
	q := cat.Get("sipas-2023")
	for kind, want := range map[sipas.Kind]int{sipas.KindAssessment: 45, sipas.KindSatisfaction: 51, sipas.KindExpectation: 10} {
		if got := q.CountItems(kind); got != want {
			t.Errorf("sipas-2023 %s: %d items, want %d", kind, got, want)
		}
	}
	if q.FormulaVersion == "" || q.Method != "QĐ 1001/QĐ-BNV" || q.Source != "embedded" {
		t.Errorf("meta: %+v", q)
	}
	if got := len(reg.All()); got != 97 {
		t.Errorf("registry rows %d, want 97", got)
	}
	q17 := cat.Get("sipas-2017")
	if q17.CountItems(sipas.KindAssessment) != 22 || q17.CountItems(sipas.KindSatisfaction) != 5 {
		t.Errorf("sipas-2017 counts %d/%d", q17.CountItems(sipas.KindAssessment), q17.CountItems(sipas.KindSatisfaction))
	}
}

func TestSipas2023Tree(t *testing.T) {
	cat, _ := mustLoad(t, "")
	q := cat.Get("sipas-2023")
	if len(q.Roots) != 3 || q.Roots[0].Code != "NX" || q.Roots[1].Code != "SIPAS" || q.Roots[2].Code != "MD" {
		t.Fatalf("roots %v", codes(q.Roots))
	}
	if q.Roots[0].Aggregation != sipas.AggregationNone || q.Roots[2].Aggregation != sipas.AggregationNone || q.Roots[1].Aggregation != sipas.AggregationMean {
		t.Errorf("root aggregations")
	}
	sipasRoot := q.Roots[1]
	if got := strings.Join(codes(sipasRoot.Children), ","); got != "CS,DV" {
		t.Errorf("SIPAS children %s", got)
	}
	cs := q.Node(sipas.KindSatisfaction, "CS")
	if len(cs.Children) != 9 {
		t.Errorf("CS has %d children", len(cs.Children))
	}
	for _, p := range cs.Children {
		if len(p.Items) != 3 {
			t.Errorf("%s has %d items", p.Code, len(p.Items))
		}
	}
	if len(cs.Items) != 1 || cs.Items[0].Role != sipas.RoleOverall {
		t.Errorf("CS overall item: %v", cs.Items)
	}
	dv := q.Node(sipas.KindSatisfaction, "DV")
	if got := strings.Join(codes(dv.Children), ","); got != "TC,TT,CC,KQ,PA" {
		t.Errorf("DV children %s", got)
	}
	tc := q.Node(sipas.KindSatisfaction, "TC")
	if q.Item("V23.HL.30").Node != tc || q.Item("V23.HL.30").Role != sipas.RoleOverall {
		t.Errorf("V23.HL.30 not overall under TC")
	}
	// Expectation groups reuse codes: distinct nodes.
	ecs := q.Node(sipas.KindExpectation, "CS")
	if ecs == nil || ecs == cs || ecs.Parent != q.Roots[2] || len(ecs.Items) != 3 {
		t.Errorf("expectation CS node wrong: %+v", ecs)
	}
	nx := q.Roots[0]
	if len(nx.Children) != 8 {
		t.Errorf("NX has %d children", len(nx.Children))
	}
	// Nodes: parents before children, Index set.
	for i, n := range q.Nodes {
		if n.Index != i {
			t.Errorf("node %s index %d at %d", n.Code, n.Index, i)
		}
		if n.Parent != nil && n.Parent.Index >= i {
			t.Errorf("node %s before its parent", n.Code)
		}
	}
	// Items: Index and Slot layout.
	slot := 0
	for i, it := range q.Items {
		if it.Index != i || it.Slot != slot || it.Node == nil || it.Node.Kind != it.Kind || it.Node.Code != it.Group {
			t.Fatalf("item %s: index %d slot %d node %v", it.Code, it.Index, it.Slot, it.Node)
		}
		slot += len(it.Scale.Codes) + 2
	}
	if q.Slots != slot {
		t.Errorf("Slots %d, want %d", q.Slots, slot)
	}
	// A tally works on it.
	tl := sipas.NewTally(q)
	tl.Add(q, &sipas.Response{Answers: map[string]int{"V23.HL.31": 4, "V23.NX.01": 8}}, nil)
	if tl.NodeN[tc.Index] != 1 || tl.NodeN[sipasRoot.Index] != 1 || tl.NodeN[nx.Index] != 0 {
		t.Errorf("tally NodeN %v", tl.NodeN)
	}
}

func TestSipas2017Tree(t *testing.T) {
	cat, _ := mustLoad(t, "")
	q := cat.Get("sipas-2017")
	if len(q.Roots) != 2 || q.Roots[0].Kind != sipas.KindAssessment || q.Roots[1].Code != "SIPAS" {
		t.Fatalf("roots %v", codes(q.Roots))
	}
	if got := strings.Join(codes(q.Roots[1].Children), ","); got != "TC,TT,CC,KQ,PA" {
		t.Errorf("SIPAS children %s", got)
	}
	for _, el := range q.Roots[1].Children {
		if len(el.Items) != 1 || el.Items[0].Code != "V17.HL."+el.Code {
			t.Errorf("element %s items %v", el.Code, el.Items)
		}
	}
	for _, el := range q.Roots[0].Children {
		if len(el.Items) == 0 || el.Items[0].Scale.ID != "YESNO" {
			t.Errorf("assessment %s items", el.Code)
		}
	}
}

func codes(ns []*sipas.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Code)
	}
	return out
}

// An extra directory loads without code change.
func TestExtraDirectory(t *testing.T) {
	cat, _ := mustLoad(t, "testdata")
	q := cat.Get("sipas-2024")
	if q == nil {
		t.Fatal("sipas-2024 not loaded")
	}
	if a, s, e := q.CountItems(sipas.KindAssessment), q.CountItems(sipas.KindSatisfaction), q.CountItems(sipas.KindExpectation); a != 42 || s != 51 || e != 10 {
		t.Errorf("sipas-2024 counts %d/%d/%d, want 42/51/10", a, s, e)
	}
	if q.Source != "testdata/sipas-2024" {
		t.Errorf("source %q", q.Source)
	}
	if len(cat.List()) != 3 {
		t.Errorf("%d questionnaires", len(cat.List()))
	}
}

func TestExtraDuplicateID(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "sipas-2023", filepath.Join(dir, "again"))
	_, _, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), `duplicate questionnaire id "sipas-2023"`) {
		t.Fatalf("err = %v", err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// editLine replaces line n (1-based) of file with fn(line).
func editLine(t *testing.T, file string, n int, fn func(string) string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	lines[n-1] = fn(lines[n-1])
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMalformed(t *testing.T) {
	type edit struct {
		file string
		line int
		fn   func(string) string
	}
	repl := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				panic("test setup: " + old + " not in " + s)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	const d = "sipas-2024/"
	cases := []struct {
		name  string
		edits []edit
		want  string
	}{
		{"bad scale", []edit{{"items.csv", 12, repl(",TICK,", ",SAT6,")}}, d + `items.csv:12: unknown scale "SAT6"`},
		{"bad items header", []edit{{"items.csv", 1, repl("group", "groupe")}}, d + "items.csv:1: header is"},
		{"bad formula header", []edit{{"formula.csv", 1, repl(",weight,", ",wt,")}}, d + "formula.csv:1: header is"},
		{"unknown group", []edit{{"items.csv", 3, repl(",NX1,", ",NX9,")}}, d + `items.csv:3: unknown group "NX9"`},
		{"group of other kind", []edit{{"items.csv", 3, repl(",NX1,", ",TC,")}}, d + `items.csv:3: unknown group "TC": no assessment node`},
		{"duplicate code", []edit{{"items.csv", 5, repl("V24.NX.04", "V24.NX.03")}}, d + `items.csv:5: duplicate item code "V24.NX.03" (first on line 4)`},
		{"unknown kind", []edit{{"items.csv", 6, repl(",assessment,", ",assesment,")}}, d + `items.csv:6: unknown kind "assesment"`},
		{"unknown role", []edit{{"items.csv", 6, repl(",content,", ",main,")}}, d + `items.csv:6: unknown role "main"`},
		{"cycle", []edit{
			{"formula.csv", 11, repl("SIPAS,,satisfaction", "SIPAS,DV,satisfaction")},
		}, d + "formula.csv:11: cycle in formula tree: SIPAS -> DV -> SIPAS"},
		{"self parent", []edit{{"formula.csv", 3, repl("NX1,NX,", "NX1,NX1,")}}, d + `formula.csv:3: node assessment "NX1" is its own parent`},
		{"unknown parent", []edit{{"formula.csv", 3, repl("NX1,NX,", "NX1,NXX,")}}, d + `formula.csv:3: unknown parent "NXX"`},
		{"bad aggregation", []edit{{"formula.csv", 3, repl(",mean,", ",median,")}}, d + `formula.csv:3: unknown aggregation "median"`},
		{"bad weight", []edit{{"formula.csv", 3, repl(",mean,,", ",mean,abc,")}}, d + `formula.csv:3: weight "abc" is not a number`},
		{"zero weight", []edit{{"formula.csv", 3, repl(",mean,,", ",mean,0,")}}, d + `formula.csv:3: weight "0" must be greater than 0`},
		{"duplicate node", []edit{{"formula.csv", 4, repl("NX2,NX,", "NX1,NX,")}}, d + `formula.csv:4: duplicate node assessment "NX1"`},
		{"missing meta key", []edit{{"questionnaire.csv", 6, func(string) string { return "" }}}, d + `questionnaire.csv: missing key "formula_version"`},
		{"unknown meta key", []edit{{"questionnaire.csv", 6, repl("formula_version", "formula")}}, d + `questionnaire.csv:6: unknown key "formula"`},
		{"duplicate id", []edit{{"questionnaire.csv", 2, repl("sipas-2024", "sipas-2023")}}, `duplicate questionnaire id "sipas-2023"`},
		{"wrong field count", []edit{{"items.csv", 7, func(s string) string { return s + ",extra" }}}, d + "items.csv:7: 9 fields, want 8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			qdir := filepath.Join(dir, "sipas-2024")
			copyDir(t, "testdata/sipas-2024", qdir)
			for _, e := range tc.edits {
				editLine(t, filepath.Join(qdir, e.file), e.line, e.fn)
			}
			_, _, err := Load(dir)
			if err == nil {
				t.Fatal("no error")
			}
			msg := strings.ReplaceAll(err.Error(), filepath.ToSlash(dir)+"/", "")
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\nwant it to contain %q", msg, tc.want)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	dir := t.TempDir()
	qdir := filepath.Join(dir, "sipas-2024")
	copyDir(t, "testdata/sipas-2024", qdir)
	os.Remove(filepath.Join(qdir, "formula.csv"))
	_, _, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "sipas-2024/formula.csv: missing file") {
		t.Fatalf("err = %v", err)
	}
}

func TestOwnScales(t *testing.T) {
	dir := t.TempDir()
	qdir := filepath.Join(dir, "sipas-2024")
	copyDir(t, "testdata/sipas-2024", qdir)
	os.WriteFile(filepath.Join(qdir, "scales.csv"), []byte("scale,code,label_vi,label_en,positive\nSAT6,1,a,a,false\nSAT6,2,b,b,false\nSAT6,3,c,c,true\n"), 0o644)
	editLine(t, filepath.Join(qdir, "items.csv"), 12, func(s string) string { return strings.Replace(s, ",TICK,", ",SAT6,", 1) })
	cat, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	it := cat.Get("sipas-2024").Items[10]
	if it.Scale.ID != "SAT6" || len(it.Scale.Codes) != 3 {
		t.Errorf("item %s scale %v", it.Code, it.Scale.ID)
	}
	// Redefining a shared scale is refused.
	os.WriteFile(filepath.Join(qdir, "scales.csv"), []byte("scale,code,label_vi,label_en,positive\nSAT5,1,a,a,false\n"), 0o644)
	_, _, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), `sipas-2024/scales.csv:2: scale "SAT5" is already defined`) {
		t.Fatalf("err = %v", err)
	}
}

// TestBatchFormatDocListsEveryAnswerCode keeps the answer-code table of
// docs/batch-format.md true to scales.csv.
func TestBatchFormatDocListsEveryAnswerCode(t *testing.T) {
	doc, err := os.ReadFile("../docs/batch-format.md")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("scales.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[1:] {
		scale := "`" + r[0] + "`"
		if r[0] == "*" {
			scale = "every scale"
		}
		row := fmt.Sprintf("| %s | `%s` | %s | %s |", scale, r[1], r[2], r[3])
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/batch-format.md lacks the row %s", row)
		}
	}
}
