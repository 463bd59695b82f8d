package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/sipas-vn/sipas/client"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

func init() {
	register(command{name: "questionnaire", summary: "list questionnaires, show one's items", run: runQuestionnaire})
}

func runQuestionnaire(ctx context.Context, e *env, args []string) error {
	return subcommands(ctx, e, "questionnaire", args, map[string]func(context.Context, *env, []string) error{
		"show":     questionnaireShow,
		"list":     questionnaireList,
		"template": questionnaireTemplate,
	})
}

// questionnaireItem is the machine form of one item.
type questionnaireItem struct {
	Code       string `json:"code"`
	Kind       string `json:"kind"`
	Group      string `json:"group"`
	Role       string `json:"role"`
	Scale      string `json:"scale"`
	LabelVi    string `json:"label_vi"`
	LabelEn    string `json:"label_en"`
	Provenance string `json:"provenance"`
}

func enumName(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

func questionnaireShow(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlags(e, "questionnaire show", "sipas questionnaire show [flags] QUESTIONNAIRE_ID",
		"sipas questionnaire show sipas-2023", "sipas questionnaire show --format csv sipas-2023 > items.csv")
	c.register(fs, e)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"give one questionnaire id, e.g. sipas-2023 (see 'sipas questionnaire list')"}
	}
	cl, cctx, done, err := c.connect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	resp, err := cl.Survey.GetQuestionnaire(cctx, &sipasv1.GetQuestionnaireRequest{Name: "questionnaires/" + fs.Arg(0)})
	if err != nil {
		return err
	}
	q := resp.GetQuestionnaire()
	t := &table{header: []string{"code", "kind", "group", "role", "scale", "label_vi", "label_en", "provenance"}}
	items := make([]questionnaireItem, 0, len(q.Items))
	for _, it := range q.Items {
		qi := questionnaireItem{Code: it.Code, Kind: enumName(it.Kind.String(), "ITEM_KIND_"), Group: it.Group,
			Role: enumName(it.Role.String(), "ITEM_ROLE_"), Scale: it.Scale, LabelVi: it.LabelVi, LabelEn: it.LabelEn, Provenance: it.Provenance}
		items = append(items, qi)
		t.add(qi.Code, qi.Kind, qi.Group, qi.Role, qi.Scale, qi.LabelVi, qi.LabelEn, qi.Provenance)
	}
	t.objects = items
	if c.format == "table" {
		// Keep the human table readable: the English label and provenance are in csv/json.
		t.header = t.header[:6]
		for i := range t.rows {
			t.rows[i] = t.rows[i][:6]
		}
	}
	return t.write(e.stdout, c.format)
}

// questionnaireTemplate writes an empty batch CSV for a questionnaire: the
// header with every fixed column and every item column, in the order of the
// served definition, ready for a survey team's spreadsheet.
func questionnaireTemplate(ctx context.Context, e *env, args []string) error {
	var c common
	var out string
	fs := newFlags(e, "questionnaire template", "sipas questionnaire template [flags] QUESTIONNAIRE_ID",
		"sipas questionnaire template sipas-2023 --out survey-48.csv",
		"sipas questionnaire template sipas-2023 > survey-48.csv")
	c.register(fs, e)
	fs.StringVar(&out, "out", "", "write the template to this new file instead of standard output")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"give one questionnaire id, e.g. sipas-2023 (see 'sipas questionnaire list')"}
	}
	cl, cctx, done, err := c.connect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	resp, err := cl.Survey.GetQuestionnaire(cctx, &sipasv1.GetQuestionnaireRequest{Name: "questionnaires/" + fs.Arg(0)})
	if err != nil {
		return err
	}
	items := make([]string, 0, len(resp.GetQuestionnaire().GetItems()))
	for _, it := range resp.GetQuestionnaire().GetItems() {
		items = append(items, it.Code)
	}
	var b bytes.Buffer
	if err := client.WriteBatchCSV(&b, items, nil); err != nil {
		return err
	}
	if out == "" {
		_, err := e.stdout.Write(b.Bytes())
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return usageError{fmt.Sprintf("--out: %v (an existing file is never overwritten)", err)}
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "sipas: wrote the %s template (%d item columns) to %s; see docs/batch-format.md\n", fs.Arg(0), len(items), out)
	return nil
}

func questionnaireList(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlags(e, "questionnaire list", "sipas questionnaire list [flags]", "sipas questionnaire list")
	c.register(fs, e)
	if err := parse(fs, args); err != nil {
		return err
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	t := &table{header: []string{"id", "title", "method", "formula_version", "items", "source"}}
	token := ""
	for {
		cctx, cancel := cl.WithTimeout(ctx)
		resp, err := cl.Survey.ListQuestionnaires(cctx, &sipasv1.ListQuestionnairesRequest{PageToken: token})
		cancel()
		if err != nil {
			return err
		}
		for _, q := range resp.Questionnaires {
			t.add(q.QuestionnaireId, q.TitleVi, q.Method, q.FormulaVersion, itoa(len(q.Items)), q.Source)
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	return t.write(e.stdout, c.format)
}
