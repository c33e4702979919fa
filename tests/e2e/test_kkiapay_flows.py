# pyright: basic
"""KKiaPay end to end: the real service, its callback listener and the KKiaPay fake over HTTP.

The fake's webhooks go to the real listener; every webhook is confirmed by a status call
before it moves money state, and a widget transaction id credits one payment only."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import grpc
import pytest

from malipo.config import AccountConfig, PolicyConfig
from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from malipo.sandbox.fake_provider import CallbackMode
from malipo.sandbox.kkiapay import KkiapayFake
from tests.e2e.test_payments_api import details, wait_status
from tests.harness import Running, auth, create_request, running, settings_for

pb = payment_service_pb2
KEYS = {"public_key": "pk_e2e_public", "private_key": "tpk_e2e_private",
        "secret_key": "tsk_e2e_secret"}
WEBHOOK_SECRET = "e2e-kkiapay-hash-secret"
PHONE = "+2290197000000"


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[KkiapayFake]:
    provider = KkiapayFake(webhook_secret=WEBHOOK_SECRET, retry_delay_s=0.02, **KEYS)
    await provider.start()
    yield provider
    await provider.stop()


@pytest.fixture(scope="module")
async def malipo(database_url: str, fake: KkiapayFake) -> AsyncIterator[Running]:
    account = AccountConfig(provider="kkiapay", name="default", settings={
        **KEYS, "base_url": fake.base_url, "sandbox": "true",
        "webhook_secret": WEBHOOK_SECRET, "timeout_s": "5"})
    policy = PolicyConfig(start_after_s=0.3, interval_s=0.3, backoff=1.0, max_interval_s=1.0,
                          submit_grace_s=1.0, submit_give_up_s=30.0)
    async with running(settings_for(database_url, accounts=[account],
                                    policies={"kkiapay": policy})) as service:
        fake.webhook_url = f"{service.callback_base}/callbacks/kkiapay/default"
        yield service


def key() -> str:
    return f"kk-{uuid.uuid4()}"


def pool(service: Running) -> asyncpg.Pool:
    assert service.app.pool is not None
    return service.app.pool


async def settled(fake: KkiapayFake) -> None:
    """Wait until every webhook the fake started (with its retries) is delivered."""
    while fake._tasks:
        await asyncio.gather(*list(fake._tasks))


async def widget_payment(service: Running, amount: int = 5000) -> payment_pb2.Payment:
    return (await service.stub.CreatePayment(
        create_request(key(), phone=PHONE, amount=amount, currency="XOF", provider="kkiapay"),
        metadata=auth())).payment


async def confirm(service: Running, payment_id: str, transaction_id: str) -> payment_pb2.Payment:
    return (await service.stub.ConfirmPayment(pb.ConfirmPaymentRequest(
        idempotency_key=key(), payment_id=payment_id, provider_transaction_id=transaction_id),
        metadata=auth())).payment


async def get(service: Running, payment_id: str) -> payment_pb2.Payment:
    return (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id),
                                          metadata=auth())).payment


async def moves(service: Running, payment_id: str) -> list[tuple[str, str]]:
    rows = await pool(service).fetch(
        "SELECT payload->>'old_status' AS o, payload->>'new_status' AS n FROM outbox "
        "WHERE payload->>'payment_id' = $1 UNION ALL SELECT old_status, new_status FROM events "
        "WHERE payment_id = $1", payment_id)
    return [(r["o"], r["n"]) for r in rows]


async def journal(service: Running, transaction_id: str) -> list[str]:
    rows = await pool(service).fetch(
        "SELECT outcome FROM callback_journal WHERE provider = 'kkiapay' "
        "AND position(convert_to($1, 'UTF8') in body) > 0 ORDER BY id", transaction_id)
    return [r["outcome"] for r in rows]


def status_calls(fake: KkiapayFake, transaction_id: str) -> int:
    return sum(1 for c in fake.calls_to("/api/v1/transactions/status")
               if json.loads(c.body).get("transactionId") == transaction_id)


async def test_widget_payment_is_verified_server_side_then_succeeds(
        malipo: Running, fake: KkiapayFake) -> None:
    p = await widget_payment(malipo)
    assert p.status == payment_pb2.STATUS_ACTION_REQUIRED
    widget = p.next_action.widget
    assert p.next_action.WhichOneof("action") == "widget"
    assert widget.params["data"] == p.id
    assert widget.params["amount"] == "5000"
    assert widget.params["key"] == KEYS["public_key"]
    assert not fake.calls_to("/api/v1/transactions/status")  # nothing sent before the widget

    tx = fake.widget_payment(5000, p.id, notify=False)
    done = await confirm(malipo, p.id, tx.transaction_id)
    assert done.status == payment_pb2.STATUS_SUCCEEDED
    assert done.provider_reference == tx.transaction_id
    assert done.amount == money_pb2.Money(amount_minor=5000, currency="XOF")
    assert status_calls(fake, tx.transaction_id) >= 1
    call = fake.calls_to("/api/v1/transactions/status")[-1]
    assert call.headers["x-private-key"] == KEYS["private_key"]
    assert call.status == 200
    assert ("ACTION_REQUIRED", "SUCCEEDED") in await moves(malipo, p.id)


async def test_transaction_for_another_amount_is_not_credited(
        malipo: Running, fake: KkiapayFake) -> None:
    p = await widget_payment(malipo, 5000)
    tx = fake.widget_payment(4000, p.id, notify=False)  # the widget was opened with 4000
    got = await confirm(malipo, p.id, tx.transaction_id)
    assert got.status == payment_pb2.STATUS_ACTION_REQUIRED
    assert got.needs_review
    assert got.review_reason.startswith("AMOUNT_MISMATCH")
    assert got.provider_reference == ""
    assert ("ACTION_REQUIRED", "SUCCEEDED") not in await moves(malipo, p.id)


async def test_used_transaction_id_is_refused_for_a_second_payment(
        malipo: Running, fake: KkiapayFake) -> None:
    first = await widget_payment(malipo)
    second = await widget_payment(malipo)
    tx = fake.widget_payment(5000, first.id, notify=False)
    assert (await confirm(malipo, first.id, tx.transaction_id)).status == \
        payment_pb2.STATUS_SUCCEEDED

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await confirm(malipo, second.id, tx.transaction_id)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err.value)[0].reason == "CONFIRMATION_REFUSED"
    after = await get(malipo, second.id)
    assert after.status == payment_pb2.STATUS_ACTION_REQUIRED
    assert after.provider_reference == ""
    # Confirming the first payment again cannot credit it twice either.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await confirm(malipo, first.id, tx.transaction_id)
    assert details(again.value)[0].reason == "NOT_AWAITING_CONFIRMATION"
    credited = await pool(malipo).fetch(
        "SELECT id, status FROM payments WHERE provider = 'kkiapay' AND provider_reference = $1",
        tx.transaction_id)
    assert [(r["id"], r["status"]) for r in credited] == [(first.id, "SUCCEEDED")]
    assert (await moves(malipo, first.id)).count(("ACTION_REQUIRED", "SUCCEEDED")) == 1


async def test_failed_transaction_fails_the_payment(
        malipo: Running, fake: KkiapayFake) -> None:
    p = await widget_payment(malipo)
    tx = fake.widget_payment(5000, p.id, status="FAILED", failure_code="insufficent_fund",
                             notify=False)
    got = await confirm(malipo, p.id, tx.transaction_id)
    assert got.status == payment_pb2.STATUS_FAILED
    assert got.failure_reason == "DECLINED"  # the documented status answer has no code
    assert got.provider_reference == tx.transaction_id


async def test_pending_transaction_waits_then_the_webhook_settles_it(
        malipo: Running, fake: KkiapayFake) -> None:
    p = await widget_payment(malipo)
    tx = fake.widget_payment(5000, p.id, status="PENDING", notify=False)
    got = await confirm(malipo, p.id, tx.transaction_id)
    assert got.status == payment_pb2.STATUS_PROCESSING
    assert got.provider_reference == tx.transaction_id
    fake.settle(tx.transaction_id, "SUCCESS")
    await settled(fake)
    done = await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)
    assert done.status == payment_pb2.STATUS_SUCCEEDED
    # The webhook was confirmed by a status call (or a reconciler poll got there first).
    outcomes = await journal(malipo, tx.transaction_id)
    assert len(outcomes) == 1
    assert outcomes[0] in {"APPLIED", "IGNORED"}
    assert status_calls(fake, tx.transaction_id) >= 2


async def test_refund_reverts_at_kkiapay_and_reverses_the_payment(
        malipo: Running, fake: KkiapayFake) -> None:
    p = await widget_payment(malipo)
    tx = fake.widget_payment(5000, p.id, notify=False)
    await confirm(malipo, p.id, tx.transaction_id)
    refunded = (await malipo.stub.RefundPayment(pb.RefundPaymentRequest(
        idempotency_key=key(), payment_id=p.id), metadata=auth())).payment
    assert refunded.status == payment_pb2.STATUS_REVERSED
    assert fake.transactions[tx.transaction_id].status == "REVERTED"
    reverts = [c for c in fake.calls_to("/api/v1/transactions/revert")
               if json.loads(c.body).get("transactionId") == tx.transaction_id]
    assert [c.status for c in reverts] == [200]


async def test_refused_refund_leaves_the_payment_succeeded(
        malipo: Running, fake: KkiapayFake) -> None:
    p = await widget_payment(malipo)
    tx = fake.widget_payment(5000, p.id, notify=False)
    await confirm(malipo, p.id, tx.transaction_id)
    fake.refuse_next_revert()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await malipo.stub.RefundPayment(pb.RefundPaymentRequest(
            idempotency_key=key(), payment_id=p.id), metadata=auth())
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err.value)[0].reason == "REFUND_REFUSED"
    assert (await get(malipo, p.id)).status == payment_pb2.STATUS_SUCCEEDED
    assert fake.transactions[tx.transaction_id].status == "SUCCESS"


async def test_payout_is_refused_as_unsupported_and_listed_as_such(
        malipo: Running, fake: KkiapayFake) -> None:
    calls = len(fake.calls)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await malipo.stub.CreatePayout(pb.CreatePayoutRequest(
            idempotency_key=key(), provider="kkiapay", method=payment_pb2.METHOD_MOBILE_MONEY,
            channel="mtn-bj", country="BJ",
            amount=money_pb2.Money(amount_minor=7000, currency="XOF"),
            customer=payment_pb2.Customer(phone_number=PHONE, name="Afi Dossou")),
            metadata=auth())
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err.value)[0].reason == "NOT_SUPPORTED_BY_PROVIDER"
    assert "payout" in (err.value.details() or "")
    assert len(fake.calls) == calls
    assert await pool(malipo).fetchval(
        "SELECT count(*) FROM payments WHERE provider = 'kkiapay' AND direction = 'PAYOUT'") == 0
    listed = await malipo.stub.ListProviders(pb.ListProvidersRequest(), metadata=auth())
    kkiapay = next(p for p in listed.providers if p.name == "kkiapay")
    assert not kkiapay.capabilities.payouts
    assert kkiapay.capabilities.collections
    assert [c.id for c in kkiapay.channels
            if any(lim.direction == payment_pb2.DIRECTION_PAYOUT for lim in c.limits)] == []


async def test_webhook_with_a_wrong_secret_is_401_and_not_applied(
        malipo: Running, fake: KkiapayFake) -> None:
    p = await widget_payment(malipo)
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.FORGED, 1
    tx = fake.widget_payment(5000, p.id)  # its webhook goes out with a wrong secret
    await settled(fake)
    sent = [d for d in fake.deliveries if tx.transaction_id.encode() in d.body]
    assert [d.status for d in sent] == [401] * KkiapayFake.webhook_attempts
    assert set(await journal(malipo, tx.transaction_id)) == {"REJECTED"}
    await asyncio.sleep(0.5)  # a reconciler pass, which cannot verify without the id
    got = await get(malipo, p.id)
    assert got.status == payment_pb2.STATUS_ACTION_REQUIRED
    assert got.provider_reference == ""


async def test_webhook_claim_contradicted_by_the_status_call_loses(
        malipo: Running, fake: KkiapayFake) -> None:
    p = await widget_payment(malipo)
    tx = fake.widget_payment(5000, p.id, status="FAILED", failure_code="processing_error",
                             notify=False)
    claim = {**tx.webhook_body(), "isPaymentSucces": True, "event": "transaction.success"}
    claim.pop("failureCode")
    fake.notify(tx, body=claim)  # right secret, wrong story
    await settled(fake)
    got = await wait_status(malipo, p.id, payment_pb2.STATUS_FAILED)
    assert got.status == payment_pb2.STATUS_FAILED
    assert got.failure_reason == "DECLINED"
    assert status_calls(fake, tx.transaction_id) >= 1
    assert ("ACTION_REQUIRED", "SUCCEEDED") not in await moves(malipo, p.id)


async def test_duplicate_webhook_is_answered_200_and_applied_once(
        malipo: Running, fake: KkiapayFake) -> None:
    p = await widget_payment(malipo)
    tx = fake.widget_payment(5000, p.id)
    await settled(fake)
    fake.notify(tx)
    await settled(fake)
    sent = [d for d in fake.deliveries if tx.transaction_id.encode() in d.body]
    assert [d.status for d in sent] == [200, 200]
    done = await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)
    assert done.status == payment_pb2.STATUS_SUCCEEDED
    assert done.provider_reference == tx.transaction_id
    assert await journal(malipo, tx.transaction_id) == ["APPLIED", "DUPLICATE"]
    assert (await moves(malipo, p.id)).count(("ACTION_REQUIRED", "SUCCEEDED")) == 1


async def test_webhook_to_the_listener_by_hand_without_secret_is_401(
        malipo: Running, fake: KkiapayFake) -> None:
    p = await widget_payment(malipo)
    tx = fake.widget_payment(5000, p.id, notify=False)
    async with aiohttp.ClientSession() as session, session.post(
            fake.webhook_url, json=tx.webhook_body()) as resp:
        assert resp.status == 401
    assert (await get(malipo, p.id)).status == payment_pb2.STATUS_ACTION_REQUIRED
