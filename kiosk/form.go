package kiosk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/internal/atomicfile"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Form is the kiosk part of a questionnaire as the app shows it: the items
// under one formula node, in questionnaire order, with their scales. It is
// made from the served definition, so a new questionnaire version needs no
// code change.
type Form struct {
	QuestionnaireID string     `json:"questionnaire_id"`
	TitleVi         string     `json:"title_vi"`
	TitleEn         string     `json:"title_en"`
	PartVi          string     `json:"part_vi"`
	PartEn          string     `json:"part_en"`
	Items           []FormItem `json:"items"`
}

// FormItem is one question.
type FormItem struct {
	Code    string       `json:"code"`
	LabelVi string       `json:"label_vi"`
	LabelEn string       `json:"label_en"`
	Scale   []ScaleEntry `json:"scale"`
}

// ScaleEntry is one answer of an item's scale.
type ScaleEntry struct {
	Code    int    `json:"code"`
	LabelVi string `json:"label_vi"`
	LabelEn string `json:"label_en"`
}

// formFromQuestionnaire picks the items under the formula node part (any
// kind; satisfaction first when codes repeat) and its descendants.
func formFromQuestionnaire(q *sipasv1.Questionnaire, part string) (*Form, error) {
	var node *sipasv1.FormulaNode
	var find func(ns []*sipasv1.FormulaNode)
	find = func(ns []*sipasv1.FormulaNode) {
		for _, n := range ns {
			if n.GetCode() == part && (node == nil || n.GetKind() == sipasv1.ItemKind_ITEM_KIND_SATISFACTION) {
				node = n
			}
			find(n.GetChildren())
		}
	}
	find(q.GetFormula())
	if node == nil {
		return nil, fmt.Errorf("questionnaire %s has no formula node %q", q.GetQuestionnaireId(), part)
	}
	want := map[string]bool{}
	var collect func(n *sipasv1.FormulaNode)
	collect = func(n *sipasv1.FormulaNode) {
		for _, c := range n.GetItemCodes() {
			want[c] = true
		}
		for _, c := range n.GetChildren() {
			collect(c)
		}
	}
	collect(node)
	scales := map[string][]ScaleEntry{}
	for _, s := range q.GetScales() {
		for _, c := range s.GetCodes() {
			scales[s.GetScaleId()] = append(scales[s.GetScaleId()], ScaleEntry{Code: int(c.GetCode()), LabelVi: c.GetLabelVi(), LabelEn: c.GetLabelEn()})
		}
	}
	f := &Form{QuestionnaireID: q.GetQuestionnaireId(), TitleVi: q.GetTitleVi(), TitleEn: q.GetTitleEn(),
		PartVi: node.GetLabelVi(), PartEn: node.GetLabelEn()}
	for _, it := range q.GetItems() {
		if !want[it.GetCode()] {
			continue
		}
		sc := scales[it.GetScale()]
		if len(sc) == 0 {
			return nil, fmt.Errorf("questionnaire %s: item %s has an unknown scale %q", q.GetQuestionnaireId(), it.GetCode(), it.GetScale())
		}
		f.Items = append(f.Items, FormItem{Code: it.GetCode(), LabelVi: it.GetLabelVi(), LabelEn: it.GetLabelEn(), Scale: sc})
	}
	if len(f.Items) == 0 {
		return nil, fmt.Errorf("questionnaire %s: formula node %q has no items", q.GetQuestionnaireId(), part)
	}
	return f, nil
}

// allows reports whether code is a valid answer to item: a code of its
// scale, or 8 (don't know) / 9 (not applicable).
func (it *FormItem) allows(code int) bool {
	if code == 8 || code == 9 {
		return true
	}
	for _, s := range it.Scale {
		if s.Code == code {
			return true
		}
	}
	return false
}

// fetchQuestionnaire reads the definition from the server and keeps a copy
// in cachePath (0600); when the server cannot be reached it reads the copy,
// so a kiosk restarted offline still asks the questions.
func fetchQuestionnaire(ctx context.Context, c *client.Client, id, cachePath string) (*sipasv1.Questionnaire, error) {
	cctx, cancel := c.WithTimeout(ctx)
	resp, err := c.Survey.GetQuestionnaire(cctx, &sipasv1.GetQuestionnaireRequest{Name: "questionnaires/" + id})
	cancel()
	if err == nil {
		b, merr := proto.Marshal(resp.GetQuestionnaire())
		if merr == nil {
			if werr := atomicfile.WriteFile(cachePath, b, 0o600); werr != nil {
				return resp.GetQuestionnaire(), fmt.Errorf("keeping a copy of the questionnaire: %w", werr)
			}
		}
		return resp.GetQuestionnaire(), nil
	}
	serverErr := client.FromStatus(err)
	q, rerr := readQuestionnaireCopy(cachePath)
	if errors.Is(rerr, os.ErrNotExist) {
		return nil, fmt.Errorf("questionnaire %s: not from the server (%v) and no copy in %s yet", id, serverErr, filepath.Dir(cachePath))
	}
	return q, rerr
}

// readQuestionnaireCopy reads the copy fetchQuestionnaire keeps.
func readQuestionnaireCopy(path string) (*sipasv1.Questionnaire, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	q := &sipasv1.Questionnaire{}
	if err := proto.Unmarshal(b, q); err != nil {
		return nil, fmt.Errorf("reading the questionnaire copy %s: %w", path, err)
	}
	return q, nil
}
