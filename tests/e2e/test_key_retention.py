# pyright: basic
"""Idempotency keys past their window, end to end: the service's own retention job purges
them, and a replay of a purged key is a new request (a new payment), while a key inside its
window still replays (ARCHITECTURE section 4: kept at least 30 days, then purged)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from malipo.payments.v1 import payment_pb2, payment_service_pb2
from tests.harness import Running, auth, create_request, running, settings_for

pb = payment_service_pb2


@pytest.fixture(scope="module")
async def service(database_url: str) -> AsyncIterator[Running]:
    # The job runs on start and then every half second, with the default 30-day window.
    async with running(settings_for(database_url, retention_interval_s=0.5)) as service:
        yield service


def key() -> str:
    return f"ret-{uuid.uuid4()}"


async def age(pool: asyncpg.Pool, idempotency_key: str, days: int) -> None:
    await pool.execute("UPDATE idempotency_keys SET created_at = created_at - $2::interval "
                       "WHERE key = $1", idempotency_key, timedelta(days=days))


async def until_purged(pool: asyncpg.Pool, idempotency_key: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while await pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1",
                                  idempotency_key):
            await asyncio.sleep(0.1)


async def create(service: Running, request: pb.CreatePaymentRequest) -> payment_pb2.Payment:
    return (await service.stub.CreatePayment(request, metadata=auth())).payment


async def test_a_purged_key_makes_a_new_payment_and_a_recent_key_still_replays(
        service: Running, pool: asyncpg.Pool) -> None:
    old_key, recent_key = key(), key()
    old = await create(service, create_request(old_key))
    recent = await create(service, create_request(recent_key))
    await age(pool, old_key, 31)
    await age(pool, recent_key, 29)

    await until_purged(pool, old_key)  # by the job bootstrap started, not by the test

    again = await create(service, create_request(old_key))
    assert again.id != old.id  # the documented contract past the window: a second payment
    kept = await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=old.id),
                                         metadata=auth())
    assert kept.payment.id == old.id  # the payment the purged key made is kept
    assert (await create(service, create_request(recent_key))).id == recent.id
    # The key is claimed afresh by the new payment, and protects it from now on.
    assert (await create(service, create_request(old_key))).id == again.id


async def test_a_purged_key_may_carry_another_request(
        service: Running, pool: asyncpg.Pool) -> None:
    """Past the window the key is no longer `IDEMPOTENCY_KEY_REUSED` for another request."""
    reused = key()
    first = await create(service, create_request(reused, amount=1000))
    await age(pool, reused, 31)
    await until_purged(pool, reused)

    other = await create(service, create_request(reused, amount=2500))
    assert other.id != first.id
    assert other.amount.amount_minor == 2500
