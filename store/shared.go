package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
)

// This file holds what another backend (package pgstore) shares with this
// one, so that both file a response the same way.

// CountedIn returns the cells a response filed under cell k with the given
// flags is counted in: k and, when k is a unit's cell, its province cell;
// none for a flagged response.
func CountedIn(k sipas.CellKey, flags sipas.Flags) []sipas.CellKey {
	keys, n := countedIn(k, flags)
	return keys[:n]
}

// DecodePayload fills r's demographics and answers from a stored payload
// (EncodePayload) of questionnaire q.
func DecodePayload(q *sipas.Questionnaire, b []byte, r *sipas.Response) error {
	return decodePayload(q, b, r)
}

// DiffCells lists the differences between two sets of aggregate cells,
// named an and bn in the messages.
func DiffCells(an string, a map[sipas.CellKey]*sipas.Tally, bn string, b map[sipas.CellKey]*sipas.Tally) []string {
	return diffCells(an, a, bn, b)
}

// StorageError classifies a failed write as indeterminate storage trouble:
// a KindUnavailable error (retrying is safe) wrapping err.
func StorageError(op string, err error) *sipas.Error { return storageError(op, err) }

// BackupDir returns the directory of the database file: backups are made
// there first, on the same file system.
func (s *Store) BackupDir() string { return filepath.Dir(s.path) }

// QuestionnaireSource is what a store needs of a *sipas.Catalog.
type QuestionnaireSource interface {
	Get(id string) *sipas.Questionnaire
}

// CheckAccepted checks what a store itself needs of an accepted response
// before it files it: made by sipas.Validate, with a UUID, of a
// questionnaire of cat.
func CheckAccepted(cat QuestionnaireSource, acc *sipas.Accepted) error {
	if acc == nil || acc.Response == nil || acc.Province == nil || acc.Province.ID == "" ||
		acc.Questionnaire == nil || len(acc.Answers) != len(acc.Questionnaire.Items) {
		return &sipas.Error{Kind: sipas.KindInvalid, Op: opInsert, Reason: "INVALID_ARGUMENT",
			Message: "incomplete accepted response (not made by sipas.Validate)"}
	}
	r := acc.Response
	if acc.ID == uuid.Nil {
		return &sipas.Error{Kind: sipas.KindInvalid, Op: opInsert, Reason: "INVALID_FORMAT",
			Message:    "response_id is not a UUID",
			Violations: []sipas.Violation{{Field: "response_id", Reason: "INVALID_FORMAT", Description: "must be a non-nil UUID"}}}
	}
	q := cat.Get(r.QuestionnaireID)
	if q == nil || q != acc.Questionnaire {
		return &sipas.Error{Kind: sipas.KindFailedPrecondition, Op: opInsert, Reason: "UNKNOWN_QUESTIONNAIRE",
			Message: fmt.Sprintf("unknown questionnaire %q", r.QuestionnaireID)}
	}
	return nil
}

// SameLegacyHash reports whether stored is the version-1 content hash of
// acc: responses stored before version 2 of the hash carry it, and a resend
// of one of them is a duplicate, not a conflict.
func SameLegacyHash(acc *sipas.Accepted, stored []byte) bool {
	legacy := sipas.LegacyContentHash(acc)
	return bytes.Equal(stored, legacy[:])
}

// PeriodClosedError refuses a change to a response of closed period
// period (FAILED_PRECONDITION, PERIOD_CLOSED).
func PeriodClosedError(op, period string) error { return periodClosedError(op, period) }

// PayloadAnswers returns the packed answers (code + 1 by item position) of
// a stored payload of questionnaire q, reusing dst.
func PayloadAnswers(q *sipas.Questionnaire, b []byte, dst []uint8) ([]uint8, error) {
	return payloadAnswers(q, b, dst)
}

// CheckAudit refuses an audit event without actor or action: every change
// an admin makes is written with its event, in the same transaction.
func CheckAudit(op string, e AuditEvent) error {
	if e.Action == "" || e.Actor == "" {
		return &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_ARGUMENT", Message: "an audit event with actor and action is required"}
	}
	return nil
}

// PrepareCredential checks a credential and its audit event before either
// store writes them, and fills in what the store decides: a new id, the
// creation time (now) and the event's target "credentials/{id}".
func PrepareCredential(op string, c *Credential, audit *AuditEvent, now time.Time) error {
	if len(c.TokenHash) == 0 {
		return &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_ARGUMENT", Message: "token hash is required"}
	}
	if err := CheckAudit(op, *audit); err != nil {
		return err
	}
	for _, p := range c.Provinces {
		if p == "" || strings.Contains(p, ",") {
			return &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_ARGUMENT", Message: fmt.Sprintf("bad province code %q", p)}
		}
	}
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.CreateTime.IsZero() {
		c.CreateTime = now
	}
	if audit.Target == "" {
		audit.Target = "credentials/" + c.ID
	}
	return nil
}

// DisagreementError is the error of an aggregates check that found diffs:
// the first ten, sorted, and how many more.
func DisagreementError(op string, diffs []string) error {
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	more := ""
	if len(diffs) > 10 {
		more = fmt.Sprintf(" (and %d more)", len(diffs)-10)
		diffs = diffs[:10]
	}
	return fmt.Errorf("%s: aggregates disagree in %s%s", op, strings.Join(diffs, "; "), more)
}
