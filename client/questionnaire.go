package client

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Questionnaire fetches a questionnaire definition from the server and
// rebuilds it as a domain value, so that a client can validate responses
// locally against a version it does not carry (one the server loaded with
// --questionnaires).
func (c *Client) Questionnaire(ctx context.Context, id string) (*sipas.Questionnaire, error) {
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	q, err := c.Survey.GetQuestionnaire(cctx, &sipasv1.GetQuestionnaireRequest{Name: "questionnaires/" + id})
	if err != nil {
		return nil, FromStatus(err)
	}
	return QuestionnaireFromProto(q.GetQuestionnaire())
}

// QuestionnaireFromProto rebuilds a domain questionnaire from its API form.
// It writes the definition files the server itself loads (items, formula,
// metadata, scales) into a temporary directory and reads them back with
// sipas.LoadQuestionnaire, so the result is checked and laid out exactly
// like a definition loaded from files.
func QuestionnaireFromProto(q *sipasv1.Questionnaire) (*sipas.Questionnaire, error) {
	dir, err := os.MkdirTemp("", "sipas-questionnaire-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sub := filepath.Join(dir, q.GetQuestionnaireId())
	if err := os.MkdirAll(sub, 0o700); err != nil {
		return nil, err
	}
	kind := func(k sipasv1.ItemKind) string { return strings.ToLower(strings.TrimPrefix(k.String(), "ITEM_KIND_")) }
	files := map[string][][]string{}
	files["questionnaire.csv"] = [][]string{{"key", "value"},
		{"id", q.GetQuestionnaireId()}, {"title_vi", q.GetTitleVi()}, {"title_en", q.GetTitleEn()},
		{"method", q.GetMethod()}, {"formula_version", q.GetFormulaVersion()}}
	items := [][]string{{"code", "kind", "group", "role", "scale", "label_vi", "label_en", "provenance"}}
	for _, it := range q.GetItems() {
		items = append(items, []string{it.GetCode(), kind(it.GetKind()), it.GetGroup(),
			strings.ToLower(strings.TrimPrefix(it.GetRole().String(), "ITEM_ROLE_")), it.GetScale(),
			it.GetLabelVi(), it.GetLabelEn(), it.GetProvenance()})
	}
	files["items.csv"] = items
	formula := [][]string{{"code", "parent", "kind", "aggregation", "weight", "label_vi", "label_en"}}
	var walk func(n *sipasv1.FormulaNode, parent string)
	walk = func(n *sipasv1.FormulaNode, parent string) {
		formula = append(formula, []string{n.GetCode(), parent, kind(n.GetKind()),
			strings.ToLower(strings.TrimPrefix(n.GetAggregation().String(), "AGGREGATION_")),
			strconv.FormatFloat(n.GetWeight(), 'g', -1, 64), n.GetLabelVi(), n.GetLabelEn()})
		for _, c := range n.GetChildren() {
			walk(c, n.GetCode())
		}
	}
	for _, r := range q.GetFormula() {
		walk(r, "")
	}
	files["formula.csv"] = formula
	scales := [][]string{{"scale", "code", "label_vi", "label_en", "positive"},
		{"*", "8", "Không biết", "Don't know", "excluded"}, {"*", "9", "Không áp dụng", "Not applicable", "excluded"}}
	for _, s := range q.GetScales() {
		for _, c := range s.GetCodes() {
			scales = append(scales, []string{s.GetScaleId(), strconv.Itoa(int(c.GetCode())), c.GetLabelVi(), c.GetLabelEn(), strconv.FormatBool(c.GetPositive())})
		}
	}
	for name, rows := range files {
		if err := writeCSVFile(filepath.Join(sub, name), rows); err != nil {
			return nil, err
		}
	}
	if err := writeCSVFile(filepath.Join(dir, "scales.csv"), scales); err != nil {
		return nil, err
	}
	fsys := os.DirFS(dir)
	sc, err := sipas.LoadScales(fsys, "scales.csv")
	if err != nil {
		return nil, fmt.Errorf("questionnaire %s from the server: %w", q.GetQuestionnaireId(), err)
	}
	out, err := sipas.LoadQuestionnaire(fsys, q.GetQuestionnaireId(), sc, "server")
	if err != nil {
		return nil, fmt.Errorf("questionnaire %s from the server: %w", q.GetQuestionnaireId(), err)
	}
	return out, nil
}

func writeCSVFile(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(rows); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
