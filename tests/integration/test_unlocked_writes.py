"""record_update's one-statement path (a version guard instead of a row lock) never loses a
change it did not see: when the row moved after the caller read it, the update is decided
again under the lock, on fresh data."""

from dataclasses import replace
from datetime import UTC, datetime

import asyncpg

from malipo.app.connector import ProviderAccount
from malipo.app.directory import ConnectorDirectory
from malipo.app.journal import Delivery, EventClaim, JournaledDelivery
from malipo.app.provider_events import record_update
from malipo.app.recording import flag_for_review
from malipo.app.services import Services
from malipo.app.unit_of_work import ClaimedBefore, Schedule, Written
from malipo.connectors import registry
from malipo.domain.payments import Payment, ProviderUpdate, apply_update
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


# A callback's usual case: its journal row, its event's claim and the write it decided, in
# one commit, all with the decided outcome; or nothing at all.

def _journaled(payment: Payment, key: str, outcome: str = "APPLIED") -> JournaledDelivery:
    delivery = Delivery("simulator", "default", datetime.now(UTC), "127.0.0.1",
                        {"x-signature": "***"}, f'{{"event":"{key}"}}'.encode())
    return JournaledDelivery(delivery, EventClaim(key, payment.id, "", {"status": "SUCCEEDED"}),
                             outcome)


async def _write_journaled(pool: asyncpg.Pool, known: Payment,
                           key: str) -> Written | ClaimedBefore | None:
    change = apply_update(known, ProviderUpdate(Status.SUCCEEDED), datetime.now(UTC))
    async with PostgresUnitOfWork(pool) as uow:
        return await uow.payments.write_if_unchanged(
            change, actor="callback:simulator", schedule=Schedule(None),
            journaled=_journaled(known, key))


async def _journal_of(pool: asyncpg.Pool, key: str) -> list[tuple[str, str]]:
    """(delivery outcome, event outcome) of every delivery that claimed `key`."""
    rows = await pool.fetch(
        "SELECT j.outcome AS delivery, e.outcome AS event FROM callback_events e "
        "JOIN callback_journal j ON j.id = e.journal_id WHERE e.event_key = $1", key)
    return [(r["delivery"], r["event"]) for r in rows]


async def test_a_journaled_write_commits_the_delivery_its_claim_and_the_change_together(
        pool: asyncpg.Pool) -> None:
    p = await stored(pool)
    journal_before = await pool.fetchval("SELECT count(*) FROM callback_journal")
    written = await _write_journaled(pool, p, "journaled-1")
    assert isinstance(written, Written) and not written.callbacks_waiting
    assert await _journal_of(pool, "journaled-1") == [("APPLIED", "APPLIED")]
    assert await pool.fetchval("SELECT count(*) FROM callback_journal") == journal_before + 1
    assert await pool.fetchval("SELECT status FROM payments WHERE id = $1", p.id) == "SUCCEEDED"
    assert await outbox_rows(pool, p.id) == ["PENDING", "SUCCEEDED"]


async def test_a_journaled_write_on_a_moved_row_writes_nothing_at_all(
        pool: asyncpg.Pool) -> None:
    p = await stored(pool)
    svc = services(pool)
    await flag_for_review(svc, p.id, ReviewReason.EXPIRED, "moved", actor="test")  # version 1
    journal_before = await pool.fetchval("SELECT count(*) FROM callback_journal")
    assert await _write_journaled(pool, p, "journaled-2") is None  # decided on version 0
    assert await pool.fetchval("SELECT count(*) FROM callback_journal") == journal_before
    assert await _journal_of(pool, "journaled-2") == []
    assert await pool.fetchval("SELECT status FROM payments WHERE id = $1", p.id) == "PENDING"


async def test_a_journaled_write_of_an_event_claimed_before_writes_nothing_at_all(
        pool: asyncpg.Pool) -> None:
    """A re-sent event: its claim is not fresh, so neither the write (even on a row that has
    not moved) nor the journal row that would say APPLIED is kept."""
    p = await stored(pool)
    journal = PostgresCallbackJournal(pool)
    first = await journal.record(_journaled(p, "journaled-3").delivery)
    assert await journal.claim_event("simulator", "default", "journaled-3", first, p.id, "", {})
    await journal.mark_event("simulator", "default", "journaled-3", "IGNORED")
    journal_before = await pool.fetchval("SELECT count(*) FROM callback_journal")
    # Told apart from a moved row (None): the caller need not read the row to decide again.
    assert await _write_journaled(pool, p, "journaled-3") == ClaimedBefore()
    assert await pool.fetchval("SELECT count(*) FROM callback_journal") == journal_before
    assert await _journal_of(pool, "journaled-3") == [("RECEIVED", "IGNORED")]
    assert await pool.fetchval("SELECT status FROM payments WHERE id = $1", p.id) == "PENDING"
