package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
)

// CountResponses returns the number of stored responses.
func (s *Store) CountResponses(ctx context.Context) (int64, error) {
	var n int64
	if err := s.reader.QueryRowContext(ctx, "SELECT count(*) FROM responses").Scan(&n); err != nil {
		return 0, fmt.Errorf("store.count_responses: %w", err)
	}
	return n, nil
}

// GetResponse returns the stored response with the given id, the id of the
// province it is counted for and its content hash. An unknown id is a
// KindNotFound error.
func (s *Store) GetResponse(ctx context.Context, id string) (*sipas.Response, string, [32]byte, error) {
	const op = "store.get_response"
	var hash [32]byte
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, "", hash, &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_FORMAT", Message: "response_id is not a UUID"}
	}
	var (
		r          = &sipas.Response{ID: uid.String()}
		provinceID string
		collected  int64
		channel    int64
		flags      int64
		h, payload []byte
	)
	err = s.reader.QueryRowContext(ctx, `SELECT questionnaire_id, province_code, province_id, collected_at, channel, unit_id, content_hash, payload, flags
		FROM responses WHERE response_id = ?`, uid[:]).
		Scan(&r.QuestionnaireID, &r.ProvinceCode, &provinceID, &collected, &channel, &r.UnitID, &h, &payload, &flags)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", hash, &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "RESPONSE_NOT_FOUND", Message: "no response with this id"}
	}
	if err != nil {
		return nil, "", hash, fmt.Errorf("%s: %w", op, err)
	}
	r.CollectedAt = time.Unix(0, collected).UTC()
	r.Channel = sipas.Channel(channel)
	r.Flags = sipas.Flags(flags)
	q := s.cat.Get(r.QuestionnaireID)
	if q == nil {
		return nil, "", hash, fmt.Errorf("%s: stored response of unknown questionnaire %q", op, r.QuestionnaireID)
	}
	if err := decodePayload(q, payload, r); err != nil {
		return nil, "", hash, fmt.Errorf("%s: %w", op, err)
	}
	if len(h) != len(hash) {
		return nil, "", hash, fmt.Errorf("%s: stored hash has %d bytes", op, len(h))
	}
	copy(hash[:], h)
	return r, provinceID, hash, nil
}

// ResponseSource returns which credential and which upload batch sent the
// stored response with the given id (both "" for responses stored before
// sources were recorded). An unknown id is a KindNotFound error.
func (s *Store) ResponseSource(ctx context.Context, id string) (sipas.Source, error) {
	const op = "store.response_source"
	var src sipas.Source
	uid, err := uuid.Parse(id)
	if err != nil {
		return src, &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_FORMAT", Message: "response_id is not a UUID"}
	}
	err = s.reader.QueryRowContext(ctx, "SELECT credential_id, batch_id FROM responses WHERE response_id = ?", uid[:]).
		Scan(&src.CredentialID, &src.BatchID)
	if errors.Is(err, sql.ErrNoRows) {
		return src, &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "RESPONSE_NOT_FOUND", Message: "no response with this id"}
	}
	if err != nil {
		return src, fmt.Errorf("%s: %w", op, err)
	}
	return src, nil
}
