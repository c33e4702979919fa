"""Idempotency key retention: keys older than their window are deleted in batches, whatever
operation claimed them; younger ones stay. (What a purged key means to a client is end to
end, in tests/e2e/test_key_retention.py.)"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import pytest

from malipo.app.unit_of_work import Schedule
from malipo.store.retention import ExchangeRetention, purge_idempotency_keys
from malipo.store.unit_of_work import PostgresUnitOfWork
from tests.integration.test_unit_of_work import a_payment

# Every kind of key the table holds: creates, changes of a payment, refunds, an operator's.
OPERATIONS = ("create:COLLECTION", "create:PAYOUT", "confirm", "cancel", "refund", "resolve")


async def insert_keys(pool: asyncpg.Pool, tenant: str, count: int, age: timedelta) -> list[str]:
    keys = [f"{tenant}-{age.days}d-{i}" for i in range(count)]
    await pool.executemany(
        "INSERT INTO idempotency_keys (tenant, key, operation, fingerprint, resource_id, "
        "created_at) VALUES ($1, $2, $3, 'f', $4, now() - $5::interval)",
        [(tenant, k, OPERATIONS[i % len(OPERATIONS)], f"pay_{k}", age)
         for i, k in enumerate(keys)])
    return keys


async def kept(pool: asyncpg.Pool, tenant: str) -> set[str]:
    rows = await pool.fetch("SELECT key FROM idempotency_keys WHERE tenant = $1", tenant)
    return {r["key"] for r in rows}


class CountingPool:
    """The pool, noting how many rows each statement reported."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.deleted: list[int] = []

    async def execute(self, sql: str, *args: Any) -> str:
        tag = await self._pool.execute(sql, *args)
        self.deleted.append(int(tag.rsplit(" ", 1)[-1]))
        return tag

    @property
    def pool(self) -> asyncpg.Pool:
        return cast("asyncpg.Pool", self)  # the purge only calls execute


@pytest.fixture
def tenant() -> str:
    return f"keys-{uuid.uuid4().hex[:8]}"


async def test_old_keys_go_in_batches_and_recent_ones_stay(
        pool: asyncpg.Pool, tenant: str) -> None:
    await insert_keys(pool, tenant, 25, timedelta(days=31))
    recent = await insert_keys(pool, tenant, 6, timedelta(days=29))
    counting = CountingPool(pool)
    before = datetime.now(UTC) - timedelta(days=30)

    purged = await purge_idempotency_keys(counting.pool, before, batch=10)

    assert purged == 25
    assert counting.deleted == [10, 10, 5]  # no statement deleted more than a batch
    assert await kept(pool, tenant) == set(recent)
    assert await purge_idempotency_keys(pool, before) == 0


async def test_a_backlog_that_is_a_multiple_of_the_batch_ends_on_an_empty_round(
        pool: asyncpg.Pool, tenant: str) -> None:
    await insert_keys(pool, tenant, 20, timedelta(days=40))
    counting = CountingPool(pool)

    purged = await purge_idempotency_keys(counting.pool, datetime.now(UTC) - timedelta(days=30),
                                          batch=10)

    assert (purged, counting.deleted) == (20, [10, 10, 0])
    assert await kept(pool, tenant) == set()


async def test_the_retention_job_purges_keys_on_their_own_window(
        pool: asyncpg.Pool, tenant: str, caplog: pytest.LogCaptureFixture) -> None:
    """The exchange log's window is not the keys': a short one for exchanges leaves a key
    well inside its own window alone."""
    await pool.execute("DELETE FROM idempotency_keys")  # this test counts the whole table
    old = await insert_keys(pool, tenant, 3, timedelta(days=8))
    recent = await insert_keys(pool, tenant, 2, timedelta(days=2))
    job = ExchangeRetention(pool, keep=timedelta(days=1), keep_keys=timedelta(days=7),
                            interval_s=3600)

    with caplog.at_level(logging.INFO, logger="malipo.retention"):
        purged = await job.run_once()

    assert purged.idempotency_keys == len(old)
    assert await kept(pool, tenant) == set(recent)
    assert "retention: purged 3 idempotency keys older than 7 days" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="malipo.retention"):
        assert (await job.run_once()).idempotency_keys == 0
    assert "idempotency keys" not in caplog.text  # nothing purged, nothing said


async def test_a_key_whose_payment_is_in_flight_outlives_its_window(
        pool: asyncpg.Pool, tenant: str) -> None:
    """A create retried after the window while its payment is still PROCESSING must find its
    key (the same payment back), not make a second charge: the key waits for the payment."""
    in_flight, settled = a_payment(), a_payment()
    for payment in (in_flight, settled):
        async with PostgresUnitOfWork(pool) as uow:
            await uow.payments.add(payment, actor="test", schedule=Schedule(None))
    await pool.execute("UPDATE payments SET status = 'PROCESSING' WHERE id = $1", in_flight.id)
    await pool.execute("UPDATE payments SET status = 'SUCCEEDED' WHERE id = $1", settled.id)
    await pool.executemany(
        "INSERT INTO idempotency_keys (tenant, key, operation, fingerprint, resource_id, "
        "created_at) VALUES ($1, $2, $3, 'f', $4, now() - interval '40 days')",
        [(tenant, "create-in-flight", "create:COLLECTION", in_flight.id),
         (tenant, "cancel-in-flight", "cancel", in_flight.id),
         (tenant, "create-settled", "create:COLLECTION", settled.id)])
    before = datetime.now(UTC) - timedelta(days=30)

    assert await purge_idempotency_keys(pool, before) == 1
    assert await kept(pool, tenant) == {"create-in-flight", "cancel-in-flight"}

    await pool.execute("UPDATE payments SET status = 'FAILED' WHERE id = $1", in_flight.id)
    assert await purge_idempotency_keys(pool, before) == 2  # settled: its window applies
    assert await kept(pool, tenant) == set()
