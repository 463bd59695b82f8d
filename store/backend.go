package store

import (
	"context"
	"time"

	"github.com/sipas-vn/sipas"
)

// Backend is what the server and sipasd need of a store: the contract both
// the SQLite Store of this package and the PostgreSQL store (package
// pgstore) implement, and that the shared test suite (package storetest)
// checks on each. It speaks the domain's Unit, Credential (with its token
// hash here) and AuditEvent, and InsertResult and WriterStats of this
// package. Every change to units and credentials takes its audit event and
// writes both in one transaction.
type Backend interface {
	// EachCell reads the aggregate cells (sipas.CellSource).
	sipas.CellSource

	// Insert stores validated responses exactly once: the outcome of each
	// item is in the result of the same index (inserted, Duplicate, or Err
	// with a KindConflict for another response under a stored id). A
	// non-nil error is a KindUnavailable *sipas.Error: the outcome is
	// unknown and retrying the same items is safe. On return the aggregates
	// this store serves include the inserted items.
	Insert(ctx context.Context, items []*sipas.Accepted) ([]InsertResult, error)
	// GetResponse returns a stored response, the id of the province it is
	// counted for and its content hash.
	GetResponse(ctx context.Context, id string) (*sipas.Response, string, [32]byte, error)
	// CountResponses returns the number of stored responses.
	CountResponses(ctx context.Context) (int64, error)
	// Recount recomputes every aggregate cell from the stored responses,
	// independently of the stored aggregates.
	Recount(ctx context.Context) (map[sipas.CellKey]*sipas.Tally, error)
	// CheckAggregates returns nil when the aggregates served agree with a
	// recount, else an error listing the differences.
	CheckAggregates(ctx context.Context) error

	// ResponseSource returns which credential and batch sent a response.
	ResponseSource(ctx context.Context, id string) (sipas.Source, error)
	// FlaggedCells counts the flagged responses (never in the aggregate
	// cells) of a questionnaire and period into cells, and their number.
	FlaggedCells(ctx context.Context, questionnaireID string, fromMonth, toMonth int, channel sipas.Channel) (map[sipas.CellKey]*sipas.Tally, int, error)

	// Correct withdraws or amends stored responses, with a trail;
	// ResponseHistory returns a response's versions and whether it is
	// withdrawn.
	Correct(ctx context.Context, items []Correction) ([]CorrectionResult, error)
	ResponseHistory(ctx context.Context, id string) ([]ResponseVersion, bool, error)
	// Closed periods freeze the figures of their months.
	ListClosedPeriods(ctx context.Context) ([]ClosedPeriod, error)
	ClosePeriod(ctx context.Context, p sipas.Period, actor, reason string) (already bool, err error)
	ReopenPeriod(ctx context.Context, p sipas.Period, actor, reason string) error

	CreateUnit(ctx context.Context, u Unit, audit AuditEvent) error
	// Unit is the hot-path lookup of a unit by its exact id, without a
	// context: from memory when the backend has it there.
	Unit(id string) (Unit, bool)
	// UnitProvince makes the store a sipas.UnitDirectory for the engine.
	UnitProvince(id string) (string, bool)
	GetUnit(ctx context.Context, id string) (*Unit, error)
	ListUnits(ctx context.Context, provinceCode, afterID string, limit int) ([]Unit, error)

	CreateCredential(ctx context.Context, c Credential, audit AuditEvent) (*Credential, error)
	GetCredential(ctx context.Context, id string) (*Credential, error)
	CredentialByTokenHash(ctx context.Context, hash []byte) (*Credential, error)
	ListCredentials(ctx context.Context, afterID string, limit int, showInactive bool) ([]*Credential, error)
	RevokeCredential(ctx context.Context, id string, at time.Time, audit AuditEvent) error
	CountCredentials(ctx context.Context) (int64, error)

	RecordKioskHeartbeat(ctx context.Context, h KioskHeartbeat) error
	ListKiosks(ctx context.Context, afterID string, limit int) ([]Kiosk, error)

	// AppendAudit records an action that changes no unit or credential
	// (a backup).
	AppendAudit(ctx context.Context, actor, action, target, detail string) error
	ListAudit(ctx context.Context, beforeSeq int64, limit int) ([]AuditEvent, error)

	// Ping checks that the database takes a durable write (readiness).
	Ping(ctx context.Context) error
	// Backup writes a restorable copy to destPath and returns the number of
	// responses in it, or refuses with a KindFailedPrecondition error that
	// says how this backend is backed up instead.
	Backup(ctx context.Context, destPath string) (int64, error)
	// BackupDir is a directory with room for a temporary backup copy
	// ("" when Backup always refuses).
	BackupDir() string
	// Stats returns the writer's counters.
	Stats() WriterStats
	// Close stops accepting writes, finishes what is queued and releases
	// the database.
	Close() error
}

var _ Backend = (*Store)(nil)
