// Package storetest is the contract test suite of store.Backend: every test
// of the store's behaviour that is not about one database in particular,
// run against each backend (the SQLite store in store/contract_test.go, the
// PostgreSQL store in pgstore/contract_test.go), as OpenFGA and Gitea test
// their storage backends.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

// Options are what a test asks of the store it opens.
type Options struct {
	// Now is the store's clock (nil: time.Now).
	Now func() time.Time
	// RefuseAuditActor, when not "", makes the database refuse every
	// audit event of this actor (a trigger the opener installs after
	// opening the store): what a failed audit write leaves behind.
	RefuseAuditActor string
}

// Opener opens a store on a fresh, empty database; the store is closed
// when t ends.
type Opener func(t *testing.T, o Options) store.Backend

// Run runs the whole suite against the backend open makes.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"Units", testUnits},
		{"Credentials", testCredentials},
		{"Audit", testAudit},
		{"ChangesAndTheirAuditAreOneTransaction", testChangesAndTheirAuditAreOneTransaction},
		{"InsertDuplicateConflict", testInsertDuplicateConflict},
		{"GetResponseRoundTrip", testGetResponseRoundTrip},
		{"InsertIntraBatchDuplicates", testInsertIntraBatchDuplicates},
		{"InsertItemErrors", testInsertItemErrors},
		{"ConcurrentDuplicates", testConcurrentDuplicates},
		{"AggregatesEqualRecount", testAggregatesEqualRecount},
		{"EachCellMonthRange", testEachCellMonthRange},
		{"Ping", testPing},
		{"UnitsUniqueRegardlessOfCase", testUnitsUniqueRegardlessOfCase},
		{"ResponsesRecordTheirSource", testResponsesRecordTheirSource},
		{"FlaggedResponsesNotCounted", testFlaggedResponsesNotCounted},
		{"KioskHeartbeats", testKioskHeartbeats},
		{"CorrectionsWithATrail", testCorrectionsWithATrail},
		{"ConcurrentCorrections", testConcurrentCorrections},
		{"ClosedPeriodsRefuseChanges", testClosedPeriodsRefuseChanges},
		{"CloseWhileInserting", testCloseWhileInserting},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func mustInsert(t testing.TB, s store.Backend, items ...*sipas.Accepted) []store.InsertResult {
	t.Helper()
	res, err := s.Insert(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(items) {
		t.Fatalf("got %d results for %d items", len(res), len(items))
	}
	return res
}

// Cells returns a copy of every aggregate cell s serves, read through
// EachCell as the index engine reads them.
func Cells(t testing.TB, s store.Backend) map[sipas.CellKey]*sipas.Tally {
	cat, _ := Catalog(t)
	out := map[sipas.CellKey]*sipas.Tally{}
	for _, q := range cat.List() {
		s.EachCell(q.ID, 0, 0, func(k sipas.CellKey, tl *sipas.Tally) {
			c := &sipas.Tally{Respondents: tl.Respondents, Slots: append([]int64(nil), tl.Slots...), NodeN: append([]int64(nil), tl.NodeN...)}
			out[k] = c
		})
	}
	return out
}

// CellsEqual fails t when a and b differ.
func CellsEqual(t testing.TB, what string, a, b map[sipas.CellKey]*sipas.Tally) {
	t.Helper()
	if d := store.DiffCells("a", a, "b", b); len(d) > 0 {
		t.Fatalf("%s: %d differences, e.g. %s", what, len(d), d[0])
	}
}

func testUnits(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	for i := range 5 {
		u := store.Unit{ID: fmt.Sprintf("u-%d", i), DisplayName: "Bộ phận một cửa", ProvinceCode: []string{"01", "48"}[i%2], CommuneCode: "00004"}
		if err := s.CreateUnit(ctx, u, store.AuditEvent{Actor: "test", Action: "unit.create"}); err != nil {
			t.Fatal(err)
		}
	}
	err := s.CreateUnit(ctx, store.Unit{ID: "u-1", ProvinceCode: "01"}, store.AuditEvent{Actor: "test", Action: "unit.create"})
	if e, ok := err.(*sipas.Error); !ok || e.Kind != sipas.KindConflict || e.Reason != "UNIT_EXISTS" {
		t.Fatalf("duplicate unit: %v", err)
	}
	if err := s.CreateUnit(ctx, store.Unit{ID: "x"}, store.AuditEvent{Actor: "test", Action: "unit.create"}); sipas.KindOf(err) != sipas.KindInvalid {
		t.Fatalf("unit without province: %v", err)
	}
	u, err := s.GetUnit(ctx, "u-2")
	if err != nil || u.ProvinceCode != "01" || u.DisplayName != "Bộ phận một cửa" || u.CreateTime.IsZero() {
		t.Fatalf("GetUnit = %+v, %v", u, err)
	}
	if _, err := s.GetUnit(ctx, "nope"); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("unknown unit: %v", err)
	}
	page1, err := s.ListUnits(ctx, "", "", 2)
	if err != nil || len(page1) != 2 || page1[0].ID != "u-0" || page1[1].ID != "u-1" {
		t.Fatalf("page 1 = %+v, %v", page1, err)
	}
	page2, _ := s.ListUnits(ctx, "", page1[1].ID, 10)
	if len(page2) != 3 || page2[0].ID != "u-2" {
		t.Fatalf("page 2 = %+v", page2)
	}
	hn, _ := s.ListUnits(ctx, "01", "", 0)
	if len(hn) != 3 || hn[0].ID != "u-0" || hn[1].ID != "u-2" || hn[2].ID != "u-4" {
		t.Fatalf("province 01 = %+v", hn)
	}
}

