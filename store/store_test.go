package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
)

func TestOpenPragmasOnEveryConnection(t *testing.T) {
	s := openTest(t, "", Options{ReadConns: 4})
	ctx := context.Background()
	check := func(name string, q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}, queryOnly string) {
		t.Helper()
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "2000", "query_only": queryOnly,
		} {
			var got string
			if err := q.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", name, pragma, err)
			}
			if got != want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", name, pragma, got, want)
			}
		}
	}
	// The writer connection, from the writer goroutine.
	if err := s.doConn(ctx, "test", func(ctx context.Context, c *sql.Conn) error {
		check("writer", c, "0")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Every reader connection: hold them all at once so each is distinct.
	var conns []*sql.Conn
	for range 4 {
		c, err := s.reader.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		check("reader", c, "1")
	}
	// A reader cannot write.
	if _, err := conns[0].ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('x', 'y')"); err == nil {
		t.Error("a reader connection could write")
	}
	for _, c := range conns {
		c.Close()
	}
	if s.reader.Stats().OpenConnections != 4 || s.writer.Stats().OpenConnections != 1 {
		t.Errorf("open connections: reader %d writer %d", s.reader.Stats().OpenConnections, s.writer.Stats().OpenConnections)
	}
}

func TestAssertPragmasRefusesBadSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	// A connection without _sync=FULL gets NORMAL from the driver when WAL is
	// set: the assertion must catch it.
	db := sql.OpenDB(newConnector("file:"+path+"?mode=rwc&_journal=WAL&_busy_timeout=2000&_fk=1", false))
	defer db.Close()
	if err := db.Ping(); err == nil {
		t.Fatal("connection with synchronous=NORMAL passed the assertion")
	}
}

func TestOpenFileModeMigrationsVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sipas.db")
	s := openTest(t, path, Options{})
	ctx := context.Background()
	mustInsert(t, s, newGen(t, 1).accepted()) // so that the WAL exists
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	ms, err := s.Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := migrations()
	if len(ms) != len(all) || ms[0].Version != 1 || ms[0].Name != "0001_init.sql" || ms[0].SQLiteVersion != s.SQLiteVersion() {
		t.Errorf("migrations = %+v", ms)
	}
	if s.SQLiteVersion() == "" {
		t.Error("no sqlite version")
	}
	// Reopening applies nothing twice.
	s.Close()
	s2 := openTest(t, path, Options{})
	ms2, err := s2.Migrations(ctx)
	if err != nil || !reflect.DeepEqual(ms, ms2) {
		t.Errorf("after reopen: %+v, %v", ms2, err)
	}
}

