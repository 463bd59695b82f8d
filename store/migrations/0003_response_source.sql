-- 0003_response_source: every stored response records which credential and
-- which upload batch sent it, so that bad data can be traced; rows stored
-- before this migration have ''. Unit ids are unique regardless of case: the
-- store checks it (in the writer's transaction) through this index, which
-- is not UNIQUE so that a database holding ids that differ only in case
-- still opens.
ALTER TABLE responses ADD COLUMN credential_id TEXT NOT NULL DEFAULT '';
ALTER TABLE responses ADD COLUMN batch_id TEXT NOT NULL DEFAULT '';
CREATE INDEX units_by_folded_id ON units (unit_id COLLATE NOCASE);
