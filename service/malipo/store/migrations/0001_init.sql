-- Payments and payouts share one table: one lifecycle, one transition guard.
CREATE TABLE payments (
    id                  text PRIMARY KEY,
    tenant              text NOT NULL,
    direction           text NOT NULL,
    provider            text NOT NULL,
    account             text NOT NULL,
    method              text NOT NULL,
    channel             text NOT NULL DEFAULT '',
    country             text NOT NULL DEFAULT '',
    amount_minor        bigint NOT NULL CHECK (amount_minor > 0),
    currency            text NOT NULL,
    customer            jsonb NOT NULL,
    provider_fields     jsonb NOT NULL,
    description         text NOT NULL DEFAULT '',
    metadata            jsonb NOT NULL,
    idempotency_key     text NOT NULL,
    status              text NOT NULL,
    provider_reference  text NOT NULL DEFAULT '',
    provider_status     text NOT NULL DEFAULT '',
    provider_message    text NOT NULL DEFAULT '',
    failure_reason      text NOT NULL DEFAULT '',
    failure_message     text NOT NULL DEFAULT '',
    next_action         jsonb,
    fulfilment          jsonb NOT NULL DEFAULT '{}',
    needs_review        boolean NOT NULL DEFAULT false,
    review_reason       text NOT NULL DEFAULT '',
    last_event_sequence bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    -- 'NEW' until the provider's first answer (or an unknown outcome) is recorded: a crash
    -- in between leaves it 'NEW' and the reconciler resumes it.
    submit_state        text NOT NULL DEFAULT 'NEW',
    next_poll_at        timestamptz,
    poll_attempts       integer NOT NULL DEFAULT 0,
    claimed_until       timestamptz
);
CREATE INDEX payments_listing ON payments (tenant, direction, created_at DESC, id DESC);
-- One provider transaction can back one payment only (no double credit of a KKiaPay id).
CREATE UNIQUE INDEX payments_provider_reference
    ON payments (provider, account, provider_reference) WHERE provider_reference <> '';
CREATE INDEX payments_due ON payments (next_poll_at) WHERE next_poll_at IS NOT NULL;

CREATE TABLE idempotency_keys (
    tenant       text NOT NULL,
    key          text NOT NULL,
    operation    text NOT NULL,
    fingerprint  text NOT NULL,
    resource_id  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

-- Written in the same transaction as each state change; moved in commit order into
-- `events` by the single relay, which gives the gap-free sequence.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    sequence            bigint PRIMARY KEY,
    event_id            uuid NOT NULL UNIQUE,
    tenant              text NOT NULL,
    payment_id          text NOT NULL,
    direction           text NOT NULL,
    provider            text NOT NULL,
    account             text NOT NULL,
    old_status          text NOT NULL DEFAULT '',
    new_status          text NOT NULL,
    provider_status     text NOT NULL DEFAULT '',
    provider_reference  text NOT NULL DEFAULT '',
    amount_minor        bigint NOT NULL,
    currency            text NOT NULL,
    reason              text NOT NULL DEFAULT '',
    message             text NOT NULL DEFAULT '',
    fulfilment          jsonb NOT NULL DEFAULT '{}',
    needs_review        boolean NOT NULL DEFAULT false,
    actor               text NOT NULL DEFAULT '',
    occurred_at         timestamptz NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_tenant ON events (tenant, sequence);
CREATE INDEX events_payment ON events (payment_id, sequence);

CREATE TABLE event_log_state (
    id              integer PRIMARY KEY CHECK (id = 1),
    head            bigint NOT NULL,
    purged_through  bigint NOT NULL
);
INSERT INTO event_log_state VALUES (1, 0, 0);

-- Every callback delivery, raw, before anything else is done with it.
CREATE TABLE callback_journal (
    id           bigserial PRIMARY KEY,
    provider     text NOT NULL,
    account      text NOT NULL,
    received_at  timestamptz NOT NULL,
    remote       text NOT NULL DEFAULT '',
    headers      jsonb NOT NULL,
    body         bytea NOT NULL,
    body_sha256  text NOT NULL,
    outcome      text NOT NULL DEFAULT 'RECEIVED',
    detail       text NOT NULL DEFAULT ''
);
CREATE INDEX callback_journal_body ON callback_journal (provider, account, body_sha256);

-- One row per provider event (a delivery may carry many): the de-duplication identity.
CREATE TABLE callback_events (
    provider            text NOT NULL,
    account             text NOT NULL,
    event_key           text NOT NULL,
    journal_id          bigint NOT NULL REFERENCES callback_journal (id),
    payment_id          text NOT NULL DEFAULT '',
    provider_reference  text NOT NULL DEFAULT '',
    outcome             text NOT NULL,
    event               jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, account, event_key)
);
CREATE INDEX callback_events_deferred ON callback_events (provider, account, provider_reference)
    WHERE outcome = 'DEFERRED';

CREATE TABLE provider_exchanges (
    id             bigserial PRIMARY KEY,
    payment_id     text NOT NULL,
    tenant         text NOT NULL,
    provider       text NOT NULL,
    operation      text NOT NULL,
    method         text NOT NULL,
    path           text NOT NULL,
    request_body   text NOT NULL,
    status         integer NOT NULL,
    response_body  text NOT NULL,
    latency_ms     double precision NOT NULL,
    error          text NOT NULL DEFAULT '',
    at             timestamptz NOT NULL
);
CREATE INDEX provider_exchanges_payment ON provider_exchanges (payment_id, id);
