"""Simulated writers and runners for the event-log tests: real SQL, no use-case layer."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from malipo.domain.events import Heartbeat, StatusEvent
from malipo.streaming import EventHub, EventRelay


def payload(tenant: str, payment_id: str, *, step: int = 0, provider: str = "gateway",
            direction: str = "COLLECTION", old: str = "PENDING",
            new: str = "PROCESSING") -> dict[str, Any]:
    """An outbox payload shaped like store.rows.event_payload; `step` rides in `message`."""
    return {
        "event_id": str(uuid.uuid4()), "tenant": tenant, "payment_id": payment_id,
        "direction": direction, "provider": provider, "account": "default",
        "old_status": old, "new_status": new, "provider_status": "", "provider_reference": "",
        "amount_minor": 1000, "currency": "XOF", "reason": "", "message": str(step),
        "fulfilment": {}, "needs_review": False, "actor": "test",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


async def create_payment(conn: Any, tenant: str, payment_id: str) -> None:
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO payments (id, tenant, direction, provider, account, method, amount_minor, "
        "currency, customer, provider_fields, metadata, idempotency_key, status, created_at, "
        "updated_at) VALUES ($1, $2, 'COLLECTION', 'gateway', 'default', 'MOBILE_MONEY', 1000, "
        "'XOF', '{}', '{}', '{}', $1, 'PENDING', $3, $3)", payment_id, tenant, now)


async def transition(pool: asyncpg.Pool, tenant: str, payment_id: str, step: int) -> None:
    """One committed transition the way writers make them: row lock, state change, outbox
    row, commit; a random pause before commit scrambles commit order against outbox ids."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE", payment_id)
        await conn.execute("UPDATE payments SET updated_at = now() WHERE id = $1", payment_id)
        await conn.execute("INSERT INTO outbox (payload) VALUES ($1)",
                           payload(tenant, payment_id, step=step))
        await asyncio.sleep(random.random() * 0.004)


async def insert_outbox(pool: asyncpg.Pool, payloads: list[dict[str, Any]]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany("INSERT INTO outbox (payload) VALUES ($1)",
                               [(p,) for p in payloads])


@contextlib.asynccontextmanager
async def running(*runners: EventRelay | EventHub) -> AsyncGenerator[None]:
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        for r in runners:
            if isinstance(r, EventHub):
                await wait_for(lambda r=r: r.ready, timeout=5)
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def wait_for(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def collect(stream: AsyncIterator[StatusEvent | Heartbeat], count: int, *,
                  timeout: float = 20.0) -> list[StatusEvent]:
    """The next `count` status events of a stream (heartbeats skipped); fewer on timeout,
    so the assertion that follows says how far it got."""
    got: list[StatusEvent] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            async for item in stream:
                if isinstance(item, StatusEvent):
                    got.append(item)
                    if len(got) == count:
                        break
    return got


def assert_gap_free(events: list[StatusEvent]) -> None:
    seqs = [e.sequence for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "gap or disorder in sequences"
