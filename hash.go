package sipas

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
)

// hashVersion tags the canonical encoding; change it if the encoding changes.
const hashVersion = "sipas.response.v1"

// ContentHash returns the SHA-256 of a canonical encoding of every field the
// client sent: id, questionnaire, province code as sent, collected_at (UTC
// Unix nanoseconds, 0 when unset), channel, unit, every demographic field and
// the answers sorted by item code. Strings are length-prefixed and integers
// varint-encoded, so no two different responses share an encoding: equal
// content has an equal hash whatever the order of the answers map. The id is
// hashed as stored; Validate normalises it first. ContentHash reads the map
// form (Answers); Validate computes the same hash from either form.
func ContentHash(r *Response) [32]byte {
	codes := make([]string, 0, len(r.Answers))
	for c := range r.Answers {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	b := appendHashHeader(nil, r, len(r.Answers))
	for _, c := range codes {
		b = hashAnswer(b, c, r.Answers[c])
	}
	return sha256.Sum256(b)
}

// answersHash is ContentHash computed from the packed answers of q's items
// (Accepted.Answers), n of them given, whichever form r carries them in:
// the same answers hash the same in both forms.
func answersHash(r *Response, q *Questionnaire, answers []uint8, n int) [32]byte {
	var buf [2048]byte
	b := appendHashHeader(buf[:0], r, n)
	for _, it := range q.sortedItems {
		if v := answers[it.Index]; v != 0 {
			b = append(b, it.hashPrefix...)
			b = binary.AppendVarint(b, int64(v)-1)
		}
	}
	return sha256.Sum256(b)
}

func hashAnswer(b []byte, code string, a int) []byte {
	b = binary.AppendUvarint(b, uint64(len(code)))
	b = append(b, code...)
	return binary.AppendVarint(b, int64(a))
}

// appendHashHeader appends the encoding of every field but the answers, and
// the number of answers, to b.
func appendHashHeader(b []byte, r *Response, answers int) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(v int64) { b = binary.AppendVarint(b, v) }

	str(hashVersion)
	str(r.ID)
	str(r.QuestionnaireID)
	str(r.ProvinceCode)
	var nanos int64
	if !r.CollectedAt.IsZero() {
		nanos = r.CollectedAt.UTC().UnixNano()
	}
	num(nanos)
	num(int64(r.Channel))
	str(r.UnitID)
	d := r.Demographics
	num(int64(d.Gender))
	num(int64(d.BirthYear))
	num(int64(d.Ethnicity))
	num(int64(d.Education))
	num(int64(d.Occupation))
	num(int64(d.Residence))
	num(int64(d.RespondentType))
	switch {
	case d.DidProcedure == nil:
		num(0)
	case *d.DidProcedure:
		num(2)
	default:
		num(1)
	}
	num(int64(answers))
	return b
}
