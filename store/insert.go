package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
)

// InsertResult is the outcome of one item of an Insert call.
type InsertResult struct {
	// Duplicate is true when a response with the same id and the same
	// content hash was already stored: nothing was written, and the item is
	// acknowledged again.
	Duplicate bool
	// Err is a *sipas.Error when the item was refused: KindConflict
	// (RESPONSE_ID_CONFLICT) for the same id with a different hash (the
	// stored response is unchanged), KindInvalid or KindFailedPrecondition
	// for an item the store cannot file.
	Err error
}

// prepared is an item made ready for the writer by the caller's goroutine, so
// the writer spends its time on SQL only.
type prepared struct {
	idx     int // position in the caller's slice
	acc     *sipas.Accepted
	month   int
	payload []byte
	contrib sipas.Contribution // what it adds to its cells
}

const opInsert = "store.insert"

// prepare checks what the store itself needs of an accepted response and
// encodes it.
func (s *Store) prepare(acc *sipas.Accepted) (*prepared, error) {
	if err := CheckAccepted(s.cat, acc); err != nil {
		return nil, err
	}
	r := acc.Response
	p := &prepared{
		acc:     acc,
		month:   sipas.MonthOf(r.CollectedAt),
		payload: EncodePayload(acc.Questionnaire, &r.Demographics, acc.Answers),
	}
	acc.Questionnaire.Contribution(acc.Answers, &p.contrib)
	return p, nil
}

// Insert stores validated responses. Each item's outcome is in the result
// of the same index: inserted (zero value), Duplicate, or Err. The call
// returns only after the transaction holding the items has committed
// (synchronous=FULL: they are on stable storage), and the aggregates in
// memory include them.
//
// A non-nil error means the outcome is unknown or nothing was written: it is
// a *sipas.Error of KindUnavailable, and retrying the same items is safe.
// ctx bounds only the wait: it is never passed to the transaction.
func (s *Store) Insert(ctx context.Context, items []*sipas.Accepted) ([]InsertResult, error) {
	results := make([]InsertResult, len(items))
	preps := make([]*prepared, 0, len(items))
	for i, acc := range items {
		p, err := s.prepare(acc)
		if err != nil {
			results[i].Err = err
			continue
		}
		p.idx = i
		preps = append(preps, p)
	}
	if len(preps) == 0 {
		return results, nil
	}
	r := &request{items: preps, results: results, done: make(chan struct{})}
	if err := s.enqueue(r); err != nil {
		return nil, err
	}
	if err := s.wait(ctx, r, opInsert); err != nil {
		return nil, err
	}
	return results, nil
}

// commitInserts writes the responses of reqs in one transaction. On success
// it hands the commit to the applier (applyLoop), which updates the
// aggregates in memory and answers every request while the writer goes on
// with the next transaction; on failure it answers them itself.
func (s *Store) commitInserts(reqs []*request) {
	n := 0
	for _, r := range reqs {
		n += len(r.items)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.TxTimeout)
	inserted, lastSeq, err := s.insertTx(ctx, reqs, n)
	cancel()
	dur := time.Since(start)
	if err == nil {
		// commitMu was taken by insertTx before COMMIT; the applier
		// releases it once memory has the commit.
		s.lastSeq = lastSeq
		for _, r := range reqs {
			r.handedOff = true
		}
		s.applies <- &applyJob{reqs: reqs, inserted: inserted, n: n, dur: dur}
		return
	}
	s.resetConn()
	serr := storageError(opInsert, err)
	s.qmu.Lock()
	s.stats.FailedCommits++
	if serr.Reason == reasonStorageFull {
		s.stats.StorageFullAt = time.Now()
	}
	s.qmu.Unlock()
	s.opts.Logger.Error("store: response transaction failed", "responses", n, "err", err)
	for _, r := range reqs {
		r.err = storageError(opInsert, err)
		r.answer()
	}
}

// applyJob is a committed transaction of responses for the applier.
type applyJob struct {
	reqs     []*request
	inserted []*prepared
	n        int
	dur      time.Duration
}

