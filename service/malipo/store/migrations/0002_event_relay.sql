-- Wakes the relay when writers commit outbox rows. NOTIFY is delivered at commit and only
-- wakes the relay, which then reads the table: a lost notification costs one poll interval.
CREATE FUNCTION malipo_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('malipo_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION malipo_outbox_notify();

-- Retention finds the newest event older than the cut-off without scanning the log.
CREATE INDEX events_recorded ON events (recorded_at);

-- How far the optional NATS export has been acknowledged; it resumes from here after a
-- crash or an outage, and JetStream de-duplicates the overlap by message id (the sequence).
ALTER TABLE event_log_state ADD COLUMN exported_through bigint NOT NULL DEFAULT 0;
