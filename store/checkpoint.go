package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/sipas-vn/sipas"
)

// The aggregates live in memory and are updated after every commit of
// responses. The tallies table is a checkpoint of them: the writer rewrites
// the cells changed since the previous checkpoint, together with the seq of
// the last response they include (meta key tallySeqKey), in one transaction,
// every Options.CheckpointRows responses or Options.CheckpointInterval,
// and when the store closes. At start-up the checkpoint is loaded and the
// responses stored after its seq are replayed into it, so memory equals a
// count of every stored response after any crash.
//
// This keeps the response transaction to the responses alone: rewriting the
// changed cells in every commit cost more than the responses themselves
// when a commit spans many provinces and months (a field batch does).
// Responses are never deleted and seq is their rowid, so a response stored
// after the checkpoint always has a larger seq.

// tallySeqKey is the meta key holding the seq of the last response the
// tallies table counts.
const tallySeqKey = "tallies_seq"

// queryer is what replay and the checkpoint reader need of *sql.Tx, *sql.DB
// and *sql.Conn.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tallySeq reads the seq the tallies table counts up to.
func tallySeq(ctx context.Context, q queryer) (int64, error) {
	var v string
	if err := q.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", tallySeqKey).Scan(&v); err != nil {
		return 0, fmt.Errorf("read %s: %w", tallySeqKey, err)
	}
	seq, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", tallySeqKey, err)
	}
	return seq, nil
}

// replay adds every response stored after seq `after` to the tallies that
// writable returns for its cells, and returns the seq of the last one and
// how many there were.
func (s *Store) replay(ctx context.Context, q queryer, after int64,
	writable func(k sipas.CellKey, q *sipas.Questionnaire) *sipas.Tally) (last int64, n int, err error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, questionnaire_id, province_id, month, channel, unit_id, payload, flags
		FROM responses WHERE seq > ? ORDER BY seq`, after)
	if err != nil {
		return 0, 0, fmt.Errorf("replay: %w", err)
	}
	defer rows.Close()
	last = after
	var (
		payload []byte
		answers []uint8
	)
	for rows.Next() {
		var k sipas.CellKey
		var ch, flags int64
		if err := rows.Scan(&last, &k.QuestionnaireID, &k.ProvinceID, &k.Month, &ch, &k.UnitID, &payload, &flags); err != nil {
			return 0, 0, fmt.Errorf("replay: %w", err)
		}
		k.Channel = sipas.Channel(ch)
		qn := s.cat.Get(k.QuestionnaireID)
		if qn == nil {
			return 0, 0, fmt.Errorf("replay: stored response of unknown questionnaire %q", k.QuestionnaireID)
		}
		if answers, err = payloadAnswers(qn, payload, answers); err != nil {
			return 0, 0, fmt.Errorf("replay: response seq %d: %w", last, err)
		}
		keys, nk := countedIn(k, sipas.Flags(flags))
		for _, key := range keys[:nk] {
			writable(key, qn).AddAnswers(qn, answers)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("replay: %w", err)
	}
	return last, n, nil
}

// recoverTallies brings memory, loaded from the checkpoint, up to date with
// the responses stored after it, and checkpoints the result so that the
// next start does not replay them again. It runs in Open, before the writer
// starts.
func (s *Store) recoverTallies(ctx context.Context) error {
	start := time.Now()
	seq, err := tallySeq(ctx, s.reader)
	if err != nil {
		return err
	}
	cells := 0
	last, n, err := s.replay(ctx, s.reader, seq, func(k sipas.CellKey, q *sipas.Questionnaire) *sipas.Tally {
		if _, seen := s.dirty[k]; !seen {
			s.dirty[k] = struct{}{}
			cells++
		}
		return s.cellForWrite(k, q)
	})
	if err != nil {
		return err
	}
	s.tallySeq, s.lastSeq = seq, last
	if n == 0 {
		return nil
	}
	if err := s.writeCheckpoint(ctx); err != nil {
		return err
	}
	s.opts.Logger.Info("store: aggregates replayed from the responses after the last checkpoint",
		"responses", n, "cells", cells, "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// maybeCheckpoint writes a checkpoint when enough responses or time have
// gone by since the last one (or always, with force, when anything is new).
// A failed checkpoint changes nothing: the cells stay dirty and the next
// attempt, an interval later, writes them. It runs on the writer goroutine.
func (s *Store) maybeCheckpoint(force bool) {
	if s.lastSeq == s.tallySeq {
		return // nothing stored since the last checkpoint
	}
	if !force && (s.lastSeq-s.tallySeq < int64(s.opts.CheckpointRows) && time.Since(s.lastCheckpoint) < s.opts.CheckpointInterval ||
		time.Now().Before(s.checkpointRetryAt)) {
		return
	}
	// The applier may still be adding the latest commit to memory; it holds
	// commitMu until it has.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.TxTimeout)
	defer cancel()
	if err := s.writeCheckpoint(ctx); err != nil {
		s.resetConn()
		s.opts.Logger.Error("store: tally checkpoint failed; it is retried, nothing is lost (start-up replays the responses after the last checkpoint)",
			"cells", len(s.dirty), "err", err)
		s.qmu.Lock()
		s.stats.FailedCheckpoints++
		s.qmu.Unlock()
		// Not again before an interval has passed, however many responses
		// come in meanwhile: a full disk should not cost a failed checkpoint
		// per commit.
		s.checkpointRetryAt = time.Now().Add(s.opts.CheckpointInterval)
	}
}

// writeCheckpoint rewrites the dirty cells and the seq they count up to in
// one transaction on the writer connection. It runs on the writer goroutine
// with commitMu held (no commit is being applied), or in Open.
func (s *Store) writeCheckpoint(ctx context.Context) error {
	c, err := s.conn(ctx)
	if err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	up, err := tx.PrepareContext(ctx, `INSERT INTO tallies (questionnaire_id, province_id, month, channel, unit_id, data)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (questionnaire_id, province_id, month, channel, unit_id) DO UPDATE SET data = excluded.data`)
	if err != nil {
		return err
	}
	defer up.Close()
	// Cells change only while a commit is applied, which commitMu excludes,
	// so reading them here needs no lock. Row statements run without ctx's
	// cancellation, as in insertTx.
	rowCtx := context.WithoutCancel(ctx)
	for k := range s.dirty {
		data, err := s.cells.get(k).MarshalBinary()
		if err != nil {
			return err
		}
		if _, err := up.ExecContext(rowCtx, k.QuestionnaireID, k.ProvinceID, k.Month, int64(k.Channel), k.UnitID, data); err != nil {
			return fmt.Errorf("write tally: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = ?", strconv.FormatInt(s.lastSeq, 10), tallySeqKey); err != nil {
		return fmt.Errorf("write %s: %w", tallySeqKey, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	clear(s.dirty)
	s.tallySeq = s.lastSeq
	s.lastCheckpoint = time.Now()
	s.qmu.Lock()
	s.stats.Checkpoints++
	s.qmu.Unlock()
	return nil
}
