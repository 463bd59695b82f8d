package sipas

import (
	"errors"
	"fmt"
	"strings"
)

// ErrorKind classifies a domain error. The server maps each kind to one gRPC
// code in one table; the client maps codes back to kinds.
type ErrorKind int

// Error kinds.
const (
	KindOther              ErrorKind = iota // an internal failure; details are logged, not sent
	KindInvalid                             // bad input (INVALID_ARGUMENT)
	KindFailedPrecondition                  // e.g. an unknown questionnaire version (FAILED_PRECONDITION)
	KindNotFound                            // NOT_FOUND
	KindConflict                            // same id, other content (ALREADY_EXISTS)
	KindUnauthenticated                     // missing, malformed, revoked or expired token
	KindPermissionDenied                    // authenticated but not allowed
	KindResourceExhausted                   // a limit was reached
	KindUnavailable                         // try again later
)

var kindNames = map[ErrorKind]string{
	KindOther:              "internal",
	KindInvalid:            "invalid",
	KindFailedPrecondition: "failed precondition",
	KindNotFound:           "not found",
	KindConflict:           "conflict",
	KindUnauthenticated:    "unauthenticated",
	KindPermissionDenied:   "permission denied",
	KindResourceExhausted:  "resource exhausted",
	KindUnavailable:        "unavailable",
}

func (k ErrorKind) String() string { return kindNames[k] }

// Violation names one bad field of a request. Description never contains a
// demographic value or a token.
type Violation struct {
	Field       string // e.g. "answers[V23.HL.31]", "collected_at"
	Reason      string // machine-readable, e.g. "INVALID_ANSWER_CODE"
	Description string // what is wrong and what is expected
}

// Error is the domain error: what failed (Op), of which kind, and for bad
// input which fields.
type Error struct {
	Kind       ErrorKind
	Op         string // e.g. "validate response", "store.insert"
	Reason     string // machine-readable reason for ErrorInfo, e.g. "RESPONSE_ID_CONFLICT"
	Message    string
	Violations []Violation
	Err        error // underlying cause; never sent to clients
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString(e.Kind.String())
	}
	for i, v := range e.Violations {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", v.Field, v.Description)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind with a formatted message.
func Errorf(kind ErrorKind, op, format string, args ...any) *Error {
	return &Error{Kind: kind, Op: op, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a KindInvalid error with the given field violations.
func Invalid(op string, violations ...Violation) *Error {
	return &Error{Kind: KindInvalid, Op: op, Reason: "INVALID_ARGUMENT", Message: "invalid input", Violations: violations}
}

// KindOf returns the kind of err: the kind of the first *Error in its chain,
// KindOther for any other non-nil error.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// ErrNotFound and friends are sentinel-like constructors for common cases.
var (
	// ErrResponseConflict is returned when a response id is reused with other content.
	ErrResponseConflict = &Error{Kind: KindConflict, Reason: "RESPONSE_ID_CONFLICT",
		Message: "a different response with this response_id is already stored; to correct it, re-upload the file with " +
			"`sipas upload --amend --reason ...` (or call AmendResponse), or withdraw it with `sipas responses withdraw ID --reason ...`"}
)
