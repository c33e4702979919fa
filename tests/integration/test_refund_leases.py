"""Refund leases (store/refund_leases.py, on store/leases.py): concurrent claims never share a
refund, a leased refund is not claimed again and comes with its payment, and a release or an
undo is fenced by its claim's token."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from malipo.app.unit_of_work import Schedule
from malipo.domain.ids import new_payment_id, new_refund_id
from malipo.domain.money import Money
from malipo.domain.payments import Payment
from malipo.domain.refunds import Refund
from malipo.domain.status import Direction, Method, Status
from malipo.store.refund_leases import PostgresRefundLeases
from malipo.store.unit_of_work import PostgresUnitOfWorkFactory

ACCOUNT = "leasetest/default"


async def _due_refunds(pool: asyncpg.Pool, count: int) -> list[str]:
    uows = PostgresUnitOfWorkFactory(pool)
    now = datetime.now(UTC)
    ids: list[str] = []
    for _ in range(count):
        payment = Payment(id=new_payment_id(), tenant="acme", direction=Direction.COLLECTION,
                          provider="leasetest", account="default", method=Method.UNSPECIFIED,
                          amount=Money.of(500, "KES"), idempotency_key=str(uuid.uuid4()),
                          created_at=now, updated_at=now, status=Status.SUCCEEDED)
        refund = Refund(id=new_refund_id(), payment_id=payment.id, tenant="acme",
                        amount=Money.of(500, "KES"), idempotency_key=str(uuid.uuid4()),
                        created_at=now, updated_at=now)
        async with uows() as uow:
            assert await uow.payments.add(payment, actor="test", schedule=Schedule(None))
            assert await uow.refunds.add(refund, payment, actor="test",
                                         first_poll=now - timedelta(seconds=1))
        ids.append(refund.id)
    return ids


async def test_concurrent_claims_share_the_refunds_without_overlap(pool: asyncpg.Pool) -> None:
    ids = await _due_refunds(pool, 12)
    a, b = PostgresRefundLeases(pool), PostgresRefundLeases(pool)
    assert await a.any_due([ACCOUNT])
    claims = await asyncio.gather(a.claim([ACCOUNT], 8, 60), b.claim([ACCOUNT], 8, 60))
    first, second = (claim.leased for claim in claims)
    assert not any(claim.uncertain for claim in claims)
    got_a = {leased.refund.id for leased in first}
    got_b = {leased.refund.id for leased in second}
    assert not got_a & got_b
    assert got_a | got_b == set(ids)
    # Leased: nobody claims them again, and another provider account never sees them.
    assert not await a.any_due([ACCOUNT])
    assert (await a.claim([ACCOUNT], 50, 60)).leased == []
    assert all(leased.attempts == 1 for leased in [*first, *second])


async def test_release_is_fenced_by_the_claims_token(pool: asyncpg.Pool) -> None:
    [refund_id] = await _due_refunds(pool, 1)
    leases = PostgresRefundLeases(pool)
    assert (await leases.claim(["other/default"], 10, 60)).leased == []
    [leased] = (await leases.claim([ACCOUNT], 10, 60)).leased
    now = datetime.now(UTC)
    stale = leased.token - timedelta(minutes=5)  # an older claim's token
    await leases.release(refund_id, Schedule(now - timedelta(seconds=1)), stale)
    assert (await leases.claim([ACCOUNT], 10, 60)).leased == []  # still ours
    await leases.release(refund_id, Schedule(now - timedelta(seconds=1)), leased.token)
    [again] = (await leases.claim([ACCOUNT], 10, 60)).leased
    assert again.refund.id == refund_id
    assert again.attempts == 2


async def test_a_claim_answers_each_refund_with_its_payment(pool: asyncpg.Pool) -> None:
    """The poll needs the payment (provider, account, amount, status): read by the claim
    itself, not by a query per refund."""
    [refund_id] = await _due_refunds(pool, 1)
    [leased] = (await PostgresRefundLeases(pool).claim([ACCOUNT], 10, 60)).leased
    async with PostgresUnitOfWorkFactory(pool)() as uow:
        payment = await uow.payments.get(leased.refund.payment_id)
        [refund] = await uow.refunds.for_payment(leased.refund.payment_id)
    assert leased.refund == refund
    assert leased.refund.id == refund_id
    assert leased.payment == payment


async def test_an_undone_claim_leaves_the_refund_due_and_its_attempt_uncounted(
        pool: asyncpg.Pool) -> None:
    """What the reconciler does when a claim's COMMIT answer was lost; fenced by the
    claim's token, so undoing an older claim leaves a newer lease alone."""
    [refund_id] = await _due_refunds(pool, 1)
    leases = PostgresRefundLeases(pool)
    [leased] = (await leases.claim([ACCOUNT], 10, 60)).leased
    await leases.unclaim([refund_id], leased.token - timedelta(minutes=5))
    assert not await leases.any_due([ACCOUNT])  # a stale token: still leased
    await leases.unclaim([refund_id], leased.token)
    [again] = (await leases.claim([ACCOUNT], 10, 60)).leased
    assert again.refund.id == refund_id
    assert again.attempts == 1
