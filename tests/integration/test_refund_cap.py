"""The refund cap is the database's: concurrent refunds of one payment, each in its own
transaction under the payment's row lock, never add up to more than the payment's amount.
Refund and resolution writes say they need the unit of work's transaction (store.statements)."""

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest

from malipo.app.unit_of_work import Schedule
from malipo.domain.ids import new_payment_id, new_refund_id
from malipo.domain.money import Money
from malipo.domain.payments import Payment
from malipo.domain.refunds import Refund
from malipo.domain.resolutions import Operator, Resolution
from malipo.domain.status import Direction, Method, Status
from malipo.store.unit_of_work import PostgresUnitOfWorkFactory

_NOT_POLLED = datetime(2100, 1, 1, tzinfo=UTC)  # no reconciler runs here; far off anyway


async def _succeeded_payment(uows: PostgresUnitOfWorkFactory, amount: int) -> Payment:
    now = datetime.now(UTC)
    payment = Payment(id=new_payment_id(), tenant="acme", direction=Direction.COLLECTION,
                      provider="simulator", account="default", method=Method.UNSPECIFIED,
                      amount=Money.of(amount, "KES"), idempotency_key=str(uuid.uuid4()),
                      created_at=now, updated_at=now, status=Status.SUCCEEDED)
    async with uows() as uow:
        assert await uow.payments.add(payment, actor="test", schedule=Schedule(None))
    return payment


def _refund(payment: Payment, minor: int) -> Refund:
    now = datetime.now(UTC)
    return Refund(id=new_refund_id(), payment_id=payment.id, tenant=payment.tenant,
                  amount=Money.of(minor, "KES"), idempotency_key=str(uuid.uuid4()),
                  created_at=now, updated_at=now)


async def _add_locked(uows: PostgresUnitOfWorkFactory, payment: Payment, minor: int) -> bool:
    async with uows() as uow:
        locked = await uow.payments.lock(payment.id)
        assert locked is not None
        await asyncio.sleep(0)  # let the others queue on the lock
        return await uow.refunds.add(_refund(payment, minor), locked, actor="test",
                                     first_poll=_NOT_POLLED)


async def _outbox_refund_rows(pool: asyncpg.Pool, payment_id: str) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->>'payment_id' = $1 "
        "AND payload->>'refund_id' <> ''", payment_id))


async def test_concurrent_refunds_stop_at_the_amount(pool: asyncpg.Pool) -> None:
    uows = PostgresUnitOfWorkFactory(pool)
    payment = await _succeeded_payment(uows, 1000)
    added = await asyncio.gather(*(_add_locked(uows, payment, 300) for _ in range(20)))
    assert added.count(True) == 3
    async with uows() as uow:
        totals = await uow.refunds.totals(payment.id)
        refunds = await uow.refunds.for_payment(payment.id)
    assert (totals.held, totals.refunded) == (900, 0)
    assert len(refunds) == 3
    assert await _outbox_refund_rows(pool, payment.id) == 3  # one creation event each


async def test_a_refund_that_does_not_fit_writes_nothing_and_failed_ones_free_room(
        pool: asyncpg.Pool) -> None:
    uows = PostgresUnitOfWorkFactory(pool)
    payment = await _succeeded_payment(uows, 500)
    assert await _add_locked(uows, payment, 400)
    assert not await _add_locked(uows, payment, 101)
    assert await _outbox_refund_rows(pool, payment.id) == 1

    async with uows() as uow:
        first = (await uow.refunds.for_payment(payment.id))[0]
        locked = await uow.payments.lock(payment.id)
        assert locked is not None
        failed = replace(first, status=Status.FAILED, failure_reason="REFUND_REFUSED")
        assert await uow.refunds.write(first, failed, locked, actor="test",
                                       provider_payload={})
        # The guard: a second change decided from PENDING finds it moved.
        assert not await uow.refunds.write(first, failed, locked, actor="test",
                                           provider_payload={})
    assert await _add_locked(uows, payment, 500)
    async with uows() as uow:
        assert (await uow.refunds.totals(payment.id)).held == 500


async def test_the_payment_lock_is_held_until_the_unit_of_work_ends(pool: asyncpg.Pool) -> None:
    """The cap rests on it: a lock taken outside a transaction would end with its statement."""
    uows = PostgresUnitOfWorkFactory(pool)
    payment = await _succeeded_payment(uows, 1000)
    async with uows() as uow:
        assert await uow.payments.lock(payment.id) is not None
        with pytest.raises(asyncpg.LockNotAvailableError):
            await pool.fetchval("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE NOWAIT",
                                payment.id)
        assert await uow.refunds.add(_refund(payment, 100), payment, actor="test",
                                     first_poll=_NOT_POLLED)
    assert await pool.fetchval("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE NOWAIT",
                               payment.id) == 1


async def test_refund_and_resolution_writes_roll_back_with_their_unit_of_work(
        pool: asyncpg.Pool) -> None:
    """Each is written in the unit of work's transaction, even as its first statement."""
    uows = PostgresUnitOfWorkFactory(pool)
    payment = await _succeeded_payment(uows, 1000)
    refund = _refund(payment, 100)
    resolution = Resolution("rsl_" + uuid.uuid4().hex, payment.id, payment.tenant,
                            Operator("ops", "abcd1234"), Status.UNKNOWN, Status.SUCCEEDED, "",
                            "checked", "statement", str(uuid.uuid4()), datetime.now(UTC))

    async def write_then_fail() -> None:
        async with uows() as uow:
            assert await uow.refunds.add(refund, payment, actor="test", first_poll=_NOT_POLLED)
            await uow.resolutions.add(resolution)
            raise RuntimeError("boom")

    async def resolve_then_fail() -> None:
        async with uows() as uow:
            await uow.resolutions.add(resolution)
            raise RuntimeError("boom")

    for attempt in (write_then_fail, resolve_then_fail):
        with pytest.raises(RuntimeError):
            await attempt()
    assert await pool.fetchval("SELECT count(*) FROM refunds WHERE payment_id = $1",
                               payment.id) == 0
    assert await pool.fetchval("SELECT count(*) FROM payment_resolutions WHERE payment_id = $1",
                               payment.id) == 0
    assert await _outbox_refund_rows(pool, payment.id) == 0
