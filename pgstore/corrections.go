package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

// Corrections (issue 16 item 5) on PostgreSQL, with the semantics of the
// SQLite store (store/corrections.go): a stored response is withdrawn, or
// amended by a new version, by the credential that sent it or by an
// administrator, with a reason. One transaction locks the response row
// (SELECT ... FOR UPDATE: two replicas correcting the same response at
// once apply their corrections one after the other, and the second sees
// the first's outcome, so a retried correction is Unchanged), checks who
// asks and the closed periods, writes the replaced version to the
// corrections table, the new state to the responses row and an audit
// event, and updates the aggregate cells as an insert does (addToCells):
// minus the replaced version's contribution, plus the new one's. Each
// correction therefore changes the cells exactly once, in the transaction
// that records it; no replay is needed after a crash.
//
// Closed periods. Every transaction that writes responses (insert,
// correction) first takes the shared advisory lock of the closed periods
// and then reads them (checkClosed); ClosePeriod and ReopenPeriod take the
// same lock exclusively. A close therefore waits for the writes in flight
// to commit, and the writes that start after it wait for it and see the
// period closed: no response of a closed period is committed after the
// close, whichever replica writes it.

const opCorrect = "pgstore.correct"

// closedPeriodsLock is the advisory lock's first key; the second is a hash
// of the schema, so that stores in different schemas of one database do not
// wait for each other.
const closedPeriodsLock = 0x51_9a_5c_10 // "sipas closed periods"

type closedRange struct {
	period   string
	from, to int
}

// closedSet is the closed periods as a writing transaction read them.
type closedSet []closedRange

// of returns the closed period holding month m ("" when m is open).
func (c closedSet) of(m int) string {
	for _, r := range c {
		if m >= r.from && m <= r.to {
			return r.period
		}
	}
	return ""
}

