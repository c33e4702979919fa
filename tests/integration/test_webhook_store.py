"""Webhook endpoints in PostgreSQL: exclusive fenced claims, the tenant's events in order from
the cursor, the retry budget, and the config file's endpoints."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import asyncpg

from malipo.app.webhooks import EndpointState, NewEndpoint
from malipo.store.events import move_batch
from malipo.store.unit_of_work import create_pool
from malipo.store.webhooks import DeliveryClaims, PostgresWebhookEndpoints
from malipo.webhooks.signing import new_secret
from tests.integration.streaming.writers import insert_outbox, payload


def endpoint(tenant: str, **fields: Any) -> NewEndpoint:
    return replace(NewEndpoint(
        id=f"whe_{uuid.uuid4().hex}", tenant=tenant, url="https://h.example/in",
        description="", secret=new_secret(), idempotency_key=uuid.uuid4().hex,
        fingerprint="f1"), **fields)


async def add(store: PostgresWebhookEndpoints, new: NewEndpoint) -> str:
    stored = await store.add(new, limit=20)
    assert stored is not None
    return stored.endpoint.id


async def events(pool: asyncpg.Pool, *tenants: str) -> None:
    await insert_outbox(pool, [payload(t, f"pay_{t}_{i}", step=i) for i, t in enumerate(tenants)])
    async with pool.acquire() as conn:
        while await move_batch(conn, 100):
            pass


async def clear(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM webhook_endpoints")


async def test_two_claimers_split_endpoints_and_a_held_lease_is_not_claimed_again(
        pool: asyncpg.Pool, database_url: str) -> None:
    await clear(pool)
    store = PostgresWebhookEndpoints(pool)
    added = {await add(store, endpoint("acme")) for _ in range(4)}
    await events(pool, "acme")
    other = await create_pool(database_url, min_size=1, max_size=2)
    try:
        first, second = await asyncio.gather(DeliveryClaims(pool).claim(4, 30),
                                             DeliveryClaims(other).claim(4, 30))
    finally:
        await other.close()
    assert {c.id for c in first} | {c.id for c in second} == added
    assert not {c.id for c in first} & {c.id for c in second}
    assert await DeliveryClaims(pool).claim(4, 30) == []
    assert not await DeliveryClaims(pool).any_due()


async def test_pending_is_the_tenants_events_in_order_and_writes_are_fenced(
        pool: asyncpg.Pool) -> None:
    await clear(pool)
    store, claims = PostgresWebhookEndpoints(pool), DeliveryClaims(pool)
    stored = await store.add(endpoint("acme"), limit=20)
    assert stored is not None
    start = stored.endpoint.cursor
    await events(pool, "acme", "globex", "acme", "globex", "acme")
    [claim] = await claims.claim(10, 30)
    pending = await claims.pending(claim, claim.cursor, 10)
    assert [e.tenant for e in pending.events] == ["acme"] * 3
    assert [e.sequence for e in pending.events] == [start + 1, start + 3, start + 5]
    assert pending.head == start + 5
    assert await claims.advance(claim, start + 1)
    assert [e.sequence for e in (await claims.pending(claim, start + 1, 10)).events] == [
        start + 3, start + 5]

    rewound = await store.rewind("acme", claim.id, start)  # a redelivery ends the lease
    assert rewound is not None and rewound.cursor == start
    assert not await claims.advance(claim, start + 3)
    assert not await claims.failed(claim, "HTTP 500", retry_in_s=0, retry_for_s=0)
    got = await store.get("acme", claim.id)
    assert got is not None
    assert (got.cursor, got.attempts, got.state) == (start, 0, EndpointState.ACTIVE)
    assert await store.get("globex", claim.id) is None


async def test_a_refusal_past_the_budget_turns_failing_and_a_rewind_revives(
        pool: asyncpg.Pool) -> None:
    await clear(pool)
    store, claims = PostgresWebhookEndpoints(pool), DeliveryClaims(pool)
    stored = await store.add(endpoint("acme"), limit=20)
    assert stored is not None
    await events(pool, "acme")
    [claim] = await claims.claim(10, 30)
    assert not await claims.failed(claim, "HTTP 503", retry_in_s=0, retry_for_s=3600)
    [claim] = await claims.claim(10, 30)
    assert claim.attempts == 1 and claim.failing_since is not None
    assert await claims.failed(claim, "timeout", retry_in_s=0, retry_for_s=0)
    got = await store.get("acme", claim.id)
    assert got is not None
    assert (got.state, got.attempts, got.last_error) == (EndpointState.FAILING, 2, "timeout")
    assert await claims.claim(10, 30) == []  # FAILING: left alone
    await store.rewind("acme", claim.id, got.cursor)
    [again] = await claims.claim(10, 30)
    assert (again.id, again.attempts, again.failing_since) == (claim.id, 0, None)


async def test_creation_keys_and_the_per_tenant_cap(pool: asyncpg.Pool) -> None:
    await clear(pool)
    store = PostgresWebhookEndpoints(pool)
    first = endpoint("acme")
    created = await store.add(first, limit=2)
    assert created is not None
    replay = await store.add(endpoint("acme", idempotency_key=first.idempotency_key,
                                      fingerprint="other"), limit=2)
    assert replay is not None
    assert (replay.endpoint.id, replay.secret, replay.fingerprint) == (
        first.id, first.secret, "f1")
    assert await store.add(endpoint("acme"), limit=2) is not None
    assert await store.add(endpoint("acme"), limit=2) is None  # the cap
    assert await store.add(endpoint("globex"), limit=2) is not None  # per tenant
    assert len(await store.list("acme")) == 2


async def test_config_endpoints_keep_their_cursor_take_a_new_secret_and_leave(
        pool: asyncpg.Pool) -> None:
    await clear(pool)
    store, claims = PostgresWebhookEndpoints(pool), DeliveryClaims(pool)
    kept = endpoint("acme", id="whe_cfg_kept", from_config=True, idempotency_key="")
    dropped = endpoint("acme", id="whe_cfg_dropped", from_config=True, idempotency_key="")
    await store.put_config([kept, dropped])
    await events(pool, "acme")
    claimed = {c.id: c for c in await claims.claim(10, 30)}
    assert await claims.advance(claimed[kept.id], claimed[kept.id].cursor + 1)
    await claims.release(claimed[kept.id])
    await claims.release(claimed[dropped.id])
    rotated = NewEndpoint(id=kept.id, tenant="acme", url=kept.url, description="rotated",
                          secret=new_secret(), from_config=True)
    await store.put_config([rotated])
    [only] = await store.list("acme")
    assert (only.id, only.from_config, only.description) == (kept.id, True, "rotated")
    assert only.cursor == claimed[kept.id].cursor + 1
    await events(pool, "acme")
    [claim] = await claims.claim(10, 30)
    assert claim.secret == rotated.secret


async def test_concurrent_creates_never_pass_the_per_tenant_cap(
        pool: asyncpg.Pool, database_url: str) -> None:
    """Each create counts the tenant's endpoints and inserts: without a per-tenant lock, two
    counting at once both see room (the count's snapshot misses the other's insert)."""
    await clear(pool)
    store = PostgresWebhookEndpoints(pool)
    other = PostgresWebhookEndpoints(await create_pool(database_url, min_size=10, max_size=10))
    try:
        for tenant in ("acme", "globex", "initech"):
            results = await asyncio.gather(*(
                (store if i % 2 else other).add(endpoint(tenant), limit=3) for i in range(16)))
            assert sum(r is not None for r in results) == 3
            assert len(await store.list(tenant)) == 3
    finally:
        await other._pool.close()  # pyright: ignore[reportPrivateUsage]


async def test_a_config_endpoint_whose_url_changed_is_delivered_at_the_new_url(
        pool: asyncpg.Pool) -> None:
    """Same id, new URL: the URL is taken, the cursor kept (the backlog goes to the new URL),
    the old URL's failures forgotten, and a deliverer still holding the old URL fenced out."""
    await clear(pool)
    store, claims = PostgresWebhookEndpoints(pool), DeliveryClaims(pool)
    old = endpoint("acme", id="whe_cfg_moved", url="https://old.example/in", from_config=True,
                   idempotency_key="")
    await store.put_config([old])
    await events(pool, "acme", "acme")
    [claim] = await claims.claim(10, 30)
    assert await claims.advance(claim, claim.cursor + 1)
    assert not await claims.failed(claim, "HTTP 503", retry_in_s=0, retry_for_s=3600)
    [held] = await claims.claim(10, 30)  # a deliverer holding the old URL
    assert (held.url, held.attempts) == (old.url, 1)

    moved = replace(old, url="https://new.example/in")
    await store.put_config([moved])
    [only] = await store.list("acme")
    assert (only.id, only.url, only.cursor) == (old.id, moved.url, claim.cursor + 1)
    assert (only.state, only.attempts, only.last_error, only.failing_since) == (
        EndpointState.ACTIVE, 0, "", None)
    assert not await claims.advance(held, held.cursor + 1)  # its lease ended
    [again] = await claims.claim(10, 30)
    assert (again.url, again.cursor, again.attempts) == (moved.url, claim.cursor + 1, 0)

    assert await claims.failed(again, "HTTP 404", retry_in_s=0, retry_for_s=0)  # FAILING
    await store.put_config([replace(old, url="https://newer.example/in")])
    [revived] = await claims.claim(10, 30)
    assert (revived.url, revived.cursor) == ("https://newer.example/in", claim.cursor + 1)