// applyLoop adds each committed transaction's responses to the deltas of
// their cells (under the lock readers hold while they read), releases
// commitMu, records the commit in the statistics and the OnCommit hook, and
// answers the callers: a caller that has its answer sees its responses in
// indices and metrics. It runs on its own goroutine so that the writer's
// next transaction overlaps with it; the next COMMIT waits for commitMu, so
// commits reach memory in order and one at a time.
func (s *Store) applyLoop() {
	defer close(s.applierDone)
	for job := range s.applies {
		s.cellsMu.Lock()
		for _, p := range job.inserted {
			keys, nk := cellKeys(p.acc, p.month)
			for _, k := range keys[:nk] {
				s.deltas.add(k, p.acc.Questionnaire, &p.contrib, 1)
			}
		}
		s.dirtyCells.Store(int64(s.deltas.len()))
		s.dirtyBytes.Store(int64(s.deltas.bytes))
		s.cellsMu.Unlock()
		s.commitMu.Unlock()

		s.qmu.Lock()
		s.stats.Commits++
		s.stats.StorageFullAt = time.Time{}
		s.stats.LastBatchSize = job.n
		s.stats.LastCommit = job.dur
		for _, r := range job.reqs {
			for _, p := range r.items {
				res := r.results[p.idx]
				switch {
				case res.Duplicate:
					s.stats.Duplicates++
				case res.Err != nil:
					s.stats.Conflicts++
				default:
					s.stats.Inserted++
				}
			}
		}
		s.qmu.Unlock()
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(job.n, job.dur)
		}
		for _, r := range job.reqs {
			r.answer()
		}
	}
}

// insertTx runs the insert transaction. On success it returns the items
// stored (not duplicates or conflicts) and the seq of the last one, with
// commitMu held; on failure nothing changed and commitMu is not held. The
// tallies table is not written here: it is a checkpoint of memory, written
// by writeCheckpoint.
func (s *Store) insertTx(ctx context.Context, reqs []*request, n int) ([]*prepared, int64, error) {
	c, err := s.conn(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("writer connection: %w", err)
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	insOne := tx.StmtContext(ctx, s.insertStmt)
	defer insOne.Close()
	insGroup := tx.StmtContext(ctx, s.insertGroupStmt)
	defer insGroup.Close()
	sel := tx.StmtContext(ctx, s.hashStmt)
	defer sel.Close()

	type item struct {
		r *request
		p *prepared
	}
	items := make([]item, 0, n)
	for _, r := range reqs {
		for _, p := range r.items {
			items = append(items, item{r, p})
		}
	}
	// Responses of closed periods (periods.go) are refused here, in the
	// writer's transaction, so that no close slips in between.
	if len(s.closedPeriods) > 0 {
		kept := items[:0]
		for _, it := range items {
			period := s.closedPeriodOf(it.p.month)
			if period == "" {
				kept = append(kept, it)
				continue
			}
			// A resend of a response already stored stays a duplicate;
			// anything else would change a closed period.
			var seq int64
			var h []byte
			err := sel.QueryRowContext(context.WithoutCancel(ctx), it.p.acc.ID[:]).Scan(&seq, &h)
			switch {
			case err == nil && (bytes.Equal(h, it.p.acc.Hash[:]) || it.p.sameLegacyHash(h)):
				it.r.results[it.p.idx] = InsertResult{Duplicate: true}
			case err == nil || errors.Is(err, sql.ErrNoRows):
				it.r.results[it.p.idx] = InsertResult{Err: periodClosedError(opInsert, period)}
			default:
				return nil, 0, fmt.Errorf("read stored hash: %w", err)
			}
		}
		items = kept
	}
	inserted := make([]*prepared, 0, n)
	lastSeq := s.lastSeq
	// Row statements run without ctx's cancellation: go-sqlite3 runs every
	// statement whose context can be cancelled on a goroutine of its own
	// (to interrupt it), a hop per statement. The transaction still ends
	// with ctx: database/sql rolls it back when ctx expires, and the next
	// statement or COMMIT then fails.
	rowCtx := context.WithoutCancel(ctx)
	args := make([]any, 0, insertGroupRows*insertColumns)
	var seen map[uuid.UUID]bool
	for off := 0; off < len(items); {
		// Responses go in by insertGroupRows per statement (a statement's
		// own cost is then shared), the rest one by one.
		group, stmt := items[off:], insOne
		if len(group) >= insertGroupRows {
			group, stmt = group[:insertGroupRows], insGroup
		} else {
			group = group[:1]
		}
		off += len(group)
		args = args[:0]
		for _, it := range group {
			p, resp := it.p, it.p.acc.Response
			args = append(args, p.acc.ID[:], resp.QuestionnaireID, resp.ProvinceCode, p.acc.Province.ID,
				resp.CollectedAt.UnixNano(), int64(p.month), int64(resp.Channel), resp.UnitID, p.acc.Hash[:], p.payload, int64(resp.Flags),
				p.acc.Source.CredentialID, p.acc.Source.BatchID)
		}
		res, err := stmt.ExecContext(rowCtx, args...)
		if err != nil {
			return nil, 0, fmt.Errorf("insert: %w", err)
		}
		stored, err := res.RowsAffected()
		if err != nil {
			return nil, 0, err
		}
		before := lastSeq
		if stored > 0 {
			if lastSeq, err = res.LastInsertId(); err != nil {
				return nil, 0, err
			}
		}
		if stored == int64(len(group)) {
			for _, it := range group {
				it.r.results[it.p.idx] = InsertResult{}
				inserted = append(inserted, it.p)
			}
			continue
		}
		// Some ids were taken, by an earlier transaction, earlier in this
		// one or earlier in this statement. A row this statement stored
		// has a seq above the last one before it, and belongs to the
		// first item of the statement with its id; any other item is a
		// duplicate when its content hash is the stored one, else a
		// conflict. Read in the same IMMEDIATE transaction, so no other
		// writer can come in between.
		clear(seen)
		if seen == nil {
			seen = map[uuid.UUID]bool{}
		}
		for _, it := range group {
			p := it.p
			var seq int64
			var h []byte
			if err := sel.QueryRowContext(rowCtx, p.acc.ID[:]).Scan(&seq, &h); err != nil {
				return nil, 0, fmt.Errorf("read stored hash: %w", err)
			}
			first := !seen[p.acc.ID]
			seen[p.acc.ID] = true
			switch {
			case seq > before && first:
				it.r.results[p.idx] = InsertResult{}
				inserted = append(inserted, p)
			case bytes.Equal(h, p.acc.Hash[:]) || p.sameLegacyHash(h):
				it.r.results[p.idx] = InsertResult{Duplicate: true}
			default:
				e := *sipas.ErrResponseConflict
				e.Op = opInsert
				it.r.results[p.idx] = InsertResult{Err: &e}
			}
		}
	}

	if s.opts.BeforeCommit != nil {
		if err := s.opts.BeforeCommit(n); err != nil {
			return nil, 0, err
		}
	}
	s.commitMu.Lock()
	if err := tx.Commit(); err != nil {
		s.commitMu.Unlock()
		return nil, 0, fmt.Errorf("commit: %w", err)
	}
	return inserted, lastSeq, nil
}

// sameLegacyHash reports whether stored is the version-1 content hash of
// p's response: responses stored before version 2 of the hash carry it, and
// a resend of one of them is a duplicate, not a conflict.
func (p *prepared) sameLegacyHash(stored []byte) bool { return SameLegacyHash(p.acc, stored) }

// insertGroupRows is how many responses one INSERT statement stores when
// enough are queued: about a quarter less time per row than one statement
// each, measured.
const (
	insertGroupRows = 16
	insertColumns   = 13
)

// insertSQL is the INSERT of rows responses; an id already stored leaves
// its row as it is.
func insertSQL(rows int) string {
	values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), ", rows), ", ")
	return `INSERT INTO responses
		(response_id, questionnaire_id, province_code, province_id, collected_at, month, channel, unit_id, content_hash, payload, flags,
		 credential_id, batch_id)
		VALUES ` + values + `
		ON CONFLICT (response_id) DO NOTHING`
}

