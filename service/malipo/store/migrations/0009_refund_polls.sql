-- Refunds not yet final (PENDING, PROCESSING, UNKNOWN) are polled like payments
-- (app/refund_polls.py, store/refund_leases.py): a schedule, a lease fencing one poller at a
-- time, and a review flag for a refund no provider answer settles before the expiry rule.
ALTER TABLE refunds
    ADD COLUMN next_poll_at   timestamptz,
    ADD COLUMN claimed_until  timestamptz,
    ADD COLUMN poll_attempts  integer NOT NULL DEFAULT 0,
    ADD COLUMN needs_review   boolean NOT NULL DEFAULT false,
    ADD COLUMN review_reason  text NOT NULL DEFAULT '';

-- Refunds left unsettled before this migration are due at once.
UPDATE refunds SET next_poll_at = updated_at WHERE status IN ('PENDING', 'PROCESSING', 'UNKNOWN');

CREATE INDEX refunds_due ON refunds (next_poll_at) WHERE next_poll_at IS NOT NULL;
