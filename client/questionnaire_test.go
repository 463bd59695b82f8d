package client

import (
	"testing"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
)

// toProto is the server's questionnaireToProto, restated for the test.
func toProto(q *sipas.Questionnaire) *sipasv1.Questionnaire {
	out := &sipasv1.Questionnaire{QuestionnaireId: q.ID, TitleVi: q.TitleVi, TitleEn: q.TitleEn, Method: q.Method, FormulaVersion: q.FormulaVersion}
	for _, it := range q.Items {
		out.Items = append(out.Items, &sipasv1.Item{Code: it.Code, Kind: sipasv1.ItemKind(it.Kind), Group: it.Group,
			Role: sipasv1.ItemRole(it.Role), Scale: it.Scale.ID, LabelVi: it.LabelVi, LabelEn: it.LabelEn, Provenance: it.Provenance})
	}
	for _, s := range q.Scales {
		ps := &sipasv1.Scale{ScaleId: s.ID}
		for _, c := range s.Codes {
			ps.Codes = append(ps.Codes, &sipasv1.ScaleCode{Code: int32(c.Code), LabelVi: c.LabelVi, LabelEn: c.LabelEn, Positive: c.Positive})
		}
		out.Scales = append(out.Scales, ps)
	}
	var node func(n *sipas.Node) *sipasv1.FormulaNode
	node = func(n *sipas.Node) *sipasv1.FormulaNode {
		pn := &sipasv1.FormulaNode{Code: n.Code, Kind: sipasv1.ItemKind(n.Kind), Aggregation: sipasv1.Aggregation(n.Aggregation),
			Weight: n.Weight, LabelVi: n.LabelVi, LabelEn: n.LabelEn}
		for _, c := range n.Children {
			pn.Children = append(pn.Children, node(c))
		}
		return pn
	}
	for _, r := range q.Roots {
		out.Formula = append(out.Formula, node(r))
	}
	return out
}

// TestQuestionnaireFromProto: a definition rebuilt from its API form has
// the same items, layout and tree as the one loaded from files. It is
// built in memory: without a usable temporary directory it still works.
func TestQuestionnaireFromProto(t *testing.T) {
	t.Setenv("TMPDIR", "/nonexistent/sipas-no-temp")
	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range cat.List() {
		got, err := QuestionnaireFromProto(toProto(q))
		if err != nil {
			t.Fatalf("%s: %v", q.ID, err)
		}
		if got.ID != q.ID || got.FormulaVersion != q.FormulaVersion || got.Slots != q.Slots || len(got.Items) != len(q.Items) || len(got.Nodes) != len(q.Nodes) {
			t.Fatalf("%s: rebuilt %s/%s slots %d items %d nodes %d; want %d/%d/%d", q.ID, got.ID, got.FormulaVersion,
				got.Slots, len(got.Items), len(got.Nodes), q.Slots, len(q.Items), len(q.Nodes))
		}
		for i, it := range q.Items {
			g := got.Items[i]
			if g.Code != it.Code || g.Slot != it.Slot || g.Node.Code != it.Node.Code || g.Role != it.Role || g.Scale.ID != it.Scale.ID {
				t.Fatalf("%s item %d: %+v, want %+v", q.ID, i, g, it)
			}
		}
	}
}
