-- The relay's move as one call: BEGIN, the state row's lock, the move and COMMIT were four
-- round trips per batch (store/events.py move_batch). The function keeps the two statements
-- the move needs and the order they run in:
-- 1. the state row's lock, so two relays (a leader deposed mid-batch) take turns;
-- 2. the move, in a snapshot taken after that lock was granted. A VOLATILE function takes a
--    fresh snapshot for each statement it runs under READ COMMITTED, which is what the two
--    statements sent one after the other had; under a stricter isolation level the second
--    statement would reuse a snapshot from before the wait and could move a batch again, so
--    the function refuses to run there.
-- Every CTE of the move sees the same snapshot: the rows inserted, the rows deleted and the
-- head advanced are exactly the same batch. NOTIFY (with the new head) is delivered at
-- commit, never before.
CREATE FUNCTION malipo_move_outbox(batch_limit integer, events_channel text)
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    log_head bigint;
    moved integer;
    recorded timestamptz;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'malipo_move_outbox needs READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    SELECT head INTO log_head FROM event_log_state WHERE id = 1 FOR UPDATE;
    -- After the lock: batches that take turns get increasing recorded_at (retention).
    recorded := clock_timestamp();
    WITH batch AS (
        SELECT id, payload FROM outbox ORDER BY id LIMIT batch_limit
    ), numbered AS (
        SELECT payload, log_head + row_number() OVER (ORDER BY id) AS sequence FROM batch
    ), inserted AS (
        INSERT INTO events (sequence, event_id, tenant, payment_id, direction, provider,
                            account, old_status, new_status, provider_status,
                            provider_reference, amount_minor, currency, reason, message,
                            fulfilment, needs_review, actor, occurred_at, provider_payload,
                            refund_id, recorded_at)
        SELECT n.sequence, r.event_id, r.tenant, r.payment_id, r.direction, r.provider,
               r.account, r.old_status, r.new_status, r.provider_status,
               r.provider_reference, r.amount_minor, r.currency, r.reason, r.message,
               r.fulfilment, r.needs_review, r.actor, r.occurred_at,
               -- outbox rows written before migration 0003 have no payload
               coalesce(r.provider_payload, '{}'::jsonb),
               coalesce(r.refund_id, ''),  -- only refund events name one (migration 0007)
               recorded
        FROM numbered n CROSS JOIN LATERAL jsonb_populate_record(NULL::events, n.payload) r
        RETURNING sequence
    ), removed AS (
        DELETE FROM outbox o WHERE o.id = ANY(ARRAY(SELECT id FROM batch))
    ), advanced AS (
        UPDATE event_log_state SET head = log_head + (SELECT count(*) FROM batch)
        WHERE id = 1 AND EXISTS (SELECT 1 FROM batch)
    )
    SELECT count(*) INTO moved FROM inserted;
    IF moved > 0 THEN
        -- The new head rides along: a hub with no live stream needs nothing else.
        PERFORM pg_notify(events_channel, (log_head + moved)::text);
    END IF;
    RETURN moved;
END
$$;
