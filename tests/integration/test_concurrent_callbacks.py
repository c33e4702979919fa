"""Re-sends racing each other: a provider that delivers the same callback several times at
once (retries after a slow answer, two of its workers) moves the payment once. Every copy is
journaled; one is APPLIED, the others DUPLICATE, whichever path each one took (the one-commit
path, or the path that journals first after the one-commit statement rolled back)."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg

from malipo.app.commands import CreatePayment
from malipo.app.connector import CallbackOutcome, InboundCallback, ProviderAccount
from malipo.app.directory import ConnectorDirectory
from malipo.app.payments import create_payment
from malipo.app.services import Services
from malipo.callbacks.processing import CallbackProcessor
from malipo.connectors import registry
from malipo.connectors.simulator.signing import SIGNATURE_HEADER, sign
from malipo.domain.payments import Customer, Payment
from malipo.domain.status import Direction, Status
from malipo.store.callbacks import PostgresCallbackJournal
from malipo.store.unit_of_work import PostgresUnitOfWorkFactory
from tests.integration.test_unit_of_work import outbox_rows

SECRET = "race-secret"
COPIES = 12


class Race:
    """A PROCESSING simulator payment and signed callbacks about it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.simulator = registry.build(ProviderAccount("simulator", "default",
                                                        {"callback_secret": SECRET}))
        self.svc = Services(PostgresUnitOfWorkFactory(pool),
                            ConnectorDirectory([self.simulator], {}), PostgresCallbackJournal(pool))
        self.processor = CallbackProcessor(self.svc)

    async def payment(self) -> Payment:
        payment = await create_payment(self.svc, CreatePayment(
            "race", f"race-{time.time_ns()}", Direction.COLLECTION, "simulator", 1500, "KES",
            customer=Customer(phone_number="+254700000007")), None)
        assert payment.status is Status.PROCESSING
        return payment

    @staticmethod
    def body(payment: Payment, status: str, event: str = "") -> bytes:
        """`event`: the provider's event id's suffix (the status unless another is given)."""
        return json.dumps({
            "event_id": f"{payment.id}:{event or status}", "payment_id": payment.id,
            "reference": payment.provider_reference, "status": status,
            "provider_status": status.lower(), "failure_reason": "", "failure_message": "",
            "amount_minor": 1500, "currency": "KES"}).encode()

    async def deliver(self, payment: Payment, body: bytes) -> CallbackOutcome:
        headers = {SIGNATURE_HEADER.lower(): sign(SECRET, body, int(time.time()))}
        return await self.processor.handle(self.simulator, InboundCallback(
            "simulator", "default", headers, body, {}, "127.0.0.1", payment.created_at))


async def test_copies_of_one_callback_at_once_move_the_payment_once(pool: asyncpg.Pool) -> None:
    race = Race(pool)
    payment = await race.payment()
    body = race.body(payment, "SUCCEEDED")

    outcomes = await asyncio.gather(*(race.deliver(payment, body) for _ in range(COPIES)))

    assert sorted(o.value for o in outcomes) == ["APPLIED"] + ["DUPLICATE"] * (COPIES - 1)
    assert await pool.fetchval("SELECT status FROM payments WHERE id = $1",
                               payment.id) == "SUCCEEDED"
    assert await outbox_rows(pool, payment.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]
    journaled = await pool.fetch(
        "SELECT outcome, count(*) AS n FROM callback_journal WHERE provider = 'simulator' "
        "AND body = $1 GROUP BY outcome", body)
    assert {r["outcome"]: r["n"] for r in journaled} == {"APPLIED": 1,
                                                         "DUPLICATE": COPIES - 1}
    assert await pool.fetchval(
        "SELECT outcome FROM callback_events WHERE provider = 'simulator' AND event_key = $1",
        f"{payment.id}:SUCCEEDED") == "APPLIED"


async def test_two_final_answers_at_once_settle_the_payment_once(pool: asyncpg.Pool) -> None:
    """SUCCEEDED and FAILED for one payment at the same moment: one of them settles it, the
    other finds it settled and never moves it again."""
    race = Race(pool)
    payment = await race.payment()

    outcomes = await asyncio.gather(race.deliver(payment, race.body(payment, "SUCCEEDED")),
                                    race.deliver(payment, race.body(payment, "FAILED")))

    assert [o.value for o in outcomes].count("APPLIED") == 1
    final = await pool.fetchval("SELECT status FROM payments WHERE id = $1", payment.id)
    assert final in ("SUCCEEDED", "FAILED")
    # One settlement event, the winner's: the loser moved nothing.
    assert await outbox_rows(pool, payment.id) == sorted(["PENDING", "PROCESSING", final])
