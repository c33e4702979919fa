"""A replay of a create key this process answered lately (app.inflight.RecentKeys) is read
from the key's holder first; whatever that read cannot settle takes the usual path and gets
the usual answer. Real use cases on the real database, with the simulator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest

from malipo.app.commands import CreatePayment
from malipo.app.connector import ProviderAccount
from malipo.app.directory import ConnectorDirectory
from malipo.app.inflight import RecentKeys
from malipo.app.payments import create_payment
from malipo.app.services import Services
from malipo.connectors import registry
from malipo.domain.errors import IdempotencyKeyReused, InvalidRequest
from malipo.domain.payments import Customer
from malipo.domain.status import Direction, Status
from malipo.store.callbacks import PostgresCallbackJournal
from malipo.store.unit_of_work import PostgresUnitOfWorkFactory


@pytest.fixture
async def svc(pool: asyncpg.Pool) -> AsyncIterator[Services]:
    simulator = registry.build(ProviderAccount("simulator", "default",
                                               {"callback_secret": "recent-secret"}))
    services = Services(PostgresUnitOfWorkFactory(pool), ConnectorDirectory([simulator], {}),
                        PostgresCallbackJournal(pool))
    yield services
    await services.submissions.drain(5.0)


def _create(key: str, amount: int = 1500) -> CreatePayment:
    return CreatePayment("recent", key, Direction.COLLECTION, "simulator", amount, "KES",
                         customer=Customer(phone_number="+254700000007"))


async def test_a_recent_key_replays_the_payment_it_made(svc: Services) -> None:
    cmd = _create(f"recent-{time.time_ns()}")
    first = await create_payment(svc, cmd, None)
    assert ("recent", cmd.idempotency_key) in svc.recent_keys
    again = await create_payment(svc, cmd, None)
    assert (again.id, again.status, again.provider_reference) == (
        first.id, Status.PROCESSING, first.provider_reference)


async def test_a_recent_key_with_another_request_is_refused_as_before(svc: Services) -> None:
    cmd = _create(f"recent-{time.time_ns()}")
    await create_payment(svc, cmd, None)
    with pytest.raises(IdempotencyKeyReused):
        await create_payment(svc, replace(cmd, amount_minor=1600), None)
    # An invalid request gets the field error first, whether or not its key is known here.
    with pytest.raises(InvalidRequest):
        await create_payment(svc, replace(cmd, amount_minor=-5), None)


async def test_a_recent_key_no_longer_stored_makes_a_new_payment(
        svc: Services, pool: asyncpg.Pool) -> None:
    """Keys are purged after their retention: the hint never answers for the database."""
    cmd = _create(f"recent-{time.time_ns()}")
    first = await create_payment(svc, cmd, None)
    await pool.execute("DELETE FROM idempotency_keys WHERE tenant = 'recent' AND key = $1",
                       cmd.idempotency_key)
    assert ("recent", cmd.idempotency_key) in svc.recent_keys
    second = await create_payment(svc, cmd, None)
    assert second.id != first.id


def test_recent_keys_keep_only_the_newest() -> None:
    keys = RecentKeys(size=3)
    for key in "abcd":
        keys.add("t", key)
    assert [("t", k) in keys for k in "abcd"] == [False, True, True, True]
    assert ("other", "d") not in keys
