package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/sipas-vn/sipas"
)

// Unit is the domain unit: the store speaks sipas.Unit.
type Unit = sipas.Unit

// Credential is an issued credential as stored: the domain credential and
// the hash of its token (never the token itself).
type Credential struct {
	sipas.Credential
	TokenHash []byte
}

// AuditEvent is the domain audit event: the store speaks sipas.AuditEvent.
type AuditEvent = sipas.AuditEvent

// auditInsert is the statement that appends one audit event.
const auditInsert = "INSERT INTO audit_events (time, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)"

// insertAudit appends e in tx, timed now when e.Time is zero.
func insertAudit(ctx context.Context, tx *sql.Tx, e AuditEvent, now time.Time) error {
	if e.Time.IsZero() {
		e.Time = now
	}
	_, err := tx.ExecContext(ctx, auditInsert, nanos(e.Time), e.Actor, e.Action, e.Target, e.Detail)
	return err
}

// maxPage bounds every List call.
const maxPage = 1000

func pageSize(limit int) int {
	if limit <= 0 || limit > maxPage {
		return maxPage
	}
	return limit
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func isConstraint(err error, ext sqlite3.ErrNoExtended) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == ext
}

// CreateUnit stores a new unit. A zero CreateTime is set to now. An id that
// exists, also in another case ("HN-1" against "hn-1"), is a KindConflict
// error with Reason UNIT_EXISTS. The unit is in the in-memory registry
// (Unit, UnitProvince) once CreateUnit returns. The audit event is written
// in the same transaction: the unit is stored with it or not at all.
func (s *Store) CreateUnit(ctx context.Context, u Unit, audit AuditEvent) error {
	const op = "store.create_unit"
	if u.ID == "" || u.ProvinceCode == "" {
		return &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_ARGUMENT", Message: "unit id and province code are required"}
	}
	if err := CheckAudit(op, audit); err != nil {
		return err
	}
	if u.CreateTime.IsZero() {
		u.CreateTime = s.opts.Now()
	}
	u.CreateTime = fromNanos(nanos(u.CreateTime))
	exists := ""
	// The registry learns the unit on the writer goroutine right after the
	// commit, so it never misses a stored unit, even when ctx ends first.
	err := s.doConn(ctx, op, func(ctx context.Context, c *sql.Conn) error {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		exists = ""
		// Ids are unique regardless of case: look for the folded id in the
		// same IMMEDIATE transaction, so no other write comes in between.
		err = tx.QueryRowContext(ctx, "SELECT unit_id FROM units WHERE unit_id = ? COLLATE NOCASE LIMIT 1", u.ID).Scan(&exists)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO units (unit_id, display_name, province_code, commune_code, create_time)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (unit_id) DO NOTHING`,
			u.ID, u.DisplayName, u.ProvinceCode, u.CommuneCode, nanos(u.CreateTime))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			exists = u.ID
			return err
		}
		if err := insertAudit(ctx, tx, audit, s.opts.Now()); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		s.units.put(u)
		return nil
	})
	if err != nil {
		return writeError(op, err)
	}
	if exists != "" {
		msg := fmt.Sprintf("unit %q already exists", u.ID)
		if exists != u.ID {
			msg = fmt.Sprintf("unit %q already exists as %q (unit ids are unique regardless of case)", u.ID, exists)
		}
		return &sipas.Error{Kind: sipas.KindConflict, Op: op, Reason: "UNIT_EXISTS", Message: msg}
	}
	return nil
}

// writeError classifies the error of a single write request: domain errors
// pass through, anything else is indeterminate storage trouble.
func writeError(op string, err error) error {
	var e *sipas.Error
	if errors.As(err, &e) {
		return err
	}
	return storageError(op, err)
}

const unitColumns = "unit_id, display_name, province_code, commune_code, create_time"

func scanUnit(sc interface{ Scan(...any) error }) (Unit, error) {
	var u Unit
	var ct int64
	err := sc.Scan(&u.ID, &u.DisplayName, &u.ProvinceCode, &u.CommuneCode, &ct)
	u.CreateTime = fromNanos(ct)
	return u, err
}

// GetUnit returns the unit with the given id, or a KindNotFound error.
func (s *Store) GetUnit(ctx context.Context, id string) (*Unit, error) {
	const op = "store.get_unit"
	u, err := scanUnit(s.reader.QueryRowContext(ctx, "SELECT "+unitColumns+" FROM units WHERE unit_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "UNIT_NOT_FOUND", Message: fmt.Sprintf("no unit %q", id)}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &u, nil
}

// ListUnits returns units in id order after afterID (a page token; "" for
// the first page), only those of provinceCode unless it is "", at most limit
// (≤ 1000; 0 means 1000).
func (s *Store) ListUnits(ctx context.Context, provinceCode, afterID string, limit int) ([]Unit, error) {
	const op = "store.list_units"
	var rows *sql.Rows
	var err error
	if provinceCode == "" {
		rows, err = s.reader.QueryContext(ctx, "SELECT "+unitColumns+" FROM units WHERE unit_id > ? ORDER BY unit_id LIMIT ?",
			afterID, pageSize(limit))
	} else {
		rows, err = s.reader.QueryContext(ctx, "SELECT "+unitColumns+" FROM units WHERE province_code = ? AND unit_id > ? ORDER BY unit_id LIMIT ?",
			provinceCode, afterID, pageSize(limit))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	var us []Unit
	for rows.Next() {
		u, err := scanUnit(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return us, nil
}

const credentialColumns = "credential_id, token_hash, role, unit_id, provinces, all_provinces, description, create_time, expire_time, revoke_time"

func scanCredential(sc interface{ Scan(...any) error }) (*Credential, error) {
	var (
		c         Credential
		unit      sql.NullString
		provinces string
		created   int64
		exp, rev  sql.NullInt64
	)
	if err := sc.Scan(&c.ID, &c.TokenHash, &c.Role, &unit, &provinces, &c.AllProvinces, &c.Description, &created, &exp, &rev); err != nil {
		return nil, err
	}
	c.UnitID = unit.String
	if provinces != "" {
		c.Provinces = strings.Split(provinces, ",")
	}
	c.CreateTime = fromNanos(created)
	if exp.Valid {
		t := fromNanos(exp.Int64)
		c.ExpireTime = &t
	}
	if rev.Valid {
		t := fromNanos(rev.Int64)
		c.RevokeTime = &t
	}
	return &c, nil
}

// CreateCredential stores a new credential and returns it as stored. An
// empty ID is set to a new random id, a zero CreateTime to now. An existing
// id or token hash is a KindConflict error (CREDENTIAL_EXISTS); a UnitID that
// names no unit is a KindNotFound error (UNIT_NOT_FOUND). The audit event
// (its Target, when empty, becomes "credentials/{id}") is written in the same
// transaction: the credential is stored with it or not at all.
func (s *Store) CreateCredential(ctx context.Context, c Credential, audit AuditEvent) (*Credential, error) {
	const op = "store.create_credential"
	if err := PrepareCredential(op, &c, &audit, s.opts.Now()); err != nil {
		return nil, err
	}
	err := s.do(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO credentials ("+credentialColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			c.ID, c.TokenHash, c.Role, nullString(c.UnitID), strings.Join(c.Provinces, ","), c.AllProvinces, c.Description,
			nanos(c.CreateTime), nullTime(c.ExpireTime), nullTime(c.RevokeTime))
		switch {
		case isConstraint(err, sqlite3.ErrConstraintPrimaryKey), isConstraint(err, sqlite3.ErrConstraintUnique):
			return &sipas.Error{Kind: sipas.KindConflict, Op: op, Reason: "CREDENTIAL_EXISTS", Message: "a credential with this id or token already exists"}
		case isConstraint(err, sqlite3.ErrConstraintForeignKey):
			return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "UNIT_NOT_FOUND", Message: fmt.Sprintf("no unit %q", c.UnitID)}
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, c.CreateTime)
	})
	if err != nil {
		return nil, writeError(op, err)
	}
	c.CreateTime = fromNanos(nanos(c.CreateTime))
	return &c, nil
}

// CredentialByTokenHash returns the credential with the given token hash, or
// a KindNotFound error. It is the authentication hot path: one indexed read
// on the read-only pool with a prepared statement. The caller checks
// Active.
func (s *Store) CredentialByTokenHash(ctx context.Context, hash []byte) (*Credential, error) {
	const op = "store.credential_by_token"
	c, err := scanCredential(s.credByHash.QueryRowContext(ctx, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "CREDENTIAL_NOT_FOUND", Message: "no such credential"}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return c, nil
}

// ListCredentials returns credentials in id order after afterID, at most
// limit (≤ 1000; 0 means 1000). Revoked and expired ones only if
// showInactive.
func (s *Store) ListCredentials(ctx context.Context, afterID string, limit int, showInactive bool) ([]*Credential, error) {
	const op = "store.list_credentials"
	q := "SELECT " + credentialColumns + " FROM credentials WHERE credential_id > ?"
	args := []any{afterID}
	if !showInactive {
		q += " AND revoke_time IS NULL AND (expire_time IS NULL OR expire_time > ?)"
		args = append(args, nanos(s.opts.Now()))
	}
	q += " ORDER BY credential_id LIMIT ?"
	args = append(args, pageSize(limit))
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	var cs []*Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return cs, nil
}

// RevokeCredential marks the credential revoked at time at. Revoking again
// keeps the first revocation time. An unknown id is a KindNotFound error.
// The audit event (Target, when empty, "credentials/{id}") is written in the
// same transaction.
func (s *Store) RevokeCredential(ctx context.Context, id string, at time.Time, audit AuditEvent) error {
	const op = "store.revoke_credential"
	if err := CheckAudit(op, audit); err != nil {
		return err
	}
	if audit.Target == "" {
		audit.Target = "credentials/" + id
	}
	found := true
	err := s.do(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE credentials SET revoke_time = coalesce(revoke_time, ?) WHERE credential_id = ?", nanos(at), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if found = n > 0; err != nil || !found {
			return err
		}
		return insertAudit(ctx, tx, audit, at)
	})
	if err != nil {
		return writeError(op, err)
	}
	if !found {
		return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "CREDENTIAL_NOT_FOUND", Message: fmt.Sprintf("no credential %q", id)}
	}
	return nil
}

// CountCredentials returns the number of stored credentials, active or not
// (zero means a fresh installation that needs its first admin credential).
func (s *Store) CountCredentials(ctx context.Context) (int64, error) {
	var n int64
	if err := s.reader.QueryRowContext(ctx, "SELECT count(*) FROM credentials").Scan(&n); err != nil {
		return 0, fmt.Errorf("store.count_credentials: %w", err)
	}
	return n, nil
}

// AppendAudit appends an event to the audit log, timed now. detail must not
// hold tokens or respondent data.
func (s *Store) AppendAudit(ctx context.Context, actor, action, target, detail string) error {
	const op = "store.append_audit"
	now := nanos(s.opts.Now())
	err := s.do(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, auditInsert, now, actor, action, target, detail)
		return err
	})
	if err != nil {
		return writeError(op, err)
	}
	return nil
}

// ListAudit returns audit events newest first, with Seq < beforeSeq (0: from
// the newest), at most limit (≤ 1000; 0 means 1000).
func (s *Store) ListAudit(ctx context.Context, beforeSeq int64, limit int) ([]AuditEvent, error) {
	const op = "store.list_audit"
	if beforeSeq <= 0 {
		beforeSeq = 1<<63 - 1
	}
	rows, err := s.reader.QueryContext(ctx, "SELECT seq, time, actor, action, target, detail FROM audit_events WHERE seq < ? ORDER BY seq DESC LIMIT ?",
		beforeSeq, pageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	var es []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var t int64
		if err := rows.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		e.Time = fromNanos(t)
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return es, nil
}

// GetCredential returns the credential with the given id, or a
// KindNotFound error.
func (s *Store) GetCredential(ctx context.Context, id string) (*Credential, error) {
	const op = "store.get_credential"
	c, err := scanCredential(s.reader.QueryRowContext(ctx, "SELECT "+credentialColumns+" FROM credentials WHERE credential_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "CREDENTIAL_NOT_FOUND", Message: fmt.Sprintf("no credential %q", id)}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return c, nil
}
