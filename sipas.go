// Package sipas holds the domain of the SIPAS citizen-satisfaction survey:
// questionnaire definitions and their formula trees, answer scales, the
// province registry with the 2025 merger, responses and their validation, and
// the index arithmetic. It is pure: no I/O beyond reading definition files
// from an fs.FS, no transport, no storage. Every other package imports it and
// it imports none of them.
package sipas

import (
	"time"

	"github.com/google/uuid"
)

// VietnamZone is the time zone every survey period is computed in (UTC+7,
// no daylight saving time). It is a fixed zone so that the result never
// depends on the server's time zone database.
var VietnamZone = time.FixedZone("Asia/Ho_Chi_Minh", 7*60*60)

// Excluded answer codes: valid on every item, excluded from every denominator.
const (
	CodeDontKnow      = 8
	CodeNotApplicable = 9
)

// Kind is one of the three kinds of indicator.
type Kind int

// The kinds of indicator, in report order.
const (
	KindUnspecified Kind = iota
	KindAssessment
	KindSatisfaction
	KindExpectation
)

// Role says whether an item feeds its group's mean.
type Role int

// Item roles.
const (
	RoleUnspecified Role = iota
	RoleContent          // averaged into its group
	RoleOverall          // reported as an item, never averaged in
)

// Aggregation is how a formula node combines its children.
type Aggregation int

// Aggregations.
const (
	AggregationUnspecified Aggregation = iota
	AggregationMean
	AggregationWeightedMean
	AggregationNone
)

// Channel is how a response was collected.
type Channel int

// Channels. The numbering matches the API enum.
const (
	ChannelUnspecified Channel = iota
	ChannelKiosk
	ChannelField
	ChannelPost
	ChannelOnline
	ChannelPhone
)

// Channels lists every valid channel, in enum order.
var Channels = []Channel{ChannelKiosk, ChannelField, ChannelPost, ChannelOnline, ChannelPhone}

// ScaleCode is one answer code of a scale.
type ScaleCode struct {
	Code     int
	LabelVi  string
	LabelEn  string
	Positive bool
}

// Scale is a named set of answer codes. Codes 8 and 9 are not listed: they
// are valid on every item and excluded from every denominator.
type Scale struct {
	ID    string
	Codes []ScaleCode
}

// Item is one question of a questionnaire.
type Item struct {
	Code       string
	Kind       Kind
	Group      string // code of the formula node of the same kind it belongs to
	Node       *Node  // that formula node
	Role       Role
	Scale      *Scale
	LabelVi    string
	LabelEn    string
	Provenance string
	// Index is the item's position in Questionnaire.Items.
	Index int
	// Slot is the first of the item's counter slots in a Tally: one slot per
	// scale code in scale order, then one for 8 and one for 9.
	Slot int

	slotOf []int32 // counter slot of each answer code (by code), -1 when not valid
}

// Node is a node of a questionnaire's formula tree. Trees are data: which
// children, which aggregation and which weights come from the definition file.
type Node struct {
	Code        string
	Kind        Kind
	Aggregation Aggregation
	Weight      float64 // weight within the parent (1 unless given)
	LabelVi     string
	LabelEn     string
	Parent      *Node
	Children    []*Node
	Items       []*Item // items directly under this node, content and overall
	// Index is the node's position in Questionnaire.Nodes.
	Index int
}

// Questionnaire is a versioned questionnaire definition.
type Questionnaire struct {
	ID             string // e.g. "sipas-2023"
	TitleVi        string
	TitleEn        string
	Method         string // e.g. "QĐ 1001/QĐ-BNV"
	FormulaVersion string
	Source         string // "embedded" or the directory it was loaded from
	Items          []*Item
	Scales         []*Scale
	// Roots are the roots of the formula trees, one per kind, in kind order.
	Roots []*Node
	// Nodes are all formula nodes, parents before children.
	Nodes []*Node
	// Slots is the number of answer counter slots in a Tally of this questionnaire.
	Slots int

	itemsByCode map[string]*Item
	sortedCodes []string // item codes in byte order: the canonical answer order
	sortedItems []*Item  // the items in that order
}

