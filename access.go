package sipas

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
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

// unitIDPattern is what a unit id and a commune code may be.
var unitIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// CheckUnit checks the rules for creating unit u at time now: an id of 1 to
// 64 letters, digits, '.', '_' or '-'; a display name (without surrounding
// space) of 1 to 200 bytes without control characters; the code of a
// province valid at now in provinces; a commune code like an id, or none.
// The result is nil or a KindInvalid *Error with one violation per broken
// rule. That the id is not taken is the store's to say.
func CheckUnit(u Unit, now time.Time, provinces *Registry) error {
	var vs []Violation
	if !unitIDPattern.MatchString(u.ID) {
		vs = append(vs, Violation{Field: "unit.unit_id", Reason: "INVALID_UNIT_ID", Description: "1 to 64 letters, digits, '.', '_' or '-'"})
	}
	if name := u.DisplayName; name == "" || len(name) > 200 || strings.TrimSpace(name) != name {
		vs = append(vs, Violation{Field: "unit.display_name", Reason: "INVALID_NAME", Description: "a name of 1 to 200 bytes is required"})
	} else if HasControl(name) {
		vs = append(vs, Violation{Field: "unit.display_name", Reason: "CONTROL_CHARACTER",
			Description: "a name must not contain control or bidirectional formatting characters (line breaks, tabs, escapes, U+202E…)"})
	}
	if p, _, err := provinces.Resolve(u.ProvinceCode, now); err != nil || p.Code != u.ProvinceCode {
		vs = append(vs, Violation{Field: "unit.province_code", Reason: "UNKNOWN_PROVINCE", Description: "must be the two-digit code of a province valid today"})
	}
	if c := u.CommuneCode; c != "" && !unitIDPattern.MatchString(c) {
		vs = append(vs, Violation{Field: "unit.commune_code", Reason: "INVALID_COMMUNE", Description: "1 to 64 letters or digits"})
	}
	if len(vs) > 0 {
		return Invalid("create unit", vs...)
	}
	return nil
}

// HasControl reports whether s holds a control character (C0, DEL, C1) or
// a Unicode format character (bidirectional overrides and isolates,
// zero-width characters): in a name or a reason they would rewrite
// terminal output, log lines or reports that show it.
func HasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
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

// CheckCredential checks the rules for issuing c at time now: the role ×
// unit × scope × expiry rules, in one place for every way a credential is
// issued (the AdminService and sipasd's first start). A kiosk is bound to a
// unit and has no province scope (its province is its unit's); a surveyor
// or analyst has either province codes or AllProvinces, and no unit; an
// admin has neither unit nor province codes. An expiry must be after now.
// Province codes are checked against provinces when it is not nil; that the
// unit exists is the store's to say. The result is nil or a KindInvalid
// *Error with one violation per broken rule.
func CheckCredential(c Credential, now time.Time, provinces *Registry) error {
	var vs []Violation
	bad := func(field, reason, desc string) {
		vs = append(vs, Violation{Field: field, Reason: reason, Description: desc})
	}
	switch c.Role {
	case RoleKiosk:
		if c.UnitID == "" {
			bad("credential.unit_id", "REQUIRED", "a kiosk credential needs the unit it submits for")
		}
		if len(c.Provinces) > 0 || c.AllProvinces {
			bad("credential.province_codes", "NOT_ALLOWED", "a kiosk's province comes from its unit")
		}
	case RoleSurveyor, RoleAnalyst:
		if c.UnitID != "" {
			bad("credential.unit_id", "NOT_ALLOWED", "only kiosk credentials are bound to a unit")
		}
		if c.AllProvinces == (len(c.Provinces) > 0) {
			bad("credential.province_codes", "SCOPE_REQUIRED", "give either province codes or all_provinces, not both or neither")
		}
		for i, p := range c.Provinces {
			if provinces != nil && !provinces.Known(p) {
				bad(fmt.Sprintf("credential.province_codes[%d]", i), "UNKNOWN_PROVINCE", "not a province code")
			}
		}
	case RoleAdmin:
		if c.UnitID != "" || len(c.Provinces) > 0 {
			bad("credential", "NOT_ALLOWED", "an admin credential has no unit or province scope")
		}
	default:
		bad("credential.role", "REQUIRED", "role must be kiosk, surveyor, analyst or admin")
	}
	if c.ExpireTime != nil && !c.ExpireTime.After(now) {
		bad("credential.expire_time", "IN_PAST", "must be in the future")
	}
	if len(c.Description) > 200 {
		bad("credential.description", "TOO_LONG", "at most 200 bytes")
	}
	if len(vs) > 0 {
		return Invalid("create credential", vs...)
	}
	return nil
}

// Scope is the credential's scope as the audit trail records it: the unit
// of a kiosk, "all", the province codes, or "".
func (c *Credential) Scope() string {
	switch {
	case c.AllProvinces:
		return "all"
	case len(c.Provinces) > 0:
		return strings.Join(c.Provinces, ",")
	}
	return c.UnitID
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
