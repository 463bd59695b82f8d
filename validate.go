package sipas

import (
	"fmt"
	"regexp"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Validation limits.
const (
	// MaxClockSkew is how far in the future collected_at may lie.
	MaxClockSkew = 10 * time.Minute
	// MinAge and MaxAge bound the respondent's age in the collected_at year.
	MinAge = 18
	MaxAge = 120
)

// EarliestCollectedAt is the earliest accepted collected_at (2015-01-01,
// Vietnam time).
var EarliestCollectedAt = time.Date(2015, 1, 1, 0, 0, 0, 0, VietnamZone)

var reUnitID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

const opValidate = "validate response"

// Validate checks a response against the catalog and the registry. It
// normalises r.ID to the canonical lower-case UUID form and returns the
// province the response is counted for, warnings for the acknowledgement and
// the content hash. All violations are collected into one *Error of kind
// KindInvalid (reason INVALID_ARGUMENT), one Violation per bad field with an
// UPPER_SNAKE reason. An unknown questionnaire id is KindFailedPrecondition
// with reason UNKNOWN_QUESTIONNAIRE (the other violations found are attached
// too). Descriptions never contain a demographic value.
func Validate(cat *Catalog, reg *Registry, r *Response, now time.Time) (*Accepted, error) {
	if r == nil {
		return nil, Invalid(opValidate, Violation{Field: "response", Reason: "REQUIRED", Description: "response is required"})
	}
	var vs []Violation
	add := func(field, reason, format string, args ...any) {
		vs = append(vs, Violation{Field: field, Reason: reason, Description: fmt.Sprintf(format, args...)})
	}

	// response_id
	var id uuid.UUID
	switch {
	case r.ID == "":
		add("response_id", "REQUIRED", "response_id is required (a UUID, UUIDv7 preferred)")
	default:
		u, err := uuid.Parse(r.ID)
		switch {
		case err != nil:
			add("response_id", "INVALID_UUID", "response_id must be a UUID such as 0190f3b4-7c1e-7a3b-9f00-123456789abc")
		case u == uuid.Nil:
			add("response_id", "NIL_UUID", "response_id must not be the nil UUID")
		default:
			id = u
			if !canonicalUUID(r.ID) {
				r.ID = u.String()
			}
		}
	}

	if !r.Flags.Known() {
		add("flags", "INVALID_FLAG", "flags must be RESPONSE_FLAG_TOO_FAST, _TOO_SOON, _IDENTICAL_RUN or _CLOCK_SKEW")
	}

	// questionnaire_id
	var q *Questionnaire
	unknownQuestionnaire := false
	if r.QuestionnaireID == "" {
		add("questionnaire_id", "REQUIRED", "questionnaire_id is required, e.g. sipas-2023")
	} else if q = cat.Get(r.QuestionnaireID); q == nil {
		unknownQuestionnaire = true
	}

	// collected_at
	collectedOK := false
	switch {
	case r.CollectedAt.IsZero():
		add("collected_at", "REQUIRED", "collected_at is required")
	case r.CollectedAt.After(now.Add(MaxClockSkew)):
		add("collected_at", "IN_FUTURE", "collected_at lies more than %s in the future", MaxClockSkew)
	case r.CollectedAt.Before(EarliestCollectedAt):
		add("collected_at", "TOO_EARLY", "collected_at must not be before %s", EarliestCollectedAt.Format(dateLayout))
	default:
		collectedOK = true
	}

	// province_code
	var province *Province
	var warnings []string
	switch {
	case r.ProvinceCode == "":
		add("province_code", "REQUIRED", "province_code is required (two digits)")
	case !validProvinceCode(r.ProvinceCode):
		add("province_code", "INVALID_PROVINCE_CODE", "province_code must be a two-digit province code")
	case reg == nil:
		add("province_code", "UNKNOWN_PROVINCE", "no province registry")
	case !reg.Known(r.ProvinceCode):
		add("province_code", "UNKNOWN_PROVINCE", "province code %s does not exist", r.ProvinceCode)
	case collectedOK:
		p, attributed, err := reg.Resolve(r.ProvinceCode, r.CollectedAt)
		if err != nil {
			if e, ok := err.(*Error); ok && len(e.Violations) > 0 {
				vs = append(vs, e.Violations...)
			} else {
				add("province_code", "PROVINCE_NOT_VALID", "province code %s is not valid at collected_at", r.ProvinceCode)
			}
			break
		}
		province = p
		if attributed {
			from := p.ValidFrom.Format(dateLayout)
			warnings = append(warnings, fmt.Sprintf(
				"mã tỉnh %s đã hợp nhất vào %s (%s) từ %s / province code %s was merged into %s (%s) from %s; the response is counted for %s",
				r.ProvinceCode, p.Code, p.NameVi, from, r.ProvinceCode, p.Code, p.NameEn, from, p.Code))
		}
	}

	// channel
	if r.Channel == ChannelUnspecified {
		add("channel", "REQUIRED", "channel is required (kiosk, field, post, online or phone)")
	} else if !validChannel(r.Channel) {
		add("channel", "INVALID_CHANNEL", "channel must be one of kiosk, field, post, online, phone")
	}

	// unit_id
	if r.UnitID != "" && !reUnitID.MatchString(r.UnitID) {
		add("unit_id", "INVALID_UNIT_ID", "unit_id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
	}

	// answers, from either form, into their packed form
	var answers []uint8
	answered := 0
	switch {
	case len(r.Answers) > 0 && len(r.Packed) > 0:
		add("packed_answers", "BOTH_ANSWER_FORMS", "send the answers either in answers or in packed_answers, not both")
	case q != nil && len(r.Answers) > len(q.Items):
		add("answers", "TOO_MANY_ANSWERS", "%d answers, but questionnaire %s has %d items", len(r.Answers), q.ID, len(q.Items))
	case q != nil && len(r.Packed) > len(q.Items):
		add("packed_answers", "TOO_MANY_ANSWERS", "%d packed answers, but questionnaire %s has %d items", len(r.Packed), q.ID, len(q.Items))
	case len(r.Answers) == 0 && !anyAnswer(r.Packed):
		add("answers", "NO_ANSWERS", "at least one answer is required")
	case q != nil:
		answers = make([]uint8, len(q.Items))
		// Field names are only built for violations, which are reported in
		// item-code order whichever form the answers came in.
		type answerViolation struct {
			code string
			v    Violation
		}
		var avs []answerViolation
		badCode := func(it *Item, a int64) {
			avs = append(avs, answerViolation{it.Code, Violation{Field: "answers[" + it.Code + "]", Reason: "INVALID_ANSWER_CODE",
				Description: fmt.Sprintf("answer code %d is not valid for item %s: want %s, 8 (don't know) or 9 (not applicable)",
					a, it.Code, scaleCodeList(it.Scale))}})
		}
		for i, v := range r.Packed {
			if v == 0 {
				continue
			}
			it := q.Items[i]
			if a := int64(v) - 1; a >= int64(len(it.slotOf)) || it.slotOf[a] < 0 {
				badCode(it, a)
				continue
			}
			answers[i] = uint8(v)
			answered++
		}
		for c, a := range r.Answers {
			it := q.Item(c)
			switch {
			case it == nil:
				avs = append(avs, answerViolation{c, Violation{Field: "answers[" + fieldSafe(c) + "]", Reason: "UNKNOWN_ITEM",
					Description: fmt.Sprintf("item %s is not in questionnaire %s", fieldSafe(c), q.ID)}})
			case SlotOf(it, a) < 0:
				badCode(it, int64(a))
			default:
				answers[it.Index] = uint8(a + 1)
				answered++
			}
		}
		sort.Slice(avs, func(i, j int) bool { return avs[i].code < avs[j].code })
		for _, av := range avs {
			vs = append(vs, av.v)
		}
	}

	// demographics: descriptions never carry the value.
	d := r.Demographics
	if d.BirthYear != 0 {
		switch {
		case d.BirthYear < 1000 || d.BirthYear > 9999:
			add("demographics.birth_year", "INVALID_BIRTH_YEAR", "birth_year: must be a four-digit year")
		case collectedOK:
			age := r.CollectedAt.In(VietnamZone).Year() - d.BirthYear
			if age < MinAge {
				add("demographics.birth_year", "UNDERAGE", "birth_year: respondent must be %d or older", MinAge)
			} else if age > MaxAge {
				add("demographics.birth_year", "BIRTH_YEAR_OUT_OF_RANGE", "birth_year: respondent must be at most %d years old", MaxAge)
			}
		}
	}
	enum := func(field string, v, max int) {
		if v < 0 || v > max {
			add("demographics."+field, "INVALID_ENUM", "%s: must be between 0 and %d", field, max)
		}
	}
	enum("gender", int(d.Gender), int(MaxGender))
	enum("ethnicity", int(d.Ethnicity), int(MaxEthnicity))
	enum("education", int(d.Education), int(MaxEducation))
	enum("occupation", int(d.Occupation), int(MaxOccupation))
	enum("residence", int(d.Residence), int(MaxResidence))
	enum("respondent_type", int(d.RespondentType), int(MaxRespondentType))

	if unknownQuestionnaire {
		qv := Violation{Field: "questionnaire_id", Reason: "UNKNOWN_QUESTIONNAIRE",
			Description: fmt.Sprintf("questionnaire %s is not known to this server%s", fieldSafe(r.QuestionnaireID), knownList(cat))}
		return nil, &Error{Kind: KindFailedPrecondition, Op: opValidate, Reason: "UNKNOWN_QUESTIONNAIRE",
			Message: "unknown questionnaire", Violations: append([]Violation{qv}, vs...)}
	}
	if len(vs) > 0 {
		return nil, Invalid(opValidate, vs...)
	}
	return &Accepted{Response: r, Province: province, Warnings: warnings, Hash: answersHash(r, q, answers, answered),
		ID: id, Questionnaire: q, Answers: answers}, nil
}

// canonicalUUID reports whether s, a string uuid.Parse accepted, is already
// in the canonical form (36 characters, lower-case hex).
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'F' {
			return false
		}
	}
	return true
}

func anyAnswer(packed []uint32) bool {
	for _, v := range packed {
		if v != 0 {
			return true
		}
	}
	return false
}

func validChannel(c Channel) bool {
	for _, v := range Channels {
		if v == c {
			return true
		}
	}
	return false
}

// fieldSafe bounds a client-sent string before it is echoed in a field name
// or description: at most 64 bytes of valid UTF-8, control characters
// replaced.
func fieldSafe(s string) string {
	const max = 64
	out := make([]rune, 0, len(s))
	n := 0
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			r = '?'
		}
		n += utf8.RuneLen(r)
		if n > max {
			return string(out) + "…"
		}
		out = append(out, r)
	}
	return string(out)
}

func scaleCodeList(s *Scale) string {
	b := make([]byte, 0, 16)
	for i, c := range s.Codes {
		if i > 0 {
			b = append(b, '/')
		}
		b = fmt.Appendf(b, "%d", c.Code)
	}
	return fmt.Sprintf("%s (%s)", b, s.ID)
}

func knownList(cat *Catalog) string {
	qs := cat.List()
	if len(qs) == 0 {
		return ""
	}
	s := "; known: "
	for i, q := range qs {
		if i > 0 {
			s += ", "
		}
		s += q.ID
	}
	return s
}
