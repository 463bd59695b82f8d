package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

// maxPage bounds every List call, as in the SQLite store.
const maxPage = 1000

func pageSize(limit int) int {
	if limit <= 0 || limit > maxPage {
		return maxPage
	}
	return limit
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullTime(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	n := t.UnixNano()
	return &n
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// CreateUnit stores a new unit, visible to every replica once it returns.
// A zero CreateTime is set to now. An id already stored, regardless of case
// (a unique index on the folded id decides, not a read before the insert),
// is a KindConflict error with Reason UNIT_EXISTS.
//
// The audit event is written in the same transaction: the unit is stored
// with it or not at all.
func (s *Store) CreateUnit(ctx context.Context, u store.Unit, audit store.AuditEvent) error {
	const op = "pgstore.create_unit"
	if u.ID == "" || u.ProvinceCode == "" {
		return &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_ARGUMENT", Message: "unit id and province code are required"}
	}
	if err := store.CheckAudit(op, audit); err != nil {
		return err
	}
	if u.CreateTime.IsZero() {
		u.CreateTime = s.opts.Now()
	}
	u.CreateTime = fromNanos(u.CreateTime.UnixNano())
	var exists string
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		exists = ""
		tag, err := tx.Exec(ctx, `INSERT INTO units (unit_id, display_name, province_code, commune_code, create_time)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
			u.ID, u.DisplayName, u.ProvinceCode, u.CommuneCode, u.CreateTime.UnixNano())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return insertAudit(ctx, tx, audit, u.CreateTime)
		}
		err = tx.QueryRow(ctx, "SELECT unit_id FROM units WHERE lower(unit_id) = lower($1) LIMIT 1", u.ID).Scan(&exists)
		if errors.Is(err, pgx.ErrNoRows) {
			exists = u.ID
			return nil
		}
		return err
	})
	if err != nil {
		return dbError(op, err)
	}
	if exists != "" {
		msg := fmt.Sprintf("unit %q already exists", u.ID)
		if exists != u.ID {
			msg = fmt.Sprintf("unit %q already exists as %q (unit ids are unique regardless of case)", u.ID, exists)
		}
		return &sipas.Error{Kind: sipas.KindConflict, Op: op, Reason: "UNIT_EXISTS", Message: msg}
	}
	s.units.Store(u.ID, u)
	return nil
}

// Unit returns the registered unit with exactly this id: from this
// replica's registry, else from the database (a unit created through
// another replica), for checking the unit of every uploaded row. Units are
// never changed or removed, so a unit once found stays valid; a unit not
// found is asked for again next time. A database error reads as not found
// (logged).
func (s *Store) Unit(id string) (store.Unit, bool) {
	if u, ok := s.units.Load(id); ok {
		return u.(store.Unit), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.AcquireTimeout+time.Second)
	defer cancel()
	u, err := s.GetUnit(ctx, id)
	if err != nil {
		if sipas.KindOf(err) != sipas.KindNotFound {
			s.opts.Logger.Error("pgstore: reading a unit failed", "err", err)
		}
		return store.Unit{}, false
	}
	s.units.Store(u.ID, *u)
	return *u, true
}

// UnitProvince returns the province code a unit is registered in, false
// for an unknown unit (sipas.UnitDirectory).
func (s *Store) UnitProvince(id string) (string, bool) {
	u, ok := s.Unit(id)
	return u.ProvinceCode, ok
}

// loadUnits fills the registry at Open.
func (s *Store) loadUnits(ctx context.Context) error {
	us, err := s.allUnits(ctx)
	for _, u := range us {
		s.units.Store(u.ID, u)
	}
	return err
}

func (s *Store) allUnits(ctx context.Context) ([]store.Unit, error) {
	var us []store.Unit
	err := s.read(ctx, "pgstore.load_units", func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, "SELECT "+unitColumns+" FROM units")
		if err != nil {
			return err
		}
		us, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Unit, error) { return scanUnit(r) })
		return err
	})
	return us, err
}

const unitColumns = "unit_id, display_name, province_code, commune_code, create_time"

func scanUnit(sc pgx.Row) (store.Unit, error) {
	var u store.Unit
	var ct int64
	err := sc.Scan(&u.ID, &u.DisplayName, &u.ProvinceCode, &u.CommuneCode, &ct)
	u.CreateTime = fromNanos(ct)
	return u, err
}

// GetUnit returns the unit with the given id, or a KindNotFound error.
func (s *Store) GetUnit(ctx context.Context, id string) (*store.Unit, error) {
	const op = "pgstore.get_unit"
	var u store.Unit
	err := s.read(ctx, op, func(c *pgxpool.Conn) error {
		var err error
		u, err = scanUnit(c.QueryRow(ctx, "SELECT "+unitColumns+" FROM units WHERE unit_id = $1", id))
		if errors.Is(err, pgx.ErrNoRows) {
			return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "UNIT_NOT_FOUND", Message: fmt.Sprintf("no unit %q", id)}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// ListUnits returns units in id order after afterID, only those of
// provinceCode unless it is "", at most limit (≤ 1000; 0 means 1000).
func (s *Store) ListUnits(ctx context.Context, provinceCode, afterID string, limit int) ([]store.Unit, error) {
	var us []store.Unit
	err := s.read(ctx, "pgstore.list_units", func(c *pgxpool.Conn) error {
		// Ids compare byte-wise (COLLATE "C"), as in SQLite, so that page
		// tokens mean the same on both backends.
		rows, err := c.Query(ctx, "SELECT "+unitColumns+` FROM units
			WHERE ($1 = '' OR province_code = $1) AND unit_id > $2 COLLATE "C" ORDER BY unit_id COLLATE "C" LIMIT $3`,
			provinceCode, afterID, pageSize(limit))
		if err != nil {
			return err
		}
		us, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Unit, error) { return scanUnit(r) })
		return err
	})
	return us, err
}

const credentialColumns = "credential_id, token_hash, role, unit_id, provinces, all_provinces, description, create_time, expire_time, revoke_time"

func scanCredential(sc pgx.Row) (*store.Credential, error) {
	var (
		c         store.Credential
		unit      *string
		provinces string
		role      int32
		created   int64
		exp, rev  *int64
	)
	if err := sc.Scan(&c.ID, &c.TokenHash, &role, &unit, &provinces, &c.AllProvinces, &c.Description, &created, &exp, &rev); err != nil {
		return nil, err
	}
	c.Role = sipas.CredentialRole(role)
	if unit != nil {
		c.UnitID = *unit
	}
	if provinces != "" {
		c.Provinces = strings.Split(provinces, ",")
	}
	c.CreateTime = fromNanos(created)
	if exp != nil {
		t := fromNanos(*exp)
		c.ExpireTime = &t
	}
	if rev != nil {
		t := fromNanos(*rev)
		c.RevokeTime = &t
	}
	return &c, nil
}

// CreateCredential stores a new credential and returns it as stored. An
// empty ID is set to a new random id, a zero CreateTime to now. An existing
// id or token hash is a KindConflict error (CREDENTIAL_EXISTS); a UnitID that
// names no unit is a KindNotFound error (UNIT_NOT_FOUND). The audit event
// (its Target, when empty, becomes "credentials/{id}") is written in the
// same transaction: the credential is stored with it or not at all.
func (s *Store) CreateCredential(ctx context.Context, c store.Credential, audit store.AuditEvent) (*store.Credential, error) {
	const op = "pgstore.create_credential"
	if err := store.PrepareCredential(op, &c, &audit, s.opts.Now()); err != nil {
		return nil, err
	}
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO credentials ("+credentialColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			c.ID, c.TokenHash, int32(c.Role), nullString(c.UnitID), strings.Join(c.Provinces, ","), c.AllProvinces, c.Description,
			c.CreateTime.UnixNano(), nullTime(c.ExpireTime), nullTime(c.RevokeTime))
		switch pgCode(err) {
		case "23505": // unique_violation
			return &sipas.Error{Kind: sipas.KindConflict, Op: op, Reason: "CREDENTIAL_EXISTS", Message: "a credential with this id or token already exists"}
		case "23503": // foreign_key_violation
			return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "UNIT_NOT_FOUND", Message: fmt.Sprintf("no unit %q", c.UnitID)}
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, c.CreateTime)
	})
	if err != nil {
		return nil, dbError(op, err)
	}
	c.CreateTime = fromNanos(c.CreateTime.UnixNano())
	return &c, nil
}

// CreateFirstCredential stores c only when no credential exists yet, and
// returns it as stored, or nil when another replica created the first
// credential first: replicas started together on an empty database create
// one first admin between them (the check and the insert hold a lock on
// the credentials table). The audit event is written with it, in the same
// transaction.
func (s *Store) CreateFirstCredential(ctx context.Context, c store.Credential, audit store.AuditEvent) (*store.Credential, error) {
	const op = "pgstore.create_first_credential"
	if err := store.CheckAudit(op, audit); err != nil {
		return nil, err
	}
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.CreateTime.IsZero() {
		c.CreateTime = s.opts.Now()
	}
	if audit.Target == "" {
		audit.Target = "credentials/" + c.ID
	}
	created := false
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE credentials IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "INSERT INTO credentials ("+credentialColumns+`)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE NOT EXISTS (SELECT 1 FROM credentials)`,
			c.ID, c.TokenHash, int32(c.Role), nullString(c.UnitID), strings.Join(c.Provinces, ","), c.AllProvinces, c.Description,
			c.CreateTime.UnixNano(), nullTime(c.ExpireTime), nullTime(c.RevokeTime))
		if created = tag.RowsAffected() == 1; err != nil || !created {
			return err
		}
		return insertAudit(ctx, tx, audit, c.CreateTime)
	})
	if err != nil {
		return nil, dbError(op, err)
	}
	if !created {
		return nil, nil
	}
	c.CreateTime = fromNanos(c.CreateTime.UnixNano())
	return &c, nil
}

// CredentialByTokenHash returns the credential with the given token hash,
// or a KindNotFound error. It reads the database every time: the server's
// short-lived cache in front of it bounds how long a revocation made
// through another replica goes unseen.
func (s *Store) CredentialByTokenHash(ctx context.Context, hash []byte) (*store.Credential, error) {
	const op = "pgstore.credential_by_token"
	var c *store.Credential
	err := s.read(ctx, op, func(conn *pgxpool.Conn) error {
		var err error
		c, err = scanCredential(conn.QueryRow(ctx, "SELECT "+credentialColumns+" FROM credentials WHERE token_hash = $1", hash))
		if errors.Is(err, pgx.ErrNoRows) {
			return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "CREDENTIAL_NOT_FOUND", Message: "no such credential"}
		}
		return err
	})
	return c, err
}

// GetCredential returns the credential with the given id, or a KindNotFound
// error.
func (s *Store) GetCredential(ctx context.Context, id string) (*store.Credential, error) {
	const op = "pgstore.get_credential"
	var c *store.Credential
	err := s.read(ctx, op, func(conn *pgxpool.Conn) error {
		var err error
		c, err = scanCredential(conn.QueryRow(ctx, "SELECT "+credentialColumns+" FROM credentials WHERE credential_id = $1", id))
		if errors.Is(err, pgx.ErrNoRows) {
			return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "CREDENTIAL_NOT_FOUND", Message: fmt.Sprintf("no credential %q", id)}
		}
		return err
	})
	return c, err
}

// ListCredentials returns credentials in id order after afterID, at most
// limit (≤ 1000; 0 means 1000). Revoked and expired ones only if
// showInactive.
func (s *Store) ListCredentials(ctx context.Context, afterID string, limit int, showInactive bool) ([]*store.Credential, error) {
	var cs []*store.Credential
	err := s.read(ctx, "pgstore.list_credentials", func(conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, "SELECT "+credentialColumns+` FROM credentials
			WHERE credential_id > $1 COLLATE "C" AND ($2 OR (revoke_time IS NULL AND (expire_time IS NULL OR expire_time > $3)))
			ORDER BY credential_id COLLATE "C" LIMIT $4`,
			afterID, showInactive, s.opts.Now().UnixNano(), pageSize(limit))
		if err != nil {
			return err
		}
		cs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Credential, error) { return scanCredential(r) })
		return err
	})
	return cs, err
}

// RevokeCredential marks the credential revoked at time at. Revoking again
// keeps the first revocation time. An unknown id is a KindNotFound error.
// The audit event (Target, when empty, "credentials/{id}") is written in
// the same transaction.
func (s *Store) RevokeCredential(ctx context.Context, id string, at time.Time, audit store.AuditEvent) error {
	const op = "pgstore.revoke_credential"
	if err := store.CheckAudit(op, audit); err != nil {
		return err
	}
	if audit.Target == "" {
		audit.Target = "credentials/" + id
	}
	var n int64
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE credentials SET revoke_time = coalesce(revoke_time, $1) WHERE credential_id = $2", at.UnixNano(), id)
		if n = tag.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return insertAudit(ctx, tx, audit, at)
	})
	if err != nil {
		return dbError(op, err)
	}
	if n == 0 {
		return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "CREDENTIAL_NOT_FOUND", Message: fmt.Sprintf("no credential %q", id)}
	}
	return nil
}

// CountCredentials returns the number of stored credentials, active or not.
func (s *Store) CountCredentials(ctx context.Context) (int64, error) {
	var n int64
	err := s.read(ctx, "pgstore.count_credentials", func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, "SELECT count(*) FROM credentials").Scan(&n)
	})
	return n, err
}

// auditInsert is the statement that appends one audit event.
const auditInsert = "INSERT INTO audit_events (time, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)"

// insertAudit appends e in tx, timed now when e.Time is zero.
func insertAudit(ctx context.Context, tx pgx.Tx, e store.AuditEvent, now time.Time) error {
	if e.Time.IsZero() {
		e.Time = now
	}
	_, err := tx.Exec(ctx, auditInsert, e.Time.UnixNano(), e.Actor, e.Action, e.Target, e.Detail)
	return err
}

// AppendAudit appends an event to the audit log, timed now.
func (s *Store) AppendAudit(ctx context.Context, actor, action, target, detail string) error {
	const op = "pgstore.append_audit"
	now := s.opts.Now().UnixNano()
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, auditInsert, now, actor, action, target, detail)
		return err
	})
	if err != nil {
		return dbError(op, err)
	}
	return nil
}

// ListAudit returns audit events newest first, with Seq < beforeSeq (0: from
// the newest), at most limit (≤ 1000; 0 means 1000).
func (s *Store) ListAudit(ctx context.Context, beforeSeq int64, limit int) ([]store.AuditEvent, error) {
	if beforeSeq <= 0 {
		beforeSeq = 1<<63 - 1
	}
	var es []store.AuditEvent
	err := s.read(ctx, "pgstore.list_audit", func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, "SELECT seq, time, actor, action, target, detail FROM audit_events WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
			beforeSeq, pageSize(limit))
		if err != nil {
			return err
		}
		es, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEvent, error) {
			var e store.AuditEvent
			var t int64
			err := r.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Target, &e.Detail)
			e.Time = fromNanos(t)
			return e, err
		})
		return err
	})
	return es, err
}
