"""The unit of work's round-trip savings keep its guarantees: a write and its event land
together or not at all, a failed guard writes no event, and reads alone open no transaction."""

from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest

from malipo.app.directory import ConnectorDirectory
from malipo.app.services import Services
from malipo.app.unit_of_work import Added, IdempotencyRecord, KeyTaken, Schedule
from malipo.domain.ids import new_payment_id
from malipo.domain.money import Money
from malipo.domain.payments import Change, ChangeKind, Customer, Payment
from malipo.domain.status import Direction, Method, Status
from malipo.store.callbacks import PostgresCallbackJournal
from malipo.store.unit_of_work import PostgresUnitOfWork, PostgresUnitOfWorkFactory


def a_payment() -> Payment:
    now = datetime.now(UTC)
    return Payment(id=new_payment_id(), tenant="acme", direction=Direction.COLLECTION,
                   provider="simulator", account="default", method=Method.MOBILE_MONEY,
                   amount=Money.of(1500, "KES"), idempotency_key=new_payment_id(),
                   created_at=now, updated_at=now,
                   customer=Customer(phone_number="+254712345600"))


async def outbox_rows(pool: asyncpg.Pool, payment_id: str) -> list[str]:
    # The relay may already have moved rows to the event log: count both.
    rows = await pool.fetch(
        "SELECT payload->>'new_status' AS s FROM outbox WHERE payload->>'payment_id' = $1 "
        "UNION ALL SELECT new_status FROM events WHERE payment_id = $1", payment_id)
    return sorted(r["s"] for r in rows)


async def test_add_writes_the_row_and_its_event_in_one_go(pool: asyncpg.Pool) -> None:
    p = a_payment()
    async with PostgresUnitOfWork(pool) as uow:
        await uow.payments.add(p, actor="test", schedule=Schedule(None))
    assert await pool.fetchval("SELECT status FROM payments WHERE id = $1", p.id) == "PENDING"
    assert await outbox_rows(pool, p.id) == ["PENDING"]


async def test_a_failed_block_rolls_back_row_and_event(pool: asyncpg.Pool) -> None:
    p = a_payment()

    async def fail_after_writing() -> None:
        async with PostgresUnitOfWork(pool) as uow:
            assert await uow.payments.get(p.id) is None  # a read before the first write
            await uow.payments.add(p, actor="test", schedule=Schedule(None))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_after_writing()
    assert await pool.fetchval("SELECT count(*) FROM payments WHERE id = $1", p.id) == 0
    assert await outbox_rows(pool, p.id) == []


async def test_write_adds_an_event_only_when_the_guard_holds(pool: asyncpg.Pool) -> None:
    p = a_payment()
    async with PostgresUnitOfWork(pool) as uow:
        await uow.payments.add(p, actor="test", schedule=Schedule(None))
    processing = replace(p, status=Status.PROCESSING, provider_reference="SIM-1")
    async with PostgresUnitOfWork(pool) as uow:
        current = await uow.payments.lock(p.id)
        assert current is not None
        assert await uow.payments.write(Change(ChangeKind.TRANSITION, current, processing),
                                        actor="test")
    # A stale decision (still thinks PENDING) loses: no row change, no event.
    stale = replace(p, status=Status.FAILED)
    async with PostgresUnitOfWork(pool) as uow:
        assert not await uow.payments.write(Change(ChangeKind.TRANSITION, p, stale),
                                            actor="test")
    # A refresh writes raw fields but no event.
    refreshed = replace(processing, provider_status="still_going")
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.payments.write(Change(ChangeKind.REFRESH, processing, refreshed),
                                        actor="test")
    row = await pool.fetchrow("SELECT status, provider_status FROM payments WHERE id = $1", p.id)
    assert (row["status"], row["provider_status"]) == ("PROCESSING", "still_going")
    assert await outbox_rows(pool, p.id) == ["PENDING", "PROCESSING"]


async def test_reads_alone_open_no_transaction_and_writes_do(pool: asyncpg.Pool) -> None:
    p = a_payment()
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.payments.get(p.id) is None
        lazy = uow._lazy
        assert lazy is not None
        assert lazy.tx is None
        await uow.payments.add(p, actor="test", schedule=Schedule(None))
        assert lazy.tx is not None
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.payments.lock(p.id) is not None  # FOR UPDATE needs the transaction
        assert uow._lazy is not None
        assert uow._lazy.tx is not None


class Nudges:
    """The relay's side of app.services.OutboxSignal: counts wake-ups."""

    def __init__(self) -> None:
        self.count = 0

    def nudge(self) -> None:
        self.count += 1


async def test_the_outbox_is_nudged_after_each_commit_that_wrote_events(
        pool: asyncpg.Pool) -> None:
    nudges = Nudges()
    svc = Services(PostgresUnitOfWorkFactory(pool), ConnectorDirectory([], {}),
                   PostgresCallbackJournal(pool), outbox=nudges)
    p = a_payment()
    async with svc.uow() as uow:
        assert await uow.payments.get(p.id) is None
    assert nudges.count == 0  # a read commits no event
    async with svc.uow() as uow:
        await uow.payments.add(p, actor="test", schedule=Schedule(None))
        assert nudges.count == 0  # not before the commit: the relay would find nothing
    assert nudges.count == 1

    processing = replace(p, status=Status.PROCESSING, provider_reference="SIM-2")

    async def move_then_fail() -> None:
        async with svc.uow() as uow:
            assert await uow.payments.write(Change(ChangeKind.TRANSITION, p, processing),
                                            actor="test")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await move_then_fail()
    assert nudges.count == 1  # rolled back: no event to move

    # A key claim and insert run as one statement, committed by itself: a failure after it
    # in the same block does not undo it, so the relay is still woken.
    q = a_payment()
    key = IdempotencyRecord(q.tenant, q.idempotency_key, "create:COLLECTION", "f", q.id)

    async def add_alone_then_fail() -> None:
        async with svc.uow() as uow:
            assert await uow.payments.add(q, actor="test", schedule=Schedule(None), key=key)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await add_alone_then_fail()
    assert nudges.count == 2
    assert await outbox_rows(pool, q.id) == ["PENDING"]


async def test_a_taken_key_comes_back_with_its_payment_from_the_claim_itself(
        pool: asyncpg.Pool) -> None:
    """A replay's usual case is answered by the claiming statement: no second read."""
    first, again = a_payment(), a_payment()
    again = replace(again, idempotency_key=first.idempotency_key)
    key = IdempotencyRecord(first.tenant, first.idempotency_key, "create:COLLECTION", "fp",
                            first.id)
    async with PostgresUnitOfWork(pool) as uow:
        won = await uow.payments.add(first, actor="test", schedule=Schedule(None), key=key)
    assert isinstance(won, Added)
    async with PostgresUnitOfWork(pool) as uow:
        lost = await uow.payments.add(again, actor="test", schedule=Schedule(None),
                                      key=replace(key, resource_id=again.id))
    assert isinstance(lost, KeyTaken) and lost.holder is not None
    assert lost.holder.record == key
    assert lost.holder.payment is not None and lost.holder.payment.id == first.id
    assert not lost.holder.submitted  # no provider answer recorded for it yet
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.payments.get(again.id) is None  # nothing of the loser was written
    assert await outbox_rows(pool, again.id) == []
