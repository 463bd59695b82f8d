package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
)

// Corrections (issue 16 item 5). A stored response can be withdrawn, or
// amended by a new version, by the credential that sent it or by an
// administrator, with a reason. The responses row always holds the current
// version (or is marked withdrawn); each correction appends a row to the
// corrections table holding the version it replaced, who made the
// correction, when and why, and an audit event, in the same transaction.
//
// Aggregates. The correction's transaction takes commitMu before COMMIT like
// a response commit, and adds to the deltas the new version's contribution
// and minus the replaced version's, so the cells count every response once
// in its current version. The checkpoint writes the seq of the last
// correction counted (meta corrections_seq) beside tallies_seq, in the same
// transaction. The table then counts each response with seq <= tallies_seq
// in its version as of corrections_seq, and no response after tallies_seq.
// Replay after a crash restores the rest (replayCorrections, replay): for
// each response with seq <= tallies_seq that has corrections after
// corrections_seq, minus the version its first such correction replaced
// plus its current version (nothing if withdrawn); then every response
// after tallies_seq in its current version, unless withdrawn. Each
// correction therefore changes the aggregates exactly once, whenever the
// process dies.

// correctionsSeqKey is the meta key holding the cseq of the last correction
// the tallies table counts.
const correctionsSeqKey = "corrections_seq"

// CorrectionKind says what a correction does.
type CorrectionKind int

const (
	// CorrectionWithdraw takes a response out of every figure; the row is
	// kept (marked withdrawn) so that a resend of its id stays a duplicate.
	CorrectionWithdraw CorrectionKind = 1
	// CorrectionAmend replaces a response's content by a new version.
	CorrectionAmend CorrectionKind = 2
)

// Actor is who asks for a correction.
type Actor struct {
	CredentialID string
	// Admin may correct any response; any other credential only those it
	// sent.
	Admin bool
}

// Correction is one withdrawal or amendment.
type Correction struct {
	Kind CorrectionKind
	// ResponseID names the response to withdraw (for an amendment,
	// Amended.ID does).
	ResponseID string
	// Amended is the new version (CorrectionAmend): a response validated by
	// sipas.Validate with the same id. Its flags and source are not used:
	// the stored response keeps its own.
	Amended *sipas.Accepted
	Actor   Actor
	// Reason says why, for the trail (required).
	Reason string
}

// CorrectionResult is the outcome of one correction.
type CorrectionResult struct {
	// Version is the response's version after the correction (for a
	// withdrawal, the version withdrawn).
	Version int
	// Unchanged: nothing to do. An amendment whose content is the stored
	// version's, or a withdrawal of a response already withdrawn (a
	// retried correction is answered the same way).
	Unchanged bool
	// ProvinceID is the province the response is (or was) counted for.
	ProvinceID string
	// Err refuses this correction; nothing of it was written.
	Err error
}

const opCorrect = "store.correct"

// appliedCorrection is what a committed correction changes in the cells.
type appliedCorrection struct {
	q          *sipas.Questionnaire
	beforeKeys [2]sipas.CellKey
	nBefore    int
	before     sipas.Contribution
	afterKeys  [2]sipas.CellKey
	nAfter     int
	after      *sipas.Contribution
}

// storedVersion is the current version of a stored response as its row holds it.
type storedVersion struct {
	seq           int64
	questionnaire string
	provinceCode  string
	provinceID    string
	collectedAt   int64
	month         int
	channel       int64
	unitID        string
	hash          []byte
	payload       []byte
	flags         int64
	credentialID  string
	version       int
	withdrawn     bool
}

const storedVersionSQL = `SELECT seq, questionnaire_id, province_code, province_id, collected_at, month, channel, unit_id,
	content_hash, payload, flags, credential_id, version, withdrawn FROM responses WHERE response_id = ?`

func correctionError(kind sipas.ErrorKind, reason, msg string) error {
	return &sipas.Error{Kind: kind, Op: opCorrect, Reason: reason, Message: msg}
}