func testCredentials(t *testing.T, open Opener) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	s := open(t, Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	if n, err := s.CountCredentials(ctx); err != nil || n != 0 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if err := s.CreateUnit(ctx, store.Unit{ID: "k-1", ProvinceCode: "48"}, store.AuditEvent{Actor: "test", Action: "unit.create"}); err != nil {
		t.Fatal(err)
	}
	past := now.Add(-time.Hour)
	kiosk, err := s.CreateCredential(ctx, store.Credential{TokenHash: []byte("hash-kiosk"), Credential: sipas.Credential{Role: 1, UnitID: "k-1", Description: "kiosk"}}, store.AuditEvent{Actor: "test", Action: "credential.create"})
	if err != nil || kiosk.ID == "" || !kiosk.CreateTime.Equal(now) {
		t.Fatalf("create = %+v, %v", kiosk, err)
	}
	team, err := s.CreateCredential(ctx, store.Credential{TokenHash: []byte("hash-team"), Credential: sipas.Credential{ID: "team", Role: 2, Provinces: []string{"01", "48"}}}, store.AuditEvent{Actor: "test", Action: "credential.create"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCredential(ctx, store.Credential{TokenHash: []byte("hash-old"), Credential: sipas.Credential{ID: "old", Role: 3, AllProvinces: true, ExpireTime: &past}}, store.AuditEvent{Actor: "test", Action: "credential.create"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCredential(ctx, store.Credential{TokenHash: []byte("other"), Credential: sipas.Credential{ID: "team"}}, store.AuditEvent{Actor: "test", Action: "credential.create"}); sipas.KindOf(err) != sipas.KindConflict {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := s.CreateCredential(ctx, store.Credential{TokenHash: []byte("hash-team")}, store.AuditEvent{Actor: "test", Action: "credential.create"}); sipas.KindOf(err) != sipas.KindConflict {
		t.Fatalf("duplicate token hash: %v", err)
	}
	if _, err := s.CreateCredential(ctx, store.Credential{TokenHash: []byte("h"), Credential: sipas.Credential{UnitID: "no-such-unit"}}, store.AuditEvent{Actor: "test", Action: "credential.create"}); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("unknown unit: %v", err)
	}
	got, err := s.CredentialByTokenHash(ctx, []byte("hash-team"))
	if err != nil || !reflect.DeepEqual(got, team) {
		t.Fatalf("by hash = %+v, %v; want %+v", got, err, team)
	}
	got, err = s.CredentialByTokenHash(ctx, []byte("hash-kiosk"))
	if err != nil || got.UnitID != "k-1" || got.Provinces != nil || !got.Active(now) {
		t.Fatalf("by hash = %+v, %v", got, err)
	}
	if _, err := s.CredentialByTokenHash(ctx, []byte("nope")); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("unknown hash: %v", err)
	}
	active, _ := s.ListCredentials(ctx, "", 0, false)
	all, _ := s.ListCredentials(ctx, "", 0, true)
	if len(active) != 2 || len(all) != 3 {
		t.Fatalf("active %d, all %d", len(active), len(all))
	}
	if err := s.RevokeCredential(ctx, "team", now, store.AuditEvent{Actor: "test", Action: "credential.revoke"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeCredential(ctx, "team", now.Add(time.Hour), store.AuditEvent{Actor: "test", Action: "credential.revoke"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.CredentialByTokenHash(ctx, []byte("hash-team"))
	if got.RevokeTime == nil || !got.RevokeTime.Equal(now) || got.Active(now) {
		t.Fatalf("after revoke: %+v", got)
	}
	if err := s.RevokeCredential(ctx, "nope", now, store.AuditEvent{Actor: "test", Action: "credential.revoke"}); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("revoke unknown: %v", err)
	}
	if byID, err := s.GetCredential(ctx, "team"); err != nil || byID.RevokeTime == nil || !byID.RevokeTime.Equal(now) || string(byID.TokenHash) != "hash-team" {
		t.Fatalf("GetCredential(team) = %+v, %v", byID, err)
	}
	if _, err := s.GetCredential(ctx, "nope"); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("GetCredential(nope): %v", err)
	}
	if active, _ := s.ListCredentials(ctx, "", 0, false); len(active) != 1 {
		t.Fatalf("active after revoke = %d", len(active))
	}
	if page, _ := s.ListCredentials(ctx, "old", 10, true); len(page) != 1 || page[0].ID != "team" {
		t.Fatalf("page after 'old' = %+v", page)
	}
	if n, _ := s.CountCredentials(ctx); n != 3 {
		t.Fatalf("count = %d", n)
	}
}

// testChangesAndTheirAuditAreOneTransaction: a unit, credential or
// revocation whose audit event cannot be written is not stored either, so
// no active credential exists whose token nobody was given.
func testChangesAndTheirAuditAreOneTransaction(t *testing.T, open Opener) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()

	// The same calls succeed on a database that takes audit writes, each
	// with its event.
	ok := open(t, Options{Now: func() time.Time { return now }})
	if err := ok.CreateUnit(ctx, store.Unit{ID: "u-1", ProvinceCode: "48"}, store.AuditEvent{Actor: "admin-1", Action: "unit.create", Target: "units/u-1", Detail: "province=48"}); err != nil {
		t.Fatal(err)
	}
	c, err := ok.CreateCredential(ctx, store.Credential{TokenHash: []byte("h-1"), Credential: sipas.Credential{Role: sipas.RoleKiosk, UnitID: "u-1"}},
		store.AuditEvent{Actor: "admin-1", Action: "credential.create", Detail: "role=kiosk scope=u-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ok.RevokeCredential(ctx, c.ID, now, store.AuditEvent{Actor: "admin-1", Action: "credential.revoke"}); err != nil {
		t.Fatal(err)
	}
	es, err := ok.ListAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ actor, action, target string }{
		{"admin-1", "credential.revoke", "credentials/" + c.ID},
		{"admin-1", "credential.create", "credentials/" + c.ID},
		{"admin-1", "unit.create", "units/u-1"},
	}
	if len(es) != len(want) {
		t.Fatalf("audit = %+v; want %d events", es, len(want))
	}
	for i, w := range want {
		if es[i].Actor != w.actor || es[i].Action != w.action || es[i].Target != w.target || !es[i].Time.Equal(now) {
			t.Errorf("audit[%d] = %+v; want %s %s %s at %v", i, es[i], w.actor, w.action, w.target, now)
		}
	}
	// A change without its audit event is refused before it is made.
	if _, err := ok.CreateCredential(ctx, store.Credential{TokenHash: []byte("h-2"), Credential: sipas.Credential{Role: sipas.RoleAdmin}}, store.AuditEvent{}); sipas.KindOf(err) != sipas.KindInvalid {
		t.Fatalf("credential without audit event: %v; want KindInvalid", err)
	}
	if n, _ := ok.CountCredentials(ctx); n != 1 {
		t.Fatalf("credentials = %d after a refused create; want 1", n)
	}

	// When the audit write fails, the change is not stored either.
	s := open(t, Options{Now: func() time.Time { return now }, RefuseAuditActor: "refused"})
	refused := store.AuditEvent{Actor: "refused", Action: "x"}
	if err := s.CreateUnit(ctx, store.Unit{ID: "u-1", ProvinceCode: "48"}, refused); err == nil {
		t.Fatal("CreateUnit succeeded though its audit write failed")
	}
	if _, err := s.GetUnit(ctx, "u-1"); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("unit stored without its audit event: %v", err)
	}
	if _, ok := s.Unit("u-1"); ok {
		t.Fatal("unit in the registry without its audit event")
	}
	if _, err := s.CreateCredential(ctx, store.Credential{TokenHash: []byte("h-admin"), Credential: sipas.Credential{ID: "a-1", Role: sipas.RoleAdmin}}, refused); err == nil {
		t.Fatal("CreateCredential succeeded though its audit write failed")
	}
	if _, err := s.CredentialByTokenHash(ctx, []byte("h-admin")); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("credential stored without its audit event: %v", err)
	}
	if n, err := s.CountCredentials(ctx); err != nil || n != 0 {
		t.Fatalf("credentials = %d, %v after a failed audit write; want 0", n, err)
	}
	// A revocation whose audit write fails leaves the credential active.
	if _, err := s.CreateCredential(ctx, store.Credential{TokenHash: []byte("h-team"), Credential: sipas.Credential{ID: "team", Role: sipas.RoleAnalyst, AllProvinces: true}},
		store.AuditEvent{Actor: "admin-1", Action: "credential.create"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeCredential(ctx, "team", now, refused); err == nil {
		t.Fatal("RevokeCredential succeeded though its audit write failed")
	}
	if c, err := s.GetCredential(ctx, "team"); err != nil || c.RevokeTime != nil || !c.Active(now) {
		t.Fatalf("credential after a failed revocation = %+v, %v; want it unchanged", c, err)
	}
	if es, err := s.ListAudit(ctx, 0, 0); err != nil || len(es) != 1 || es[0].Actor != "admin-1" {
		t.Fatalf("audit = %+v, %v; want only the accepted creation", es, err)
	}
}

func testAudit(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	for i := range 5 {
		if err := s.AppendAudit(ctx, "admin", "unit.create", fmt.Sprintf("units/%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.ListAudit(ctx, 0, 3)
	if err != nil || len(es) != 3 || es[0].Target != "units/4" || es[2].Target != "units/2" {
		t.Fatalf("page 1 = %+v, %v", es, err)
	}
	es, _ = s.ListAudit(ctx, es[2].Seq, 10)
	if len(es) != 2 || es[1].Target != "units/0" || es[0].Time.IsZero() {
		t.Fatalf("page 2 = %+v", es)
	}
}

func testInsertDuplicateConflict(t *testing.T, open Opener) {
	s := open(t, Options{})
	g := NewGen(t, 2)
	ctx := context.Background()
	a := g.Accepted()
	if res := mustInsert(t, s, a); res[0] != (store.InsertResult{}) {
		t.Fatalf("first insert: %+v", res[0])
	}
	if res := mustInsert(t, s, a); !res[0].Duplicate || res[0].Err != nil {
		t.Fatalf("resend: %+v", res[0])
	}
	before := Cells(t, s)
	m := g.Modified(a)
	res := mustInsert(t, s, m)
	if res[0].Duplicate || sipas.KindOf(res[0].Err) != sipas.KindConflict {
		t.Fatalf("modified resend: %+v", res[0])
	}
	var e *sipas.Error
	if !errors.As(res[0].Err, &e) || e.Reason != "RESPONSE_ID_CONFLICT" || e == sipas.ErrResponseConflict {
		t.Fatalf("conflict error = %#v, want a copy of ErrResponseConflict", res[0].Err)
	}
	// The stored response is the original.
	got, provinceID, hash, err := s.GetResponse(ctx, a.Response.ID)
	if err != nil {
		t.Fatal(err)
	}
	if hash != a.Hash || provinceID != a.Province.ID || !reflect.DeepEqual(got.Answers, a.Response.Answers) {
		t.Errorf("stored response changed after a conflict")
	}
	if h := sipas.ContentHash(a.Questionnaire, got); h != a.Hash {
		t.Errorf("hash of the stored response %x, want %x", h, a.Hash)
	}
	if n, _ := s.CountResponses(ctx); n != 1 {
		t.Errorf("rows = %d, want 1", n)
	}
	CellsEqual(t, "aggregates after duplicate and conflict", before, Cells(t, s))
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Inserted != 1 || st.Duplicates != 1 || st.Conflicts != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func testGetResponseRoundTrip(t *testing.T, open Opener) {
	s := open(t, Options{})
	g := NewGen(t, 3)
	ctx := context.Background()
	for range 50 {
		a := g.Accepted()
		mustInsert(t, s, a)
		got, pid, hash, err := s.GetResponse(ctx, a.Response.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := *a.Response
		if !got.CollectedAt.Equal(want.CollectedAt) {
			t.Fatalf("collected_at %v, want %v", got.CollectedAt, want.CollectedAt)
		}
		got.CollectedAt = want.CollectedAt
		if !reflect.DeepEqual(got, &want) || pid != a.Province.ID || hash != a.Hash {
			t.Fatalf("GetResponse = %+v, want %+v", got, &want)
		}
	}
	if _, _, _, err := s.GetResponse(ctx, "0190f3b4-7c1e-7a3b-9f00-123456789abc"); sipas.KindOf(err) != sipas.KindNotFound {
		t.Errorf("unknown id: %v", err)
	}
	if _, _, _, err := s.GetResponse(ctx, "nope"); sipas.KindOf(err) != sipas.KindInvalid {
		t.Errorf("bad id: %v", err)
	}
}

func testInsertIntraBatchDuplicates(t *testing.T, open Opener) {
	s := open(t, Options{})
	g := NewGen(t, 4)
	a, b := g.Accepted(), g.Accepted()
	res := mustInsert(t, s, a, b, a, g.Modified(a), b)
	want := []store.InsertResult{{}, {}, {Duplicate: true}, {Err: res[3].Err}, {Duplicate: true}}
	if !reflect.DeepEqual(res, want) || sipas.KindOf(res[3].Err) != sipas.KindConflict {
		t.Fatalf("results = %+v", res)
	}
	if n, _ := s.CountResponses(context.Background()); n != 2 {
		t.Errorf("rows = %d, want 2", n)
	}
	if err := s.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func testInsertItemErrors(t *testing.T, open Opener) {
	s := open(t, Options{})
	g := NewGen(t, 5)
	good := g.Accepted()
	unknownQ := *g.Accepted()
	r := *unknownQ.Response
	r.QuestionnaireID = "sipas-1999"
	unknownQ.Response = &r
	res := mustInsert(t, s, nil, &unknownQ, good)
	if sipas.KindOf(res[0].Err) != sipas.KindInvalid || sipas.KindOf(res[1].Err) != sipas.KindFailedPrecondition || res[2] != (store.InsertResult{}) {
		t.Fatalf("results = %+v", res)
	}
	if res, err := s.Insert(context.Background(), nil); err != nil || len(res) != 0 {
		t.Fatalf("empty insert: %v %v", res, err)
	}
}

func testConcurrentDuplicates(t *testing.T, open Opener) {
	s := open(t, Options{})
	a := NewGen(t, 6).Accepted()
	const n = 64
	var inserted, dups, errs atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			res, err := s.Insert(context.Background(), []*sipas.Accepted{a})
			switch {
			case err != nil || res[0].Err != nil:
				errs.Add(1)
			case res[0].Duplicate:
				dups.Add(1)
			default:
				inserted.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if inserted.Load() != 1 || dups.Load() != n-1 || errs.Load() != 0 {
		t.Fatalf("inserted %d, duplicates %d, errors %d", inserted.Load(), dups.Load(), errs.Load())
	}
	if c, _ := s.CountResponses(context.Background()); c != 1 {
		t.Fatalf("rows = %d", c)
	}
	if err := s.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// testAggregatesEqualRecount inserts responses one by one, in batches and
// concurrently (with resends), and checks that the cells served equal a
// recount from the stored responses.
func testAggregatesEqualRecount(t *testing.T, open Opener) {
	s := open(t, Options{})
	g := NewGen(t, 7)
	ctx := context.Background()
	var all []*sipas.Accepted
	for range 20 {
		a := g.Accepted()
		all = append(all, a)
		mustInsert(t, s, a)
	}
	batch := make([]*sipas.Accepted, 300)
	for i := range batch {
		batch[i] = g.Accepted()
	}
	all = append(all, batch...)
	mustInsert(t, s, batch...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				a := g.Accepted()
				items := []*sipas.Accepted{a}
				if i%3 == 0 {
					items = append(items, all[(w*10+i)%len(all)]) // a resend
				}
				if _, err := s.Insert(ctx, items); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, a)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if n, _ := s.CountResponses(ctx); n != int64(len(all)) {
		t.Fatalf("rows = %d, want %d", n, len(all))
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
	if respondents != int64(len(all)) {
		t.Fatalf("province cells count %d respondents, want %d", respondents, len(all))
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}

func testEachCellMonthRange(t *testing.T, open Opener) {
	s := open(t, Options{})
	g := NewGen(t, 8)
	batch := make([]*sipas.Accepted, 200)
	for i := range batch {
		batch[i] = g.Accepted()
	}
	mustInsert(t, s, batch...)
	all := Cells(t, s)
	cat, _ := Catalog(t)
	for _, q := range cat.List() {
		got := map[sipas.CellKey]bool{}
		s.EachCell(q.ID, 202505, 202507, func(k sipas.CellKey, _ *sipas.Tally) { got[k] = true })
		for k := range all {
			want := k.QuestionnaireID == q.ID && k.Month >= 202505 && k.Month <= 202507
			if got[k] != want {
				t.Fatalf("EachCell(%s, 202505..202507) has %v = %v, want %v", q.ID, k, got[k], want)
			}
		}
	}
}

func testPing(t *testing.T, open Opener) {
	s := open(t, Options{})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func testUnitsUniqueRegardlessOfCase(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	if err := s.CreateUnit(ctx, store.Unit{ID: "Dn-HaiChau", DisplayName: "Một cửa", ProvinceCode: "48"}, store.AuditEvent{Actor: "test", Action: "unit.create"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dn-haichau", "DN-HAICHAU", "Dn-HaiChau"} {
		err := s.CreateUnit(ctx, store.Unit{ID: id, DisplayName: "x", ProvinceCode: "01"}, store.AuditEvent{Actor: "test", Action: "unit.create"})
		if e, ok := err.(*sipas.Error); !ok || e.Kind != sipas.KindConflict || e.Reason != "UNIT_EXISTS" {
			t.Fatalf("unit %s after Dn-HaiChau: %v, want UNIT_EXISTS", id, err)
		}
		if _, ok := s.Unit(id); ok != (id == "Dn-HaiChau") {
			t.Fatalf("registry lookup of %s: %v", id, ok)
		}
	}
	if code, ok := s.UnitProvince("Dn-HaiChau"); !ok || code != "48" {
		t.Fatalf("UnitProvince: %q %v", code, ok)
	}
	if u, ok := s.Unit("Dn-HaiChau"); !ok || u.DisplayName != "Một cửa" {
		t.Fatalf("Unit: %+v %v", u, ok)
	}
}

// testResponsesRecordTheirSource: the credential and batch are stored with
// the response and are not part of its content (a resend from elsewhere is
// a duplicate and keeps the first source).
func testResponsesRecordTheirSource(t *testing.T, open Opener) {
	s := open(t, Options{})
	g := NewGen(t, 12)
	acc := g.Accepted()
	acc.Source = sipas.Source{CredentialID: "cred-1", BatchID: "batch-1"}
	mustInsert(t, s, acc)
	again := *acc
	again.Source = sipas.Source{CredentialID: "cred-2"}
	if res := mustInsert(t, s, &again); !res[0].Duplicate {
		t.Fatalf("resend from another credential: %+v, want a duplicate", res[0])
	}
	src, err := s.ResponseSource(context.Background(), acc.Response.ID)
	if err != nil {
		t.Fatal(err)
	}
	if src != (sipas.Source{CredentialID: "cred-1", BatchID: "batch-1"}) {
		t.Fatalf("source %+v", src)
	}
	if _, err := s.ResponseSource(context.Background(), "0190f3b4-7c1e-7a3b-9f00-123456789abc"); sipas.KindOf(err) != sipas.KindNotFound {
		t.Fatalf("unknown id: %v", err)
	}
}

// testFlaggedResponsesNotCounted: a flagged response is stored but not
// counted in the aggregate cells; FlaggedCells counts it, as a recount of
// the flagged rows would.
func testFlaggedResponsesNotCounted(t *testing.T, open Opener) {
	s := open(t, Options{})
	g := NewGen(t, 13)
	ctx := context.Background()
	plain := g.Accepted()
	mustInsert(t, s, plain)
	before := Cells(t, s)
	r := g.Response()
	r.Flags = sipas.FlagTooFast
	flagged := g.Accept(r)
	if res := mustInsert(t, s, flagged); res[0] != (store.InsertResult{}) {
		t.Fatalf("flagged insert: %+v", res[0])
	}
	if n, _ := s.CountResponses(ctx); n != 2 {
		t.Fatalf("rows = %d, want 2", n)
	}
	CellsEqual(t, "cells after a flagged response", before, Cells(t, s))
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	m := sipas.MonthOf(r.CollectedAt)
	cells, n, err := s.FlaggedCells(ctx, r.QuestionnaireID, m, m, sipas.ChannelUnspecified)
	if err != nil || n != 1 {
		t.Fatalf("FlaggedCells: %d, %v", n, err)
	}
	var respondents int64
	for k, c := range cells {
		if k.UnitID == "" {
			respondents += c.Respondents
		}
	}
	if respondents != 1 {
		t.Fatalf("flagged province cells count %d respondents, want 1", respondents)
	}
	// Amended, a flagged response keeps its flags (still not counted);
	// withdrawn, it leaves the flagged reads too.
	admin := store.Actor{CredentialID: "admin", Admin: true}
	if res := mustCorrect(t, s, store.Correction{Kind: store.CorrectionAmend, Amended: g.Modified(flagged), Actor: admin, Reason: "r"}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	CellsEqual(t, "cells after amending a flagged response", before, Cells(t, s))
	if res := mustCorrect(t, s, store.Correction{Kind: store.CorrectionWithdraw, ResponseID: flagged.Response.ID, Actor: admin, Reason: "r"}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	CellsEqual(t, "cells after withdrawing a flagged response", before, Cells(t, s))
	if _, n, err := s.FlaggedCells(ctx, r.QuestionnaireID, m, m, sipas.ChannelUnspecified); err != nil || n != 0 {
		t.Fatalf("FlaggedCells after the withdrawal: %d, %v; want 0", n, err)
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}

func testKioskHeartbeats(t *testing.T, open Opener) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	s := open(t, Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	if err := s.CreateUnit(ctx, store.Unit{ID: "k-unit", ProvinceCode: "48"}, store.AuditEvent{Actor: "test", Action: "unit.create"}); err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateCredential(ctx, store.Credential{TokenHash: []byte("hk"), Credential: sipas.Credential{ID: "kiosk-1", Role: 1, UnitID: "k-unit"}}, store.AuditEvent{Actor: "test", Action: "credential.create"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCredential(ctx, store.Credential{TokenHash: []byte("hk2"), Credential: sipas.Credential{ID: "kiosk-2", Role: 1, UnitID: "k-unit"}}, store.AuditEvent{Actor: "test", Action: "credential.create"}); err != nil {
		t.Fatal(err)
	}
	last := now.Add(-time.Minute)
	if err := s.RecordKioskHeartbeat(ctx, store.KioskHeartbeat{CredentialID: k.ID, Time: now, QueueDepth: 3, AgentVersion: "v1", LastResponse: &last}); err != nil {
		t.Fatal(err)
	}
	earlier := now.Add(-time.Hour)
	if err := s.RecordKioskHeartbeat(ctx, store.KioskHeartbeat{CredentialID: k.ID, Time: now.Add(time.Second), QueueDepth: 1, AgentVersion: "v2", LastResponse: &earlier}); err != nil {
		t.Fatal(err)
	}
	ks, err := s.ListKiosks(ctx, "", 0)
	if err != nil || len(ks) != 2 {
		t.Fatalf("ListKiosks = %+v, %v", ks, err)
	}
	h := ks[0].Heartbeat
	if ks[0].CredentialID != "kiosk-1" || h == nil || h.QueueDepth != 1 || h.AgentVersion != "v2" || h.LastResponse == nil || !h.LastResponse.Equal(last) {
		t.Fatalf("kiosk-1 = %+v, heartbeat %+v (the last response time never goes back)", ks[0], h)
	}
	if ks[1].Heartbeat != nil || ks[1].Unit.ID != "k-unit" {
		t.Fatalf("kiosk-2 = %+v", ks[1])
	}
}
