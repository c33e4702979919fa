"""A callback for a payment this process wrote lately (app.inflight.RecentPayments) is decided
on the copy it keeps, with no read of the row; a copy another process has outdated writes
nothing, and the callback is decided again on the row. Real use cases on the real database,
with the simulator; a second Race (its own Services) on the same database plays the other
process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from malipo.app.connector import CallbackOutcome
from malipo.domain.payments import Payment
from malipo.domain.status import Status
from malipo.store.unit_of_work import init_connection
from tests.integration.test_concurrent_callbacks import Race
from tests.integration.test_unit_of_work import outbox_rows


class Statements:
    """The statements the service sent, as asyncpg's query loggers report them."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, record: object) -> None:
        self.sent.append(" ".join(str(getattr(record, "query", "")).split()))

    def reads_of_payments(self) -> list[str]:
        return [q for q in self.sent if q.startswith("SELECT") and "FROM payments" in q]


@pytest.fixture
async def logged(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, Statements]]:
    statements = Statements()

    async def setup(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(statements)  # asyncpg drops loggers when it resets

    async def keep_session(conn: asyncpg.Connection) -> None:
        del conn  # as the service's pool: no reset query

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4,
                                     init=init_connection, setup=setup, reset=keep_session)
    assert pool is not None
    try:
        yield pool, statements
    finally:
        await pool.close()


async def _send(process: Race, payment: Payment, status: str, event: str) -> CallbackOutcome:
    return await process.deliver(payment, Race.body(payment, status, event))


async def _row_version(pool: asyncpg.Pool, payment_id: str) -> tuple[str, int]:
    row = await pool.fetchrow("SELECT status, version FROM payments WHERE id = $1", payment_id)
    assert row is not None
    return row["status"], row["version"]


async def test_the_copy_kept_is_the_row_and_a_callback_needs_no_read(
        logged: tuple[asyncpg.Pool, Statements]) -> None:
    pool, statements = logged
    here = Race(pool)
    payment = await here.payment()
    copy = here.svc.recent_payments.get(payment.id)
    assert copy is not None
    assert (copy.status.value, copy.version) == await _row_version(pool, payment.id)

    statements.sent.clear()
    assert await _send(here, payment, "SUCCEEDED", "ok") is CallbackOutcome.APPLIED

    assert any("INSERT INTO callback_journal" in q for q in statements.sent)  # logged
    assert statements.reads_of_payments() == []
    assert await _row_version(pool, payment.id) == ("SUCCEEDED", copy.version + 1)
    after = here.svc.recent_payments.get(payment.id)
    assert after is not None
    assert (after.status, after.version) == (Status.SUCCEEDED, copy.version + 1)
    assert await outbox_rows(pool, payment.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]


async def test_a_re_sent_callback_is_a_duplicate_without_a_read_and_the_copy_stays(
        logged: tuple[asyncpg.Pool, Statements]) -> None:
    """The journaled statement says the event was claimed before, not that the row moved:
    reading the row to decide again could not make the re-send apply."""
    pool, statements = logged
    here = Race(pool)
    payment = await here.payment()
    assert await _send(here, payment, "SUCCEEDED", "once") is CallbackOutcome.APPLIED
    copy = here.svc.recent_payments.get(payment.id)

    statements.sent.clear()
    assert await _send(here, payment, "SUCCEEDED", "once") is CallbackOutcome.DUPLICATE

    assert any("INSERT INTO callback_journal" in q for q in statements.sent)  # logged
    assert statements.reads_of_payments() == []
    assert here.svc.recent_payments.get(payment.id) is copy
    assert await outbox_rows(pool, payment.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]


async def test_a_copy_another_process_outdated_writes_nothing_and_the_row_decides(
        logged: tuple[asyncpg.Pool, Statements]) -> None:
    pool, statements = logged
    here, there = Race(pool), Race(pool)
    payment = await here.payment()
    stale = here.svc.recent_payments.get(payment.id)
    assert stale is not None and stale.status is Status.PROCESSING
    # The other process settles it; this one's copy still says PROCESSING.
    assert await _send(there, payment, "SUCCEEDED", "first") is CallbackOutcome.APPLIED

    statements.sent.clear()
    # Another SUCCEEDED (a new event id): on the copy it would be a transition, on the row
    # it is news of nothing.
    assert await _send(here, payment, "SUCCEEDED", "again") is CallbackOutcome.IGNORED

    assert statements.reads_of_payments()  # the row was read once the copy failed
    assert await outbox_rows(pool, payment.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]
    # The copy kept now is the row as the read path wrote it.
    fresh = here.svc.recent_payments.get(payment.id)
    assert fresh is not None
    assert (fresh.status.value, fresh.version) == await _row_version(pool, payment.id)
    journaled = await pool.fetch(
        "SELECT outcome FROM callback_journal WHERE body LIKE $1 ORDER BY id",
        f"%{payment.id}:%".encode())
    assert [r["outcome"] for r in journaled] == ["APPLIED", "IGNORED"]


async def test_a_copy_outdated_by_a_failure_there_never_succeeds_here(
        logged: tuple[asyncpg.Pool, Statements]) -> None:
    """The money case: the copy says PROCESSING, the row says FAILED; SUCCEEDED must not
    be written over it on the copy's word."""
    pool, _statements = logged
    here, there = Race(pool), Race(pool)
    payment = await here.payment()
    assert await _send(there, payment, "FAILED", "failed") is CallbackOutcome.APPLIED

    outcome = await _send(here, payment, "SUCCEEDED", "late")

    assert outcome is not CallbackOutcome.APPLIED
    assert (await _row_version(pool, payment.id))[0] == "FAILED"
    assert "SUCCEEDED" not in await outbox_rows(pool, payment.id)