// CheckCorrection checks what a correction needs before any store reads:
// a known kind, the response's UUID (for an amendment, a response accepted
// by sipas.Validate of a questionnaire of cat) and a reason. Every backend
// applies it first.
func CheckCorrection(cat QuestionnaireSource, c Correction) (uuid.UUID, error) {
	var id uuid.UUID
	switch c.Kind {
	case CorrectionWithdraw:
		var err error
		id, err = uuid.Parse(c.ResponseID)
		if err != nil || id == uuid.Nil {
			return id, &sipas.Error{Kind: sipas.KindInvalid, Op: opCorrect, Reason: "INVALID_FORMAT", Message: "response_id is not a UUID",
				Violations: []sipas.Violation{{Field: "response_id", Reason: "INVALID_FORMAT", Description: "must be a UUID"}}}
		}
	case CorrectionAmend:
		if err := CheckAccepted(cat, c.Amended); err != nil {
			return id, err
		}
		id = c.Amended.ID
	default:
		return id, correctionError(sipas.KindInvalid, "INVALID_ARGUMENT", "unknown correction kind")
	}
	if c.Reason == "" {
		return id, &sipas.Error{Kind: sipas.KindInvalid, Op: opCorrect, Reason: "REASON_REQUIRED", Message: "a correction needs a reason",
			Violations: []sipas.Violation{{Field: "reason", Reason: "REQUIRED", Description: "say why the response is corrected (it is kept in the audit log)"}}}
	}
	return id, nil
}

// ErrCorrectNotFound is the refusal of a correction of a response that is
// not stored.
func ErrCorrectNotFound() error {
	return correctionError(sipas.KindNotFound, "RESPONSE_NOT_FOUND", "no response with this id is stored")
}

// JudgeCorrection decides what the stored state of a response (the
// credential that sent it, whether it is withdrawn, its version) makes of
// correction c: done reports that r is the outcome (refused, or a retried
// withdrawal: Unchanged); otherwise the correction goes on.
func JudgeCorrection(c Correction, sender string, withdrawn bool, version int) (r CorrectionResult, done bool) {
	if !c.Actor.Admin && (sender == "" || sender != c.Actor.CredentialID) {
		r.Err = correctionError(sipas.KindPermissionDenied, "NOT_SENDER",
			"only the credential that sent a response, or an administrator, may correct it")
		return r, true
	}
	if !withdrawn {
		return r, false
	}
	if c.Kind == CorrectionWithdraw {
		r.Version, r.Unchanged = version, true
		return r, true
	}
	r.Err = correctionError(sipas.KindFailedPrecondition, "RESPONSE_WITHDRAWN",
		"this response was withdrawn; a withdrawn response cannot be amended (send the corrected answers under a new response_id)")
	return r, true
}

// QuestionnaireChangedError refuses an amendment of a response of
// questionnaire stored into another questionnaire.
func QuestionnaireChangedError(stored string) error {
	return &sipas.Error{Kind: sipas.KindInvalid, Op: opCorrect, Reason: "QUESTIONNAIRE_CHANGED",
		Message: "an amendment must keep the response's questionnaire",
		Violations: []sipas.Violation{{Field: "questionnaire_id", Reason: "QUESTIONNAIRE_CHANGED",
			Description: "the stored response is of questionnaire " + strconv.Quote(stored) + "; withdraw it and send a new response instead"}}}
}

