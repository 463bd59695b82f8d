-- 0002_source_flags_heartbeats: SQLite's migrations 0003 and 0005 on
-- PostgreSQL. Every stored response records which credential and which
-- upload batch sent it (rows stored before have ''), and the data-quality
-- flags its device raised (0: none; a flagged response is kept but not
-- counted in the aggregate cells, and read through the partial index when
-- an index includes flagged responses). Unit ids are unique regardless of
-- case, enforced by a unique index on the folded id. Kiosk agents' last
-- heartbeats.
ALTER TABLE responses ADD COLUMN credential_id text NOT NULL DEFAULT '';
ALTER TABLE responses ADD COLUMN batch_id text NOT NULL DEFAULT '';
ALTER TABLE responses ADD COLUMN flags integer NOT NULL DEFAULT 0;
CREATE INDEX responses_flagged ON responses (questionnaire_id, month) WHERE flags <> 0;

CREATE UNIQUE INDEX units_by_folded_id ON units (lower(unit_id));

CREATE TABLE kiosk_heartbeats (
    credential_id      text    PRIMARY KEY REFERENCES credentials (credential_id),
    heartbeat_time     bigint  NOT NULL,           -- unix nanoseconds, server clock
    queue_depth        bigint  NOT NULL,
    oldest_pending_ns  bigint  NOT NULL,
    dead_letters       bigint  NOT NULL,
    agent_version      text    NOT NULL,
    clock_offset_ns    bigint  NOT NULL,           -- kiosk minus server
    last_response_time bigint                      -- unix nanoseconds; NULL: none recorded
);