// checkClosed takes the shared lock of the closed periods for the rest of
// tx and reads them. The lock and the read are two statements (in one round
// trip): under READ COMMITTED the read's snapshot is taken after the lock
// is granted, so it sees a close that committed while tx waited.
func checkClosed(ctx context.Context, tx pgx.Tx) (closedSet, error) {
	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock_shared($1, hashtext(current_schema()))", int32(closedPeriodsLock))
	b.Queue("SELECT period, from_month, to_month FROM closed_periods")
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("lock closed periods: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("read closed periods: %w", err)
	}
	var out closedSet
	var r closedRange
	var from, to int32
	_, err = pgx.ForEachRow(rows, []any{&r.period, &from, &to}, func() error {
		r.from, r.to = int(from), int(to)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read closed periods: %w", err)
	}
	return out, br.Close()
}

// storedVersion is the current version of a stored response as its row holds it.
type storedVersion struct {
	questionnaire string
	provinceCode  string
	provinceID    string
	collectedAt   int64
	month         int32
	channel       int16
	unitID        string
	hash          []byte
	payload       []byte
	flags         int32
	credentialID  string
	version       int32
	withdrawn     bool
}

// Correct applies corrections in one transaction, in order of their
// response ids (so that concurrent transactions lock rows in the same
// order). Each item's outcome is in the result of the same index. A non-nil
// error means nothing was written, or the outcome is unknown
// (KindUnavailable): retrying is safe, since a retried correction is
// Unchanged.
func (s *Store) Correct(ctx context.Context, items []store.Correction) ([]store.CorrectionResult, error) {
	results := make([]store.CorrectionResult, len(items))
	ids := make([]uuid.UUID, len(items))
	var order []int
	for i, c := range items {
		id, err := store.CheckCorrection(s.cat, c)
		if err != nil {
			results[i].Err = err
			continue
		}
		ids[i] = id
		order = append(order, i)
	}
	if len(order) == 0 {
		return results, nil
	}
	slices.SortStableFunc(order, func(a, b int) int { return bytes.Compare(ids[a][:], ids[b][:]) })
	var written []cellRow
	err := s.write(ctx, opCorrect, func(ctx context.Context, tx pgx.Tx) error {
		// A retried transaction starts afresh.
		for _, i := range order {
			results[i] = store.CorrectionResult{}
		}
		var err error
		written, err = s.correctTx(ctx, tx, items, ids, order, results)
		return err
	})
	if err != nil {
		return nil, dbError(opCorrect, err)
	}
	s.cells.apply(written)
	return results, nil
}

// correctTx applies the corrections of order and returns the cells written.
func (s *Store) correctTx(ctx context.Context, tx pgx.Tx, items []store.Correction, ids []uuid.UUID, order []int,
	results []store.CorrectionResult) ([]cellRow, error) {
	closed, err := checkClosed(ctx, tx)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now().UnixNano()
	deltas := cellDeltas{}
	var answers []uint8
	var contrib sipas.Contribution
	applied := 0
	for _, i := range order {
		it := items[i]
		id := pgtype.UUID{Bytes: ids[i], Valid: true}
		var v storedVersion
		err := tx.QueryRow(ctx, `SELECT questionnaire_id, province_code, province_id, collected_at, month, channel, unit_id,
			content_hash, payload, flags, credential_id, version, withdrawn FROM responses WHERE response_id = $1 FOR UPDATE`, id).
			Scan(&v.questionnaire, &v.provinceCode, &v.provinceID, &v.collectedAt, &v.month, &v.channel, &v.unitID,
				&v.hash, &v.payload, &v.flags, &v.credentialID, &v.version, &v.withdrawn)
		if errors.Is(err, pgx.ErrNoRows) {
			results[i].Err = store.ErrCorrectNotFound()
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		results[i].ProvinceID = v.provinceID
		if r, done := store.JudgeCorrection(it, v.credentialID, v.withdrawn, int(v.version)); done {
			r.ProvinceID = v.provinceID
			results[i] = r
			continue
		}
		if p := closed.of(int(v.month)); p != "" {
			results[i].Err = store.PeriodClosedError(opCorrect, p)
			continue
		}
		q := s.cat.Get(v.questionnaire)
		if q == nil {
			return nil, fmt.Errorf("stored response of unknown questionnaire %q", v.questionnaire)
		}
		var newMonth int
		if it.Kind == store.CorrectionAmend {
			acc := it.Amended
			if acc.Questionnaire != q {
				results[i].Err = store.QuestionnaireChangedError(v.questionnaire)
				continue
			}
			if bytes.Equal(v.hash, acc.Hash[:]) || store.SameLegacyHash(acc, v.hash) {
				results[i].Version, results[i].Unchanged = int(v.version), true
				continue
			}
			newMonth = sipas.MonthOf(acc.Response.CollectedAt)
			if p := closed.of(newMonth); p != "" {
				results[i].Err = store.PeriodClosedError(opCorrect, p)
				continue
			}
		}
		// The version replaced goes to the trail.
		if _, err := tx.Exec(ctx, `INSERT INTO corrections (response_id, kind, version, time, credential_id, reason,
			province_code, province_id, collected_at, month, channel, unit_id, content_hash, payload, flags)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			id, int16(it.Kind), v.version, now, it.Actor.CredentialID, it.Reason,
			v.provinceCode, v.provinceID, v.collectedAt, v.month, v.channel, v.unitID, v.hash, v.payload, v.flags); err != nil {
			return nil, fmt.Errorf("write correction: %w", err)
		}
		if answers, err = store.PayloadAnswers(q, v.payload, answers); err != nil {
			return nil, fmt.Errorf("response %s: %w", ids[i], err)
		}
		q.Contribution(answers, &contrib)
		deltas.add(q, sipas.CellKey{QuestionnaireID: v.questionnaire, ProvinceID: v.provinceID, Month: int(v.month),
			Channel: sipas.Channel(v.channel), UnitID: v.unitID}, sipas.Flags(v.flags), &contrib, -1)
		action, detail := "response.withdraw", fmt.Sprintf("version %d withdrawn; reason: %s", v.version, it.Reason)
		if it.Kind == store.CorrectionWithdraw {
			if _, err := tx.Exec(ctx, "UPDATE responses SET withdrawn = true WHERE response_id = $1", id); err != nil {
				return nil, fmt.Errorf("withdraw: %w", err)
			}
			results[i].Version = int(v.version)
		} else {
			acc := it.Amended
			r := acc.Response
			payload := store.EncodePayload(q, &r.Demographics, acc.Answers)
			if _, err := tx.Exec(ctx, `UPDATE responses SET province_code = $1, province_id = $2, collected_at = $3, month = $4,
				channel = $5, unit_id = $6, content_hash = $7, payload = $8, version = version + 1 WHERE response_id = $9`,
				r.ProvinceCode, acc.Province.ID, r.CollectedAt.UnixNano(), int32(newMonth), int16(r.Channel), r.UnitID,
				acc.Hash[:], payload, id); err != nil {
				return nil, fmt.Errorf("amend: %w", err)
			}
			q.Contribution(acc.Answers, &contrib)
			deltas.add(q, sipas.CellKey{QuestionnaireID: v.questionnaire, ProvinceID: acc.Province.ID, Month: newMonth,
				Channel: r.Channel, UnitID: r.UnitID}, sipas.Flags(v.flags), &contrib, 1)
			results[i].Version, results[i].ProvinceID = int(v.version)+1, acc.Province.ID
			action, detail = "response.amend", fmt.Sprintf("version %d replaced by version %d; reason: %s", v.version, v.version+1, it.Reason)
		}
		actor := it.Actor.CredentialID
		if actor == "" {
			actor = "local"
		}
		if _, err := tx.Exec(ctx, "INSERT INTO audit_events (time, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
			now, actor, action, "responses/"+ids[i].String(), detail); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		applied++
	}
	if applied == 0 {
		return nil, nil
	}
	written, err := addToCells(ctx, tx, deltas)
	if err != nil {
		return nil, err
	}
	if s.opts.BeforeCommit != nil {
		if err := s.opts.BeforeCommit(applied); err != nil {
			return nil, err
		}
	}
	return written, nil
}

// ResponseHistory returns the versions of a stored response, oldest first,
// and whether it is withdrawn. Answers and demographics are not returned.
func (s *Store) ResponseHistory(ctx context.Context, id string) ([]store.ResponseVersion, bool, error) {
	const op = "pgstore.response_history"
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, false, &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_FORMAT", Message: "response_id is not a UUID"}
	}
	var out []store.ResponseVersion
	var withdrawn bool
	err = s.tx(ctx, op, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(ctx context.Context, tx pgx.Tx) error {
		pid := pgtype.UUID{Bytes: uid, Valid: true}
		var version int32
		var h []byte
		err := tx.QueryRow(ctx, "SELECT version, withdrawn, content_hash FROM responses WHERE response_id = $1", pid).Scan(&version, &withdrawn, &h)
		if errors.Is(err, pgx.ErrNoRows) {
			return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "RESPONSE_NOT_FOUND", Message: "no response with this id"}
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT kind, version, time, credential_id, reason, content_hash FROM corrections WHERE response_id = $1 ORDER BY cseq", pid)
		if err != nil {
			return err
		}
		var (
			kind int16
			ver  int32
			at   int64
			v    store.ResponseVersion
			ch   []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&kind, &ver, &at, &v.ReplacedByID, &v.Reason, &ch}, func() error {
			v.Version, v.ReplacedBy, v.ReplacedAt = int(ver), store.CorrectionKind(kind), fromNanos(at)
			copy(v.ContentHash[:], ch)
			out = append(out, v)
			return nil
		})
		if err != nil {
			return err
		}
		if !withdrawn {
			cur := store.ResponseVersion{Version: int(version)}
			copy(cur.ContentHash[:], h)
			out = append(out, cur)
		}
		return nil
	})
	if err != nil {
		return nil, false, readError(op, err)
	}
	return out, withdrawn, nil
}

// ListClosedPeriods returns the closed periods, in order of their first month.
func (s *Store) ListClosedPeriods(ctx context.Context) ([]store.ClosedPeriod, error) {
	var out []store.ClosedPeriod
	err := s.read(ctx, "pgstore.list_closed_periods", func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, "SELECT period, from_month, to_month, close_time, closed_by, reason FROM closed_periods ORDER BY from_month, to_month")
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ClosedPeriod, error) {
			var p store.ClosedPeriod
			var from, to int32
			var at int64
			err := r.Scan(&p.Period, &from, &to, &at, &p.ClosedBy, &p.Reason)
			p.FromMonth, p.ToMonth, p.CloseTime = int(from), int(to), fromNanos(at)
			return p, err
		})
		return err
	})
	return out, err
}

// lockClosedPeriods takes the lock of the closed periods exclusively for
// the rest of tx: it waits for every write in flight, on any replica.
func lockClosedPeriods(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", int32(closedPeriodsLock))
	return err
}

// ClosePeriod freezes period p, recording who and why in the audit log.
// Closing a period already closed changes nothing and is not an error
// (already reports it). It returns once no replica can commit a change to
// a response of p.
func (s *Store) ClosePeriod(ctx context.Context, p sipas.Period, actor, reason string) (already bool, err error) {
	const op = "pgstore.close_period"
	if err := p.Validate(); err != nil {
		return false, err
	}
	name := p.String()
	from, to := p.Months()
	err = s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockClosedPeriods(ctx, tx); err != nil {
			return err
		}
		now := s.opts.Now().UnixNano()
		tag, err := tx.Exec(ctx, `INSERT INTO closed_periods (period, from_month, to_month, close_time, closed_by, reason)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (period) DO NOTHING`, name, int32(from), int32(to), now, actor, reason)
		if err != nil {
			return err
		}
		if already = tag.RowsAffected() == 0; already {
			return nil
		}
		_, err = tx.Exec(ctx, "INSERT INTO audit_events (time, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
			now, actor, "period.close", "periods/"+name, "reason: "+reason)
		return err
	})
	if err != nil {
		return false, dbError(op, err)
	}
	return already, nil
}

// ReopenPeriod lifts the freeze of period p (as closed: the same string),
// with a reason for the audit log. A period that is not closed is a
// KindNotFound error.
func (s *Store) ReopenPeriod(ctx context.Context, p sipas.Period, actor, reason string) error {
	const op = "pgstore.reopen_period"
	if err := p.Validate(); err != nil {
		return err
	}
	name := p.String()
	notClosed := false
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockClosedPeriods(ctx, tx); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM closed_periods WHERE period = $1", name)
		if err != nil {
			return err
		}
		if notClosed = tag.RowsAffected() == 0; notClosed {
			return nil
		}
		_, err = tx.Exec(ctx, "INSERT INTO audit_events (time, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
			s.opts.Now().UnixNano(), actor, "period.reopen", "periods/"+name, "reason: "+reason)
		return err
	})
	if err != nil {
		return dbError(op, err)
	}
	if notClosed {
		return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "PERIOD_NOT_CLOSED", Message: "period " + name + " is not closed"}
	}
	return nil
}
