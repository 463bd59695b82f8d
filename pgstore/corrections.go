package pgstore

import (
	"context"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

// Corrections (withdrawal, amendment) and closed periods, issue 16 item 5,
// are not yet available on PostgreSQL: the calls that would change them
// refuse with a KindFailedPrecondition error that says so, and the reads
// report what is true on this backend (no response has more than its first
// version, no period is closed).

// ErrCorrectionsUnsupported is the refusal of Correct, ClosePeriod and
// ReopenPeriod.
var ErrCorrectionsUnsupported = &sipas.Error{Kind: sipas.KindFailedPrecondition, Op: "pgstore.correct", Reason: "NOT_ON_POSTGRES",
	Message: "withdrawal, amendment and closed periods are not available with --database postgres:// yet (docs/operations.md, \"Several replicas on PostgreSQL\")"}

// Correct refuses: see ErrCorrectionsUnsupported.
func (s *Store) Correct(ctx context.Context, items []store.Correction) ([]store.CorrectionResult, error) {
	return nil, ErrCorrectionsUnsupported
}

// ClosePeriod refuses: see ErrCorrectionsUnsupported.
func (s *Store) ClosePeriod(ctx context.Context, p sipas.Period, actor, reason string) (bool, error) {
	return false, ErrCorrectionsUnsupported
}

// ReopenPeriod refuses: see ErrCorrectionsUnsupported.
func (s *Store) ReopenPeriod(ctx context.Context, p sipas.Period, actor, reason string) error {
	return ErrCorrectionsUnsupported
}

// ListClosedPeriods returns none: no period can be closed on this backend.
func (s *Store) ListClosedPeriods(ctx context.Context) ([]store.ClosedPeriod, error) {
	return nil, nil
}

// ResponseHistory returns the one version a stored response has on this
// backend (it cannot be amended or withdrawn here), or KindNotFound.
func (s *Store) ResponseHistory(ctx context.Context, id string) ([]store.ResponseVersion, bool, error) {
	_, _, hash, err := s.GetResponse(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return []store.ResponseVersion{{Version: 1, ContentHash: hash}}, false, nil
}
