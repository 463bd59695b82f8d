-- 0001_init: the initial schema. Never edit a shipped migration; add a new file.

-- Responses are kept in arrival order (seq, the rowid) so that inserts append
-- to the table's B-tree; the client-generated id has its own unique index,
-- which is what deduplication relies on.
CREATE TABLE responses (
    seq              INTEGER PRIMARY KEY,
    response_id      BLOB    NOT NULL UNIQUE CHECK (length(response_id) = 16),
    questionnaire_id TEXT    NOT NULL,
    province_code    TEXT    NOT NULL,          -- as sent by the client
    province_id      TEXT    NOT NULL,          -- the province it is counted for
    collected_at     INTEGER NOT NULL,          -- unix nanoseconds
    month            INTEGER NOT NULL,          -- year*100+month, Vietnam time
    channel          INTEGER NOT NULL,
    unit_id          TEXT    NOT NULL DEFAULT '',
    content_hash     BLOB    NOT NULL CHECK (length(content_hash) = 32),
    payload          BLOB    NOT NULL           -- demographics + answers, see store/payload.go
);

-- One compact row per aggregate cell, rewritten in the same transaction as the
-- responses it counts. unit_id '' is the province-level cell.
CREATE TABLE tallies (
    questionnaire_id TEXT    NOT NULL,
    province_id      TEXT    NOT NULL,
    month            INTEGER NOT NULL,
    channel          INTEGER NOT NULL,
    unit_id          TEXT    NOT NULL DEFAULT '',
    data             BLOB    NOT NULL,          -- sipas.Tally.MarshalBinary
    PRIMARY KEY (questionnaire_id, province_id, month, channel, unit_id)
) WITHOUT ROWID;

CREATE TABLE units (
    unit_id       TEXT    PRIMARY KEY,
    display_name  TEXT    NOT NULL,
    province_code TEXT    NOT NULL,
    commune_code  TEXT    NOT NULL DEFAULT '',
    create_time   INTEGER NOT NULL               -- unix nanoseconds
);
CREATE INDEX units_by_province ON units (province_code, unit_id);

CREATE TABLE credentials (
    credential_id TEXT    PRIMARY KEY,
    token_hash    BLOB    NOT NULL UNIQUE,
    role          INTEGER NOT NULL,
    unit_id       TEXT    REFERENCES units (unit_id),  -- NULL when not bound to a unit
    provinces     TEXT    NOT NULL DEFAULT '',         -- comma-separated province codes
    all_provinces INTEGER NOT NULL DEFAULT 0,
    description   TEXT    NOT NULL DEFAULT '',
    create_time   INTEGER NOT NULL,                    -- unix nanoseconds
    expire_time   INTEGER,                             -- NULL: never expires
    revoke_time   INTEGER                              -- NULL: not revoked
);
CREATE INDEX credentials_by_unit ON credentials (unit_id);

CREATE TABLE audit_events (
    seq    INTEGER PRIMARY KEY,
    time   INTEGER NOT NULL,                     -- unix nanoseconds
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL DEFAULT '',
    detail TEXT    NOT NULL DEFAULT ''
);

-- Small facts about the database file: the SQLite version that last opened
-- it, the last readiness ping.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
