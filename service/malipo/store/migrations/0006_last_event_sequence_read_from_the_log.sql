-- A payment's last_event_sequence is read from the events table (store/rows.py,
-- last_event_sequence): the relay no longer stamps it on the row for every event it moves,
-- which cost an UPDATE per event and made writers of the same payments wait on the relay's
-- row locks. The column is dropped so nothing reads a value that is no longer kept.
ALTER TABLE payments DROP COLUMN last_event_sequence;
