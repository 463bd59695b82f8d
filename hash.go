package sipas

import (
	"crypto/sha256"
	"encoding/binary"
)

// Content hashes identify what a client sent under a response id: the same
// id sent again with an equal hash is a duplicate, with another hash a
// conflict. The encoding is versioned by a tag at its start.
//
// Version 2 (current) encodes the answers by position, one byte per item of
// the questionnaire: a questionnaire version's item order never changes once
// responses are stored (definitions are versioned, not edited), and hashing
// a hundred bytes instead of a hundred item codes keeps the hash cheap on
// the ingestion path. Version 1 encoded the answers by item code; hashes of
// that version are still stored for responses received before version 2, so
// the store compares a stored hash that differs from the version-2 one with
// LegacyContentHash before it calls the send a conflict. Both encodings
// start with their version tag, so a version-1 hash never equals a
// version-2 hash of other content.
const (
	hashVersion       = "sipas.response.v2"
	legacyHashVersion = "sipas.response.v1"
)

// ContentHash returns the SHA-256 of the canonical encoding of every field
// the client sent of a response of questionnaire q, with the answers in
// either form: id, questionnaire, province code as sent, collected_at (UTC
// Unix nanoseconds, 0 when unset), channel, unit, every demographic field,
// the number of answers, then the questionnaire's item count and one byte
// per item (answer code + 1, 0 when not asked). Strings are length-prefixed
// and integers varint-encoded, so no two different responses share an
// encoding, and equal content has an equal hash whatever the order of the
// answers map. The id is hashed as given; Validate normalises it first and
// computes this hash. Answers outside q's items or beyond one byte are left
// out (Validate refuses them).
func ContentHash(q *Questionnaire, r *Response) [32]byte {
	answers := make([]uint8, len(q.Items))
	n := 0
	for i, v := range r.Packed {
		if i < len(answers) && v != 0 && v <= 0xff {
			answers[i] = uint8(v)
			n++
		}
	}
	for c, a := range r.Answers {
		if it := q.Item(c); it != nil && a >= 0 && a < 0xff {
			answers[it.Index] = uint8(a + 1)
			n++
		}
	}
	return answersHash(r, q, answers, n)
}

// answersHash is ContentHash of r with its answers packed (Accepted.Answers),
// n of them given.
func answersHash(r *Response, q *Questionnaire, answers []uint8, n int) [32]byte {
	var buf [512]byte
	b := appendHashHeader(buf[:0], hashVersion, r, n)
	b = binary.AppendUvarint(b, uint64(len(q.Items)))
	b = append(b, answers...)
	return sha256.Sum256(b)
}

// LegacyContentHash returns the version-1 content hash of an accepted
// response: the header of ContentHash under the version-1 tag, then each
// answer as its item code (length-prefixed) and code (varint), in item code
// order. Hashes stored before version 2 are of this form.
func LegacyContentHash(acc *Accepted) [32]byte {
	q := acc.Questionnaire
	n := 0
	for _, v := range acc.Answers {
		if v != 0 {
			n++
		}
	}
	b := appendHashHeader(nil, legacyHashVersion, acc.Response, n)
	for _, it := range q.sortedItems {
		if v := acc.Answers[it.Index]; v != 0 {
			b = binary.AppendUvarint(b, uint64(len(it.Code)))
			b = append(b, it.Code...)
			b = binary.AppendVarint(b, int64(v)-1)
		}
	}
	return sha256.Sum256(b)
}

// appendHashHeader appends the version tag, every field but the answers,
// and the number of answers to b.
func appendHashHeader(b []byte, version string, r *Response, answers int) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(v int64) { b = binary.AppendVarint(b, v) }

	str(version)
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
