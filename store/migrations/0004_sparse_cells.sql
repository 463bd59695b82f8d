-- 0004_sparse_cells: the aggregate cells become the persisted truth, read by
-- key range and cached, instead of a checkpoint of memory loaded whole at
-- start-up. Each row holds one cell in the sparse encoding of
-- sipas.SparseTally (its non-zero counters only). The key leads with kind
-- (0: a province-level cell, unit_id ''; 1: a unit's cell) and the month, so
-- that the province cells of a period (rankings, series) and the unit cells
-- of a province and month are each one contiguous range. seq is the
-- watermark (tallies_seq) of the flush that last wrote the row: replicas
-- over one database can ask for the cells changed since what they cached.
--
-- The rows of the old layout (dense encoding) are not converted in SQL: the
-- table starts empty and tallies_seq goes back to 0, so the first start
-- after this migration counts every stored response once into the new
-- table (replay, flushed in bounded steps, logged as "aggregates
-- replayed").
DROP TABLE tallies;
CREATE TABLE tallies (
    questionnaire_id TEXT    NOT NULL,
    kind             INTEGER NOT NULL CHECK (kind = (unit_id <> '')),
    month            INTEGER NOT NULL,
    province_id      TEXT    NOT NULL,
    unit_id          TEXT    NOT NULL DEFAULT '',
    channel          INTEGER NOT NULL,
    seq              INTEGER NOT NULL,
    data             BLOB    NOT NULL,          -- sipas.SparseTally.MarshalBinary
    PRIMARY KEY (questionnaire_id, kind, month, province_id, unit_id, channel)
) WITHOUT ROWID;
UPDATE meta SET value = '0' WHERE key = 'tallies_seq';