const storedHashSQL = "SELECT seq, content_hash FROM responses WHERE response_id = ?"

// prepareWriterStmts prepares the response transaction's statements on the
// writer pool. The pool has one connection, held in s.wconn, so it is
// returned to the pool while they are prepared on it, and taken again.
func (s *Store) prepareWriterStmts(ctx context.Context) error {
	if err := s.wconn.Close(); err != nil {
		return err
	}
	s.wconn = nil
	var err error
	if s.insertStmt, err = s.writer.PrepareContext(ctx, insertSQL(1)); err != nil {
		return err
	}
	if s.insertGroupStmt, err = s.writer.PrepareContext(ctx, insertSQL(insertGroupRows)); err != nil {
		return err
	}
	if s.hashStmt, err = s.writer.PrepareContext(ctx, storedHashSQL); err != nil {
		return err
	}
	s.wconn, err = s.writer.Conn(ctx)
	return err
}

// cellKeys returns the cells a response is counted in.
func cellKeys(acc *sipas.Accepted, month int) ([2]sipas.CellKey, int) {
	r := acc.Response
	return countedIn(sipas.CellKey{QuestionnaireID: r.QuestionnaireID, ProvinceID: acc.Province.ID, Month: month,
		Channel: r.Channel, UnitID: r.UnitID}, r.Flags)
}

// countedIn returns the cells a response of cell k is counted in: k and,
// when k is a unit's cell, its province cell. A flagged response is counted
// in none: it is kept, and indices that include flagged responses read it
// by its keys (flagged.go).
func countedIn(k sipas.CellKey, flags sipas.Flags) ([2]sipas.CellKey, int) {
	if flags != 0 {
		return [2]sipas.CellKey{}, 0
	}
	if k.UnitID == "" {
		return [2]sipas.CellKey{k}, 1
	}
	p := k
	p.UnitID = ""
	return [2]sipas.CellKey{p, k}, 2
}
