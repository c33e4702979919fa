"""Webhooks: secret header, KKiaPay's retries, duplicates, and the status call as the truth."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import aiohttp
from kkiapay_support import WEBHOOK_SECRET, PaymentFactory, Receiver, account_for

from malipo.app.connector import CallbackOutcome, CallContext, Confirmation, InboundCallback
from malipo.connectors.kkiapay import KkiapayConnector
from malipo.domain.errors import CallbackRejected
from malipo.domain.money import Money
from malipo.domain.status import Status
from malipo.sandbox.fake_provider import CallbackMode
from malipo.sandbox.kkiapay import KkiapayFake


async def settle(fake: KkiapayFake) -> None:
    while fake._tasks:
        await asyncio.gather(*list(fake._tasks))


async def test_success_webhook_is_accepted_once_and_names_our_payment(
    connector: KkiapayConnector, fake: KkiapayFake, receiver: Receiver,
    make_payment: PaymentFactory,
) -> None:
    payment = make_payment(5000)
    tx = fake.widget_payment(5000, payment.id)
    await settle(fake)
    assert [d.status for d in fake.deliveries] == [200]
    assert receiver.journal[0].headers["x-kkiapay-secret"] == WEBHOOK_SECRET
    [event] = receiver.events
    assert event.payment_id == payment.id
    assert event.update.provider_reference == tx.transaction_id
    assert event.update.status is Status.SUCCEEDED
    assert event.update.amount == Money.of(5000, "XOF")
    assert event.event_key == f"{tx.transaction_id}:transaction.success"
    # The service confirms the trigger with the status call before applying it.
    assert connector.capabilities.callbacks_need_confirmation
    truth = await connector.confirm(
        payment, Confirmation(provider_transaction_id=event.update.provider_reference),
        CallContext())
    assert truth.status is Status.SUCCEEDED


async def test_failed_webhook_carries_the_reason(
    connector: KkiapayConnector, fake: KkiapayFake, receiver: Receiver,
    make_payment: PaymentFactory,
) -> None:
    payment = make_payment(5000)
    fake.widget_payment(5000, payment.id, status="FAILED", failure_code="insufficent_fund")
    await settle(fake)
    [event] = receiver.events
    assert event.update.status is Status.FAILED
    assert event.update.failure_reason == "INSUFFICIENT_FUNDS"


async def test_wrong_secret_is_401_retried_like_kkiapay_and_never_applied(
    connector: KkiapayConnector, fake: KkiapayFake, receiver: Receiver,
    make_payment: PaymentFactory,
) -> None:
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.FORGED, 1
    started = asyncio.get_running_loop().time()
    fake.widget_payment(5000, make_payment().id)
    await settle(fake)
    elapsed = asyncio.get_running_loop().time() - started
    assert [d.status for d in fake.deliveries] == [401] * 6  # first try + 5 retries
    assert set(receiver.outcomes) == {CallbackOutcome.REJECTED}
    assert receiver.events == []
    # 0.01 s apart and growing by 0.01 s each time: 0.01 + 0.02 + ... + 0.05
    assert elapsed >= 0.15


async def test_missing_secret_header_is_rejected(connector: KkiapayConnector) -> None:
    body = json.dumps({"transactionId": "1", "isPaymentSucces": True}).encode()
    callback = InboundCallback("kkiapay", "main", {}, body, {}, "127.0.0.1", datetime.now(UTC))
    try:
        connector.verify_callback(callback)
    except CallbackRejected:
        pass
    else:
        raise AssertionError("a webhook without the secret header was accepted")


async def test_rotated_previous_secret_still_verifies(fake: KkiapayFake) -> None:
    conn = KkiapayConnector(account_for(fake, webhook_secret="new-secret",
                                        webhook_secret_previous=WEBHOOK_SECRET))
    body = json.dumps({"transactionId": "1", "isPaymentSucces": True}).encode()
    callback = InboundCallback("kkiapay", "main", {"x-kkiapay-secret": WEBHOOK_SECRET}, body,
                               {}, "127.0.0.1", datetime.now(UTC))
    conn.verify_callback(callback)
    await conn.close()


async def test_duplicate_webhook_is_answered_2xx_and_counted_once(
    connector: KkiapayConnector, fake: KkiapayFake, receiver: Receiver,
    make_payment: PaymentFactory,
) -> None:
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.TWICE, 1
    fake.widget_payment(5000, make_payment().id)
    await settle(fake)
    assert [d.status for d in fake.deliveries] == [200, 200]
    assert receiver.outcomes == [CallbackOutcome.APPLIED, CallbackOutcome.DUPLICATE]
    assert len(receiver.events) == 1


async def test_listener_down_gets_kkiapays_five_retries(
    connector: KkiapayConnector, fake: KkiapayFake, receiver: Receiver,
    make_payment: PaymentFactory,
) -> None:
    receiver.force_status = 503
    fake.widget_payment(5000, make_payment().id)
    await settle(fake)
    assert [d.status for d in fake.deliveries] == [503] * 6


async def test_listener_back_up_mid_retries_stops_them(
    connector: KkiapayConnector, fake: KkiapayFake, receiver: Receiver,
    make_payment: PaymentFactory,
) -> None:
    receiver.force_status, receiver.fail_first = 302, 2  # a redirect is no acknowledgement
    fake.widget_payment(5000, make_payment().id)
    await settle(fake)
    assert [d.status for d in fake.deliveries] == [302, 302, 200]


async def test_webhook_claim_contradicted_by_the_status_call_loses(
    connector: KkiapayConnector, fake: KkiapayFake, receiver: Receiver,
    make_payment: PaymentFactory,
) -> None:
    payment = make_payment(5000)
    tx = fake.widget_payment(5000, payment.id, status="FAILED", notify=False)
    # Someone who knows the secret claims success for a failed transaction.
    fake.notify(tx, body={**tx.webhook_body(), "isPaymentSucces": True,
                          "event": "transaction.success"})
    await settle(fake)
    [event] = receiver.events
    assert event.update.status is Status.SUCCEEDED  # only the claim
    truth = await connector.confirm(
        payment, Confirmation(provider_transaction_id=event.update.provider_reference),
        CallContext())
    assert truth.status is Status.FAILED


async def test_webhook_naming_our_payment_for_another_amount_is_not_credited(
    connector: KkiapayConnector, fake: KkiapayFake, receiver: Receiver,
    make_payment: PaymentFactory,
) -> None:
    payment = make_payment(5000)
    tx = fake.widget_payment(5000, payment.id, notify=False)
    fake.notify(tx, body={**tx.webhook_body(), "amount": 500000})
    await settle(fake)
    [event] = receiver.events
    assert event.update.amount == Money.of(500000, "XOF")  # the listener's integrity check
    truth = await connector.confirm(
        payment, Confirmation(provider_transaction_id=tx.transaction_id), CallContext())
    assert truth.amount == payment.amount


async def test_unparseable_body_is_journaled_and_acknowledged(
    connector: KkiapayConnector,
) -> None:
    callback = InboundCallback("kkiapay", "main", {"x-kkiapay-secret": WEBHOOK_SECRET},
                               b"<html>", {}, "127.0.0.1", datetime.now(UTC))
    connector.verify_callback(callback)
    try:
        connector.parse_callback(callback)
    except CallbackRejected:
        pass
    else:
        raise AssertionError("an HTML body parsed as a KKiaPay webhook")
    assert connector.callback_answer(CallbackOutcome.INVALID).status == 200


async def test_callback_answers(connector: KkiapayConnector) -> None:
    for outcome in CallbackOutcome:
        answer = connector.callback_answer(outcome)
        expected = 401 if outcome is CallbackOutcome.REJECTED else 200
        assert answer.status == expected, outcome


async def test_fake_http_test_surface(connector: KkiapayConnector, fake: KkiapayFake,
                                      receiver: Receiver, make_payment: PaymentFactory) -> None:
    payment = make_payment(3000)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/_test/webhook", json={"url": receiver.url}):
            pass
        async with http.post(f"{fake.base_url}/_test/widget",
                             json={"amount": 3000, "data": payment.id,
                                   "status": "PENDING"}) as resp:
            created = await resp.json()
        tid = created["transactionId"]
        async with http.post(f"{fake.base_url}/_test/transactions/{tid}/settle",
                             json={"status": "SUCCESS"}) as resp:
            assert (await resp.json())["status"] == "SUCCESS"
    await settle(fake)
    assert [e.update.provider_reference for e in receiver.events] == [tid]
    truth = await connector.confirm(payment, Confirmation(provider_transaction_id=tid),
                                    CallContext())
    assert truth.status is Status.SUCCEEDED
