package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

func checkpointSeq(t *testing.T, s *Store) int64 {
	t.Helper()
	seq, err := tallySeq(context.Background(), s.reader)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// TestCheckpointAndReplay stores responses with checkpoints every 300, then
// opens the database as a restart after a crash would (the first store never
// closes, so the last responses are in no checkpoint): the new store
// replays them, and its aggregates equal the first one's and a recount.
func TestCheckpointAndReplay(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sipas.db")
	s := openTest(t, path, Options{CheckpointRows: 300, CheckpointInterval: time.Hour})
	g := newGen(t, 11)
	var sent []*sipas.Accepted
	for range 10 {
		batch := make([]*sipas.Accepted, 100)
		for i := range batch {
			batch[i] = g.accepted()
		}
		mustInsert(t, s, batch...)
		sent = append(sent, batch...)
	}
	// Duplicates add no rows and move no checkpoint.
	mustInsert(t, s, sent[:50]...)
	if got, want := checkpointSeq(t, s), int64(900); got != want {
		t.Fatalf("checkpoint counts up to seq %d, want %d (every 300 responses)", got, want)
	}
	if st := s.Stats(); st.Checkpoints != 3 {
		t.Errorf("%d checkpoints, want 3", st.Checkpoints)
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	before := s.Cells()

	// "Restart": open the same file without closing the first store.
	s2 := openTest(t, path, Options{})
	cellsEqual(t, "replayed memory vs. the first store's", before, s2.Cells())
	if got := checkpointSeq(t, s2); got != 1000 {
		t.Errorf("after the replay the checkpoint counts up to seq %d, want 1000 (written at start-up)", got)
	}
	if err := s2.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}

	// Close checkpoints what it has: the next start replays nothing.
	mustInsert(t, s, g.accepted())
	after := s.Cells()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := openTest(t, path, Options{})
	if got := checkpointSeq(t, s3); got != 1001 {
		t.Errorf("after Close the checkpoint counts up to seq %d, want 1001", got)
	}
	cellsEqual(t, "memory after a clean restart", after, s3.Cells())
	if err := s3.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointInterval: a quiet store checkpoints on its timer, not only
// after CheckpointRows responses.
func TestCheckpointInterval(t *testing.T) {
	s := openTest(t, "", Options{CheckpointRows: 1 << 30, CheckpointInterval: 50 * time.Millisecond})
	g := newGen(t, 12)
	mustInsert(t, s, g.accepted(), g.accepted())
	deadline := time.Now().Add(10 * time.Second)
	for checkpointSeq(t, s) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint 10 s after the insert (interval 50ms); stats %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCheckAggregatesSeesABadCheckpoint: a checkpoint that disagrees with
// the responses is reported, so the crash tests' check can fail.
func TestCheckAggregatesSeesABadCheckpoint(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{})
	g := newGen(t, 13)
	mustInsert(t, s, g.accepted(), g.accepted(), g.accepted())
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	// Claim the checkpoint counts response 2 while the tallies table has none.
	if err := s.do(ctx, "test", func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE meta SET value = '2' WHERE key = ?", tallySeqKey)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckAggregates(ctx); err == nil {
		t.Fatal("CheckAggregates accepted a checkpoint that misses two responses")
	}
}

// TestFailedCheckpointIsRetried: a checkpoint that fails (here a trigger
// refuses tally rows) leaves the previous checkpoint and memory as they
// were, is counted, and the next one after the cause is gone writes
// everything that was waiting.
func TestFailedCheckpointIsRetried(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{CheckpointRows: 1 << 30, CheckpointInterval: 50 * time.Millisecond})
	exec := func(q string) {
		t.Helper()
		if err := s.do(ctx, "test", func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, q)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	exec("CREATE TRIGGER refuse_tallies BEFORE INSERT ON tallies BEGIN SELECT RAISE(ABORT, 'no tallies'); END")
	g := newGen(t, 41)
	mustInsert(t, s, g.accepted(), g.accepted(), g.accepted())
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().FailedCheckpoints == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed checkpoint counted; stats %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := checkpointSeq(t, s); got != 0 {
		t.Fatalf("a failed checkpoint moved the seq to %d", got)
	}
	// Failures are not retried after every commit, only an interval later.
	failed, start := s.Stats().FailedCheckpoints, time.Now()
	for range 20 {
		mustInsert(t, s, g.accepted())
	}
	if n, most := s.Stats().FailedCheckpoints-failed, uint64(time.Since(start)/(50*time.Millisecond))+1; n > most {
		t.Fatalf("%d more failed checkpoints during 20 commits in %s, want at most %d (one per interval)", n, time.Since(start), most)
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	exec("DROP TRIGGER refuse_tallies")
	for checkpointSeq(t, s) != 23 {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint after the trigger was dropped; stats %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.CheckAggregates(ctx); err != nil {
		t.Fatal(err)
	}
}
