package crash

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
	"github.com/sipas-vn/sipas/store"
)

// recorder collects what the checker reports.
type recorder struct{ errs, logs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

// TestCheckerDetects proves the checker is not vacuous: a database and a
// history with a lost, a phantom, an unknown and a mismatched response and a
// row deleted behind the aggregates' back must each be reported.
func TestCheckerDetects(t *testing.T) {
	cat, reg, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	var sat []string
	for _, it := range cat.Get(questionnaire).Items {
		if it.Scale != nil && it.Scale.ID == "SAT5" {
			sat = append(sat, it.Code)
		}
	}
	h := &harness{satItems: sat, cat: cat}
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "sipas.db")
	histPath := filepath.Join(dir, "history.jsonl")
	ctx := context.Background()

	st, err := store.Open(ctx, dbPath, cat, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	insert := func(resp *sipasv1.Response) {
		t.Helper()
		r := &sipas.Response{ID: resp.ResponseId, QuestionnaireID: resp.QuestionnaireId, ProvinceCode: resp.ProvinceCode,
			CollectedAt: resp.CollectedAt.AsTime(), Channel: sipas.Channel(resp.Channel), Answers: map[string]int{}}
		for k, v := range resp.Answers {
			r.Answers[k] = int(v)
		}
		if d := resp.Demographics; d != nil {
			r.Demographics = sipas.Demographics{Gender: sipas.Gender(d.Gender), BirthYear: int(d.BirthYear), Education: sipas.Education(d.Education)}
			if d.DidProcedure != nil {
				v := *d.DidProcedure
				r.Demographics.DidProcedure = &v
			}
		}
		acc, err := sipas.Validate(cat, reg, r, r.CollectedAt)
		if err != nil {
			t.Fatal(err)
		}
		res, err := st.Insert(ctx, []*sipas.Accepted{acc})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
	}
	valid := func() *item {
		for {
			if it := h.newItem(rng, "surveyor"); !it.invalid {
				return it
			}
		}
	}
	hist, err := newHistory(histPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(it *item, sha, result string) {
		hist.add(record{ID: it.id, SHA: sha, Principal: "surveyor", Result: result, Attempt: 1})
	}
	good, lost, deleted, phantom, unknown, mism := valid(), valid(), valid(), valid(), valid(), valid()
	insert(good.resp)
	rec(good, good.sha, resOK)
	rec(lost, lost.sha, resOK) // acknowledged, never stored
	insert(deleted.resp)
	rec(deleted, deleted.sha, resOK)
	insert(phantom.resp)
	rec(phantom, phantom.sha, resDefiniteFail) // stored although refused
	insert(unknown.resp)                       // stored, never sent
	other := valid()
	other.resp.ResponseId = mism.id
	insert(other.resp) // stored with other content than acknowledged
	rec(mism, mism.sha, resOK)
	// Corrections: a withdrawal acknowledged but not in effect, and one in
	// effect that was never sent.
	wd, pc := valid(), valid()
	insert(wd.resp)
	rec(wd, wd.sha, resOK)
	hist.add(record{ID: wd.id, SHA: wd.sha, Principal: "surveyor", Result: resOK, Attempt: 1, Correction: corrWithdraw})
	insert(pc.resp)
	rec(pc, pc.sha, resOK)
	if res, err := st.Correct(ctx, []store.Correction{{Kind: store.CorrectionWithdraw, ResponseID: pc.id,
		Actor: store.Actor{Admin: true}, Reason: "behind the harness's back"}}); err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := hist.close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	uid := uuid.MustParse(deleted.id)
	if _, err := db.Exec("DELETE FROM responses WHERE response_id = ?", uid[:]); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var r recorder
	sum, err := check(&r, cat, sqliteView{path: dbPath}, histPath, map[string]bool{})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(r.errs, "\n")
	t.Logf("checker reported:\n%s", all)
	if sum.lost != 2 || sum.phantom != 2 || sum.mismatch != 1 || sum.duplicated != 0 {
		t.Errorf("lost=%d phantom=%d mismatch=%d duplicated=%d, want 2, 2, 1, 0", sum.lost, sum.phantom, sum.mismatch, sum.duplicated)
	}
	if sum.corr.lost != 1 || sum.corr.phantom != 1 {
		t.Errorf("corrections lost=%d phantom=%d, want 1 and 1", sum.corr.lost, sum.corr.phantom)
	}
	for _, want := range []string{lost.id, deleted.id, phantom.id, unknown.id, mism.id, "aggregates differ", wd.id + " (acknowledged withdraw not in effect", pc.id + " (corrected without"} {
		if !strings.Contains(all, want) {
			t.Errorf("checker did not report %s", want)
		}
	}
	if strings.Contains(all, good.id) {
		t.Errorf("checker reported the good response %s", good.id)
	}
}
