-- Refunds are their own resources (several partial refunds per collection). Their sum, less
-- FAILED ones, never exceeds the payment's amount: store/refunds.py inserts under the
-- payment's row lock and checks the sum in the inserting statement.
CREATE TABLE refunds (
    id                  text PRIMARY KEY,
    payment_id          text NOT NULL REFERENCES payments (id),
    tenant              text NOT NULL,
    amount_minor        bigint NOT NULL CHECK (amount_minor > 0),
    currency            text NOT NULL,
    status              text NOT NULL,
    reason              text NOT NULL DEFAULT '',
    provider_reference  text NOT NULL DEFAULT '',
    provider_status     text NOT NULL DEFAULT '',
    failure_reason      text NOT NULL DEFAULT '',
    failure_message     text NOT NULL DEFAULT '',
    idempotency_key     text NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment_id, created_at, id);

-- Events of a refund name it; '' for the payment's own events. A constant default makes
-- this a catalogue-only change.
ALTER TABLE events ADD COLUMN refund_id text NOT NULL DEFAULT '';

-- The journal of operators' resolutions (ResolvePayment): kept like the payments
-- themselves, not purged with the provider exchange log.
CREATE TABLE payment_resolutions (
    id               text PRIMARY KEY,
    payment_id       text NOT NULL REFERENCES payments (id),
    tenant           text NOT NULL,
    operator         text NOT NULL,
    key_id           text NOT NULL,
    from_status      text NOT NULL,
    to_status        text NOT NULL,
    review_reason    text NOT NULL DEFAULT '',
    reason           text NOT NULL,
    evidence         text NOT NULL,
    idempotency_key  text NOT NULL,
    resolved_at      timestamptz NOT NULL
);
CREATE INDEX payment_resolutions_payment ON payment_resolutions (payment_id, resolved_at);
