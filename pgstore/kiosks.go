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

// RecordKioskHeartbeat stores a kiosk's latest heartbeat in place of the
// previous one; the time of its last stored response never goes back.
func (s *Store) RecordKioskHeartbeat(ctx context.Context, h store.KioskHeartbeat) error {
	const op = "pgstore.record_kiosk_heartbeat"
	err := s.write(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO kiosk_heartbeats AS k (credential_id, heartbeat_time, queue_depth, oldest_pending_ns,
				dead_letters, agent_version, clock_offset_ns, last_response_time)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (credential_id) DO UPDATE SET heartbeat_time = excluded.heartbeat_time,
				queue_depth = excluded.queue_depth, oldest_pending_ns = excluded.oldest_pending_ns,
				dead_letters = excluded.dead_letters, agent_version = excluded.agent_version,
				clock_offset_ns = excluded.clock_offset_ns,
				last_response_time = greatest(coalesce(k.last_response_time, 0), coalesce(excluded.last_response_time, 0))`,
			h.CredentialID, h.Time.UnixNano(), h.QueueDepth, int64(h.OldestPending), h.DeadLetters, h.AgentVersion,
			int64(h.ClockOffset), nullTime(h.LastResponse))
		return err
	})
	if err != nil {
		return dbError(op, err)
	}
	return nil
}

// ListKiosks returns the active kiosk credentials with ids after afterID,
// in id order, at most limit (≤ 1000; 0 means 1000), each with its unit and
// last heartbeat.
func (s *Store) ListKiosks(ctx context.Context, afterID string, limit int) ([]store.Kiosk, error) {
	var out []store.Kiosk
	err := s.read(ctx, "pgstore.list_kiosks", func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT c.credential_id, c.description, c.create_time,
				u.unit_id, u.display_name, u.province_code, u.commune_code, u.create_time,
				h.heartbeat_time, h.queue_depth, h.oldest_pending_ns, h.dead_letters, h.agent_version, h.clock_offset_ns, h.last_response_time
			FROM credentials c JOIN units u ON u.unit_id = c.unit_id
			LEFT JOIN kiosk_heartbeats h ON h.credential_id = c.credential_id
			WHERE c.role = $1 AND c.credential_id > $2 COLLATE "C" AND c.revoke_time IS NULL AND (c.expire_time IS NULL OR c.expire_time > $3)
			ORDER BY c.credential_id COLLATE "C" LIMIT $4`, int32(sipas.RoleKiosk), afterID, s.opts.Now().UnixNano(), pageSize(limit))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Kiosk, error) {
			var k store.Kiosk
			var ct, cct int64
			var hbTime, depth, oldest, dead, offset, last *int64
			var version *string
			if err := r.Scan(&k.CredentialID, &k.Description, &cct, &k.Unit.ID, &k.Unit.DisplayName, &k.Unit.ProvinceCode,
				&k.Unit.CommuneCode, &ct, &hbTime, &depth, &oldest, &dead, &version, &offset, &last); err != nil {
				return k, err
			}
			k.Unit.CreateTime, k.CreateTime = fromNanos(ct), fromNanos(cct)
			if hbTime != nil {
				k.Heartbeat = &store.KioskHeartbeat{CredentialID: k.CredentialID, Time: fromNanos(*hbTime), QueueDepth: *depth,
					OldestPending: time.Duration(*oldest), DeadLetters: *dead, AgentVersion: *version, ClockOffset: time.Duration(*offset)}
				if last != nil && *last > 0 {
					t := fromNanos(*last)
					k.Heartbeat.LastResponse = &t
				}
			}
			return k, nil
		})
		return err
	})
	return out, err
}

// ResponseSource returns which credential and which upload batch sent the
// stored response with the given id. An unknown id is a KindNotFound error.
func (s *Store) ResponseSource(ctx context.Context, id string) (sipas.Source, error) {
	const op = "pgstore.response_source"
	var src sipas.Source
	uid, err := uuid.Parse(id)
	if err != nil {
		return src, &sipas.Error{Kind: sipas.KindInvalid, Op: op, Reason: "INVALID_FORMAT", Message: "response_id is not a UUID"}
	}
	err = s.read(ctx, op, func(c *pgxpool.Conn) error {
		err := c.QueryRow(ctx, "SELECT credential_id, batch_id FROM responses WHERE response_id = $1", pgtype.UUID{Bytes: uid, Valid: true}).
			Scan(&src.CredentialID, &src.BatchID)
		if errors.Is(err, pgx.ErrNoRows) {
			return &sipas.Error{Kind: sipas.KindNotFound, Op: op, Reason: "RESPONSE_NOT_FOUND", Message: "no response with this id"}
		}
		return err
	})
	return src, err
}

// FlaggedCells counts the flagged responses of a questionnaire in
// fromMonth..toMonth (of one channel unless ChannelUnspecified) into cells
// as the aggregates would, and returns how many it read; the aggregate
// cells never count them. The partial index responses_flagged holds only
// flagged rows.
func (s *Store) FlaggedCells(ctx context.Context, questionnaireID string, fromMonth, toMonth int, channel sipas.Channel) (map[sipas.CellKey]*sipas.Tally, int, error) {
	const op = "pgstore.flagged_cells"
	q := s.cat.Get(questionnaireID)
	if q == nil {
		return nil, 0, nil
	}
	out := map[sipas.CellKey]*sipas.Tally{}
	n := 0
	err := s.read(ctx, op, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT province_id, month, channel, unit_id, payload FROM responses
			WHERE questionnaire_id = $1 AND month BETWEEN $2 AND $3 AND flags <> 0 AND NOT withdrawn AND ($4 = 0 OR channel = $4)`,
			questionnaireID, int32(fromMonth), int32(toMonth), int16(channel))
		if err != nil {
			return err
		}
		var (
			k       = sipas.CellKey{QuestionnaireID: questionnaireID}
			m       int32
			ch      int16
			payload []byte
			seen    []bool
		)
		_, err = pgx.ForEachRow(rows, []any{&k.ProvinceID, &m, &ch, &k.UnitID, &payload}, func() error {
			k.Month, k.Channel = int(m), sipas.Channel(ch)
			r := &sipas.Response{QuestionnaireID: questionnaireID}
			if err := store.DecodePayload(q, payload, r); err != nil {
				return fmt.Errorf("flagged response: %w", err)
			}
			if len(seen) < len(q.Nodes) {
				seen = make([]bool, len(q.Nodes))
			}
			for _, key := range store.CountedIn(k, 0) {
				t := out[key]
				if t == nil {
					t = sipas.NewTally(q)
					out[key] = t
				}
				t.Add(q, r, seen)
			}
			n++
			return nil
		})
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return out, n, nil
}
