package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

// Corrections and closed periods (issue 16 item 5): the contract both
// stores keep. What is about one store only (the SQLite store's checkpoint
// and replay of corrections after a crash) is tested in its package.

func mustCorrect(t testing.TB, s store.Backend, cs ...store.Correction) []store.CorrectionResult {
	t.Helper()
	res, err := s.Correct(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(cs) {
		t.Fatalf("got %d results for %d corrections", len(res), len(cs))
	}
	return res
}

func withSource(acc *sipas.Accepted, cred string) *sipas.Accepted {
	acc.Source.CredentialID = cred
	return acc
}

// expectedCells counts the given current versions in a fresh store of the
// same backend (an independent path: plain inserts, no corrections).
func expectedCells(t *testing.T, open Opener, current map[string]*sipas.Accepted) map[sipas.CellKey]*sipas.Tally {
	t.Helper()
	ref := open(t, Options{})
	var items []*sipas.Accepted
	for _, acc := range current {
		items = append(items, acc)
	}
	if len(items) > 0 {
		mustInsert(t, ref, items...)
	}
	return Cells(t, ref)
}

// testCorrectionsWithATrail: withdrawals and amendments by the sending
// credential or an admin, with a reason, change the aggregates exactly once
// (the cells served, the stored aggregates and a recount agree, and equal a
// fresh count of the current versions), are idempotent when retried, are
// audited and keep the replaced versions.
func testCorrectionsWithATrail(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Options{})
	g := NewGen(t, 5)
	current := map[string]*sipas.Accepted{}
	var all []*sipas.Accepted
	for range 40 {
		acc := withSource(g.Accepted(), "team-a")
		all = append(all, acc)
		current[acc.Response.ID] = acc
	}
	mustInsert(t, s, all...)
	amend := func(i int, who store.Actor) store.CorrectionResult {
		base := current[all[i].Response.ID]
		if base == nil {
			base = all[i] // withdrawn
		}
		m := g.Modified(base)
		r := mustCorrect(t, s, store.Correction{Kind: store.CorrectionAmend, Amended: m, Actor: who, Reason: "keyed wrong"})[0]
		if r.Err == nil && !r.Unchanged {
			current[all[i].Response.ID] = m
		}
		return r
	}
	withdraw := func(i int, who store.Actor) store.CorrectionResult {
		r := mustCorrect(t, s, store.Correction{Kind: store.CorrectionWithdraw, ResponseID: all[i].Response.ID, Actor: who, Reason: "duplicate interview"})[0]
		if r.Err == nil {
			delete(current, all[i].Response.ID)
		}
		return r
	}
	team, admin, other := store.Actor{CredentialID: "team-a"}, store.Actor{CredentialID: "admin-1", Admin: true}, store.Actor{CredentialID: "team-b"}
	if r := amend(0, team); r.Err != nil || r.Version != 2 || r.ProvinceID == "" {
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
	amend(4, team)
	withdraw(5, admin)
	amend(6, team)
	withdraw(6, team) // amended, then withdrawn: its current version goes
	// Retries answer the same and change nothing.
	if r := mustCorrect(t, s, store.Correction{Kind: store.CorrectionAmend, Amended: current[all[4].Response.ID], Actor: team, Reason: "retry"})[0]; r.Err != nil || !r.Unchanged || r.Version != 2 {
		t.Fatalf("retried amendment: %+v, want unchanged version 2", r)
	}
	if r := mustCorrect(t, s, store.Correction{Kind: store.CorrectionWithdraw, ResponseID: all[5].Response.ID, Actor: admin, Reason: "retry"})[0]; r.Err != nil || !r.Unchanged {
		t.Fatalf("retried withdrawal: %+v, want unchanged", r)
	}
	if r := amend(1, admin); sipas.KindOf(r.Err) != sipas.KindFailedPrecondition {
		t.Fatalf("amending a withdrawn response: %+v, want FAILED_PRECONDITION", r)
	}
	if r := mustCorrect(t, s, store.Correction{Kind: store.CorrectionWithdraw, ResponseID: "0190a5e4-0000-7000-8000-000000000001", Actor: admin, Reason: "r"})[0]; sipas.KindOf(r.Err) != sipas.KindNotFound {
		t.Fatalf("withdrawing an unknown response: %+v, want NOT_FOUND", r)
	}
	// A resend of a withdrawn response is a duplicate and does not bring it back.
	if res := mustInsert(t, s, all[1]); !res[0].Duplicate {
		t.Fatalf("resend of a withdrawn response: %+v, want duplicate", res[0])
	}
	// Several corrections in one call, one of them refused: the others apply.
	res := mustCorrect(t, s,
		store.Correction{Kind: store.CorrectionAmend, Amended: g.Modified(all[10]), Actor: team, Reason: "batch"},
		store.Correction{Kind: store.CorrectionWithdraw, ResponseID: all[11].Response.ID, Actor: other, Reason: "batch"},
		store.Correction{Kind: store.CorrectionWithdraw, ResponseID: all[12].Response.ID, Actor: team, Reason: "batch"})
	if res[0].Err != nil || res[1].Err == nil || res[2].Err != nil {
		t.Fatalf("batch of corrections: %+v", res)
	}
	amend(10, team) // the batch's amendment is not in current: amend again from all[10]
	delete(current, all[12].Response.ID)

	want := expectedCells(t, open, current)
	CellsEqual(t, "reads vs. a fresh count of the current versions", Cells(t, s), want)
	recount, err := s.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	CellsEqual(t, "recount vs. a fresh count of the current versions", recount, want)
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}

	// The trail.
	vs, withdrawn, err := s.ResponseHistory(ctx, all[0].Response.ID)
	if err != nil || withdrawn || len(vs) != 3 || vs[0].ReplacedBy != store.CorrectionAmend || vs[0].Reason != "keyed wrong" ||
		vs[1].ReplacedByID != "admin-1" || vs[2].Version != 3 || vs[0].ContentHash != all[0].Hash ||
		vs[2].ContentHash != current[all[0].Response.ID].Hash || vs[0].ReplacedAt.IsZero() {
		t.Fatalf("history of an amended response: %+v withdrawn=%v err=%v", vs, withdrawn, err)
	}
	if vs, withdrawn, _ := s.ResponseHistory(ctx, all[1].Response.ID); !withdrawn || len(vs) != 1 || vs[0].ReplacedBy != store.CorrectionWithdraw {
		t.Fatalf("history of a withdrawn response: %+v withdrawn=%v", vs, withdrawn)
	}
	if vs, withdrawn, _ := s.ResponseHistory(ctx, all[20].Response.ID); withdrawn || len(vs) != 1 || vs[0].Version != 1 || vs[0].ContentHash != all[20].Hash {
		t.Fatalf("history of an uncorrected response: %+v withdrawn=%v", vs, withdrawn)
	}
	events, err := s.ListAudit(ctx, 0, 100)
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
	if amends != 6 || withdraws != 4 {
		t.Errorf("audit log: %d amendments, %d withdrawals; want 6 and 4 (refused and unchanged ones are not logged)", amends, withdraws)
	}
	// A reason is required.
	if r := mustCorrect(t, s, store.Correction{Kind: store.CorrectionWithdraw, ResponseID: all[7].Response.ID, Actor: admin})[0]; sipas.KindOf(r.Err) != sipas.KindInvalid {
		t.Fatalf("withdrawal without a reason: %+v", r)
	}
}