// Correct applies corrections in one transaction, in order. Each item's
// outcome is in the result of the same index. The call returns after the
// transaction has committed and the aggregates in memory include it. A
// non-nil error means nothing was written, or the outcome is unknown
// (KindUnavailable): retrying is safe, since a retried correction is
// Unchanged.
func (s *Store) Correct(ctx context.Context, items []Correction) ([]CorrectionResult, error) {
	results := make([]CorrectionResult, len(items))
	preps := make([]*prepared, len(items))
	ids := make([]uuid.UUID, len(items))
	for i, c := range items {
		id, err := CheckCorrection(s.cat, c)
		if err != nil {
			results[i].Err = err
			continue
		}
		ids[i] = id
		if c.Kind == CorrectionAmend {
			if preps[i], err = s.prepare(c.Amended); err != nil {
				results[i].Err = err
			}
		}
	}
	err := s.doConn(ctx, opCorrect, func(ctx context.Context, c *sql.Conn) error {
		return s.correctTx(ctx, c, items, preps, ids, results)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// correctTx runs on the writer goroutine.
func (s *Store) correctTx(ctx context.Context, c *sql.Conn, items []Correction, preps []*prepared, ids []uuid.UUID, results []CorrectionResult) error {
	// A retry of the request after a failed transaction starts afresh.
	var pending []int
	for i := range items {
		if results[i].Err == nil {
			results[i] = CorrectionResult{}
			pending = append(pending, i)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return storageError(opCorrect, err)
	}
	defer tx.Rollback()
	now := s.opts.Now().UnixNano()
	var applied []appliedCorrection
	lastCSeq := s.lastCSeq
	for _, i := range pending {
		it := items[i]
		var v storedVersion
		err := tx.QueryRowContext(ctx, storedVersionSQL, ids[i][:]).Scan(&v.seq, &v.questionnaire, &v.provinceCode, &v.provinceID,
			&v.collectedAt, &v.month, &v.channel, &v.unitID, &v.hash, &v.payload, &v.flags, &v.credentialID, &v.version, &v.withdrawn)
		if errors.Is(err, sql.ErrNoRows) {
			results[i].Err = ErrCorrectNotFound()
			continue
		}
		if err != nil {
			return storageError(opCorrect, err)
		}
		results[i].ProvinceID = v.provinceID
		if r, done := JudgeCorrection(it, v.credentialID, v.withdrawn, v.version); done {
			r.ProvinceID = v.provinceID
			results[i] = r
			continue
		}
		if p := s.closedPeriodOf(v.month); p != "" {
			results[i].Err = periodClosedError(opCorrect, p)
			continue
		}
		q := s.cat.Get(v.questionnaire)
		if q == nil {
			return fmt.Errorf("stored response of unknown questionnaire %q", v.questionnaire)
		}
		p := preps[i]
		if it.Kind == CorrectionAmend {
			if p.acc.Questionnaire != q {
				results[i].Err = QuestionnaireChangedError(v.questionnaire)
				continue
			}
			if bytes.Equal(v.hash, p.acc.Hash[:]) || p.sameLegacyHash(v.hash) {
				results[i].Version, results[i].Unchanged = v.version, true
				continue
			}
			if cp := s.closedPeriodOf(p.month); cp != "" {
				results[i].Err = periodClosedError(opCorrect, cp)
				continue
			}
		}
		// The version replaced goes to the trail.
		res, err := tx.ExecContext(ctx, `INSERT INTO corrections (response_seq, kind, version, time, credential_id, reason,
			province_code, province_id, collected_at, month, channel, unit_id, content_hash, payload, flags)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.seq, int64(it.Kind), v.version, now, it.Actor.CredentialID, it.Reason,
			v.provinceCode, v.provinceID, v.collectedAt, v.month, v.channel, v.unitID, v.hash, v.payload, v.flags)
		if err != nil {
			return storageError(opCorrect, err)
		}
		if lastCSeq, err = res.LastInsertId(); err != nil {
			return storageError(opCorrect, err)
		}
		ac := appliedCorrection{q: q}
		answers, err := payloadAnswers(q, v.payload, nil)
		if err != nil {
			return fmt.Errorf("response seq %d: %w", v.seq, err)
		}
		q.Contribution(answers, &ac.before)
		ac.beforeKeys, ac.nBefore = countedIn(sipas.CellKey{QuestionnaireID: v.questionnaire, ProvinceID: v.provinceID,
			Month: v.month, Channel: sipas.Channel(v.channel), UnitID: v.unitID}, sipas.Flags(v.flags))
		action, detail := "response.withdraw", fmt.Sprintf("version %d withdrawn; reason: %s", v.version, it.Reason)
		if it.Kind == CorrectionWithdraw {
			if _, err := tx.ExecContext(ctx, "UPDATE responses SET withdrawn = 1 WHERE seq = ?", v.seq); err != nil {
				return storageError(opCorrect, err)
			}
			results[i].Version = v.version
		} else {
			r := p.acc.Response
			if _, err := tx.ExecContext(ctx, `UPDATE responses SET province_code = ?, province_id = ?, collected_at = ?, month = ?,
				channel = ?, unit_id = ?, content_hash = ?, payload = ?, version = version + 1 WHERE seq = ?`,
				r.ProvinceCode, p.acc.Province.ID, r.CollectedAt.UnixNano(), int64(p.month), int64(r.Channel), r.UnitID,
				p.acc.Hash[:], p.payload, v.seq); err != nil {
				return storageError(opCorrect, err)
			}
			ac.after = &p.contrib
			ac.afterKeys, ac.nAfter = countedIn(sipas.CellKey{QuestionnaireID: v.questionnaire, ProvinceID: p.acc.Province.ID,
				Month: p.month, Channel: r.Channel, UnitID: r.UnitID}, sipas.Flags(v.flags))
			results[i].Version, results[i].ProvinceID = v.version+1, p.acc.Province.ID
			action, detail = "response.amend", fmt.Sprintf("version %d replaced by version %d; reason: %s", v.version, v.version+1, it.Reason)
		}
		actor := it.Actor.CredentialID
		if actor == "" {
			actor = "local"
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO audit_events (time, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
			now, actor, action, "responses/"+ids[i].String(), detail); err != nil {
			return storageError(opCorrect, err)
		}
		applied = append(applied, ac)
	}
	if len(applied) == 0 {
		return nil // nothing written; the transaction rolls back
	}
	if s.opts.BeforeCommit != nil {
		if err := s.opts.BeforeCommit(len(applied)); err != nil {
			return storageError(opCorrect, err)
		}
	}
	// As a response commit: the COMMIT and the deltas together, with
	// commitMu held, so a checker sees both or neither.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if err := tx.Commit(); err != nil {
		return storageError(opCorrect, err)
	}
	s.cellsMu.Lock()
	for i := range applied {
		ac := &applied[i]
		for _, k := range ac.beforeKeys[:ac.nBefore] {
			s.deltas.add(k, ac.q, &ac.before, -1)
		}
		for _, k := range ac.afterKeys[:ac.nAfter] {
			s.deltas.add(k, ac.q, ac.after, 1)
		}
	}
	s.dirtyCells.Store(int64(s.deltas.len()))
	s.cellsMu.Unlock()
	s.lastCSeq = lastCSeq
	return nil
}

// replayCorrections adds to the cells, through fn, what the corrections
// after cseq `after` changed in responses with seq <= upTo (the responses
// a checkpoint at (upTo, after) counts in their version as of `after`):
// minus the version each response's first such correction replaced, plus
// its current version unless withdrawn. Responses after upTo are replayed
// whole, in their current version, by replay. It returns the last cseq.
func (s *Store) replayCorrections(ctx context.Context, q queryer, upTo, after int64,
	fn func(keys []sipas.CellKey, qn *sipas.Questionnaire, c *sipas.Contribution, sign int64) error) (int64, error) {
	last := after
	if err := q.QueryRowContext(ctx, "SELECT coalesce(max(cseq), ?) FROM corrections", after).Scan(&last); err != nil {
		return 0, fmt.Errorf("replay corrections: %w", err)
	}
	if last < after {
		last = after
	}
	if last == after {
		return last, nil
	}
	// The first correction after `after` of each response up to upTo: the
	// version it replaced is the one the table counts.
	rows, err := q.QueryContext(ctx, `SELECT r.questionnaire_id, c.province_id, c.month, c.channel, c.unit_id, c.payload, c.flags,
			r.province_id, r.month, r.channel, r.unit_id, r.payload, r.flags, r.withdrawn
		FROM (SELECT response_seq, min(cseq) AS first FROM corrections WHERE cseq > ? AND response_seq <= ? GROUP BY response_seq) f
		JOIN corrections c ON c.cseq = f.first
		JOIN responses r ON r.seq = f.response_seq
		ORDER BY f.response_seq`, after, upTo)
	if err != nil {
		return 0, fmt.Errorf("replay corrections: %w", err)
	}
	defer rows.Close()
	var (
		bPayload, aPayload []byte
		answers            []uint8
		contrib            sipas.Contribution
	)
	for rows.Next() {
		var bk, ak sipas.CellKey
		var bch, bflags, ach, aflags int64
		var withdrawn bool
		if err := rows.Scan(&bk.QuestionnaireID, &bk.ProvinceID, &bk.Month, &bch, &bk.UnitID, &bPayload, &bflags,
			&ak.ProvinceID, &ak.Month, &ach, &ak.UnitID, &aPayload, &aflags, &withdrawn); err != nil {
			return 0, fmt.Errorf("replay corrections: %w", err)
		}
		bk.Channel, ak.Channel, ak.QuestionnaireID = sipas.Channel(bch), sipas.Channel(ach), bk.QuestionnaireID
		qn := s.cat.Get(bk.QuestionnaireID)
		if qn == nil {
			return 0, fmt.Errorf("replay corrections: stored response of unknown questionnaire %q", bk.QuestionnaireID)
		}
		if answers, err = payloadAnswers(qn, bPayload, answers); err != nil {
			return 0, fmt.Errorf("replay corrections: %w", err)
		}
		qn.Contribution(answers, &contrib)
		keys, nk := countedIn(bk, sipas.Flags(bflags))
		if err := fn(keys[:nk], qn, &contrib, -1); err != nil {
			return 0, err
		}
		if withdrawn {
			continue
		}
		if answers, err = payloadAnswers(qn, aPayload, answers); err != nil {
			return 0, fmt.Errorf("replay corrections: %w", err)
		}
		qn.Contribution(answers, &contrib)
		keys, nk = countedIn(ak, sipas.Flags(aflags))
		if err := fn(keys[:nk], qn, &contrib, 1); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("replay corrections: %w", err)
	}
	return last, nil
}

// correctionsSeq reads the cseq the tallies table counts up to.
func correctionsSeq(ctx context.Context, q queryer) (int64, error) {
	var v string
	if err := q.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", correctionsSeqKey).Scan(&v); err != nil {
		return 0, fmt.Errorf("read %s: %w", correctionsSeqKey, err)
	}
	seq, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", correctionsSeqKey, err)
	}
	return seq, nil
}

// ResponseVersion is one version of a response in its trail.
type ResponseVersion struct {
	Version int
	// Kind of the correction that replaced this version (0: the current
	// version).
	ReplacedBy   CorrectionKind
	ReplacedAt   time.Time
	ReplacedByID string // the credential that made the correction
	Reason       string
	ContentHash  [32]byte
}

// ResponseHistory returns the versions of a stored response, oldest first,
// and whether it is withdrawn. Answers and demographics are not returned.
func (s *Store) ResponseHistory(ctx context.Context, id string) ([]ResponseVersion, bool, error) {
	const op = "store.response_history"
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, false, &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_FORMAT", Message: "response_id is not a UUID"}
	}
	tx, err := s.reader.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", op, err)
	}
	defer tx.Rollback()
	var seq int64
	var version int
	var withdrawn bool
	var h []byte
	err = tx.QueryRowContext(ctx, "SELECT seq, version, withdrawn, content_hash FROM responses WHERE response_id = ?", uid[:]).Scan(&seq, &version, &withdrawn, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "RESPONSE_NOT_FOUND", Message: "no response with this id"}
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", op, err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT kind, version, time, credential_id, reason, content_hash FROM corrections WHERE response_seq = ? ORDER BY cseq", seq)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	var out []ResponseVersion
	for rows.Next() {
		var v ResponseVersion
		var kind, at int64
		var ch []byte
		if err := rows.Scan(&kind, &v.Version, &at, &v.ReplacedByID, &v.Reason, &ch); err != nil {
			return nil, false, fmt.Errorf("%s: %w", op, err)
		}
		v.ReplacedBy, v.ReplacedAt = CorrectionKind(kind), fromNanos(at)
		copy(v.ContentHash[:], ch)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("%s: %w", op, err)
	}
	if !withdrawn {
		cur := ResponseVersion{Version: version}
		copy(cur.ContentHash[:], h)
		out = append(out, cur)
	}
	return out, withdrawn, nil
}
