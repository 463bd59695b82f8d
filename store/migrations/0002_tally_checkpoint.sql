-- 0002_tally_checkpoint: the tallies table becomes a checkpoint of the
-- in-memory aggregates, with the seq of the last response it counts; start-up
-- replays the responses after it. Before this migration the tallies were
-- rewritten in the same transaction as the responses, so they count every
-- stored response.
INSERT INTO meta (key, value)
SELECT 'tallies_seq', CAST(coalesce(max(seq), 0) AS TEXT) FROM responses;
