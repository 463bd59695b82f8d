-- 0001_init: the PostgreSQL schema, equivalent to SQLite's migrations
-- 0001-0002 (store/migrations). Never edit a shipped migration; add a new
-- file. Times are unix nanoseconds (bigint) as in SQLite, so that both
-- backends return the same values.

-- Responses: the client-generated id is the primary key, which is what
-- exactly-once relies on across replicas (INSERT ... ON CONFLICT DO
-- NOTHING in the insert transaction, never check-then-insert). seq orders
-- them for recounts (unique by construction; no index of its own, which
-- every insert would have to maintain).
CREATE TABLE responses (
    response_id      uuid     PRIMARY KEY,
    seq              bigint   GENERATED ALWAYS AS IDENTITY,
    questionnaire_id text     NOT NULL,
    province_code    text     NOT NULL,          -- as sent by the client
    province_id      text     NOT NULL,          -- the province it is counted for
    collected_at     bigint   NOT NULL,          -- unix nanoseconds
    month            integer  NOT NULL,          -- year*100+month, Vietnam time
    channel          smallint NOT NULL,
    unit_id          text     NOT NULL DEFAULT '',
    content_hash     bytea    NOT NULL CHECK (length(content_hash) = 32),
    payload          bytea    NOT NULL           -- demographics + answers, see store/payload.go
);

-- Aggregate cells, the shared truth of every replica, in the layout of
-- SQLite's migration 0004 (issue 13): one row per cell in the sparse
-- encoding of sipas.SparseTally, the key leading with kind (0: a
-- province-level cell, unit_id ''; 1: a unit's cell) and the month. Each
-- insert transaction adds its responses to the cells they are counted in
-- (the rows locked in key order, read, added to and rewritten), so the cells
-- always count exactly the stored responses. rev counts the writes of a row;
-- xid is the transaction that last wrote it, so that a replica can read the
-- cells changed since its last read (see pgstore/cells.go).
CREATE TABLE tallies (
    questionnaire_id text     NOT NULL,
    kind             smallint NOT NULL CHECK (kind = (unit_id <> '')::int),
    month            integer  NOT NULL,
    province_id      text     NOT NULL,
    unit_id          text     NOT NULL DEFAULT '',
    channel          smallint NOT NULL,
    data             bytea    NOT NULL,          -- sipas.SparseTally.MarshalBinary
    rev              bigint   NOT NULL DEFAULT 1,
    xid              xid8     NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (questionnaire_id, kind, month, province_id, unit_id, channel)
);
CREATE INDEX tallies_by_xid ON tallies (xid);

CREATE TABLE units (
    unit_id       text   PRIMARY KEY,
    display_name  text   NOT NULL,
    province_code text   NOT NULL,
    commune_code  text   NOT NULL DEFAULT '',
    create_time   bigint NOT NULL
);
CREATE INDEX units_by_province ON units (province_code, unit_id);

CREATE TABLE credentials (
    credential_id text    PRIMARY KEY,
    token_hash    bytea   NOT NULL UNIQUE,
    role          integer NOT NULL,
    unit_id       text    REFERENCES units (unit_id),  -- NULL when not bound to a unit
    provinces     text    NOT NULL DEFAULT '',         -- comma-separated province codes
    all_provinces boolean NOT NULL DEFAULT false,
    description   text    NOT NULL DEFAULT '',
    create_time   bigint  NOT NULL,
    expire_time   bigint,                              -- NULL: never expires
    revoke_time   bigint                               -- NULL: not revoked
);
CREATE INDEX credentials_by_unit ON credentials (unit_id);

CREATE TABLE audit_events (
    seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time   bigint NOT NULL,
    actor  text   NOT NULL,
    action text   NOT NULL,
    target text   NOT NULL DEFAULT '',
    detail text   NOT NULL DEFAULT ''
);

-- Small facts: the last readiness ping of each replica.
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
