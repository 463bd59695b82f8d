package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

func mustCorrect(t *testing.T, s *Store, cs ...Correction) []CorrectionResult {
	t.Helper()
	res, err := s.Correct(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func withSource(acc *sipas.Accepted, cred string) *sipas.Accepted {
	acc.Source.CredentialID = cred
	return acc
}

// expectedCells counts the given current versions in a fresh store (an
// independent path: plain inserts, no corrections).
func expectedCells(t *testing.T, current map[string]*sipas.Accepted) map[sipas.CellKey]*sipas.Tally {
	t.Helper()
	ref := openTest(t, "", Options{})
	var items []*sipas.Accepted
	for _, acc := range current {
		items = append(items, acc)
	}
	if len(items) > 0 {
		mustInsert(t, ref, items...)
	}
	return ref.Cells()
}

// The contract of corrections and closed periods, on both stores, is in
// store/storetest/corrections.go; the tests here keep what is about this
// store: the checkpoint and replay of corrections after a crash, and
// closed periods across a restart.

// TestItem5CorrectionsWithATrail: withdrawals and amendments by the
// sending credential or an admin, with a reason, change the aggregates
// exactly once (memory, checkpoint+replay after a crash at any point, and a
// recount agree, and equal a fresh count of the current versions), are
// idempotent when retried, are audited and keep the replaced versions.
func TestItem5CorrectionsWithATrail(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sipas.db")
	s := openTest(t, path, Options{CheckpointInterval: time.Hour})
	g := newGen(t, 5)
	current := map[string]*sipas.Accepted{}
	var all []*sipas.Accepted
	for range 60 {
		acc := withSource(g.accepted(), "team-a")
		all = append(all, acc)
		current[acc.Response.ID] = acc
	}
	mustInsert(t, s, all...)
	// Some corrections before a checkpoint, some after, some of responses
	// stored after it.
	amend := func(i int, who Actor) CorrectionResult {
		base := current[all[i].Response.ID]
		if base == nil {
			base = all[i] // withdrawn
		}
		m := g.modified(base)
		r := mustCorrect(t, s, Correction{Kind: CorrectionAmend, Amended: m, Actor: who, Reason: "keyed wrong"})[0]
		if r.Err == nil && !r.Unchanged {
			current[all[i].Response.ID] = m
		}
		return r
	}
	withdraw := func(i int, who Actor) CorrectionResult {
		r := mustCorrect(t, s, Correction{Kind: CorrectionWithdraw, ResponseID: all[i].Response.ID, Actor: who, Reason: "duplicate interview"})[0]
		if r.Err == nil {
			delete(current, all[i].Response.ID)
		}
		return r
	}
	team, admin, other := Actor{CredentialID: "team-a"}, Actor{CredentialID: "admin-1", Admin: true}, Actor{CredentialID: "team-b"}
	if r := amend(0, team); r.Err != nil || r.Version != 2 {
		t.Fatalf("amend by the sender: %+v", r)
	}
	if r := amend(0, admin); r.Err != nil || r.Version != 3 {
		t.Fatalf("second amendment by an admin: %+v", r)
	}
	if r := withdraw(1, team); r.Err != nil || r.Version != 1 {
		t.Fatalf("withdraw: %+v", r)
	}
	if r := amend(2, other); sipas.KindOf(r.Err) != sipas.KindPermissionDenied {
		t.Fatalf("amend by another team: %+v, want PERMISSION_DENIED", r)
	}
	if r := withdraw(3, other); sipas.KindOf(r.Err) != sipas.KindPermissionDenied {
		t.Fatalf("withdraw by another team: %+v, want PERMISSION_DENIED", r)
	}
	s.maybeCheckpoint(true)
	amend(4, team)
	withdraw(5, admin)
	amend(6, team)
	withdraw(6, team) // amended, then withdrawn: its current version goes
	// Retries answer the same and change nothing.
	if r := mustCorrect(t, s, Correction{Kind: CorrectionAmend, Amended: current[all[4].Response.ID], Actor: team, Reason: "retry"})[0]; r.Err != nil || !r.Unchanged || r.Version != 2 {
		t.Fatalf("retried amendment: %+v, want unchanged version 2", r)
	}
	if r := mustCorrect(t, s, Correction{Kind: CorrectionWithdraw, ResponseID: all[5].Response.ID, Actor: admin, Reason: "retry"})[0]; r.Err != nil || !r.Unchanged {
		t.Fatalf("retried withdrawal: %+v, want unchanged", r)
	}
	if r := amend(1, admin); sipas.KindOf(r.Err) != sipas.KindFailedPrecondition {
		t.Fatalf("amending a withdrawn response: %+v, want FAILED_PRECONDITION", r)
	}
	// A resend of a withdrawn response is a duplicate and does not bring it back.
	if res := mustInsert(t, s, all[1]); !res[0].Duplicate {
		t.Fatalf("resend of a withdrawn response: %+v, want duplicate", res[0])
	}
	// Responses stored after the checkpoint, then corrected.
	late := []*sipas.Accepted{withSource(g.accepted(), "team-a"), withSource(g.accepted(), "team-a")}
	mustInsert(t, s, late...)
	all = append(all, late...)
	for _, acc := range late {
		current[acc.Response.ID] = acc
	}
	amend(60, team)
	withdraw(61, team)

	want := expectedCells(t, current)
	cellsEqual(t, "reads vs. a fresh count of the current versions", s.Cells(), want)
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	// "Crash": open the file again without closing s; replay must give the same.
	s2 := openTest(t, path, Options{MaxDirtyCells: 4})
	cellsEqual(t, "after a crash and replay", s2.Cells(), want)
	if err := s2.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	// And once more (nothing replayed twice).
	s3 := openTest(t, path, Options{})
	cellsEqual(t, "after a clean restart", s3.Cells(), want)

	// The trail.
	vs, withdrawn, err := s3.ResponseHistory(ctx, all[0].Response.ID)
	if err != nil || withdrawn || len(vs) != 3 || vs[0].ReplacedBy != CorrectionAmend || vs[0].Reason != "keyed wrong" ||
		vs[1].ReplacedByID != "admin-1" || vs[2].Version != 3 || vs[0].ContentHash != all[0].Hash {
		t.Fatalf("history of an amended response: %+v withdrawn=%v err=%v", vs, withdrawn, err)
	}
	if _, withdrawn, _ := s3.ResponseHistory(ctx, all[1].Response.ID); !withdrawn {
		t.Fatal("withdrawn response not reported withdrawn")
	}
	events, err := s3.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var amends, withdraws int
	for _, e := range events {
		switch e.Action {
		case "response.amend":
			amends++
			if !strings.Contains(e.Detail, "reason: ") || !strings.HasPrefix(e.Target, "responses/") {
				t.Errorf("audit event %+v lacks the reason or the response", e)
			}
		case "response.withdraw":
			withdraws++
		}
	}
	if amends != 5 || withdraws != 4 {
		t.Errorf("audit log: %d amendments, %d withdrawals; want 5 and 4 (refused and unchanged ones are not logged)", amends, withdraws)
	}
	// A reason is required.
	if r := mustCorrect(t, s3, Correction{Kind: CorrectionWithdraw, ResponseID: all[7].Response.ID, Actor: admin})[0]; sipas.KindOf(r.Err) != sipas.KindInvalid {
		t.Fatalf("withdrawal without a reason: %+v", r)
	}
}

// TestItem5ClosedPeriodsRefuseChanges: once a period is closed, new
// responses, amendments and withdrawals of it are refused (PERIOD_CLOSED),
// a resend of a stored response is still a duplicate, the closure survives
// a restart, and reopening (audited) allows changes again.
func TestItem5ClosedPeriodsRefuseChanges(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sipas.db")
	s := openTest(t, path, Options{})
	g := newGen(t, 9)
	inMonth := func(m time.Month) *sipas.Accepted {
		r := g.response()
		r.CollectedAt = time.Date(2025, m, 10, 9, 0, 0, 0, sipas.VietnamZone)
		r.ProvinceCode = "01"
		r.UnitID = ""
		return withSource(g.accept(r), "team-a")
	}
	may, june := inMonth(time.May), inMonth(time.June)
	mustInsert(t, s, may, june)
	if _, err := s.ClosePeriod(ctx, sipas.Period{Year: 2025, Month: 5}, "admin-1", "published"); err != nil {
		t.Fatal(err)
	}
	if already, err := s.ClosePeriod(ctx, sipas.Period{Year: 2025, Month: 5}, "admin-1", "again"); err != nil || !already {
		t.Fatalf("closing twice: already=%v err=%v", already, err)
	}
	before := s.Cells()
	isClosed := func(what string, err error) {
		t.Helper()
		var de *sipas.Error
		if !errors.As(err, &de) || de.Kind != sipas.KindFailedPrecondition || de.Reason != "PERIOD_CLOSED" || !strings.Contains(de.Message, "2025-05") {
			t.Fatalf("%s: %v, want FAILED_PRECONDITION PERIOD_CLOSED naming 2025-05", what, err)
		}
	}
	isClosed("new response", mustInsert(t, s, inMonth(time.May))[0].Err)
	if res := mustInsert(t, s, may); !res[0].Duplicate {
		t.Fatalf("resend of a stored response of a closed period: %+v, want duplicate", res[0])
	}
	team := Actor{CredentialID: "team-a"}
	isClosed("amendment", mustCorrect(t, s, Correction{Kind: CorrectionAmend, Amended: g.modified(may), Actor: team, Reason: "r"})[0].Err)
	isClosed("withdrawal", mustCorrect(t, s, Correction{Kind: CorrectionWithdraw, ResponseID: may.Response.ID, Actor: team, Reason: "r"})[0].Err)
	moved := *june.Response
	moved.CollectedAt = time.Date(2025, time.May, 30, 9, 0, 0, 0, sipas.VietnamZone)
	isClosed("amendment into the period", mustCorrect(t, s, Correction{Kind: CorrectionAmend, Amended: g.accept(&moved), Actor: team, Reason: "r"})[0].Err)
	cellsEqual(t, "figures of a closed period", s.Cells(), before)
	// June is open.
	if res := mustInsert(t, s, inMonth(time.June)); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	s.Close()

	s2 := openTest(t, path, Options{})
	ps, err := s2.ListClosedPeriods(ctx)
	if err != nil || len(ps) != 1 || ps[0].Period != "2025-05" || ps[0].FromMonth != 202505 || ps[0].ClosedBy != "admin-1" {
		t.Fatalf("closed periods after a restart: %+v, %v", ps, err)
	}
	isClosed("new response after a restart", mustInsert(t, s2, inMonth(time.May))[0].Err)
	if err := s2.ReopenPeriod(ctx, sipas.Period{Year: 2025, Month: 5}, "admin-1", "late field batch"); err != nil {
		t.Fatal(err)
	}
	if err := s2.ReopenPeriod(ctx, sipas.Period{Year: 2025, Month: 5}, "admin-1", "again"); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("reopening an open period: %v, want NOT_FOUND", err)
	}
	if r := mustCorrect(t, s2, Correction{Kind: CorrectionWithdraw, ResponseID: may.Response.ID, Actor: team, Reason: "r"})[0]; r.Err != nil {
		t.Fatalf("withdrawal after reopening: %v", r.Err)
	}
	if err := s2.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	events, _ := s2.ListAudit(ctx, 0, 100)
	var acts []string
	for _, e := range events {
		acts = append(acts, e.Action)
	}
	if got := strings.Join(acts, ","); got != "response.withdraw,period.reopen,period.close" {
		t.Errorf("audit actions %s", got)
	}
}
