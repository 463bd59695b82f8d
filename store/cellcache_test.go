package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

// recountSource serves cells from a recount of the stored responses: an
// independent source for the engine, without the tallies table, the cache
// or the deltas.
type recountSource map[sipas.CellKey]*sipas.Tally

func (m recountSource) EachCell(qid string, from, to int, fn func(sipas.CellKey, *sipas.Tally)) {
	for k, t := range m {
		if k.QuestionnaireID == qid && from <= k.Month && k.Month <= to {
			fn(k, t)
		}
	}
}

// figures computes a fixed set of published figures (rankings of provinces
// and units, indices of the nation, a province and units, series of months)
// for every questionnaire, as JSON for an exact comparison.
func figures(t *testing.T, src sipas.CellSource) string {
	t.Helper()
	cat, reg := catalog(t)
	e := &sipas.Engine{Catalog: cat, Registry: reg, Source: src, Thresholds: sipas.Thresholds{MinSample: 3, Disclosure: 5}}
	year := sipas.Period{Year: 2025}
	var out []any
	add := func(v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	provs := reg.ValidOn(time.Date(2025, 5, 1, 0, 0, 0, 0, sipas.VietnamZone))
	now := reg.ValidOn(time.Date(2025, 9, 1, 0, 0, 0, 0, sipas.VietnamZone))
	for _, q := range cat.List() {
		for _, b := range []sipas.Boundaries{sipas.BoundariesAsCollected, sipas.BoundariesCurrent} {
			base := sipas.Query{QuestionnaireID: q.ID, Period: year, Boundaries: b}
			add(e.RankProvinces(base))
			qq := base
			qq.Scope = sipas.Scope{Nation: true}
			add(e.Index(qq))
			for _, code := range []string{provs[0].Code, provs[1].Code, now[0].Code} {
				if b == sipas.BoundariesCurrent && reg.Current(provsByCode(reg, code)) == nil {
					continue
				}
				qq := base
				qq.Scope = sipas.Scope{ProvinceCode: code}
				if b == sipas.BoundariesCurrent {
					qq.Scope.ProvinceCode = reg.Current(provsByCode(reg, code)).Code
				}
				add(e.RankUnits(qq))
				add(e.Index(qq))
				add(e.Series(qq, sipas.Period{Year: 2025, Month: 1}, sipas.Period{Year: 2025, Month: 12}))
				add(e.WeakPoints(qq, 5))
				qq.Scope.UnitID = "u-1"
				add(e.Index(qq))
				add(e.WeakPoints(qq, 5))
			}
			qq = base
			qq.Scope = sipas.Scope{UnitID: "u-2"}
			add(e.Index(qq))
			add(e.Series(qq, sipas.Period{Year: 2025, Quarter: 1}, sipas.Period{Year: 2025, Quarter: 4}))
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func provsByCode(reg *sipas.Registry, code string) *sipas.Province {
	for _, p := range reg.All() {
		if p.Code == code {
			return p
		}
	}
	return nil
}

func sameFigures(t *testing.T, what, want, got string) {
	t.Helper()
	if want != got {
		n := 0
		for n < len(want) && n < len(got) && want[n] == got[n] {
			n++
		}
		lo := max(n-200, 0)
		t.Fatalf("%s: figures differ at byte %d:\nwant …%s…\ngot  …%s…", what, n, want[lo:min(n+200, len(want))], got[lo:min(n+200, len(got))])
	}
}

// TestFiguresSameAfterRestartAndEviction: every published figure is the
// same whether the cells come from the deltas in memory, the tallies
// table after a clean restart or after a crash (replay of the tail), a
// cache so small that it evicts during each query, an emptied cache, or
// cached blocks that checkpoints updated in place; and it is the figure an
// independent recount of the stored responses gives.
func TestFiguresSameAfterRestartAndEviction(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sipas.db")
	// Checkpoints every 700 responses: some cells are stored, some only in
	// the deltas, some both.
	s := openTest(t, path, Options{CheckpointRows: 700, CheckpointInterval: time.Hour})
	g := newGen(t, 21)
	for range 20 {
		batch := make([]*sipas.Accepted, 100)
		for i := range batch {
			batch[i] = g.accepted()
		}
		mustInsert(t, s, batch...)
	}
	if st := s.Stats(); st.Checkpoints == 0 || s.lastSeq == s.tallySeq {
		t.Fatalf("want both stored cells and deltas: %d checkpoints, seq %d, checkpoint at %d", st.Checkpoints, s.lastSeq, s.tallySeq)
	}
	rec, err := s.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := figures(t, recountSource(rec))
	sameFigures(t, "store vs. recount", want, figures(t, s))
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}

	// A restart after a crash (the first store is never closed): the tail
	// after the last checkpoint is replayed.
	s2 := openTest(t, path, Options{})
	sameFigures(t, "after a crash and restart", want, figures(t, s2))
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A clean restart with a cache far smaller than one query's cells.
	s3 := openTest(t, path, Options{CellCacheBytes: 4 << 10})
	sameFigures(t, "after a clean restart, tiny cache", want, figures(t, s3))
	if st := s3.CacheStats(); st.Evictions == 0 || st.Bytes > st.Budget {
		t.Fatalf("cache %+v: want evictions and at most the budget held", st)
	}
	sameFigures(t, "tiny cache, second pass", want, figures(t, s3))
	if err := s3.Close(); err != nil {
		t.Fatal(err)
	}

	// A warm cache that checkpoints update in place, then emptied.
	s4 := openTest(t, path, Options{CheckpointRows: 150, CheckpointInterval: time.Hour})
	figures(t, s4) // fills the cache
	before := s4.CacheStats()
	for range 3 {
		batch := make([]*sipas.Accepted, 100)
		for i := range batch {
			batch[i] = g.accepted()
		}
		mustInsert(t, s4, batch...)
	}
	if s4.Stats().Checkpoints == 0 {
		t.Fatal("no checkpoint while the cache was warm")
	}
	rec, err = s4.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = figures(t, recountSource(rec))
	if before.Blocks == 0 {
		t.Fatal("the cache held nothing before the checkpoints")
	}
	sameFigures(t, "warm cache updated by checkpoints", want, figures(t, s4))
	s4.DropCellCache()
	sameFigures(t, "after the cache was emptied", want, figures(t, s4))
	if err := s4.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s4.Close(); err != nil {
		t.Fatal(err)
	}
	s5 := openTest(t, path, Options{})
	sameFigures(t, "after the last restart", want, figures(t, s5))
}

// TestDeltaTakesAResponseBackOut: a negative contribution (a response
// withdrawn) goes through the deltas and a checkpoint like a positive one:
// the stored cell ends where it would have been without the response, and
// a cell left empty is deleted.
func TestDeltaTakesAResponseBackOut(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{CheckpointRows: 1 << 30, CheckpointInterval: time.Hour})
	g := newGen(t, 22)
	var accs []*sipas.Accepted
	for range 40 {
		accs = append(accs, g.accepted())
	}
	mustInsert(t, s, accs[:39]...)
	without := s.Cells()
	mustInsert(t, s, accs[39])
	// Take the last response back out, as a withdrawal will: its negative
	// contribution added to the deltas of its cells, then checkpointed.
	last := accs[39]
	checkpointWith := func(sign int64, a *sipas.Accepted) {
		t.Helper()
		var c sipas.Contribution
		a.Questionnaire.Contribution(a.Answers, &c)
		keys, nk := cellKeys(a, sipas.MonthOf(a.Response.CollectedAt))
		if err := s.doConn(ctx, "test", func(ctx context.Context, _ *sql.Conn) error {
			s.commitMu.Lock()
			defer s.commitMu.Unlock()
			s.cellsMu.Lock()
			for _, k := range keys[:nk] {
				s.deltas.add(k, a.Questionnaire, &c, sign)
			}
			s.cellsMu.Unlock()
			return s.writeCheckpoint(ctx)
		}); err != nil {
			t.Fatal(err)
		}
	}
	checkpointWith(-1, last)
	cellsEqual(t, "after taking the response back out", without, s.Cells())
	s.DropCellCache()
	cellsEqual(t, "after taking the response back out, from the table", without, s.Cells())

	// Every response of one cell taken out: the cell is gone.
	k, nk := cellKeys(accs[0], sipas.MonthOf(accs[0].Response.CollectedAt))
	cell := k[nk-1]
	for _, a := range accs[:39] {
		ks, n := cellKeys(a, sipas.MonthOf(a.Response.CollectedAt))
		if ks[n-1] == cell {
			checkpointWith(-1, a)
		}
	}
	if _, ok := s.Cells()[cell]; ok {
		t.Fatalf("cell %v still served after all its responses were taken out", cell)
	}
	var n int
	if err := s.reader.QueryRowContext(ctx, "SELECT count(*) FROM tallies WHERE "+cellKeyWhere, cellKeyArgs(cell)...).Scan(&n); err != nil || n != 0 {
		t.Fatalf("cell %v: %d rows (err %v), want none", cell, n, err)
	}
}

// TestForeignCheckpointIsNotCountedTwice: when another Store on the same
// file has checkpointed meanwhile (its rows already count this store's
// deltas), this store's next checkpoint counts again only what came after
// that checkpoint, instead of adding its deltas a second time.
func TestForeignCheckpointIsNotCountedTwice(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sipas.db")
	s1 := openTest(t, path, Options{CheckpointRows: 1 << 30, CheckpointInterval: time.Hour})
	g := newGen(t, 23)
	for range 3 {
		batch := make([]*sipas.Accepted, 50)
		for i := range batch {
			batch[i] = g.accepted()
		}
		mustInsert(t, s1, batch...)
	}
	s2 := openTest(t, path, Options{}) // replays the 150 and checkpoints them
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, s1, g.accepted(), g.accepted())
	s1.DropCellCache() // no cached rows that would hide the problem
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := openTest(t, path, Options{})
	rec, err := s3.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cellsEqual(t, "after two stores checkpointed the same file", rec, s3.Cells())
	if err := s3.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestReadsDuringCommitsAndCheckpoints: index reads running while commits
// and checkpoints (with a cache small enough to evict) go on never fail,
// and once writes stop the figures are those of a recount. Run with -race
// it also checks the locking between readers, the applier and checkpoints.
func TestReadsDuringCommitsAndCheckpoints(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{CheckpointRows: 120, MaxDirtyCells: 40, CellCacheBytes: 16 << 10, CheckpointInterval: time.Hour})
	cat, reg := catalog(t)
	e := &sipas.Engine{Catalog: cat, Registry: reg, Source: s, Thresholds: sipas.Thresholds{MinSample: 3, Disclosure: 5}}
	g := newGen(t, 24)
	stop := make(chan struct{})
	errc := make(chan error, 4)
	for w := range 3 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				q := sipas.Query{QuestionnaireID: "sipas-2023", Period: sipas.Period{Year: 2025}, Boundaries: sipas.BoundariesCurrent}
				var err error
				switch (i + w) % 3 {
				case 0:
					_, err = e.RankProvinces(q)
				case 1:
					q.Scope = sipas.Scope{UnitID: "u-1"}
					_, err = e.Index(q)
				default:
					_, err = s.Cells(), nil
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for range 15 {
		batch := make([]*sipas.Accepted, 40)
		for i := range batch {
			batch[i] = g.accepted()
		}
		mustInsert(t, s, batch...)
	}
	close(stop)
	for range 3 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if s.Stats().Checkpoints < 3 || s.CacheStats().Evictions == 0 {
		t.Fatalf("want several checkpoints and evictions: %+v, %+v", s.Stats(), s.CacheStats())
	}
	rec, err := s.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameFigures(t, "after concurrent reads and writes", figures(t, recountSource(rec)), figures(t, s))
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestReadFailureIsUnavailable: when the cells cannot be read from the
// table (here the store is closed), the engine reports KindUnavailable,
// not a figure computed from what it could read.
func TestReadFailureIsUnavailable(t *testing.T) {
	s := openTest(t, "", Options{})
	g := newGen(t, 25)
	mustInsert(t, s, g.accepted(), g.accepted())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.DropCellCache()
	cat, reg := catalog(t)
	e := &sipas.Engine{Catalog: cat, Registry: reg, Source: s}
	_, err := e.RankProvinces(sipas.Query{QuestionnaireID: "sipas-2023", Period: sipas.Period{Year: 2025}})
	if sipas.KindOf(err) != sipas.KindUnavailable {
		t.Fatalf("RankProvinces on a closed store: %v, want KindUnavailable", err)
	}
}

// TestReplayCheckpointsInSteps: a start that has many responses to count
// (after a crash, or the first start after migration 0004, which empties the
// table and resets the watermark) checkpoints whenever the deltas reach
// MaxDirtyCells, so its memory stays bounded, and ends with the same cells
// as a recount.
func TestReplayCheckpointsInSteps(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sipas.db")
	s1 := openTest(t, path, Options{})
	g := newGen(t, 26)
	for range 6 {
		batch := make([]*sipas.Accepted, 100)
		for i := range batch {
			batch[i] = g.accepted()
		}
		mustInsert(t, s1, batch...)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	// What migration 0004 does to a database of the old layout.
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM tallies; UPDATE meta SET value = '0' WHERE key = 'tallies_seq'"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s2 := openTest(t, path, Options{MaxDirtyCells: 25})
	if st := s2.Stats(); st.Checkpoints < 3 {
		t.Fatalf("%d checkpoints during the replay of 600 responses with MaxDirtyCells 25, want several", st.Checkpoints)
	}
	if got := checkpointSeq(t, s2); got != 600 {
		t.Fatalf("after the replay the watermark is %d, want 600", got)
	}
	rec, err := s2.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cellsEqual(t, "replayed in steps vs. recount", rec, s2.Cells())
	if err := s2.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}
