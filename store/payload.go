package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sipas-vn/sipas"
)

// The payload column holds a response's demographics and answers in a compact
// binary form, laid out by the questionnaire's item order:
//
//	byte    format version (payloadV1)
//	varint  Gender, BirthYear, Ethnicity, Education, Occupation, Residence,
//	        RespondentType (zig-zag varints, as encoding/binary.AppendVarint)
//	uvarint DidProcedure: 0 not given, 1 false, 2 true
//	uvarint n = len(q.Items)
//	n ×     uvarint answer of q.Items[i]: 0 not asked, else code+1
//	uvarint m, then m × (uvarint len, item code bytes, varint answer)
//	        for answers that do not fit the positional form (an item code the
//	        questionnaire does not have, or a negative code); validated
//	        responses never have them, but the encoding stays lossless.
//
// Format version 2 (payloadV2) is the same but for the answers, which are
// listed sparse, for a response that answers fewer than half the items (a
// kiosk asks about 22 of 106):
//
//	uvarint n = len(q.Items)
//	uvarint k, then k × (uvarint gap, uvarint answer): the position of each
//	        answered item as the gap from the previous one (the first: its
//	        position + 1), and its code + 1
//
// EncodePayload writes whichever of the two is shorter. A full 106-item
// response takes about 120 bytes, a kiosk response about 60. Because answers are stored
// by item position, a questionnaire version's item order must never change
// once responses have been stored for it (definitions are versioned, not
// edited); decode checks that the item count still matches.
const (
	payloadV1 = 1
	payloadV2 = 2
)

var errPayloadCorrupt = errors.New("corrupt response payload")

// EncodePayload encodes a response's demographics and its answers in
// packed form (sipas.Accepted.Answers: code + 1 by item position, one per
// item of q) as they are stored in the payload column. Answer codes are at
// most 99, so each positional uvarint is the byte itself. It is exported for
// tools that must write exactly the stored bytes (the benchmark's
// plain-insert floor).
func EncodePayload(q *sipas.Questionnaire, d *sipas.Demographics, answers []uint8) []byte {
	b := make([]byte, 0, 24+len(q.Items))
	b = append(b, payloadV1)
	for _, v := range [...]int64{int64(d.Gender), int64(d.BirthYear), int64(d.Ethnicity), int64(d.Education),
		int64(d.Occupation), int64(d.Residence), int64(d.RespondentType)} {
		b = binary.AppendVarint(b, v)
	}
	switch {
	case d.DidProcedure == nil:
		b = append(b, 0)
	case *d.DidProcedure:
		b = append(b, 2)
	default:
		b = append(b, 1)
	}
	b = binary.AppendUvarint(b, uint64(len(q.Items)))
	answers = answers[:min(len(answers), len(q.Items))]
	k := 0
	for _, v := range answers {
		if v != 0 {
			k++
		}
	}
	if 2*k >= len(q.Items) {
		for i := range q.Items {
			var v uint8
			if i < len(answers) {
				v = answers[i]
			}
			b = binary.AppendUvarint(b, uint64(v))
		}
		return append(b, 0) // no answers outside the positional form
	}
	b[0] = payloadV2
	b = binary.AppendUvarint(b, uint64(k))
	prev := -1
	for i, v := range answers {
		if v != 0 {
			b = binary.AppendUvarint(b, uint64(i-prev))
			b = binary.AppendUvarint(b, uint64(v))
			prev = i
		}
	}
	return append(b, 0)
}

// decodePayload fills r.Demographics and r.Answers from b.
func decodePayload(q *sipas.Questionnaire, b []byte, r *sipas.Response) error {
	r.Answers = make(map[string]int, len(q.Items))
	return parsePayload(q, b, &r.Demographics,
		func(i int, v uint64) { r.Answers[q.Items[i].Code] = int(v - 1) },
		func(code string, a int64) { r.Answers[code] = int(a) })
}

