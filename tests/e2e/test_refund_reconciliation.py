# pyright: basic
"""Refunds that never get stuck, end to end: the real server over a socket, PostgreSQL, the
simulator (which answers refund status by our refund id) and the KKiaPay fake (no refund
status call: its stuck refunds wait for news and are flagged for review, never failed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from malipo.app.commands import RefundPayment
from malipo.app.refunds import record_refund_answer
from malipo.app.unit_of_work import IdempotencyRecord
from malipo.config import AccountConfig
from malipo.connectors.simulator import SimulatorConnector
from malipo.domain.ids import new_refund_id
from malipo.domain.money import Money
from malipo.domain.payments import ProviderUpdate
from malipo.domain.refunds import Refund
from malipo.domain.status import Status
from malipo.payments.v1 import money_pb2, payment_pb2
from malipo.sandbox.kkiapay import KkiapayFake
from tests.e2e import test_partial_refunds
from tests.e2e.test_kkiapay_flows import KEYS, WEBHOOK_SECRET, confirm, settled, widget_payment
from tests.e2e.test_partial_refunds import POLICY, kes, key, refund, refunds_of
from tests.e2e.test_payments_api import wait_status
from tests.harness import Running, auth, create_request, running, settings_for

kkiapay = test_partial_refunds.kkiapay  # the same fake, a fixture of this module too

UNSETTLED = {payment_pb2.STATUS_PENDING, payment_pb2.STATUS_PROCESSING,
             payment_pb2.STATUS_UNKNOWN}


@pytest.fixture(scope="module")
async def malipo(database_url: str, kkiapay: KkiapayFake) -> AsyncIterator[Running]:
    # "DONE" is not what the fake's revert answers: a revert stays unconfirmed (PROCESSING).
    accounts = [AccountConfig(provider="simulator", settings={"settle_after_s": "0.3"}),
                AccountConfig(provider="kkiapay", name="default", settings={
                    **KEYS, "base_url": kkiapay.base_url, "sandbox": "true",
                    "webhook_secret": WEBHOOK_SECRET, "timeout_s": "5",
                    "revert_success_codes": "DONE"})]
    settings = settings_for(database_url, accounts=accounts,
                            policies={"simulator": POLICY, "kkiapay": POLICY})
    async with running(settings) as service:
        kkiapay.webhook_url = f"{service.callback_base}/callbacks/kkiapay/default"
        yield service


def pool(service: Running) -> asyncpg.Pool:
    assert service.app.pool is not None
    return service.app.pool


def simulator(service: Running) -> SimulatorConnector:
    return service.connector("simulator")


async def succeeded(service: Running, amount: int = 1000,
                    **fields: str) -> payment_pb2.Payment:
    created = (await service.stub.CreatePayment(
        create_request(key(), amount=amount, provider_fields=fields),
        metadata=auth())).payment
    done = await wait_status(service, created.id, payment_pb2.STATUS_SUCCEEDED)
    assert done.status == payment_pb2.STATUS_SUCCEEDED
    return done


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)


async def settled_refunds(service: Running, payment_id: str) -> list[payment_pb2.Refund]:
    async def done() -> bool:
        listed = await refunds_of(service, payment_id)
        return all(r.status not in UNSETTLED for r in listed.refunds)
    await eventually(done)
    return list((await refunds_of(service, payment_id)).refunds)


async def stuck_refund(service: Running, payment_id: str, minor: int, *,
                       age: timedelta = timedelta(0)) -> Refund:
    """What a crash right after RefundPayment's first commit leaves: the caller's key and a
    PENDING refund with its event, due for the reconciler; the provider told nothing.
    `age`: how long ago that was (past the expiry rule, the first look flags it)."""
    services = service.app.services
    assert services is not None
    now = datetime.now(UTC)
    made = now - age
    cmd = RefundPayment("acme", key(), payment_id, amount_minor=minor, currency="KES")
    async with services.uow() as uow:
        payment = await uow.payments.lock(payment_id)
        assert payment is not None
        stuck = Refund(id=new_refund_id(), payment_id=payment_id, tenant=payment.tenant,
                       amount=Money(minor, payment.amount.currency),
                       idempotency_key=cmd.idempotency_key, created_at=made, updated_at=made)
        assert await uow.keys.claim(IdempotencyRecord(
            cmd.tenant, cmd.idempotency_key, "refund", cmd.fingerprint(), stuck.id)) is None
        assert await uow.refunds.add(stuck, payment, actor="tenant:acme", first_poll=now)
    return stuck


async def refunded_at_the_provider(service: Running, payment_id: str) -> SimulatorConnector:
    """The whole payment refunded at the simulator, with nothing recorded here."""
    services = service.app.services
    assert services is not None
    async with services.uow() as uow:
        payment = await uow.payments.get(payment_id)
    assert payment is not None
    sim = simulator(service)
    await sim.client.refund(payment)
    return sim


async def test_timed_out_refunds_settle_by_polling_and_reverse_the_payment(
        malipo: Running) -> None:
    p = await succeeded(malipo, 1000, refund_scenario="timeout")
    first = await malipo.stub.RefundPayment(refund(p.id, kes(400)), metadata=auth())
    second = await malipo.stub.RefundPayment(refund(p.id, kes(600)), metadata=auth())
    # The provider made both, but neither answer arrived: UNKNOWN holds both amounts.
    assert (first.refund.status, second.refund.status) == (payment_pb2.STATUS_UNKNOWN,
                                                           payment_pb2.STATUS_UNKNOWN)
    assert second.payment.status == payment_pb2.STATUS_SUCCEEDED
    refunds = await settled_refunds(malipo, p.id)
    assert [r.status for r in refunds] == [payment_pb2.STATUS_SUCCEEDED] * 2
    assert all(r.provider_reference.startswith("SIMRF-") for r in refunds)
    payment = await wait_status(malipo, p.id, payment_pb2.STATUS_REVERSED)
    assert payment.status == payment_pb2.STATUS_REVERSED
    assert payment.failure_reason == "REFUNDED"
    sim = simulator(malipo)
    assert sim.client.records[p.id].refunded_minor == 1000
    assert sim.calls_for(p.id, "refund") == 2  # polled, never resent
    listed = await refunds_of(malipo, p.id)
    assert (listed.refunded, listed.remaining) == (kes(1000), kes(0))


async def test_whole_refund_that_timed_out_settles_and_reverses_the_payment(
        malipo: Running) -> None:
    p = await succeeded(malipo, 700, refund_scenario="timeout")
    answered = await malipo.stub.RefundPayment(refund(p.id), metadata=auth())
    assert answered.refund.status == payment_pb2.STATUS_UNKNOWN
    assert [r.status for r in await settled_refunds(malipo, p.id)] == [
        payment_pb2.STATUS_SUCCEEDED]
    assert (await wait_status(malipo, p.id, payment_pb2.STATUS_REVERSED)).status == \
        payment_pb2.STATUS_REVERSED
    assert simulator(malipo).calls_for(p.id, "refund") == 1


async def test_refund_left_pending_by_a_crash_is_sent_once(malipo: Running) -> None:
    p = await succeeded(malipo, 1000)
    stuck = await stuck_refund(malipo, p.id, 250)
    refunds = await settled_refunds(malipo, p.id)
    assert [(r.id, r.status) for r in refunds] == [(stuck.id, payment_pb2.STATUS_SUCCEEDED)]
    sim = simulator(malipo)
    # Asked first (the provider had no such refund), then sent once.
    assert sim.calls_for(p.id, "refund") == 1
    assert sim.client.records[p.id].refunded_minor == 250
    assert (await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)).status == \
        payment_pb2.STATUS_SUCCEEDED


async def test_refund_sent_before_the_crash_is_found_not_sent_again(malipo: Running) -> None:
    # no_callback: no simulator callback saying REVERSED; the refund's poll must find it.
    p = await succeeded(malipo, 1000, scenario="no_callback")
    stuck = await stuck_refund(malipo, p.id, 1000)
    # The call went out and the provider refunded; the process died before recording it.
    sim = await refunded_at_the_provider(malipo, p.id)
    refunds = await settled_refunds(malipo, p.id)
    assert [(r.id, r.status) for r in refunds] == [(stuck.id, payment_pb2.STATUS_SUCCEEDED)]
    assert sim.calls_for(p.id, "refund") == 1
    assert sim.client.records[p.id].refunded_minor == 1000
    reversed_ = await wait_status(malipo, p.id, payment_pb2.STATUS_REVERSED)
    assert reversed_.status == payment_pb2.STATUS_REVERSED


async def test_stuck_refund_the_provider_refuses_fails_and_frees_its_amount(
        malipo: Running) -> None:
    # no_callback: the simulator sends no callback of its own (it would say REVERSED).
    p = await succeeded(malipo, 1000, scenario="no_callback")
    stuck = await stuck_refund(malipo, p.id, 600)
    # Returned at the provider some other way: nothing is left there to refund.
    sim = await refunded_at_the_provider(malipo, p.id)
    refunds = await settled_refunds(malipo, p.id)
    assert [(r.id, r.status, r.failure_reason) for r in refunds] == [
        (stuck.id, payment_pb2.STATUS_FAILED, "REFUND_REFUSED")]
    assert sim.client.records[p.id].refunded_minor == 1000  # nothing more went out
    listed = await refunds_of(malipo, p.id)
    assert (listed.refunded, listed.remaining) == (kes(0), kes(1000))


async def kkiapay_processing_refund(
        malipo: Running, kkiapay: KkiapayFake) -> tuple[payment_pb2.Payment, str]:
    p = await widget_payment(malipo)
    tx = kkiapay.widget_payment(5000, p.id, notify=False)
    await confirm(malipo, p.id, tx.transaction_id)
    answered = await malipo.stub.RefundPayment(refund(p.id), metadata=auth())
    assert answered.refund.status == payment_pb2.STATUS_PROCESSING
    assert answered.payment.status == payment_pb2.STATUS_SUCCEEDED
    return answered.payment, tx.transaction_id


async def test_kkiapay_revert_webhook_settles_the_processing_refund(
        malipo: Running, kkiapay: KkiapayFake) -> None:
    p, transaction_id = await kkiapay_processing_refund(malipo, kkiapay)
    kkiapay.notify(kkiapay.transactions[transaction_id])
    await settled(kkiapay)
    reversed_ = await wait_status(malipo, p.id, payment_pb2.STATUS_REVERSED)
    assert reversed_.status == payment_pb2.STATUS_REVERSED
    refunds = (await refunds_of(malipo, p.id)).refunds
    assert [r.status for r in refunds] == [payment_pb2.STATUS_SUCCEEDED]
    events = await pool(malipo).fetch(
        "SELECT payload->>'new_status' AS status FROM outbox "
        "WHERE payload->>'refund_id' = $1 UNION ALL SELECT new_status FROM events "
        "WHERE refund_id = $1", refunds[0].id)
    assert "SUCCEEDED" in {e["status"] for e in events}


async def test_kkiapay_refund_without_an_answer_is_flagged_not_failed(
        malipo: Running, kkiapay: KkiapayFake) -> None:
    p, _, refund_id = await flagged_kkiapay_refund(malipo, kkiapay)
    row = await pool(malipo).fetchrow(
        "SELECT status, needs_review, review_reason, next_poll_at FROM refunds WHERE id = $1",
        refund_id)
    assert row is not None
    assert (row["status"], row["needs_review"], row["next_poll_at"]) == (
        "PROCESSING", True, None)
    assert row["review_reason"].startswith("REFUND_UNSETTLED: refund " + refund_id)
    payment = await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)
    assert payment.needs_review
    assert payment.review_reason == "REFUND_UNSETTLED"
    listed = await refunds_of(malipo, p.id)
    # Still held: never freed for a second refund.
    assert listed.remaining == money_pb2.Money(amount_minor=0, currency=p.amount.currency)
    # The API says so on the refund itself, as on the payment.
    (refund,) = listed.refunds
    assert (refund.status, refund.needs_review, refund.review_reason) == (
        payment_pb2.STATUS_PROCESSING, True, "REFUND_UNSETTLED")
    assert refund.review_message.startswith("refund " + refund_id)


async def flagged_kkiapay_refund(malipo: Running,
                                 kkiapay: KkiapayFake) -> tuple[payment_pb2.Payment, str, str]:
    """A KKiaPay refund flagged REFUND_UNSETTLED by the reconciler's expiry rule, with its
    payment: (payment, KKiaPay transaction id, refund id)."""
    p, transaction_id = await kkiapay_processing_refund(malipo, kkiapay)
    refund_id = (await refunds_of(malipo, p.id)).refunds[0].id
    # Past the expiry rule (a day by default) and due: no refund status call can settle it.
    await pool(malipo).execute(
        "UPDATE refunds SET created_at = now() - interval '2 days', next_poll_at = now() "
        "WHERE id = $1", refund_id)

    async def flagged() -> bool:
        return bool(await pool(malipo).fetchval(
            "SELECT needs_review FROM refunds WHERE id = $1", refund_id))
    await eventually(flagged)
    assert (await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)).needs_review
    return p, transaction_id, refund_id


async def assert_settled_and_unflagged(malipo: Running, payment_id: str) -> None:
    """The refund SUCCEEDED, the payment REVERSED, neither flagged, and the payment's event
    that cleared its flag says why (REFUND_SETTLED)."""
    reversed_ = await wait_status(malipo, payment_id, payment_pb2.STATUS_REVERSED)
    assert (reversed_.needs_review, reversed_.review_reason) == (False, "")
    (refund,) = (await refunds_of(malipo, payment_id)).refunds
    assert (refund.status, refund.needs_review, refund.review_reason) == (
        payment_pb2.STATUS_SUCCEEDED, False, "")
    cleared = await pool(malipo).fetch(
        "SELECT payload->>'reason' AS reason, (payload->>'needs_review')::bool AS flag "
        "FROM outbox WHERE payload->>'payment_id' = $1 AND payload->>'refund_id' = '' "
        "UNION ALL SELECT reason, needs_review FROM events "
        "WHERE payment_id = $1 AND refund_id = ''", payment_id)
    assert ("REFUND_SETTLED", False) in {(e["reason"], e["flag"]) for e in cleared}


async def test_a_late_revert_webhook_settles_the_flagged_refund_and_clears_both_flags(
        malipo: Running, kkiapay: KkiapayFake) -> None:
    p, transaction_id, _ = await flagged_kkiapay_refund(malipo, kkiapay)
    # The provider's word, after all: the payment's whole amount went back.
    kkiapay.notify(kkiapay.transactions[transaction_id])
    await settled(kkiapay)
    await assert_settled_and_unflagged(malipo, p.id)


async def test_a_refund_call_answered_after_the_flag_settles_it_and_clears_both_flags(
        malipo: Running, kkiapay: KkiapayFake) -> None:
    p, _, refund_id = await flagged_kkiapay_refund(malipo, kkiapay)
    services = malipo.app.services
    assert services is not None
    async with services.uow() as uow:
        refund = await uow.refunds.get(refund_id, tenant="acme")
    assert refund is not None
    # What RefundPayment's own call records when the provider answers only now (it outlived
    # the expiry rule): a whole refund done is the payment REVERSED.
    await record_refund_answer(services, refund, ProviderUpdate(
        Status.REVERSED, failure_reason="REFUNDED"), actor="tenant:acme")
    await assert_settled_and_unflagged(malipo, p.id)
