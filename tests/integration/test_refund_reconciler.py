"""The reconciler gives every refund claim back, as it does a payment's: a refund whose
provider answer is lost, or whose answer could not be recorded, is polled again on its
schedule, not a lease (a minute) later; a settled one is given back with no next poll; a
claim whose COMMIT answer was lost is undone, so its refunds are due again at once.

The real store and reconciler against PostgreSQL; the provider is the simulator connector
with its refund calls replaced, one provider account per test so no test sees another's."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from malipo.app.connector import CallContext, ProviderAccount
from malipo.app.directory import ConnectorDirectory
from malipo.app.leases import Claim, LeasedRefund
from malipo.app.services import Services
from malipo.app.unit_of_work import Schedule, UnitOfWork, UnitOfWorkFactory
from malipo.connectors import registry
from malipo.connectors.simulator import SimulatorConnector
from malipo.domain.errors import ProviderNotFound, ProviderOutcomeUnknown
from malipo.domain.ids import new_payment_id, new_refund_id
from malipo.domain.money import Money
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.refunds import Refund
from malipo.domain.status import Direction, Method, Status
from malipo.reconciler.loop import Reconciler
from malipo.store.callbacks import PostgresCallbackJournal
from malipo.store.leases import PostgresPollLeases
from malipo.store.refund_leases import PostgresRefundLeases
from malipo.store.unit_of_work import PostgresUnitOfWorkFactory


@dataclass
class Setup:
    pool: asyncpg.Pool
    connector: SimulatorConnector
    services: Services
    asked: list[str] = field(default_factory=list)  # refund ids the provider was asked about

    def reconciler(self, refund_leases: Any = None) -> Reconciler:
        return Reconciler(self.services, PostgresPollLeases(self.pool),
                          refund_leases=refund_leases or PostgresRefundLeases(self.pool))


def setup(pool: asyncpg.Pool, units: UnitOfWorkFactory | None = None) -> Setup:
    account = ProviderAccount("simulator", f"t{uuid.uuid4().hex[:8]}",
                              {"callback_secret": "refund-reconciler"})
    connector = registry.build(account)
    assert isinstance(connector, SimulatorConnector)
    services = Services(units or PostgresUnitOfWorkFactory(pool), ConnectorDirectory([connector]),
                        PostgresCallbackJournal(pool))
    return Setup(pool, connector, services)


async def due_refund(s: Setup, status: Status = Status.PENDING) -> Refund:
    now = datetime.now(UTC)
    payment = Payment(id=new_payment_id(), tenant="acme", direction=Direction.COLLECTION,
                      provider="simulator", account=s.connector.account.name,
                      method=Method.UNSPECIFIED, amount=Money.of(1000, "KES"),
                      idempotency_key=str(uuid.uuid4()), created_at=now, updated_at=now,
                      status=Status.SUCCEEDED)
    refund = Refund(id=new_refund_id(), payment_id=payment.id, tenant="acme",
                    amount=Money.of(400, "KES"), idempotency_key=str(uuid.uuid4()),
                    created_at=now, updated_at=now)
    async with PostgresUnitOfWorkFactory(s.pool)() as uow:
        assert await uow.payments.add(payment, actor="test", schedule=Schedule(None))
        assert await uow.refunds.add(refund, payment, actor="test",
                                     first_poll=now - timedelta(seconds=1))
    if status is not Status.PENDING:
        await s.pool.execute("UPDATE refunds SET status = $2 WHERE id = $1", refund.id,
                             status.value)
    return replace(refund, status=status)


async def row(pool: asyncpg.Pool, refund_id: str) -> asyncpg.Record:
    found = await pool.fetchrow("SELECT status, claimed_until, next_poll_at, poll_attempts, "
                                "now() AS now FROM refunds WHERE id = $1", refund_id)
    assert found is not None
    return found


def given_back_with_a_poll(r: asyncpg.Record) -> bool:
    return r["claimed_until"] is None and r["next_poll_at"] is not None


def ask_and_then(s: Setup, answer: BaseException | ProviderUpdate) -> None:
    """The provider's refund status call answers `answer` (raises it, if an error)."""
    async def fetch_refund_status(payment: Payment, refund: Refund,
                                  ctx: CallContext) -> ProviderUpdate:
        s.asked.append(refund.id)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    s.connector.fetch_refund_status = fetch_refund_status  # type: ignore[method-assign]