// payloadAnswers returns the packed answers (code + 1 by item position) of
// a stored payload, reusing dst. Answers outside the positional form and
// codes beyond a byte are left out: they are not valid answers, and
// counting ignores them.
func payloadAnswers(q *sipas.Questionnaire, b []byte, dst []uint8) ([]uint8, error) {
	if cap(dst) < len(q.Items) {
		dst = make([]uint8, len(q.Items))
	}
	dst = dst[:len(q.Items)]
	clear(dst)
	var d sipas.Demographics
	err := parsePayload(q, b, &d, func(i int, v uint64) {
		if v <= 0xff {
			dst[i] = uint8(v)
		}
	}, func(string, int64) {})
	return dst, err
}

// parsePayload decodes b: the demographics into d, then each positional
// answer that was given (item index, code + 1) and each extra answer.
func parsePayload(q *sipas.Questionnaire, b []byte, d *sipas.Demographics, positional func(i int, v uint64), extra func(code string, a int64)) error {
	if len(b) == 0 || (b[0] != payloadV1 && b[0] != payloadV2) {
		return fmt.Errorf("%w: unknown format", errPayloadCorrupt)
	}
	sparse := b[0] == payloadV2
	b = b[1:]
	varint := func() (int64, error) {
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, errPayloadCorrupt
		}
		b = b[n:]
		return v, nil
	}
	uvarint := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errPayloadCorrupt
		}
		b = b[n:]
		return v, nil
	}
	var dem [7]int64
	for i := range dem {
		v, err := varint()
		if err != nil {
			return err
		}
		dem[i] = v
	}
	*d = sipas.Demographics{
		Gender:         sipas.Gender(dem[0]),
		BirthYear:      int(dem[1]),
		Ethnicity:      sipas.Ethnicity(dem[2]),
		Education:      sipas.Education(dem[3]),
		Occupation:     sipas.Occupation(dem[4]),
		Residence:      sipas.Residence(dem[5]),
		RespondentType: sipas.RespondentType(dem[6]),
	}
	dp, err := uvarint()
	if err != nil {
		return err
	}
	switch dp {
	case 0:
	case 1, 2:
		v := dp == 2
		d.DidProcedure = &v
	default:
		return fmt.Errorf("%w: did_procedure %d", errPayloadCorrupt, dp)
	}
	n, err := uvarint()
	if err != nil {
		return err
	}
	if n != uint64(len(q.Items)) {
		return fmt.Errorf("%w: %d items stored, questionnaire %s has %d", errPayloadCorrupt, n, q.ID, len(q.Items))
	}
	if sparse {
		k, err := uvarint()
		if err != nil {
			return err
		}
		if k > n {
			return fmt.Errorf("%w: %d answers of %d items", errPayloadCorrupt, k, n)
		}
		pos := -1
		for range k {
			gap, err := uvarint()
			if err != nil {
				return err
			}
			v, err := uvarint()
			if err != nil {
				return err
			}
			if gap == 0 || gap > n || int64(pos)+int64(gap) >= int64(n) || v == 0 {
				return fmt.Errorf("%w: answer position", errPayloadCorrupt)
			}
			pos += int(gap)
			positional(pos, v)
		}
	} else {
		for i := range q.Items {
			v, err := uvarint()
			if err != nil {
				return err
			}
			if v != 0 {
				positional(i, v)
			}
		}
	}
	m, err := uvarint()
	if err != nil {
		return err
	}
	if m > uint64(len(b)) {
		return fmt.Errorf("%w: %d extra answers", errPayloadCorrupt, m)
	}
	for range m {
		l, err := uvarint()
		if err != nil {
			return err
		}
		if l > uint64(len(b)) {
			return errPayloadCorrupt
		}
		code := string(b[:l])
		b = b[l:]
		v, err := varint()
		if err != nil {
			return err
		}
		extra(code, v)
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errPayloadCorrupt, len(b))
	}
	return nil
}
