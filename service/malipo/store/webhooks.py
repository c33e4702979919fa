"""Webhook endpoints in PostgreSQL: the RPCs' reads and writes, and the deliverer's claims.

An endpoint's row is its queue position (`cursor`) and its lease (`claimed_until`): claims
take due rows FOR UPDATE SKIP LOCKED, so replicas share endpoints and never deliver one
endpoint twice at once; every write of a delivery is fenced by the claim's token (the lease
end it wrote), so a deliverer whose lease ended or was reset by a redelivery changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import asyncpg

from malipo.app.webhooks import EndpointState, NewEndpoint, StoredEndpoint, WebhookEndpoint
from malipo.domain.events import StatusEvent
from malipo.store.events import EVENT_COLUMNS, LOG_HEAD, event_from_row

_FIELDS = ("id, tenant, url, description, state, cursor, attempts, last_error, "
           "next_attempt_at, failing_since, created_at, from_config")
_HEAD = LOG_HEAD

# Serialises creates per tenant until commit, so the count in _ADD (taken after it, in a new
# snapshot) sees every endpoint another create committed: without it two creates count at
# once, both see room, and the cap is passed. The two-key form keeps these apart from the
# single-key locks of migrations and the relay.
_TENANT_LOCK = "SELECT pg_advisory_xact_lock($1, hashtext($2))"
_ENDPOINTS_LOCK_SPACE = 0x77686B  # "whk"

_ADD = f"""
WITH inserted AS (
    INSERT INTO webhook_endpoints (id, tenant, url, description, secret, idempotency_key,
                                   fingerprint, cursor)
    SELECT $1, $2, $3, $4, $5, $6, $7, {_HEAD}
    WHERE (SELECT count(*) FROM webhook_endpoints WHERE tenant = $2) < $8
    ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key <> '' DO NOTHING
    RETURNING {_FIELDS}, secret, fingerprint
)
SELECT * FROM inserted
UNION ALL
SELECT {_FIELDS}, secret, fingerprint FROM webhook_endpoints
WHERE tenant = $2 AND idempotency_key = $6 AND NOT EXISTS (SELECT 1 FROM inserted)
"""

# A known id takes the file's secret, description and URL. A new URL (or secret) ends any
# lease, so a deliverer holding the old one is fenced out at its next write; a new URL also
# forgets the old one's failures (they were another receiver's) but keeps the cursor: the
# events not yet acknowledged go to the new URL rather than being skipped. (The app's
# config_endpoint_id hashes the URL, so a URL edited in the file arrives as a new endpoint;
# this keeps the port's promise to any caller that keeps an id.)
_PUT_CONFIG = f"""
INSERT INTO webhook_endpoints AS w (id, tenant, url, description, secret, from_config, cursor)
SELECT e.id, e.tenant, e.url, e.description, e.secret, true, {_HEAD}
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
     AS e(id, tenant, url, description, secret)
ON CONFLICT (id) DO UPDATE SET
    secret = excluded.secret, description = excluded.description, url = excluded.url,
    claimed_until = CASE WHEN (w.url, w.secret) = (excluded.url, excluded.secret)
                         THEN w.claimed_until END,
    state = CASE WHEN w.url = excluded.url THEN w.state ELSE 'ACTIVE' END,
    attempts = CASE WHEN w.url = excluded.url THEN w.attempts ELSE 0 END,
    failing_since = CASE WHEN w.url = excluded.url THEN w.failing_since END,
    last_error = CASE WHEN w.url = excluded.url THEN w.last_error ELSE '' END,
    next_attempt_at = CASE WHEN w.url = excluded.url THEN w.next_attempt_at ELSE now() END
"""


def endpoint_from_row(row: asyncpg.Record) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row["id"], tenant=row["tenant"], url=row["url"], description=row["description"],
        state=EndpointState(row["state"]), cursor=row["cursor"], attempts=row["attempts"],
        last_error=row["last_error"], next_attempt_at=row["next_attempt_at"],
        failing_since=row["failing_since"], created_at=row["created_at"],
        from_config=row["from_config"])


class PostgresWebhookEndpoints:
    """The app's WebhookEndpoints port; each method is one statement (one implicit tx), or
    one explicit transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, new: NewEndpoint, *, limit: int) -> StoredEndpoint | None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_TENANT_LOCK, _ENDPOINTS_LOCK_SPACE, new.tenant)
            row = await conn.fetchrow(
                _ADD, new.id, new.tenant, new.url, new.description, new.secret,
                new.idempotency_key, new.fingerprint, limit)
        if row is None:
            return None
        return StoredEndpoint(endpoint_from_row(row), row["secret"], row["fingerprint"])

    async def put_config(self, endpoints: Sequence[NewEndpoint]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                _PUT_CONFIG, [e.id for e in endpoints], [e.tenant for e in endpoints],
                [e.url for e in endpoints], [e.description for e in endpoints],
                [e.secret for e in endpoints])
            await conn.execute("DELETE FROM webhook_endpoints WHERE from_config "
                               "AND NOT id = ANY($1::text[])", [e.id for e in endpoints])

    async def list(self, tenant: str) -> Sequence[WebhookEndpoint]:
        rows = await self._pool.fetch(
            f"SELECT {_FIELDS} FROM webhook_endpoints WHERE tenant = $1 "
            "ORDER BY created_at, id", tenant)
        return [endpoint_from_row(r) for r in rows]

    async def get(self, tenant: str, endpoint_id: str) -> WebhookEndpoint | None:
        row = await self._pool.fetchrow(
            f"SELECT {_FIELDS} FROM webhook_endpoints WHERE tenant = $1 AND id = $2",
            tenant, endpoint_id)
        return None if row is None else endpoint_from_row(row)

    async def delete(self, tenant: str, endpoint_id: str) -> None:
        await self._pool.execute(
            "DELETE FROM webhook_endpoints WHERE tenant = $1 AND id = $2", tenant, endpoint_id)

    async def log_bounds(self) -> tuple[int, int]:
        row = await self._pool.fetchrow(
            "SELECT purged_through, head FROM event_log_state WHERE id = 1")
        assert row is not None
        return row["purged_through"], row["head"]

    async def rewind(self, tenant: str, endpoint_id: str,
                     cursor: int) -> WebhookEndpoint | None:
        row = await self._pool.fetchrow(
            "UPDATE webhook_endpoints SET cursor = $3, state = 'ACTIVE', attempts = 0, "
            "failing_since = NULL, last_error = '', next_attempt_at = now(), "
            "claimed_until = NULL "
            f"WHERE tenant = $1 AND id = $2 RETURNING {_FIELDS}", tenant, endpoint_id, cursor)
        return None if row is None else endpoint_from_row(row)