async def test_a_lost_status_answer_gives_the_claim_back(pool: asyncpg.Pool) -> None:
    s = setup(pool)
    refund = await due_refund(s, Status.PROCESSING)
    ask_and_then(s, ProviderOutcomeUnknown("status call timed out"))
    assert await s.reconciler().tick() == 1
    after = await row(pool, refund.id)
    assert s.asked == [refund.id]
    assert after["status"] == "PROCESSING"
    assert given_back_with_a_poll(after)
    assert after["poll_attempts"] == 1


async def test_a_lost_refund_answer_records_unknown_and_gives_the_claim_back(
        pool: asyncpg.Pool) -> None:
    """A PENDING refund the provider does not know is sent; that call's answer is lost."""
    s = setup(pool)
    refund = await due_refund(s)
    ask_and_then(s, ProviderNotFound("no such refund"))

    async def refund_part(payment: Payment, r: Refund, ctx: CallContext) -> ProviderUpdate:
        raise ProviderOutcomeUnknown("refund call timed out")

    s.connector.refund_part = refund_part  # type: ignore[method-assign]
    assert await s.reconciler().tick() == 1
    after = await row(pool, refund.id)
    assert after["status"] == "UNKNOWN"  # held, never FAILED on a guess
    assert given_back_with_a_poll(after)


class _Lost:
    """A unit of work whose database went away: nothing it is asked to record is."""

    async def __aenter__(self) -> UnitOfWork:
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_an_answer_that_could_not_be_recorded_gives_the_claim_back(
        pool: asyncpg.Pool) -> None:
    s = setup(pool, units=_Lost)  # type: ignore[arg-type,return-value]
    refund = await due_refund(s, Status.PROCESSING)
    ask_and_then(s, ProviderUpdate(Status.SUCCEEDED, provider_reference="SIMRF-1"))
    assert await s.reconciler().tick() == 1
    after = await row(pool, refund.id)
    assert s.asked == [refund.id]
    assert after["status"] == "PROCESSING"  # the answer is asked for again on the next poll
    assert given_back_with_a_poll(after)


async def test_a_settled_refund_due_again_is_given_back_with_no_next_poll(
        pool: asyncpg.Pool) -> None:
    """A release that landed after the refund settled (its answer recorded, the
    acknowledgement lost; or settled by a webhook meanwhile) made it due again: it must not
    be re-leased every minute for ever."""
    s = setup(pool)
    refund = await due_refund(s, Status.SUCCEEDED)
    ask_and_then(s, AssertionError("a settled refund is not asked about"))
    assert await s.reconciler().tick() == 1
    after = await row(pool, refund.id)
    assert s.asked == []
    assert (after["claimed_until"], after["next_poll_at"]) == (None, None)


@dataclass
class CommitAnswerLost:
    """Refund leases whose claims commit but whose COMMIT answer is lost, once."""

    leases: PostgresRefundLeases
    undone: list[Sequence[str]] = field(default_factory=list)
    faults = PostgresRefundLeases.faults

    async def any_due(self, accounts: Sequence[str]) -> bool:
        return await self.leases.any_due(accounts)

    async def claim(self, accounts: Sequence[str], batch: int,
                    lease_s: float) -> Claim[LeasedRefund]:
        claim = await self.leases.claim(accounts, batch, lease_s)
        return Claim(claim.leased, uncertain="ConnectionDoesNotExistError")

    async def unclaim(self, ids: Sequence[str], token: datetime) -> None:
        self.undone.append(ids)
        await self.leases.unclaim(ids, token)

    async def release(self, row_id: str, schedule: Schedule, token: datetime) -> None:
        await self.leases.release(row_id, schedule, token)


async def test_a_claim_whose_commit_answer_was_lost_is_undone(pool: asyncpg.Pool) -> None:
    s = setup(pool)
    refund = await due_refund(s, Status.PROCESSING)
    ask_and_then(s, AssertionError("an uncertain claim is not worked"))
    lossy = CommitAnswerLost(PostgresRefundLeases(pool))
    assert await s.reconciler(lossy).tick() == 0
    assert lossy.undone == [[refund.id]]
    after = await row(pool, refund.id)
    assert after["claimed_until"] is None
    assert after["next_poll_at"] <= after["now"]  # due again at once, not after the lease
    assert after["poll_attempts"] == 0


@pytest.fixture(autouse=True)
def _no_simulator_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may reach the simulator's own refund calls: each test says its answer."""
    async def refuse(*args: object, **kwargs: object) -> ProviderUpdate:
        raise AssertionError("unexpected provider call")

    monkeypatch.setattr(SimulatorConnector, "refund", refuse)
    monkeypatch.setattr(SimulatorConnector, "refund_part", refuse)
    monkeypatch.setattr(SimulatorConnector, "fetch_refund_status", refuse)
