-- Every event the relay moves paid for five indexes; two of them nobody reads.
-- - events.event_id UNIQUE: no statement looks an event up by its id. The id is a version 4
--   UUID (122 random bits, store/rows.py), so the index only made each insert descend to a
--   random leaf, the costliest of the five to keep.
-- - events_recorded: retention's cut-off now walks the primary key from the purged end
--   (store/events.py purge_events): recorded_at grows with sequence, since batches take
--   turns under the log's lock and stamp their time after it, so the first young event ends
--   the walk, and the rows walked are the ones about to be deleted anyway.
ALTER TABLE events DROP CONSTRAINT events_event_id_key;
DROP INDEX events_recorded;