// Item returns the item with the given code, or nil.
func (q *Questionnaire) Item(code string) *Item { return q.itemsByCode[code] }

// Province is one row of the province registry: a province as it existed
// between two dates. The same code may name different provinces at different
// dates (codes re-used by the 2025 merger).
type Province struct {
	// ID identifies the row: the code and the first day it was valid,
	// e.g. "15@2008-08-01" (Yên Bái) and "15@2025-07-01" (Lào Cai).
	ID        string
	Code      string
	NameVi    string
	NameEn    string
	ValidFrom time.Time // first valid day, midnight Vietnam time
	ValidTo   time.Time // last valid day; zero while still valid
	// Successor is the province it was folded into, nil while still valid.
	Successor *Province
}

// Gender and the other demographic enumerations use the API's numbering;
// zero means not given.
type (
	Gender         int
	Ethnicity      int
	Education      int
	Occupation     int
	Residence      int
	RespondentType int
)

// Upper bounds (inclusive) of the demographic enumerations.
const (
	MaxGender         Gender         = 3
	MaxEthnicity      Ethnicity      = 2
	MaxEducation      Education      = 7
	MaxOccupation     Occupation     = 8
	MaxResidence      Residence      = 2
	MaxRespondentType RespondentType = 2
)

// Demographics are optional facts about the respondent. They never appear in
// logs, errors, metrics or index responses.
type Demographics struct {
	Gender         Gender
	BirthYear      int // 0: not given
	Ethnicity      Ethnicity
	Education      Education
	Occupation     Occupation
	Residence      Residence
	RespondentType RespondentType
	DidProcedure   *bool
}

// Response is one filled-in questionnaire, as the client sent it.
type Response struct {
	ID              string // UUID, canonical lower-case form
	QuestionnaireID string
	ProvinceCode    string // two-digit code as collected
	CollectedAt     time.Time
	Channel         Channel
	UnitID          string
	Demographics    Demographics
	// Answers maps item code to raw answer code; items not asked are absent.
	Answers map[string]int
	// Packed is the other form of the answers, the one bulk clients send
	// (the API's packed_answers): answer code + 1 of each of the
	// questionnaire's items in order, 0 for an item not asked; trailing
	// items not asked may be left off. A response uses one form or the
	// other; both forms of the same answers are the same response (same
	// content hash).
	Packed []uint32
	// Flags are the data-quality flags the collecting device raised. They
	// are not part of the content (a resend with other flags is a
	// duplicate): the first stored copy's flags stand.
	Flags Flags
}

// Accepted is a validated response with what the registry made of it.
type Accepted struct {
	Response *Response
	// Province is the province the response is counted for: the one valid at
	// CollectedAt, or the successor of a code retired by the merger.
	Province *Province
	// Warnings are human-readable notes for the acknowledgement.
	Warnings []string
	// Hash is the SHA-256 of the response's canonical content: two sends of
	// the same response have the same hash.
	Hash [32]byte
	// ID is the response id, parsed (Response.ID is its canonical form).
	ID uuid.UUID
	// Questionnaire is the questionnaire the response was validated against.
	Questionnaire *Questionnaire
	// Answers are the response's answers, from either form, by position:
	// answer code + 1 of each item of Questionnaire.Items, 0 for an item not
	// asked (answer codes are at most 99, so each fits a byte). Storage,
	// hashing and counting work on this form only.
	Answers []uint8
	// Source says who sent the response, so that bad data can be traced:
	// it is stored with the response but is not part of its content (a
	// resend by another credential or in another batch is a duplicate).
	Source Source
}

// Source identifies where an accepted response came from.
type Source struct {
	// CredentialID is the credential that sent the response ("" when not
	// sent through the API, e.g. loaded by a tool).
	CredentialID string
	// BatchID is the upload stream that carried it: the batch id the client
	// named, else one the server assigned to the stream; "" for unary
	// submissions.
	BatchID string
}