func TestOpenRefusesMemoryAndURIs(t *testing.T) {
	cat, _ := catalog(t)
	for _, p := range []string{"", ":memory:", "file::memory:?cache=shared", filepath.Join(t.TempDir(), "a?b")} {
		if s, err := Open(context.Background(), p, cat, Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func TestOpenRefusesUnknownMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sipas.db")
	s := openTest(t, path, Options{})
	if err := s.doConn(context.Background(), "test", func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, "INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', 0, 'x')")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	cat, _ := catalog(t)
	if s, err := Open(context.Background(), path, cat, Options{}); err == nil {
		s.Close()
		t.Fatal("opened a database with an unknown migration")
	}
}

func TestGroupCommitBatches(t *testing.T) {
	var commits, committed atomic.Int64
	var maxBatch atomic.Int64
	s := openTest(t, "", Options{OnCommit: func(n int, d time.Duration) {
		commits.Add(1)
		committed.Add(int64(n))
		for {
			m := maxBatch.Load()
			if int64(n) <= m || maxBatch.CompareAndSwap(m, int64(n)) {
				break
			}
		}
	}})
	const workers, per = 64, 40
	items := make([][]*sipas.Accepted, workers)
	for w := range items {
		g := newGen(t, uint64(100+w))
		for range per {
			items[w] = append(items[w], g.accepted())
		}
	}
	var wg sync.WaitGroup
	var errs atomic.Int64
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for _, a := range items[w] {
				res, err := s.Insert(context.Background(), []*sipas.Accepted{a})
				if err != nil || res[0] != (InsertResult{}) {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	total := int64(workers * per)
	t.Logf("%d single-response inserts from %d goroutines in %v (%.0f/s, race detector %v): %d commits, largest batch %d",
		total, workers, el, float64(total)/el.Seconds(), raceEnabled, commits.Load(), maxBatch.Load())
	if errs.Load() != 0 {
		t.Fatalf("%d errors", errs.Load())
	}
	if committed.Load() != total {
		t.Fatalf("OnCommit saw %d responses, want %d", committed.Load(), total)
	}
	if commits.Load() >= total {
		t.Fatalf("%d commits for %d inserts: no group commit", commits.Load(), total)
	}
	if n, _ := s.CountResponses(context.Background()); n != total {
		t.Fatalf("rows = %d, want %d", n, total)
	}
	if err := s.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAggregatesMemoryTableRecountAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sipas.db")
	s := openTest(t, path, Options{MaxBatchItems: 50})
	ctx := context.Background()
	g := newGen(t, 7)
	var sent []*sipas.Accepted
	var wg sync.WaitGroup
	for w := range 8 {
		var batch []*sipas.Accepted
		for range 150 {
			a := g.accepted()
			batch = append(batch, a)
			sent = append(sent, a)
		}
		if w%2 == 0 {
			batch = append(batch, batch[:10]...) // duplicates are not counted
		}
		wg.Go(func() {
			for i := 0; i < len(batch); i += 40 {
				if _, err := s.Insert(ctx, batch[i:min(i+40, len(batch))]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	// An independent recount from what was sent.
	cat, _ := catalog(t)
	want := map[sipas.CellKey]*sipas.Tally{}
	for _, a := range sent {
		q := cat.Get(a.Response.QuestionnaireID)
		keys, nk := cellKeys(a, sipas.MonthOf(a.Response.CollectedAt))
		for _, k := range keys[:nk] {
			if want[k] == nil {
				want[k] = sipas.NewTally(q)
			}
			want[k].Add(q, a.Response, nil)
		}
	}
	mem := s.Cells()
	cellsEqual(t, "memory vs. what was sent", want, mem)
	rec, err := s.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cellsEqual(t, "recount vs. memory", rec, mem)

	// The EachCell view is the same, filtered by month.
	n := 0
	s.EachCell("sipas-2023", 202505, 202506, func(k sipas.CellKey, tl *sipas.Tally) {
		n++
		if k.QuestionnaireID != "sipas-2023" || k.Month < 202505 || k.Month > 202506 || !mem[k].Equal(tl) {
			t.Errorf("EachCell gave %v", k)
		}
	})
	wantN := 0
	for k := range mem {
		if k.QuestionnaireID == "sipas-2023" && k.Month >= 202505 && k.Month <= 202506 {
			wantN++
		}
	}
	if n != wantN || n == 0 {
		t.Errorf("EachCell gave %d cells, want %d", n, wantN)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, wal := s.Sizes(); wal != 0 {
		t.Errorf("WAL is %d bytes after Close, want 0 (TRUNCATE checkpoint)", wal)
	}
	s2 := openTest(t, path, Options{})
	cellsEqual(t, "memory after reopen", mem, s2.Cells())
	if err := s2.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestFailedTransactionLeavesNothing(t *testing.T) {
	var fail atomic.Bool
	injected := errors.New("injected failure")
	s := openTest(t, "", Options{BeforeCommit: func(int) error {
		if fail.Load() {
			return injected
		}
		return nil
	}})
	ctx := context.Background()
	g := newGen(t, 8)
	mustInsert(t, s, g.accepted(), g.accepted())
	before := s.Cells()
	items := []*sipas.Accepted{g.accepted(), g.accepted()}
	fail.Store(true)
	res, err := s.Insert(ctx, items)
	if res != nil || sipas.KindOf(err) != sipas.KindUnavailable || !errors.Is(err, injected) {
		t.Fatalf("insert in a failing transaction: %v, %v", res, err)
	}
	cellsEqual(t, "memory after a failed transaction", before, s.Cells())
	if n, _ := s.CountResponses(ctx); n != 2 {
		t.Fatalf("rows = %d, want 2", n)
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.FailedCommits != 1 {
		t.Errorf("stats = %+v", st)
	}
	// The retry is a first insert, not a duplicate: nothing was written.
	fail.Store(false)
	res = mustInsert(t, s, items...)
	if res[0] != (InsertResult{}) || res[1] != (InsertResult{}) {
		t.Fatalf("retry: %+v", res)
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}

// blockWriter makes the writer's next response transaction wait inside the
// transaction until release is called.
type blocker struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (b *blocker) hook(int) error {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return nil
}

func (b *blocker) open() { b.once.Do(func() { close(b.release) }) }

func TestCancelledCallers(t *testing.T) {
	b := newBlocker()
	s := openTest(t, "", Options{BeforeCommit: b.hook})
	defer b.open()
	g := newGen(t, 9)
	ctx := context.Background()

	// First caller: taken by the writer, then cancelled → indeterminate.
	first := g.accepted()
	ctx1, cancel1 := context.WithCancel(ctx)
	done1 := make(chan error, 1)
	go func() { _, err := s.Insert(ctx1, []*sipas.Accepted{first}); done1 <- err }()
	<-b.entered
	// Second caller: still queued when cancelled → withdrawn, never written.
	second := g.accepted()
	ctx2, cancel2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { _, err := s.Insert(ctx2, []*sipas.Accepted{second}); done2 <- err }()
	for s.Stats().QueueDepth != 1 {
		time.Sleep(time.Millisecond)
	}
	cancel2()
	err2 := <-done2
	cancel1()
	err1 := <-done1
	var e1, e2 *sipas.Error
	if !errors.As(err1, &e1) || e1.Kind != sipas.KindUnavailable || e1.Reason != "OUTCOME_UNKNOWN" {
		t.Errorf("taken then cancelled: %v", err1)
	}
	if !errors.As(err2, &e2) || e2.Kind != sipas.KindUnavailable || e2.Reason != "CANCELLED" || !errors.Is(err2, context.Canceled) {
		t.Errorf("queued then cancelled: %v", err2)
	}
	if d := s.Stats().QueueDepth; d != 0 {
		t.Errorf("queue depth %d after withdrawal", d)
	}
	b.open()
	// The first one's transaction commits anyway; the second is absent.
	res := mustInsert(t, s, first, second)
	if !res[0].Duplicate || res[1] != (InsertResult{}) {
		t.Fatalf("after release: %+v", res)
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	b := newBlocker()
	s := openTest(t, "", Options{BeforeCommit: b.hook})
	g := newGen(t, 10)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 20 {
		a := g.accepted()
		wg.Go(func() {
			if res, err := s.Insert(context.Background(), []*sipas.Accepted{a}); err == nil && res[0] == (InsertResult{}) {
				ok.Add(1)
			}
		})
	}
	<-b.entered
	for s.Stats().QueueDepth != 19 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for {
		s.qmu.Lock()
		c := s.closed
		s.qmu.Unlock()
		if c {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.Insert(context.Background(), []*sipas.Accepted{g.accepted()}); sipas.KindOf(err) != sipas.KindUnavailable {
		t.Errorf("insert after Close: %v", err)
	}
	b.open()
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 20 {
		t.Fatalf("%d of 20 queued inserts succeeded", ok.Load())
	}
	cat, _ := catalog(t)
	s2, err := Open(context.Background(), s.Path(), cat, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n, _ := s2.CountResponses(context.Background()); n != 20 {
		t.Fatalf("rows after reopen = %d", n)
	}
}

func TestBackupIntegrityPingCheckpoint(t *testing.T) {
	s := openTest(t, "", Options{})
	ctx := context.Background()
	g := newGen(t, 11)
	for range 5 {
		var batch []*sipas.Accepted
		for range 100 {
			batch = append(batch, g.accepted())
		}
		mustInsert(t, s, batch...)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "backup.db")
	n, err := s.Backup(ctx, dest)
	if err != nil {
		t.Fatal(err)
	}
	if n != 500 {
		t.Fatalf("backup has %d responses, want 500", n)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v", fi.Mode().Perm())
	}
	if _, err := s.Backup(ctx, dest); err == nil {
		t.Error("backup over an existing file succeeded")
	}
	// The copy opens as a store, passes the integrity check and has the
	// same aggregates.
	cat, _ := catalog(t)
	b, err := Open(ctx, dest, cat, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	cellsEqual(t, "backup aggregates", s.Cells(), b.Cells())

	if err := s.Checkpoint(ctx, "truncate"); err != nil {
		t.Fatal(err)
	}
	if db, wal := s.Sizes(); db == 0 || wal != 0 {
		t.Errorf("sizes after TRUNCATE checkpoint: db %d wal %d", db, wal)
	}
	if err := s.Checkpoint(ctx, "bogus"); sipas.KindOf(err) != sipas.KindInvalid {
		t.Errorf("bogus checkpoint mode: %v", err)
	}
}

// TestPayloadSparseAndDense: a response answering fewer than half the
// items is stored sparse (format 2), about two bytes per answer; a fuller
// one positionally (format 1); payloads of format 1 written for sparse
// responses (before format 2) still decode to the same answers.
func TestPayloadSparseAndDense(t *testing.T) {
	cat, _ := catalog(t)
	q := cat.Get("sipas-2023")
	rng := rand.New(rand.NewPCG(8, 9))
	for _, answered := range []int{0, 1, 22, len(q.Items)/2 - 1, len(q.Items) / 2, len(q.Items)} {
		answers := make([]uint8, len(q.Items))
		for _, i := range rng.Perm(len(q.Items))[:answered] {
			answers[i] = uint8(q.Items[i].Scale.Codes[rng.IntN(len(q.Items[i].Scale.Codes))].Code + 1)
		}
		d := sipas.Demographics{Gender: 1}
		b := EncodePayload(q, &d, answers)
		wantFormat := byte(payloadV1)
		if 2*answered < len(q.Items) {
			wantFormat = payloadV2
		}
		if b[0] != wantFormat {
			t.Errorf("%d answers: format %d, want %d", answered, b[0], wantFormat)
		}
		if wantFormat == payloadV2 && len(b) > 14+2*answered {
			t.Errorf("%d answers: %d bytes, want at most %d", answered, len(b), 14+2*answered)
		}
		back, err := payloadAnswers(q, b, nil)
		if err != nil || !bytes.Equal(back, answers) {
			t.Fatalf("%d answers: decoded %v, %v", answered, back, err)
		}
		// The same answers in format 1, as stored before format 2.
		v1 := []byte{payloadV1}
		v1 = binary.AppendVarint(v1, 1)
		for range 6 {
			v1 = binary.AppendVarint(v1, 0)
		}
		v1 = append(v1, 0)
		v1 = binary.AppendUvarint(v1, uint64(len(q.Items)))
		v1 = append(v1, answers...)
		v1 = append(v1, 0)
		var r sipas.Response
		if err := decodePayload(q, v1, &r); err != nil || r.Demographics.Gender != 1 {
			t.Fatalf("%d answers, format 1: %v", answered, err)
		}
		if back, err := payloadAnswers(q, v1, nil); err != nil || !bytes.Equal(back, answers) {
			t.Fatalf("%d answers, format 1: decoded %v, %v", answered, back, err)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	cat, _ := catalog(t)
	q := cat.Get("sipas-2023")
	yes := false
	r := &sipas.Response{
		Demographics: sipas.Demographics{Gender: 2, BirthYear: 1975, Ethnicity: 1, Education: 7, Occupation: 8, Residence: 2, RespondentType: 1, DidProcedure: &yes},
		Answers:      map[string]int{q.Items[0].Code: 0, q.Items[5].Code: 9, q.Items[len(q.Items)-1].Code: 5},
	}
	answers := make([]uint8, len(q.Items))
	answers[0], answers[5], answers[len(q.Items)-1] = 1, 10, 6
	b := EncodePayload(q, &r.Demographics, answers)
	var got sipas.Response
	if err := decodePayload(q, b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Answers, r.Answers) || !reflect.DeepEqual(got.Demographics, r.Demographics) {
		t.Fatalf("round trip: %+v, want %+v", got, r)
	}
	if back, err := payloadAnswers(q, b, nil); err != nil || !bytes.Equal(back, answers) {
		t.Fatalf("packed answers back: %v, %v; want %v", back, err, answers)
	}
	full := make([]uint8, len(q.Items))
	for i, it := range q.Items {
		full[i] = uint8(it.Scale.Codes[0].Code + 1)
	}
	t.Logf("payload of a full %d-item response: %d bytes", len(q.Items), len(EncodePayload(q, &sipas.Demographics{}, full)))
	for i := range b {
		if err := decodePayload(q, b[:i], &got); err == nil {
			t.Errorf("truncated payload (%d of %d bytes) decoded", i, len(b))
		}
	}
	if err := decodePayload(cat.Get("sipas-2017"), b, &got); err == nil {
		t.Error("payload decoded with another questionnaire")
	}

	// Payloads written before the packed form may carry answers outside the
	// positional form (an unknown item, a negative code): they decode into
	// the map, and are not among the packed answers that are counted.
	legacy := append([]byte(nil), b[:len(b)-1]...)
	legacy = binary.AppendUvarint(legacy, 2)
	for _, x := range []struct {
		code string
		a    int64
	}{{"NOT.AN.ITEM", 3}, {q.Items[2].Code, -1}} {
		legacy = binary.AppendUvarint(legacy, uint64(len(x.code)))
		legacy = append(legacy, x.code...)
		legacy = binary.AppendVarint(legacy, x.a)
	}
	if err := decodePayload(q, legacy, &got); err != nil {
		t.Fatal(err)
	}
	if got.Answers["NOT.AN.ITEM"] != 3 || got.Answers[q.Items[2].Code] != -1 || len(got.Answers) != 5 {
		t.Errorf("legacy payload decoded to %v", got.Answers)
	}
	if back, err := payloadAnswers(q, legacy, nil); err != nil || !bytes.Equal(back, answers) {
		t.Errorf("packed answers of the legacy payload: %v, %v; want %v", back, err, answers)
	}
}

func TestWriterPanicAnswersCallers(t *testing.T) {
	var panics atomic.Bool
	panics.Store(true)
	s := openTest(t, "", Options{BeforeCommit: func(int) error {
		if panics.Swap(false) {
			panic("injected")
		}
		return nil
	}})
	ctx := context.Background()
	a := newGen(t, 12).accepted()
	if _, err := s.Insert(ctx, []*sipas.Accepted{a}); sipas.KindOf(err) != sipas.KindUnavailable {
		t.Fatalf("insert during a writer panic: %v", err)
	}
	if len(s.Cells()) != 0 {
		t.Fatal("memory changed by a panicked transaction")
	}
	if res := mustInsert(t, s, a); res[0] != (InsertResult{}) {
		t.Fatalf("retry after panic: %+v", res[0])
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStats(t *testing.T) {
	s := openTest(t, "", Options{})
	mustInsert(t, s, newGen(t, 13).accepted())
	if st := s.Stats(); st.Commits != 1 || st.Inserted != 1 || st.LastBatchSize != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTxTimeoutRecovers(t *testing.T) {
	var slow atomic.Bool
	slow.Store(true)
	var logBuf syncBuffer
	s := openTest(t, "", Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil)), TxTimeout: 100 * time.Millisecond, BeforeCommit: func(int) error {
		if slow.Swap(false) {
			time.Sleep(300 * time.Millisecond)
		}
		return nil
	}})
	ctx := context.Background()
	a := newGen(t, 14).accepted()
	if _, err := s.Insert(ctx, []*sipas.Accepted{a}); sipas.KindOf(err) != sipas.KindUnavailable {
		t.Fatalf("insert in a timed-out transaction: %v", err)
	}
	if len(s.Cells()) != 0 {
		t.Fatal("memory changed by a timed-out transaction")
	}
	// The writer recovers without a restart; the retry is a first insert.
	if res := mustInsert(t, s, a); res[0] != (InsertResult{}) {
		t.Fatalf("retry: %+v", res[0])
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logBuf.String(), "replacing the writer connection") {
		t.Errorf("the discarded writer connection was not replaced; log:\n%s", logBuf.String())
	}
	if n := s.writer.Stats().OpenConnections; n != 1 {
		t.Errorf("writer has %d open connections", n)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestLegacyHashResend: a response stored before version 2 of the content
// hash carries its version-1 hash; sending it again is still a duplicate,
// and sending other content under its id still a conflict.
func TestLegacyHashResend(t *testing.T) {
	s := openTest(t, "", Options{})
	g := newGen(t, 21)
	ctx := context.Background()
	a := g.accepted()
	mustInsert(t, s, a)
	legacy := sipas.LegacyContentHash(a)
	if legacy == a.Hash {
		t.Fatal("the version-1 and version-2 hashes are equal")
	}
	id, _ := uuid.Parse(a.Response.ID)
	if err := s.do(ctx, "test", func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE responses SET content_hash = ? WHERE response_id = ?", legacy[:], id[:])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if res := mustInsert(t, s, a); !res[0].Duplicate || res[0].Err != nil {
		t.Fatalf("resend of a response stored with a version-1 hash: %+v, want a duplicate", res[0])
	}
	if res := mustInsert(t, s, g.modified(a)); sipas.KindOf(res[0].Err) != sipas.KindConflict {
		t.Fatalf("other content under that id: %+v, want a conflict", res[0])
	}
	if n, _ := s.CountResponses(ctx); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

// TestInsertGroupsMixed: one Insert of more responses than one INSERT
// statement takes, with stored ids, repeats and conflicts inside a
// statement's group and across groups; every item gets its own outcome.
func TestInsertGroupsMixed(t *testing.T) {
	s := openTest(t, "", Options{})
	g := newGen(t, 31)
	old, oldOther := g.accepted(), g.accepted()
	mustInsert(t, s, old, oldOther)

	var items []*sipas.Accepted
	var want []string // "new", "dup" or "conflict" per item
	add := func(a *sipas.Accepted, outcome string) {
		items = append(items, a)
		want = append(want, outcome)
	}
	fresh := make([]*sipas.Accepted, 40)
	for i := range fresh {
		fresh[i] = g.accepted()
	}
	for i := 0; i < 3*insertGroupRows+5; i++ {
		switch i {
		case 2:
			add(old, "dup") // stored by an earlier transaction
		case 3:
			add(g.modified(oldOther), "conflict")
		case 5:
			add(fresh[4], "dup") // repeat inside the same statement
		case 6:
			add(g.modified(fresh[4]), "conflict")
		case insertGroupRows:
			add(fresh[insertGroupRows-1], "dup") // repeat across the group boundary
		case 2*insertGroupRows + 1:
			add(fresh[0], "dup") // repeat two groups later
		case 3*insertGroupRows + 2:
			add(g.modified(fresh[1]), "conflict") // in the one-by-one tail
		default:
			add(fresh[i%len(fresh)], "new")
		}
	}
	// The default case repeats fresh items once i wraps: those are dups.
	seenNew := map[string]bool{}
	for i, a := range items {
		if want[i] == "new" {
			if seenNew[a.Response.ID] {
				want[i] = "dup"
			}
			seenNew[a.Response.ID] = true
		}
	}
	res := mustInsert(t, s, items...)
	newRows := 0
	for i, r := range res {
		got := "new"
		switch {
		case r.Duplicate:
			got = "dup"
		case sipas.KindOf(r.Err) == sipas.KindConflict:
			got = "conflict"
		case r.Err != nil:
			got = r.Err.Error()
		}
		if got != want[i] {
			t.Errorf("item %d: %s, want %s", i, got, want[i])
		}
		if got == "new" {
			newRows++
		}
	}
	if n, _ := s.CountResponses(context.Background()); n != int64(2+newRows) {
		t.Errorf("%d rows, want %d", n, 2+newRows)
	}
	if err := s.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
}
