-- Outbound webhook endpoints, one row each, holding its own delivery cursor: the event log
-- is the queue, so nothing is copied per endpoint and a restart resumes from `cursor`.
-- Touches no table of another migration but `events`' existing index (tenant, sequence).
CREATE TABLE webhook_endpoints (
    id                text PRIMARY KEY,
    tenant            text NOT NULL,
    url               text NOT NULL,
    -- "whsec_" + base64: needed in clear to sign; never logged, never listed.
    secret            text NOT NULL,
    description       text NOT NULL DEFAULT '',
    from_config       boolean NOT NULL DEFAULT false,
    -- CreateWebhookEndpoint's idempotency key and request fingerprint ('' for config rows).
    idempotency_key   text NOT NULL DEFAULT '',
    fingerprint       text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- Every event of the tenant up to here is acknowledged (2xx) or was never to be sent.
    cursor            bigint NOT NULL,
    state             text NOT NULL DEFAULT 'ACTIVE' CHECK (state IN ('ACTIVE', 'FAILING')),
    attempts          integer NOT NULL DEFAULT 0,
    failing_since     timestamptz,
    last_error        text NOT NULL DEFAULT '',
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    -- One deliverer per endpoint (order): a lease, claimed FOR UPDATE SKIP LOCKED; its value
    -- is the claim's token, so a late write of a lost lease changes nothing.
    claimed_until     timestamptz
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant, created_at, id);
CREATE UNIQUE INDEX webhook_endpoints_idempotency ON webhook_endpoints (tenant, idempotency_key)
    WHERE idempotency_key <> '';
CREATE INDEX webhook_endpoints_due ON webhook_endpoints (next_attempt_at) WHERE state = 'ACTIVE';
