package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

// CountResponses returns the number of stored responses.
func (s *Store) CountResponses(ctx context.Context) (int64, error) {
	var n int64
	err := s.read(ctx, "pgstore.count_responses", func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, "SELECT count(*) FROM responses").Scan(&n)
	})
	return n, err
}

// GetResponse returns the stored response with the given id, the id of the
// province it is counted for and its content hash. An unknown id is a
// KindNotFound error.
func (s *Store) GetResponse(ctx context.Context, id string) (*sipas.Response, string, [32]byte, error) {
	const op = "pgstore.get_response"
	var hash [32]byte
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, "", hash, &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_FORMAT", Message: "response_id is not a UUID"}
	}
	var (
		r          = &sipas.Response{ID: uid.String()}
		provinceID string
		collected  int64
		channel    int16
		h, payload []byte
	)
	err = s.read(ctx, op, func(c *pgxpool.Conn) error {
		err := c.QueryRow(ctx, `SELECT questionnaire_id, province_code, province_id, collected_at, channel, unit_id, content_hash, payload
			FROM responses WHERE response_id = $1`, pgtype.UUID{Bytes: uid, Valid: true}).
			Scan(&r.QuestionnaireID, &r.ProvinceCode, &provinceID, &collected, &channel, &r.UnitID, &h, &payload)
		if errors.Is(err, pgx.ErrNoRows) {
			return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "RESPONSE_NOT_FOUND", Message: "no response with this id"}
		}
		return err
	})
	if err != nil {
		return nil, "", hash, err
	}
	r.CollectedAt = time.Unix(0, collected).UTC()
	r.Channel = sipas.Channel(channel)
	q := s.cat.Get(r.QuestionnaireID)
	if q == nil {
		return nil, "", hash, fmt.Errorf("%s: stored response of unknown questionnaire %q", op, r.QuestionnaireID)
	}
	if err := store.DecodePayload(q, payload, r); err != nil {
		return nil, "", hash, fmt.Errorf("%s: %w", op, err)
	}
	if len(h) != len(hash) {
		return nil, "", hash, fmt.Errorf("%s: stored hash has %d bytes", op, len(h))
	}
	copy(hash[:], h)
	return r, provinceID, hash, nil
}

var _ store.Backend = (*Store)(nil)
