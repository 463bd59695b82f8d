-- 0005_kiosk_flags_heartbeats: data-quality flags on responses, and the
-- health kiosk agents report.

-- Flags (sipas.Flags bits) the collecting device raised; 0 for none. A
-- flagged response is kept but not counted in the aggregates; indices that
-- include flagged responses, or say how many they left out, read them through
-- the partial index below, which holds only the (rare) flagged rows.
ALTER TABLE responses ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
CREATE INDEX responses_flagged ON responses (questionnaire_id, month) WHERE flags <> 0;

-- The last heartbeat of each kiosk credential, and the last time it had a
-- response stored (recorded with the heartbeats).
CREATE TABLE kiosk_heartbeats (
    credential_id      TEXT    PRIMARY KEY REFERENCES credentials (credential_id),
    heartbeat_time     INTEGER NOT NULL,           -- unix nanoseconds, server clock
    queue_depth        INTEGER NOT NULL,
    oldest_pending_ns  INTEGER NOT NULL,
    dead_letters       INTEGER NOT NULL,
    agent_version      TEXT    NOT NULL,
    clock_offset_ns    INTEGER NOT NULL,           -- kiosk minus server
    last_response_time INTEGER                     -- unix nanoseconds; NULL: none recorded
) WITHOUT ROWID;
