package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sipas-vn/sipas"
)

// The tallies table holds every aggregate cell, in the sparse encoding of
// sipas.SparseTally, and is the truth the indices are read from: a read
// takes the blocks of cells its query needs (see cellcache.go) from the
// cache or by key range from the table. Commits do not write it: the
// applier adds each commit's responses to the deltas in memory, which reads
// add to the stored cells. A checkpoint writes the cells with a delta (base
// read back, delta added, row upserted; nothing else), together with the
// seq of the last response they count (meta key tallySeqKey), in one
// transaction, every Options.CheckpointRows responses, when the deltas
// reach Options.MaxDirtyCells cells or Options.MaxDeltaBytes bytes, every
// Options.CheckpointInterval, and
// when the store closes. At start-up only the responses stored after that
// seq are replayed into deltas (flushed in steps of MaxDirtyCells), so the
// aggregates equal a count of every stored response after any crash, and
// neither start-up nor memory depends on how much history is stored.
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

// replay calls fn for every response stored after seq `after`, in seq
// order and in its current version (withdrawn ones left out: see
// corrections.go), with the cells it is counted in and its contribution, and returns
// the seq of the last one and how many there were. fn may fail (a
// checkpoint during the replay), which ends it.
func (s *Store) replay(ctx context.Context, q queryer, after int64,
	fn func(seq int64, keys []sipas.CellKey, qn *sipas.Questionnaire, c *sipas.Contribution) error) (last int64, n int, err error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, questionnaire_id, province_id, month, channel, unit_id, payload, flags
		FROM responses WHERE seq > ? AND withdrawn = 0 ORDER BY seq`, after)
	if err != nil {
		return 0, 0, fmt.Errorf("replay: %w", err)
	}
	defer rows.Close()
	last = after
	var (
		payload []byte
		answers []uint8
		c       sipas.Contribution
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
		qn.Contribution(answers, &c)
		keys, nk := countedIn(k, sipas.Flags(flags))
		if err := fn(last, keys[:nk], qn, &c); err != nil {
			return 0, 0, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("replay: %w", err)
	}
	return last, n, nil
}

// recoverTallies counts the responses stored after the last checkpoint into
// the deltas, checkpointing whenever they reach Options.MaxDirtyCells cells
// and at the end, so that the next start does not replay them again and
// memory stays bounded however many there are (the first start after
// migration 0004 counts every stored response). It runs in Open, before
// the writer starts.
func (s *Store) recoverTallies(ctx context.Context) error {
	start := time.Now()
	seq, err := tallySeq(ctx, s.reader)
	if err != nil {
		return err
	}
	s.tallySeq, s.lastSeq = seq, seq
	cseq, err := correctionsSeq(ctx, s.reader)
	if err != nil {
		return err
	}
	s.tallyCSeq, s.lastCSeq = cseq, cseq
	// Corrections first, and checkpointed before the responses after seq
	// are replayed (in their current version): the table then counts the
	// responses up to seq as of the last correction, which is what a
	// checkpoint in the middle of the responses' replay claims.
	nc := 0
	if s.lastCSeq, err = s.replayCorrections(ctx, s.reader, seq, cseq, func(keys []sipas.CellKey, qn *sipas.Questionnaire, c *sipas.Contribution, sign int64) error {
		for _, k := range keys {
			s.deltas.add(k, qn, c, sign)
		}
		nc++
		return nil
	}); err != nil {
		return err
	}
	if s.lastCSeq != s.tallyCSeq {
		if err := s.writeCheckpoint(ctx); err != nil {
			return err
		}
		s.opts.Logger.Info("store: corrections replayed after the last checkpoint", "versions", nc)
	}
	cells := 0
	_, n, err := s.replay(ctx, s.reader, seq, func(seq int64, keys []sipas.CellKey, qn *sipas.Questionnaire, c *sipas.Contribution) error {
		for _, k := range keys {
			s.deltas.add(k, qn, c, 1)
		}
		s.lastSeq = seq
		if s.deltas.len() >= s.opts.MaxDirtyCells || s.deltas.bytes >= s.opts.MaxDeltaBytes {
			cells += s.deltas.len()
			return s.writeCheckpoint(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	cells += s.deltas.len()
	if err := s.writeCheckpoint(ctx); err != nil {
		return err
	}
	s.opts.Logger.Info("store: aggregates replayed from the responses after the last checkpoint",
		"responses", n, "cells_written", cells, "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// maybeCheckpoint writes a checkpoint when enough responses, changed cells
// or time have gone by since the last one (or always, with force, when
// anything is new). A failed checkpoint changes nothing: the deltas stay and
// the next attempt, an interval later, writes them. It runs on the writer
// goroutine.
func (s *Store) maybeCheckpoint(force bool) {
	if s.lastSeq == s.tallySeq && s.lastCSeq == s.tallyCSeq {
		return // nothing stored or corrected since the last checkpoint
	}
	due := s.lastSeq-s.tallySeq >= int64(s.opts.CheckpointRows) || int(s.dirtyCells.Load()) >= s.opts.MaxDirtyCells ||
		int(s.dirtyBytes.Load()) >= s.opts.MaxDeltaBytes || time.Since(s.lastCheckpoint) >= s.opts.CheckpointInterval
	if !force && (!due || time.Now().Before(s.checkpointRetryAt)) {
		return
	}
	// The applier may still be adding the latest commit to the deltas; it
	// holds commitMu until it has.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.TxTimeout)
	defer cancel()
	if err := s.writeCheckpoint(ctx); err != nil {
		s.resetConn()
		s.opts.Logger.Error("store: tally checkpoint failed; it is retried, nothing is lost (start-up replays the responses after the last checkpoint)",
			"cells", s.deltas.len(), "err", err)
		s.qmu.Lock()
		s.stats.FailedCheckpoints++
		s.qmu.Unlock()
		// Not again before an interval has passed, however many responses
		// come in meanwhile: a full disk should not cost a failed checkpoint
		// per commit.
		s.checkpointRetryAt = time.Now().Add(s.opts.CheckpointInterval)
	}
}

// writeCheckpoint adds each cell's delta to its stored row (read from the
// cache or the table), writes the rows and the seq they count up to in one
// transaction on the writer connection, and then, with every reader
// excluded, commits, puts the new rows into the cached blocks and drops the
// deltas. A cell whose total is empty (every response taken back out) is
// deleted. It runs on the writer goroutine with commitMu held (no commit is
// being applied), or in Open.
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
	if err := s.adoptForeignCheckpoint(ctx, tx); err != nil {
		return err
	}
	// Row statements run without ctx's cancellation, as in insertTx.
	rowCtx := context.WithoutCancel(ctx)
	sel, err := tx.PrepareContext(ctx, "SELECT data FROM tallies WHERE "+cellKeyWhere)
	if err != nil {
		return err
	}
	defer sel.Close()
	up, err := tx.PrepareContext(ctx, `INSERT INTO tallies (questionnaire_id, kind, month, province_id, unit_id, channel, seq, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (questionnaire_id, kind, month, province_id, unit_id, channel) DO UPDATE SET seq = excluded.seq, data = excluded.data`)
	if err != nil {
		return err
	}
	defer up.Close()
	del, err := tx.PrepareContext(ctx, "DELETE FROM tallies WHERE "+cellKeyWhere)
	if err != nil {
		return err
	}
	defer del.Close()

	// Deltas change only while a commit is applied, which commitMu excludes,
	// so reading them here needs no lock. Keys in table order: neighbouring
	// rows share pages.
	keys := make([]sipas.CellKey, 0, s.deltas.len())
	for k := range s.deltas.cells {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareCellKeys)
	// A block with many changed cells that is not cached is read with one
	// range read (the units of a province in the current month, say)
	// rather than a point read per cell; it is cached afterwards.
	loaded := map[BlockKey]*block{}
	for bk, ks := range s.deltas.byBlock {
		if len(ks) < blockReadMin || s.cache.has(bk) {
			continue
		}
		b, err := readBlock(ctx, tx, bk)
		if err != nil {
			return err
		}
		loaded[bk] = b
	}
	written := make([][]byte, len(keys))
	for i, k := range keys {
		base, cached := s.cache.peek(k)
		if b := loaded[BlockOf(k)]; b != nil {
			base, cached = b.cells[k], true
		}
		if !cached {
			switch err := sel.QueryRowContext(rowCtx, cellKeyArgs(k)...).Scan(&base); {
			case errors.Is(err, sql.ErrNoRows):
				base = nil
			case err != nil:
				return fmt.Errorf("read tally: %w", err)
			}
		}
		d := s.deltas.cells[k]
		total := &sipas.SparseTally{NSlots: d.NSlots, NNodes: d.NNodes}
		if base != nil {
			if err := total.UnmarshalBinary(base); err != nil {
				return fmt.Errorf("cell %v: %w", k, err)
			}
			if total.NSlots != d.NSlots || total.NNodes != d.NNodes {
				return fmt.Errorf("cell %v has %d slots and %d nodes, its questionnaire %d and %d",
					k, total.NSlots, total.NNodes, d.NSlots, d.NNodes)
			}
		}
		total.Merge(d)
		data, err := total.MarshalBinary()
		if err != nil {
			return fmt.Errorf("cell %v: %w", k, err)
		}
		if total.IsZero() {
			if _, err := del.ExecContext(rowCtx, cellKeyArgs(k)...); err != nil {
				return fmt.Errorf("delete tally: %w", err)
			}
			continue // written[i] stays nil: no longer stored
		}
		args := append(cellKeyArgs(k), s.lastSeq, data)
		if _, err := up.ExecContext(rowCtx, args...); err != nil {
			return fmt.Errorf("write tally: %w", err)
		}
		written[i] = data
	}
	if _, err := tx.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = ?", strconv.FormatInt(s.lastSeq, 10), tallySeqKey); err != nil {
		return fmt.Errorf("write %s: %w", tallySeqKey, err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = ?", strconv.FormatInt(s.lastCSeq, 10), correctionsSeqKey); err != nil {
		return fmt.Errorf("write %s: %w", correctionsSeqKey, err)
	}
	// Readers hold cellsMu while they read the table and the deltas: with
	// it held here, a reader sees the old rows with the deltas or the new
	// rows without them, never both or neither.
	s.cellsMu.Lock()
	defer s.cellsMu.Unlock()
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for i, k := range keys {
		if b := loaded[BlockOf(k)]; b != nil {
			b.put(k, written[i])
		}
	}
	for _, b := range loaded {
		s.cache.add(b)
	}
	for i, k := range keys {
		s.cache.update(k, written[i])
	}
	s.deltas.reset()
	s.dirtyCells.Store(0)
	s.dirtyBytes.Store(0)
	s.tallySeq, s.tallyCSeq = s.lastSeq, s.lastCSeq
	s.lastCheckpoint = time.Now()
	s.qmu.Lock()
	s.stats.Checkpoints++
	s.stats.CellsWritten += uint64(len(keys))
	s.qmu.Unlock()
	return nil
}

// adoptForeignCheckpoint protects the table against a checkpoint written by
// another Store on the same file since this one's last (a second process
// opened on the database, as a restart test does while the first is still
// open): the deltas here would then be added a second time to rows that
// already count them. When the stored watermark is not the one this store
// wrote, it drops its cache and deltas and counts again, from the
// responses, only those after the stored watermark. It runs inside the
// checkpoint's transaction (the writer's lock is held).
func (s *Store) adoptForeignCheckpoint(ctx context.Context, tx *sql.Tx) error {
	stored, err := tallySeq(ctx, tx)
	if err != nil {
		return err
	}
	storedC, err := correctionsSeq(ctx, tx)
	if err != nil {
		return err
	}
	if stored == s.tallySeq && storedC == s.tallyCSeq {
		return nil
	}
	s.opts.Logger.Warn("store: the aggregates were checkpointed by another process on the same database; re-counting the responses after its checkpoint",
		"stored_seq", stored, "own_seq", s.tallySeq)
	fresh := newDeltas()
	lastC, err := s.replayCorrections(ctx, tx, stored, storedC, func(keys []sipas.CellKey, qn *sipas.Questionnaire, c *sipas.Contribution, sign int64) error {
		for _, k := range keys {
			fresh.add(k, qn, c, sign)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, _, err := s.replay(ctx, tx, stored, func(_ int64, keys []sipas.CellKey, qn *sipas.Questionnaire, c *sipas.Contribution) error {
		for _, k := range keys {
			fresh.add(k, qn, c, 1)
		}
		return nil
	}); err != nil {
		return err
	}
	s.cellsMu.Lock()
	s.cache.clear()
	s.deltas = fresh
	s.dirtyCells.Store(int64(fresh.len()))
	s.dirtyBytes.Store(int64(fresh.bytes))
	s.cellsMu.Unlock()
	s.tallySeq, s.tallyCSeq = stored, storedC
	if lastC > s.lastCSeq {
		s.lastCSeq = lastC
	}
	if last, err := lastResponseSeq(ctx, tx); err != nil {
		return err
	} else if last > s.lastSeq {
		s.lastSeq = last
	}
	return nil
}

// lastResponseSeq returns the seq of the last stored response (0: none).
func lastResponseSeq(ctx context.Context, q queryer) (int64, error) {
	var seq sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT max(seq) FROM responses").Scan(&seq); err != nil {
		return 0, fmt.Errorf("read last seq: %w", err)
	}
	return seq.Int64, nil
}

// blockReadMin is how many changed cells of a block make a checkpoint read
// the block with one range read instead of a point read per cell.
const blockReadMin = 8

// readBlock reads block bk from the table through q.
func readBlock(ctx context.Context, q queryer, bk BlockKey) (*block, error) {
	var rows *sql.Rows
	var err error
	if bk.Units {
		rows, err = q.QueryContext(ctx, unitBlockSQL, bk.QuestionnaireID, bk.Month, bk.ProvinceID)
	} else {
		rows, err = q.QueryContext(ctx, provinceBlockSQL, bk.QuestionnaireID, bk.Month)
	}
	if err != nil {
		return nil, fmt.Errorf("read cells: %w", err)
	}
	defer rows.Close()
	b := &block{key: bk, cells: map[sipas.CellKey][]byte{}}
	for rows.Next() {
		k, data, err := scanTally(rows)
		if err != nil {
			return nil, fmt.Errorf("read cells: %w", err)
		}
		k.QuestionnaireID = bk.QuestionnaireID
		if bk.Units {
			k.ProvinceID = bk.ProvinceID
		}
		b.put(k, data)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read cells: %w", err)
	}
	return b, nil
}

// cellKeyWhere selects one row of tallies by its key (cellKeyArgs).
const cellKeyWhere = "questionnaire_id = ? AND kind = ? AND month = ? AND province_id = ? AND unit_id = ? AND channel = ?"

// cellKeyArgs are the key columns of cell k in table order.
func cellKeyArgs(k sipas.CellKey) []any {
	kind := 0
	if k.UnitID != "" {
		kind = 1
	}
	args := make([]any, 6, 8) // room for the columns an upsert adds
	args[0], args[1], args[2], args[3], args[4], args[5] = k.QuestionnaireID, kind, k.Month, k.ProvinceID, k.UnitID, int64(k.Channel)
	return args
}

// compareCellKeys orders cell keys as the tallies table's primary key does.
func compareCellKeys(a, b sipas.CellKey) int {
	if c := strings.Compare(a.QuestionnaireID, b.QuestionnaireID); c != 0 {
		return c
	}
	ak, bk := a.UnitID != "", b.UnitID != ""
	if ak != bk {
		if !ak {
			return -1
		}
		return 1
	}
	if a.Month != b.Month {
		return a.Month - b.Month
	}
	if c := strings.Compare(a.ProvinceID, b.ProvinceID); c != 0 {
		return c
	}
	if c := strings.Compare(a.UnitID, b.UnitID); c != 0 {
		return c
	}
	return int(a.Channel) - int(b.Channel)
}
