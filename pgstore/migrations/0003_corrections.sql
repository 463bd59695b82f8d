-- 0003_corrections: SQLite's migration 0006 on PostgreSQL. Withdrawal and
-- amendment of stored responses, with a trail, and periods whose figures
-- are frozen.
--
-- A response row always holds the response's current version (version 1
-- as sent; 2, 3, ... after amendments), or is marked withdrawn (kept, so
-- that a resend of its id stays a duplicate and never brings it back; a
-- withdrawn response is in no aggregate cell). Each correction appends one
-- row to corrections holding the version it replaced, who made it and why,
-- ordered by cseq; the correction's transaction locks the response row and
-- updates the aggregate cells it changes (pgstore/corrections.go).
ALTER TABLE responses ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE responses ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;

CREATE TABLE corrections (
    cseq          bigint   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    response_id   uuid     NOT NULL REFERENCES responses (response_id),
    kind          smallint NOT NULL CHECK (kind IN (1, 2)),  -- 1 withdrawal, 2 amendment
    version       integer  NOT NULL,         -- the version replaced (withdrawn or amended)
    time          bigint   NOT NULL,         -- unix nanoseconds
    credential_id text     NOT NULL,         -- who made the correction
    reason        text     NOT NULL,
    -- The version replaced, as its responses row held it.
    province_code text     NOT NULL,
    province_id   text     NOT NULL,
    collected_at  bigint   NOT NULL,
    month         integer  NOT NULL,
    channel       smallint NOT NULL,
    unit_id       text     NOT NULL,
    content_hash  bytea    NOT NULL,
    payload       bytea    NOT NULL,
    flags         integer  NOT NULL
);
CREATE INDEX corrections_by_response ON corrections (response_id, cseq);

-- Closed periods: months whose figures are frozen. No response may be
-- added, amended or withdrawn in them (PERIOD_CLOSED). Every transaction
-- that writes responses holds a shared advisory lock while it checks this
-- table and until it commits; closing and reopening take it exclusively,
-- so a close never slips between another replica's check and its commit.
CREATE TABLE closed_periods (
    period     text    PRIMARY KEY,          -- "2025", "2025-Q1", "2025-03"
    from_month integer NOT NULL,             -- year*100+month
    to_month   integer NOT NULL,
    close_time bigint  NOT NULL,
    closed_by  text    NOT NULL,
    reason     text    NOT NULL DEFAULT ''
);
