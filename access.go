package sipas

import (
	"fmt"
	"strings"
	"time"
)

// CredentialRole is what a credential may do. The numbering matches the API
// enum (sipas.v1.Role). (Role is the item role of a questionnaire.)
type CredentialRole int

// Credential roles.
const (
	CredentialRoleUnspecified CredentialRole = iota
	RoleKiosk                                // submits responses for its own unit
	RoleSurveyor                             // uploads batches for the provinces in its scope
	RoleAnalyst                              // reads indices for the provinces in its scope
	RoleAdmin                                // manages units and credentials, backs up, reads everything
)

var credentialRoleNames = [...]string{"", "kiosk", "surveyor", "analyst", "admin"}

// String is the role's lower-case name ("kiosk", "surveyor", …); "" for
// CredentialRoleUnspecified.
func (r CredentialRole) String() string {
	if r < 0 || int(r) >= len(credentialRoleNames) {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return credentialRoleNames[r]
}

// ParseCredentialRole reads a role name as String writes it (any case).
func ParseCredentialRole(s string) (CredentialRole, error) {
	for i, n := range credentialRoleNames {
		if i > 0 && strings.EqualFold(s, n) {
			return CredentialRole(i), nil
		}
	}
	return 0, Invalid("parse role", Violation{Field: "role", Reason: "INVALID_ROLE",
		Description: fmt.Sprintf("%q is not a role; want kiosk, surveyor, analyst or admin", s)})
}

// Unit is a place where responses are collected: a one-stop counter with
// its kiosks.
type Unit struct {
	ID           string
	DisplayName  string
	ProvinceCode string
	CommuneCode  string // "" when not given
	CreateTime   time.Time
}

// Credential is an issued bearer token as readers see it (never the token
// itself, which is shown once when it is created).
type Credential struct {
	ID           string
	Role         CredentialRole
	UnitID       string   // kiosk: the unit it submits for
	Provinces    []string // surveyor, analyst: the provinces in scope
	AllProvinces bool     // surveyor, analyst: every province
	Description  string
	CreateTime   time.Time
	ExpireTime   *time.Time // nil: never expires
	RevokeTime   *time.Time // nil: not revoked
}

// Active reports whether c may be used at time now: neither revoked nor
// expired.
func (c *Credential) Active(now time.Time) bool {
	return c.RevokeTime == nil && (c.ExpireTime == nil || now.Before(*c.ExpireTime))
}

// AuditEvent is one entry of the audit trail of administrative actions.
type AuditEvent struct {
	Seq    int64
	Time   time.Time
	Actor  string // the credential id that acted
	Action string
	Target string
	Detail string
}

// KioskStatus is a kiosk credential with its unit and the health its agent
// last reported.
type KioskStatus struct {
	CredentialID    string
	UnitID          string
	UnitDisplayName string
	ProvinceCode    string
	Description     string
	LastHeartbeat   *time.Time // nil: never heard from
	LastResponse    *time.Time // nil: no response yet
	QueueDepth      int64      // responses waiting in the kiosk's outbox
	OldestPending   time.Duration
	DeadLetters     int64
	AgentVersion    string
	ClockOffset     *time.Duration // nil: unknown
	// Silent: no heartbeat for more than 2 hours of working time.
	Silent bool
}
