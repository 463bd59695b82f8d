package sipas_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/questionnaires"
)

const (
	tMeta    = "key,value\nid,mini\ntitle_vi,Nhỏ\ntitle_en,Mini\nmethod,test\nformula_version,mini.1\n"
	tFormula = "code,parent,kind,aggregation,weight,label_vi,label_en\n" +
		"SIPAS,,satisfaction,weighted_mean,,Tổng,Total\n" +
		"A,SIPAS,satisfaction,mean,2,A,A\n" +
		"B,SIPAS,satisfaction,mean,0.5,B,B\n"
	tItems = "code,kind,group,role,scale,label_vi,label_en,provenance\n" +
		"I1,satisfaction,A,content,SAT5,a,a,sourced\n" +
		"I0,satisfaction,SIPAS,overall,SAT5,o,o,sourced\n" +
		"I2,satisfaction,B,content,YESNO,b,b,reconstructed\n"
)

func miniFS(meta, formula, items string) fstest.MapFS {
	return fstest.MapFS{
		"mini/questionnaire.csv": {Data: []byte(meta)},
		"mini/formula.csv":       {Data: []byte(formula)},
		"mini/items.csv":         {Data: []byte(items)},
	}
}

func sharedScales(t *testing.T) map[string]*sipas.Scale {
	t.Helper()
	s, err := questionnaires.Scales()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadScales(t *testing.T) {
	s := sharedScales(t)
	for id, n := range map[string]int{"SAT5": 5, "FIT5": 5, "EXP5": 5, "FOLLOW4": 4, "YESNO": 2, "YESNO_REV": 2, "TICK": 2} {
		if s[id] == nil || len(s[id].Codes) != n {
			t.Errorf("scale %s: %+v", id, s[id])
		}
	}
	if _, ok := s["*"]; ok {
		t.Error("* loaded as a scale")
	}
	if c := s["YESNO_REV"].Codes; c[0].Positive || !c[1].Positive {
		t.Error("YESNO_REV positives")
	}
	if c := s["TICK"].Codes; c[0].Code != 0 || c[0].Positive || !c[1].Positive {
		t.Error("TICK codes")
	}
	const h = "scale,code,label_vi,label_en,positive\n"
	bad := []struct{ in, want string }{
		{"scale,code\n", "s.csv:1: header is"},
		{h + "S,1,a,a,maybe\nS,2,b,b,true\n", `s.csv:2: positive is "maybe"`},
		{h + "S,x,a,a,true\n", `s.csv:2: answer code "x" is not an integer`},
		{h + "S,1,a,a,true\nS,8,b,b,false\n", "s.csv:3: scale \"S\" lists code 8"},
		{h + "S,1,a,a,true\nS,1,b,b,false\n", "s.csv:3: duplicate code 1"},
		{h + "*,7,x,x,excluded\n", `s.csv:2: scale "*" may only list codes 8 and 9`},
		{h + "S,1,a,a,true\n", `scale "S" has fewer than 2 codes`},
	}
	for _, tc := range bad {
		_, err := sipas.LoadScales(fstest.MapFS{"s.csv": {Data: []byte(tc.in)}}, "s.csv")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadScales(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestLoadQuestionnaireMini(t *testing.T) {
	fsys := miniFS("\ufeff"+tMeta, tFormula, tItems)
	q, err := sipas.LoadQuestionnaire(fsys, "mini", sharedScales(t), "/etc/sipas/mini")
	if err != nil {
		t.Fatal(err)
	}
	if q.ID != "mini" || q.Source != "/etc/sipas/mini" || len(q.Items) != 3 || len(q.Nodes) != 3 || len(q.Roots) != 1 {
		t.Fatalf("%+v", q)
	}
	a, b := q.Node(sipas.KindSatisfaction, "A"), q.Node(sipas.KindSatisfaction, "B")
	if a.Weight != 2 || b.Weight != 0.5 || q.Roots[0].Weight != 1 || q.Roots[0].Aggregation != sipas.AggregationWeightedMean {
		t.Error("weights")
	}
	// Slots: SAT5 5+2, SAT5 5+2, YESNO 2+2.
	if q.Item("I1").Slot != 0 || q.Item("I0").Slot != 7 || q.Item("I2").Slot != 14 || q.Slots != 18 {
		t.Errorf("slots %d %d %d %d", q.Item("I1").Slot, q.Item("I0").Slot, q.Item("I2").Slot, q.Slots)
	}
	if len(q.Scales) != 2 || q.Scales[0].ID != "SAT5" || q.Scales[1].ID != "YESNO" {
		t.Errorf("scales %v", q.Scales)
	}
	if q.Root(sipas.KindSatisfaction) != q.Roots[0] || q.Root(sipas.KindExpectation) != nil {
		t.Error("Root")
	}
}

func TestLoadQuestionnaireErrors(t *testing.T) {
	cases := []struct {
		name                 string
		meta, formula, items string
		want                 string
	}{
		{"second root", tMeta, tFormula + "X,,satisfaction,mean,,x,x\n", tItems,
			`mini/formula.csv:5: second root "X" of kind satisfaction`},
		{"empty mean node", tMeta, tFormula + "C,SIPAS,satisfaction,mean,,c,c\n", tItems,
			`satisfaction node "C" has aggregation mean but no child nodes and no content items`},
		{"missing label", tMeta, tFormula, tItems + "I3,satisfaction,A,content,SAT5,,x,sourced\n",
			"mini/items.csv:5: label_vi and label_en are required"},
		{"bad meta header", "k,v\n", tFormula, tItems, "mini/questionnaire.csv:1: header is"},
		{"bad id", strings.Replace(tMeta, "id,mini", "id,Mini Q", 1), tFormula, tItems, `mini/questionnaire.csv:2: invalid id "Mini Q"`},
		{"empty value", strings.Replace(tMeta, "method,test", "method,", 1), tFormula, tItems, `mini/questionnaire.csv:5: empty value for "method"`},
		{"no items", tMeta, tFormula, "code,kind,group,role,scale,label_vi,label_en,provenance\n", "mini/items.csv: no items"},
		{"bare quote", tMeta, tFormula, tItems + "I4,satisfaction,A,content,SAT5,a\"b,x,y\n", "mini/items.csv:5: "},
		{"item code with space", tMeta, tFormula, tItems + "I 5,satisfaction,A,content,SAT5,a,b,c\n", `mini/items.csv:5: invalid item code "I 5"`},
		{"negative weight", tMeta, strings.Replace(tFormula, ",mean,2,", ",mean,-2,", 1), tItems, `mini/formula.csv:3: weight "-2" must be greater than 0`},
	}
	for _, tc := range cases {
		_, err := sipas.LoadQuestionnaire(miniFS(tc.meta, tc.formula, tc.items), "mini", sharedScales(t), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestCatalog(t *testing.T) {
	cat, _ := loadAll(t)
	q := cat.Get("sipas-2023")
	if q == nil || cat.Get("nope") != nil {
		t.Fatal("Get")
	}
	if _, err := sipas.NewCatalog(q, q); err == nil || sipas.KindOf(err) != sipas.KindInvalid {
		t.Errorf("duplicate id accepted: %v", err)
	}
	if _, err := sipas.NewCatalog(nil); err == nil {
		t.Error("nil accepted")
	}
	var nilCat *sipas.Catalog
	if nilCat.Get("x") != nil || nilCat.List() != nil {
		t.Error("nil catalog")
	}
}

// defOf restates a loaded questionnaire as a definition in memory.
func defOf(q *sipas.Questionnaire) sipas.QuestionnaireDef {
	def := sipas.QuestionnaireDef{ID: q.ID, TitleVi: q.TitleVi, TitleEn: q.TitleEn, Method: q.Method, FormulaVersion: q.FormulaVersion,
		Source: "memory", Scales: map[string]*sipas.Scale{}}
	for _, s := range q.Scales {
		def.Scales[s.ID] = s
	}
	for _, n := range q.Nodes {
		parent := ""
		if n.Parent != nil {
			parent = n.Parent.Code
		}
		def.Nodes = append(def.Nodes, sipas.NodeDef{Code: n.Code, Parent: parent, Kind: n.Kind, Aggregation: n.Aggregation,
			Weight: n.Weight, LabelVi: n.LabelVi, LabelEn: n.LabelEn})
	}
	for _, it := range q.Items {
		def.Items = append(def.Items, sipas.ItemDef{Code: it.Code, Kind: it.Kind, Group: it.Group, Role: it.Role, Scale: it.Scale.ID,
			LabelVi: it.LabelVi, LabelEn: it.LabelEn, Provenance: it.Provenance})
	}
	return def
}

// TestNewQuestionnaire: a questionnaire built in memory is laid out like
// the same definition loaded from files, and a bad definition is refused
// with every problem named, as the file loader does.
func TestNewQuestionnaire(t *testing.T) {
	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	want := cat.Get("sipas-2023")
	got, err := sipas.NewQuestionnaire(defOf(want))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || got.Slots != want.Slots || len(got.Items) != len(want.Items) || len(got.Nodes) != len(want.Nodes) ||
		len(got.Roots) != len(want.Roots) || got.Source != "memory" {
		t.Fatalf("built %s slots %d items %d nodes %d roots %d; loaded slots %d items %d nodes %d roots %d", got.ID, got.Slots,
			len(got.Items), len(got.Nodes), len(got.Roots), want.Slots, len(want.Items), len(want.Nodes), len(want.Roots))
	}
	for i, it := range want.Items {
		g := got.Items[i]
		if g.Code != it.Code || g.Slot != it.Slot || g.Node.Code != it.Node.Code || g.Node.Kind != it.Node.Kind || g.Role != it.Role || g.Scale.ID != it.Scale.ID {
			t.Fatalf("item %d: %+v, want %+v", i, g, it)
		}
		if got.Item(it.Code) != g {
			t.Fatalf("Item(%q) does not find the item", it.Code)
		}
	}
	for i, n := range want.Nodes {
		if g := got.Nodes[i]; g.Code != n.Code || g.Kind != n.Kind || g.Index != n.Index || len(g.Children) != len(n.Children) || len(g.Items) != len(n.Items) {
			t.Fatalf("node %d: %s/%s, want %s/%s", i, g.Code, g.Kind, n.Code, n.Kind)
		}
	}

	bad := defOf(want)
	bad.TitleEn = ""
	bad.Items[0].Scale = "NOPE"
	bad.Items[1].Code = "bad code"
	bad.Nodes = append(bad.Nodes, sipas.NodeDef{Code: "X", Kind: sipas.KindSatisfaction, Aggregation: sipas.AggregationMean, Weight: 1, LabelVi: "x", LabelEn: "x"},
		sipas.NodeDef{Code: "Y", Parent: "Z", Kind: sipas.KindSatisfaction, Aggregation: sipas.AggregationMean, Weight: 0, LabelVi: "y", LabelEn: "y"})
	_, err = sipas.NewQuestionnaire(bad)
	if sipas.KindOf(err) != sipas.KindInvalid {
		t.Fatalf("bad definition: %v, want sipas.KindInvalid", err)
	}
	for _, msg := range []string{`questionnaire: empty value for "title_en"`, `items: unknown scale "NOPE"`, `items: invalid item code "bad code"`,
		`formula: second root "X" of kind satisfaction`, `formula: weight 0 of node "Y" must be a number greater than 0`} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("bad definition: %v\nwant it to say %q", err, msg)
		}
	}
}
