package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sipas-vn/sipas"
)

// Closed periods: an administrator freezes the figures of a period (a year,
// quarter or month, Vietnam time) once they are published. From then on the
// writer refuses, in its own transaction, every change to a response
// collected in it: a new response (a resend of one already stored is still
// a duplicate), an amendment (of a response in it, or moving one into it)
// and a withdrawal. The closed months are kept in memory by the writer
// goroutine, which alone changes them, so a check costs a comparison per
// response and no close can slip between a check and a commit. A period is
// reopened only by an administrator with a reason; both are audited.

// ClosedPeriod is a period whose figures are frozen.
type ClosedPeriod struct {
	Period    string // "2025", "2025-Q1", "2025-03"
	FromMonth int    // year*100+month
	ToMonth   int
	CloseTime time.Time
	ClosedBy  string
	Reason    string
}

// closedRange is a closed period in the writer's memory.
type closedRange struct {
	period   string
	from, to int
}

// closedPeriodOf returns the closed period holding month m ("" when m is
// open). Writer goroutine only (or Open).
func (s *Store) closedPeriodOf(m int) string {
	for _, c := range s.closedPeriods {
		if m >= c.from && m <= c.to {
			return c.period
		}
	}
	return ""
}

// periodClosedError refuses a change to a closed period.
func periodClosedError(op, period string) error {
	return &sipas.Error{Kind: sipas.KindFailedPrecondition, Op: op, Reason: "PERIOD_CLOSED",
		Message: "the figures of period " + period + " are closed: no response of it may be added, amended or withdrawn " +
			"(an administrator can reopen it: sipas admin periods reopen " + period + " --reason ...)"}
}

// loadClosedPeriods reads the closed periods into memory (in Open).
func (s *Store) loadClosedPeriods(ctx context.Context) error {
	ps, err := s.ListClosedPeriods(ctx)
	if err != nil {
		return err
	}
	s.closedPeriods = s.closedPeriods[:0]
	for _, p := range ps {
		s.closedPeriods = append(s.closedPeriods, closedRange{period: p.Period, from: p.FromMonth, to: p.ToMonth})
	}
	return nil
}

// ListClosedPeriods returns the closed periods, in order of their first month.
func (s *Store) ListClosedPeriods(ctx context.Context) ([]ClosedPeriod, error) {
	rows, err := s.reader.QueryContext(ctx, "SELECT period, from_month, to_month, close_time, closed_by, reason FROM closed_periods ORDER BY from_month, to_month")
	if err != nil {
		return nil, fmt.Errorf("store.list_closed_periods: %w", err)
	}
	defer rows.Close()
	var out []ClosedPeriod
	for rows.Next() {
		var p ClosedPeriod
		var at int64
		if err := rows.Scan(&p.Period, &p.FromMonth, &p.ToMonth, &at, &p.ClosedBy, &p.Reason); err != nil {
			return nil, fmt.Errorf("store.list_closed_periods: %w", err)
		}
		p.CloseTime = fromNanos(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ClosePeriod freezes period p, recording who and why in the audit log.
// Closing a period already closed changes nothing and is not an error
// (already reports it).
func (s *Store) ClosePeriod(ctx context.Context, p sipas.Period, actor, reason string) (already bool, err error) {
	const op = "store.close_period"
	if err := p.Validate(); err != nil {
		return false, err
	}
	name := p.String()
	from, to := p.Months()
	err = s.doConn(ctx, op, func(ctx context.Context, c *sql.Conn) error {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		now := s.opts.Now().UnixNano()
		res, err := tx.ExecContext(ctx, `INSERT INTO closed_periods (period, from_month, to_month, close_time, closed_by, reason)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (period) DO NOTHING`, name, from, to, now, actor, reason)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		already = n == 0
		if already {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO audit_events (time, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
			now, actor, "period.close", "periods/"+name, "reason: "+reason); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		s.closedPeriods = append(s.closedPeriods, closedRange{period: name, from: from, to: to})
		return nil
	})
	if err != nil {
		return false, writeError(op, err)
	}
	return already, nil
}

// ReopenPeriod lifts the freeze of period p (as closed: the same string),
// with a reason for the audit log. A period that is not closed is a
// KindNotFound error.
func (s *Store) ReopenPeriod(ctx context.Context, p sipas.Period, actor, reason string) error {
	const op = "store.reopen_period"
	if err := p.Validate(); err != nil {
		return err
	}
	name := p.String()
	notClosed := false
	err := s.doConn(ctx, op, func(ctx context.Context, c *sql.Conn) error {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		res, err := tx.ExecContext(ctx, "DELETE FROM closed_periods WHERE period = ?", name)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if notClosed = n == 0; notClosed {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO audit_events (time, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
			s.opts.Now().UnixNano(), actor, "period.reopen", "periods/"+name, "reason: "+reason); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		for i, c := range s.closedPeriods {
			if c.period == name {
				s.closedPeriods = append(s.closedPeriods[:i], s.closedPeriods[i+1:]...)
				break
			}
		}
		return nil
	})
	if err != nil {
		return writeError(op, err)
	}
	if notClosed {
		return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "PERIOD_NOT_CLOSED", Message: "period " + name + " is not closed"}
	}
	return nil
}