// testConcurrentCorrections: many callers correcting the same response at
// once (on PostgreSQL, transactions of their own, as replicas would) apply
// each correction exactly once: the version counts them, the trail holds
// each, and the aggregates equal a recount.
func testConcurrentCorrections(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Options{})
	g := NewGen(t, 11)
	base := withSource(g.Accepted(), "team-a")
	victim := withSource(g.Accepted(), "team-a")
	mustInsert(t, s, base, victim)
	// Distinct amendments: each changes the stored content.
	const n = 12
	amendments := make([]*sipas.Accepted, n)
	for i := range amendments {
		r := *base.Response
		r.Answers = map[string]int{}
		for k, v := range base.Response.Answers {
			r.Answers[k] = v
		}
		r.CollectedAt = r.CollectedAt.Add(time.Duration(i+1) * time.Minute)
		amendments[i] = g.Accept(&r)
	}
	var applied, withdrawals, failed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := s.Correct(ctx, []store.Correction{{Kind: store.CorrectionAmend, Amended: amendments[i], Actor: store.Actor{CredentialID: "team-a"}, Reason: "race"}})
			if err != nil || r[0].Err != nil || r[0].Unchanged {
				failed.Add(1)
				t.Errorf("amendment %d: %v %+v", i, err, r)
				return
			}
			applied.Add(1)
		})
		wg.Go(func() {
			<-start
			r, err := s.Correct(ctx, []store.Correction{{Kind: store.CorrectionWithdraw, ResponseID: victim.Response.ID, Actor: store.Actor{CredentialID: "admin", Admin: true}, Reason: "race"}})
			if err != nil || r[0].Err != nil {
				failed.Add(1)
				t.Errorf("withdrawal: %v %+v", err, r)
				return
			}
			if !r[0].Unchanged {
				withdrawals.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	if withdrawals.Load() != 1 {
		t.Fatalf("%d concurrent withdrawals applied, want 1", withdrawals.Load())
	}
	vs, _, err := s.ResponseHistory(ctx, base.Response.ID)
	if err != nil || len(vs) != n+1 || vs[n].Version != n+1 {
		t.Fatalf("history after %d concurrent amendments: %d versions (%v)", applied.Load(), len(vs), err)
	}
	recount, err := s.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	CellsEqual(t, "served vs recount", Cells(t, s), recount)
	var respondents int64
	for k, c := range recount {
		if k.UnitID == "" {
			respondents += c.Respondents
		}
	}
	if respondents != 1 {
		t.Fatalf("%d respondents counted, want 1 (one amended, one withdrawn)", respondents)
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}

func inMonth(g *Gen, m time.Month) *sipas.Accepted {
	r := g.Response()
	r.CollectedAt = time.Date(2025, m, 10, 9, 0, 0, 0, sipas.VietnamZone)
	r.ProvinceCode = "01"
	r.UnitID = ""
	return withSource(g.Accept(r), "team-a")
}

func isPeriodClosed(t testing.TB, what string, err error, period string) {
	t.Helper()
	var de *sipas.Error
	if !errors.As(err, &de) || de.Kind != sipas.KindFailedPrecondition || de.Reason != "PERIOD_CLOSED" || !strings.Contains(de.Message, period) {
		t.Fatalf("%s: %v, want FAILED_PRECONDITION PERIOD_CLOSED naming %s", what, err, period)
	}
}

// testClosedPeriodsRefuseChanges: once a period is closed, new responses,
// amendments and withdrawals of it are refused (PERIOD_CLOSED), a resend of
// a stored response is still a duplicate, and reopening (audited) allows
// changes again.
func testClosedPeriodsRefuseChanges(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Options{})
	g := NewGen(t, 9)
	may, june := inMonth(g, time.May), inMonth(g, time.June)
	mustInsert(t, s, may, june)
	if _, err := s.ClosePeriod(ctx, sipas.Period{Year: 2025, Month: 5}, "admin-1", "published"); err != nil {
		t.Fatal(err)
	}
	if already, err := s.ClosePeriod(ctx, sipas.Period{Year: 2025, Month: 5}, "admin-1", "again"); err != nil || !already {
		t.Fatalf("closing twice: already=%v err=%v", already, err)
	}
	before := Cells(t, s)
	isPeriodClosed(t, "new response", mustInsert(t, s, inMonth(g, time.May))[0].Err, "2025-05")
	res := mustInsert(t, s, may, inMonth(g, time.June))
	if !res[0].Duplicate || res[1].Err != nil || res[1].Duplicate {
		t.Fatalf("resend of a stored response of a closed period beside a new one of an open period: %+v, want duplicate and inserted", res)
	}
	after := Cells(t, s)
	team := store.Actor{CredentialID: "team-a"}
	isPeriodClosed(t, "amendment", mustCorrect(t, s, store.Correction{Kind: store.CorrectionAmend, Amended: g.Modified(may), Actor: team, Reason: "r"})[0].Err, "2025-05")
	isPeriodClosed(t, "withdrawal", mustCorrect(t, s, store.Correction{Kind: store.CorrectionWithdraw, ResponseID: may.Response.ID, Actor: team, Reason: "r"})[0].Err, "2025-05")
	moved := *june.Response
	moved.CollectedAt = time.Date(2025, time.May, 30, 9, 0, 0, 0, sipas.VietnamZone)
	isPeriodClosed(t, "amendment into the period", mustCorrect(t, s, store.Correction{Kind: store.CorrectionAmend, Amended: g.Accept(&moved), Actor: team, Reason: "r"})[0].Err, "2025-05")
	CellsEqual(t, "figures after refused corrections", Cells(t, s), after)
	for k, c := range before {
		if k.Month == 202505 && !c.Equal(after[k]) {
			t.Fatalf("cell %v of the closed period changed", k)
		}
	}
	// A year closed around the month: both named by their own period.
	if _, err := s.ClosePeriod(ctx, sipas.Period{Year: 2025, Quarter: 3}, "admin-1", "q3"); err != nil {
		t.Fatal(err)
	}
	isPeriodClosed(t, "new response of a closed quarter", mustInsert(t, s, inMonth(g, time.August))[0].Err, "2025-Q3")
	ps, err := s.ListClosedPeriods(ctx)
	if err != nil || len(ps) != 2 || ps[0].Period != "2025-05" || ps[0].FromMonth != 202505 || ps[0].ToMonth != 202505 ||
		ps[0].ClosedBy != "admin-1" || ps[0].Reason != "published" || ps[0].CloseTime.IsZero() || ps[1].Period != "2025-Q3" || ps[1].ToMonth != 202509 {
		t.Fatalf("closed periods: %+v, %v", ps, err)
	}
	if err := s.ReopenPeriod(ctx, sipas.Period{Year: 2025, Month: 5}, "admin-1", "late field batch"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReopenPeriod(ctx, sipas.Period{Year: 2025, Month: 5}, "admin-1", "again"); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("reopening an open period: %v, want NOT_FOUND", err)
	}
	if r := mustCorrect(t, s, store.Correction{Kind: store.CorrectionWithdraw, ResponseID: may.Response.ID, Actor: team, Reason: "r"})[0]; r.Err != nil {
		t.Fatalf("withdrawal after reopening: %v", r.Err)
	}
	if res := mustInsert(t, s, inMonth(g, time.May)); res[0].Err != nil {
		t.Fatalf("new response after reopening: %v", res[0].Err)
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	events, _ := s.ListAudit(ctx, 0, 100)
	var acts []string
	for _, e := range events {
		acts = append(acts, e.Action)
	}
	if got := strings.Join(acts, ","); got != "response.withdraw,period.reopen,period.close,period.close" {
		t.Errorf("audit actions %s", got)
	}
}

// testCloseWhileInserting: responses of a month keep arriving from many
// callers while the month is closed. Once ClosePeriod has returned, the
// month's figures never change again: every insert either committed
// before the close or is refused PERIOD_CLOSED.
func testCloseWhileInserting(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Options{})
	g := NewGen(t, 13)
	var closed atomic.Bool
	var lateInserts atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				wasClosed := closed.Load()
				res, err := s.Insert(ctx, []*sipas.Accepted{inMonth(g, time.April)})
				if err != nil {
					t.Error(err)
					return
				}
				switch {
				case res[0].Err == nil && wasClosed:
					lateInserts.Add(1)
				case res[0].Err != nil:
					isPeriodClosed(t, "insert racing a close", res[0].Err, "2025-04")
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := s.ClosePeriod(ctx, sipas.Period{Year: 2025, Month: 4}, "admin-1", "race"); err != nil {
		t.Fatal(err)
	}
	closed.Store(true)
	atClose, err := s.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if lateInserts.Load() > 0 {
		t.Fatalf("%d responses of the closed month stored after ClosePeriod returned", lateInserts.Load())
	}
	final, err := s.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	CellsEqual(t, "figures of the closed month after the close vs. at the close", final, atClose)
	if len(atClose) == 0 {
		t.Fatal("no response stored before the close: the test raced nothing")
	}
}
