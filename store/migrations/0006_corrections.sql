-- 0006_corrections: withdrawal and amendment of stored responses, with a
-- trail, and periods whose figures are frozen.
--
-- A response row always holds the response's current version (version 1
-- as sent; 2, 3, ... after amendments), or is marked withdrawn (kept, so
-- that a resend of its id stays a duplicate and never brings it back).
-- Each correction appends one row to corrections holding the version it
-- replaced, who made it and why; its cseq orders corrections the way seq
-- orders responses. The aggregates' checkpoint records the last correction
-- it counts (meta corrections_seq) beside tallies_seq, and start-up replays
-- the corrections after it (see store/corrections.go).
ALTER TABLE responses ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE responses ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;

CREATE TABLE corrections (
    cseq          INTEGER PRIMARY KEY,
    response_seq  INTEGER NOT NULL REFERENCES responses (seq),
    kind          INTEGER NOT NULL CHECK (kind IN (1, 2)),  -- 1 withdrawal, 2 amendment
    version       INTEGER NOT NULL,          -- the version replaced (withdrawn or amended)
    time          INTEGER NOT NULL,          -- unix nanoseconds
    credential_id TEXT    NOT NULL,          -- who made the correction
    reason        TEXT    NOT NULL,
    -- The version replaced, as its responses row held it.
    province_code TEXT    NOT NULL,
    province_id   TEXT    NOT NULL,
    collected_at  INTEGER NOT NULL,
    month         INTEGER NOT NULL,
    channel       INTEGER NOT NULL,
    unit_id       TEXT    NOT NULL,
    content_hash  BLOB    NOT NULL,
    payload       BLOB    NOT NULL,
    flags         INTEGER NOT NULL
);
CREATE INDEX corrections_by_response ON corrections (response_seq, cseq);

INSERT INTO meta (key, value) VALUES ('corrections_seq', '0');

-- Closed periods: months whose figures are frozen. No response may be
-- added, amended or withdrawn in them (PERIOD_CLOSED).
CREATE TABLE closed_periods (
    period     TEXT    PRIMARY KEY,          -- "2025", "2025-Q1", "2025-03"
    from_month INTEGER NOT NULL,             -- year*100+month
    to_month   INTEGER NOT NULL,
    close_time INTEGER NOT NULL,
    closed_by  TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT ''
) WITHOUT ROWID;
