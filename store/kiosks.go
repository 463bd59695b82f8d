package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sipas-vn/sipas"
)

// KioskHeartbeat is what a kiosk agent reports about itself.
type KioskHeartbeat struct {
	CredentialID  string
	Time          time.Time // server clock at arrival
	QueueDepth    int64
	OldestPending time.Duration
	DeadLetters   int64
	AgentVersion  string
	ClockOffset   time.Duration // kiosk minus server
	// LastResponse is when the kiosk last had a response stored, when
	// known; an earlier value never replaces a later one.
	LastResponse *time.Time
}

// Kiosk is a kiosk credential with its unit and its last heartbeat.
type Kiosk struct {
	CredentialID string
	Description  string
	CreateTime   time.Time // when the credential was issued
	Unit         Unit
	// Heartbeat is nil when the kiosk never reported.
	Heartbeat *KioskHeartbeat
}

// RecordKioskHeartbeat stores a kiosk's latest heartbeat in place of the
// previous one.
func (s *Store) RecordKioskHeartbeat(ctx context.Context, h KioskHeartbeat) error {
	const op = "store.record_kiosk_heartbeat"
	err := s.do(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kiosk_heartbeats (credential_id, heartbeat_time, queue_depth, oldest_pending_ns,
				dead_letters, agent_version, clock_offset_ns, last_response_time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (credential_id) DO UPDATE SET heartbeat_time = excluded.heartbeat_time,
				queue_depth = excluded.queue_depth, oldest_pending_ns = excluded.oldest_pending_ns,
				dead_letters = excluded.dead_letters, agent_version = excluded.agent_version,
				clock_offset_ns = excluded.clock_offset_ns,
				last_response_time = max(coalesce(last_response_time, 0), coalesce(excluded.last_response_time, 0))`,
			h.CredentialID, nanos(h.Time), h.QueueDepth, int64(h.OldestPending), h.DeadLetters, h.AgentVersion,
			int64(h.ClockOffset), nullTime(h.LastResponse))
		return err
	})
	if err != nil {
		return writeError(op, err)
	}
	return nil
}

// ListKiosks returns the active kiosk credentials with ids after afterID,
// in id order, at most limit (≤ 1000; 0 means 1000), each with its unit and
// last heartbeat.
func (s *Store) ListKiosks(ctx context.Context, afterID string, limit int) ([]Kiosk, error) {
	const op = "store.list_kiosks"
	rows, err := s.reader.QueryContext(ctx, `SELECT c.credential_id, c.description, c.create_time,
			u.unit_id, u.display_name, u.province_code, u.commune_code, u.create_time,
			h.heartbeat_time, h.queue_depth, h.oldest_pending_ns, h.dead_letters, h.agent_version, h.clock_offset_ns, h.last_response_time
		FROM credentials c JOIN units u ON u.unit_id = c.unit_id
		LEFT JOIN kiosk_heartbeats h ON h.credential_id = c.credential_id
		WHERE c.role = ? AND c.credential_id > ? AND c.revoke_time IS NULL AND (c.expire_time IS NULL OR c.expire_time > ?)
		ORDER BY c.credential_id LIMIT ?`, sipas.RoleKiosk, afterID, nanos(s.opts.Now()), pageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	var out []Kiosk
	for rows.Next() {
		var k Kiosk
		var ct, cct int64
		var hbTime, depth, oldest, dead, offset, last sql.NullInt64
		var version sql.NullString
		if err := rows.Scan(&k.CredentialID, &k.Description, &cct, &k.Unit.ID, &k.Unit.DisplayName, &k.Unit.ProvinceCode,
			&k.Unit.CommuneCode, &ct, &hbTime, &depth, &oldest, &dead, &version, &offset, &last); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		k.Unit.CreateTime, k.CreateTime = fromNanos(ct), fromNanos(cct)
		if hbTime.Valid {
			k.Heartbeat = &KioskHeartbeat{CredentialID: k.CredentialID, Time: fromNanos(hbTime.Int64), QueueDepth: depth.Int64,
				OldestPending: time.Duration(oldest.Int64), DeadLetters: dead.Int64, AgentVersion: version.String,
				ClockOffset: time.Duration(offset.Int64)}
			if last.Valid && last.Int64 > 0 {
				t := fromNanos(last.Int64)
				k.Heartbeat.LastResponse = &t
			}
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