# --- the deliverer's side -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Claim:
    """One endpoint leased to one deliverer; `token` fences every write it makes."""

    id: str
    tenant: str
    url: str
    secret: str = field(repr=False)
    cursor: int
    attempts: int
    failing_since: datetime | None
    token: datetime


_DUE = ("webhook_endpoints WHERE state = 'ACTIVE' AND next_attempt_at <= now() "
        f"AND (claimed_until IS NULL OR claimed_until < now()) AND cursor < {_HEAD}")

_ANY_DUE = f"SELECT EXISTS (SELECT 1 FROM {_DUE})"

_CLAIM = f"""
UPDATE webhook_endpoints SET claimed_until = now() + make_interval(secs => $2)
WHERE id IN (SELECT id FROM {_DUE} ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, tenant, url, secret, cursor, attempts, failing_since, claimed_until
"""

# The tenant's next events after the cursor, and the head and purge mark of the same
# snapshot: no row up to head means every event up to head is another tenant's.
_NEXT = f"""
SELECT s.head, s.purged_through, e.* FROM event_log_state s LEFT JOIN LATERAL (
    SELECT {EVENT_COLUMNS} FROM events
    WHERE tenant = $1 AND sequence > $2 AND sequence <= s.head ORDER BY sequence LIMIT $3
) e ON true WHERE s.id = 1
"""


@dataclass(frozen=True, slots=True)
class Pending:
    events: list[StatusEvent]
    head: int
    purged_through: int


class DeliveryClaims:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def any_due(self) -> bool:
        return bool(await self._pool.fetchval(_ANY_DUE))

    async def claim(self, limit: int, lease_s: float) -> list[Claim]:
        rows = await self._pool.fetch(_CLAIM, limit, lease_s)
        return [Claim(r["id"], r["tenant"], r["url"], r["secret"], r["cursor"], r["attempts"],
                      r["failing_since"], r["claimed_until"]) for r in rows]

    async def pending(self, claim: Claim, after: int, limit: int) -> Pending:
        rows = await self._pool.fetch(_NEXT, claim.tenant, after, limit)
        events = [event_from_row(r) for r in rows if r["sequence"] is not None]
        return Pending(events, cast("int", rows[0]["head"]),
                       cast("int", rows[0]["purged_through"]))

    async def advance(self, claim: Claim, cursor: int) -> bool:
        """Acknowledged (or nothing of this tenant) up to `cursor`; False: the lease is lost
        (never moves the cursor back)."""
        done = await self._pool.execute(
            "UPDATE webhook_endpoints SET cursor = $3, attempts = 0, failing_since = NULL, "
            "last_error = '' WHERE id = $1 AND claimed_until = $2 AND cursor < $3",
            claim.id, claim.token, cursor)
        return done != "UPDATE 0"

    async def failed(self, claim: Claim, error: str, *, retry_in_s: float,
                     retry_for_s: float) -> bool:
        """Count a failed attempt and release: retry later, or turn FAILING once the first
        failure of this event is `retry_for_s` old. True when it turned FAILING."""
        state = await self._pool.fetchval(
            "UPDATE webhook_endpoints SET attempts = attempts + 1, last_error = $3, "
            "failing_since = coalesce(failing_since, now()), claimed_until = NULL, "
            "next_attempt_at = now() + make_interval(secs => $4), "
            "state = CASE WHEN coalesce(failing_since, now()) "
            "  <= now() - make_interval(secs => $5) THEN 'FAILING' ELSE 'ACTIVE' END "
            "WHERE id = $1 AND claimed_until = $2 RETURNING state",
            claim.id, claim.token, error[:200], retry_in_s, retry_for_s)
        return state == EndpointState.FAILING.value

    async def release(self, claim: Claim) -> None:
        await self._pool.execute(
            "UPDATE webhook_endpoints SET claimed_until = NULL "
            "WHERE id = $1 AND claimed_until = $2", claim.id, claim.token)
