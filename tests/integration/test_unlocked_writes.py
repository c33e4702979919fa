"""record_update's one-statement path (a version guard instead of a row lock) never loses a
change it did not see: when the row moved after the caller read it, the update is decided
again under the lock, on fresh data."""

from dataclasses import replace

import asyncpg

from malipo.app.connector import ProviderAccount
from malipo.app.directory import ConnectorDirectory
from malipo.app.provider_events import record_update
from malipo.app.recording import flag_for_review
from malipo.app.services import Services
from malipo.app.unit_of_work import Schedule
from malipo.connectors import registry
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.review import ReviewReason
from malipo.domain.status import Status
from malipo.store.callbacks import PostgresCallbackJournal
from malipo.store.unit_of_work import PostgresUnitOfWork, PostgresUnitOfWorkFactory
from tests.integration.test_unit_of_work import a_payment, outbox_rows


async def stored(pool: asyncpg.Pool) -> Payment:
    """A new PENDING payment, committed (version 0)."""
    p = a_payment()
    async with PostgresUnitOfWork(pool) as uow:
        await uow.payments.add(p, actor="test", schedule=Schedule(None))
    return p


def services(pool: asyncpg.Pool) -> Services:
    simulator = registry.build(ProviderAccount("simulator", "default"))
    return Services(PostgresUnitOfWorkFactory(pool), ConnectorDirectory([simulator], {}),
                   PostgresCallbackJournal(pool))


async def test_a_stale_copy_never_overwrites_a_review_flag(pool: asyncpg.Pool) -> None:
    svc = services(pool)
    p = await stored(pool)
    # version 1
    await flag_for_review(svc, p.id, ReviewReason.EXPIRED, "someone looked", actor="test")

    # `p` is version 0: the unlocked write must not apply, the locked one keeps the flag.
    change = await record_update(svc, p.id, ProviderUpdate(Status.PROCESSING,
                                                           provider_reference="SIM-1"),
                                 actor="test", known=p)
    row = await pool.fetchrow("SELECT status, needs_review, review_reason, version, "
                              "provider_reference FROM payments WHERE id = $1", p.id)
    assert (row["status"], row["needs_review"], row["provider_reference"]) == (
        "PROCESSING", True, "SIM-1")
    assert row["review_reason"].startswith("EXPIRED: someone looked")
    assert row["version"] == 2 and change.before.version == 1
    assert await outbox_rows(pool, p.id) == ["PENDING", "PENDING", "PROCESSING"]


async def test_a_fresh_copy_is_written_in_one_statement_with_its_event(
        pool: asyncpg.Pool) -> None:
    svc = services(pool)
    p = await stored(pool)
    change = await record_update(svc, p.id, ProviderUpdate(Status.SUCCEEDED,
                                                           provider_reference="SIM-2"),
                                 actor="test", known=p)
    assert change.after.status is Status.SUCCEEDED and change.before.version == 0
    assert await pool.fetchval("SELECT version FROM payments WHERE id = $1", p.id) == 1
    assert await outbox_rows(pool, p.id) == ["PENDING", "SUCCEEDED"]


async def test_a_reference_held_by_another_payment_is_flagged_not_attached(
        pool: asyncpg.Pool) -> None:
    svc = services(pool)
    first, second = await stored(pool), await stored(pool)
    await record_update(svc, first.id, ProviderUpdate(Status.PROCESSING,
                                                      provider_reference="SIM-SHARED"),
                        actor="test", known=first)
    change = await record_update(svc, second.id, ProviderUpdate(
        Status.PROCESSING, provider_reference="SIM-SHARED"), actor="test", known=second)
    assert change.reason == "REFERENCE_REUSED"
    row = await pool.fetchrow("SELECT status, needs_review, provider_reference FROM payments "
                              "WHERE id = $1", second.id)
    assert (row["status"], row["needs_review"], row["provider_reference"]) == (
        "PENDING", True, "")


async def test_a_copy_with_a_stale_status_is_decided_again_under_the_lock(
        pool: asyncpg.Pool) -> None:
    svc = services(pool)
    p = await stored(pool)
    await record_update(svc, p.id, ProviderUpdate(Status.PROCESSING), actor="test", known=p)
    # The copy says PROCESSING at version 0; the row is PROCESSING at version 1.
    stale = replace(p, status=Status.PROCESSING)
    change = await record_update(svc, p.id, ProviderUpdate(Status.SUCCEEDED), actor="test",
                                 known=stale)
    assert change.after.status is Status.SUCCEEDED
    assert await pool.fetchval("SELECT status FROM payments WHERE id = $1", p.id) == "SUCCEEDED"
