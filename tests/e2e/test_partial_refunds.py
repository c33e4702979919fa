# pyright: basic
"""Partial refunds end to end: the real server over a socket, PostgreSQL, the simulator (which
refunds in part) and the KKiaPay fake (which reverts only whole transactions)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from malipo.config import AccountConfig, PolicyConfig
from malipo.connectors.simulator import SimulatorConnector
from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from malipo.sandbox.kkiapay import KkiapayFake
from tests.e2e.test_kkiapay_flows import KEYS, WEBHOOK_SECRET, confirm, widget_payment
from tests.e2e.test_payments_api import details, wait_status
from tests.e2e.test_watch_status import collect
from tests.harness import Running, auth, create_request, running, settings_for

pb = payment_service_pb2
POLICY = PolicyConfig(start_after_s=0.3, interval_s=0.3, backoff=1.0, max_interval_s=1.0,
                      submit_grace_s=1.0, submit_give_up_s=30.0)


@pytest.fixture(scope="module")
async def kkiapay() -> AsyncIterator[KkiapayFake]:
    provider = KkiapayFake(webhook_secret=WEBHOOK_SECRET, retry_delay_s=0.02, **KEYS)
    await provider.start()
    yield provider
    await provider.stop()


@pytest.fixture(scope="module")
async def malipo(database_url: str, kkiapay: KkiapayFake) -> AsyncIterator[Running]:
    accounts = [AccountConfig(provider="simulator", settings={"settle_after_s": "0.3"}),
                AccountConfig(provider="kkiapay", name="default", settings={
                    **KEYS, "base_url": kkiapay.base_url, "sandbox": "true",
                    "webhook_secret": WEBHOOK_SECRET, "timeout_s": "5"})]
    settings = settings_for(database_url, accounts=accounts,
                            policies={"simulator": POLICY, "kkiapay": POLICY})
    async with running(settings) as service:
        kkiapay.webhook_url = f"{service.callback_base}/callbacks/kkiapay/default"
        yield service


def key() -> str:
    return f"rf-{uuid.uuid4()}"


def kes(minor: int) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=minor, currency="KES")


async def succeeded(service: Running, amount: int = 1000) -> payment_pb2.Payment:
    created = (await service.stub.CreatePayment(create_request(key(), amount=amount),
                                                metadata=auth())).payment
    done = await wait_status(service, created.id, payment_pb2.STATUS_SUCCEEDED)
    assert done.status == payment_pb2.STATUS_SUCCEEDED
    return done


def refund(payment_id: str, amount: money_pb2.Money | None = None, *,
           idempotency_key: str = "", reason: str = "") -> pb.RefundPaymentRequest:
    request = pb.RefundPaymentRequest(idempotency_key=idempotency_key or key(),
                                      payment_id=payment_id, reason=reason)
    if amount is not None:
        request.amount.CopyFrom(amount)
    return request


async def refunds_of(service: Running, payment_id: str) -> pb.ListRefundsResponse:
    return await service.stub.ListRefunds(pb.ListRefundsRequest(payment_id=payment_id),
                                          metadata=auth())


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value


def simulator_refunded(service: Running, payment_id: str) -> int:
    simulator: SimulatorConnector = service.connector("simulator")
    return simulator.client.records[payment_id].refunded_minor


async def test_partial_refunds_add_up_to_the_amount_and_then_reverse_the_payment(
        malipo: Running) -> None:
    p = await succeeded(malipo)
    first = await malipo.stub.RefundPayment(refund(p.id, kes(300), reason="one item back"),
                                            metadata=auth())
    assert first.refund.id.startswith("rf_")
    assert (first.refund.status, first.refund.amount, first.refund.payment_id) == (
        payment_pb2.STATUS_SUCCEEDED, kes(300), p.id)
    assert first.refund.provider_reference.startswith("SIMRF-")
    assert first.refund.reason == "one item back"
    assert first.payment.status == payment_pb2.STATUS_SUCCEEDED
    second = await malipo.stub.RefundPayment(refund(p.id, kes(500)), metadata=auth())
    assert second.refund.status == payment_pb2.STATUS_SUCCEEDED
    assert second.refund.id != first.refund.id

    listed = await refunds_of(malipo, p.id)
    assert [r.id for r in listed.refunds] == [first.refund.id, second.refund.id]
    assert (listed.refunded, listed.remaining) == (kes(800), kes(200))

    err = await refused(malipo.stub.RefundPayment(refund(p.id, kes(300)), metadata=auth()))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = details(err)[0]
    assert info.reason == "REFUND_EXCEEDS_REMAINING"
    assert dict(info.metadata) == {"remaining_minor": "200", "currency": "KES"}
    assert "2.00 KES remains" in (err.details() or "")
    assert len((await refunds_of(malipo, p.id)).refunds) == 2

    last = await malipo.stub.RefundPayment(refund(p.id), metadata=auth())  # the rest
    assert last.refund.amount == kes(200)
    assert last.payment.status == payment_pb2.STATUS_REVERSED
    assert last.payment.failure_reason == "REFUNDED"
    assert simulator_refunded(malipo, p.id) == 1000
    listed = await refunds_of(malipo, p.id)
    assert (listed.refunded, listed.remaining) == (kes(1000), kes(0))

    events = await collect(malipo, "acme", after=0, payment_id=p.id, until_final=False,
                           limit=10)
    refund_events = [(e.refund_id, e.old_status, e.new_status, e.amount.amount_minor)
                     for e in events if e.refund_id]
    assert refund_events == [
        (r.id, old, new, r.amount.amount_minor)
        for r in (first.refund, second.refund, last.refund)
        for old, new in ((payment_pb2.STATUS_UNSPECIFIED, payment_pb2.STATUS_PENDING),
                         (payment_pb2.STATUS_PENDING, payment_pb2.STATUS_SUCCEEDED))]
    own = [(e.old_status, e.new_status) for e in events if not e.refund_id]
    assert own[-1] == (payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_REVERSED)
    assert events[-1].new_status == payment_pb2.STATUS_REVERSED  # after the last refund's


async def test_a_refund_without_amount_refunds_everything_at_once(malipo: Running) -> None:
    p = await succeeded(malipo)
    done = await malipo.stub.RefundPayment(refund(p.id, reason="order cancelled"),
                                           metadata=auth())
    assert done.payment.status == payment_pb2.STATUS_REVERSED
    assert done.payment.failure_message == "order cancelled"
    assert (done.refund.amount, done.refund.status) == (kes(1000), payment_pb2.STATUS_SUCCEEDED)
    assert malipo.connector("simulator").calls_for(p.id, "refund") == 1


async def test_concurrent_refunds_never_exceed_the_amount(malipo: Running) -> None:
    p = await succeeded(malipo)
    results = await asyncio.gather(*(malipo.stub.RefundPayment(refund(p.id, kes(300)),
                                                               metadata=auth())
                                     for _ in range(10)), return_exceptions=True)
    made = [r for r in results if isinstance(r, pb.RefundPaymentResponse)]
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(made) == 3
    assert len(errors) == 7
    assert {details(e)[0].reason for e in errors} == {"REFUND_EXCEEDS_REMAINING"}
    listed = await refunds_of(malipo, p.id)
    assert (listed.refunded, listed.remaining) == (kes(900), kes(100))
    assert simulator_refunded(malipo, p.id) == 900


async def test_same_key_same_refund_other_request_refused(malipo: Running) -> None:
    p = await succeeded(malipo)
    request = refund(p.id, kes(250))
    answers = await asyncio.gather(*(malipo.stub.RefundPayment(request, metadata=auth())
                                     for _ in range(5)))
    assert len({a.refund.id for a in answers}) == 1
    assert len((await refunds_of(malipo, p.id)).refunds) == 1
    assert malipo.connector("simulator").calls_for(p.id, "refund") == 1
    again = await malipo.stub.RefundPayment(request, metadata=auth())
    assert again.refund == (await refunds_of(malipo, p.id)).refunds[0]

    err = await refused(malipo.stub.RefundPayment(
        refund(p.id, kes(260), idempotency_key=request.idempotency_key), metadata=auth()))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details(err)[0].reason == "IDEMPOTENCY_KEY_REUSED"
    assert (await refunds_of(malipo, p.id)).refunded == kes(250)


async def test_bad_refunds_are_refused_and_store_nothing(malipo: Running) -> None:
    p = await succeeded(malipo)
    for amount, field in ((money_pb2.Money(amount_minor=100, currency="UGX"), "amount.currency"),
                          (kes(0), "amount.amount_minor"), (kes(-5), "amount.amount_minor")):
        err = await refused(malipo.stub.RefundPayment(refund(p.id, amount), metadata=auth()))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in details(err)[1].field_violations] == [field]
    err = await refused(malipo.stub.RefundPayment(refund(p.id, kes(100)),
                                                  metadata=auth("globex")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    processing = (await malipo.stub.CreatePayment(create_request(key(), phone="+254712345605"),
                                                  metadata=auth())).payment
    err = await refused(malipo.stub.RefundPayment(refund(processing.id, kes(100)),
                                                  metadata=auth()))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err)[0].reason == "INVALID_STATE"
    assert not (await refunds_of(malipo, p.id)).refunds
    assert not (await refunds_of(malipo, processing.id)).refunds


async def test_a_provider_without_partial_refunds_says_so_and_refuses_them(
        malipo: Running, kkiapay: KkiapayFake) -> None:
    providers = {p.name: p.capabilities for p in (await malipo.stub.ListProviders(
        pb.ListProvidersRequest(), metadata=auth())).providers}
    assert (providers["simulator"].refunds, providers["simulator"].partial_refunds) == (
        True, True)
    assert (providers["kkiapay"].refunds, providers["kkiapay"].partial_refunds) == (True, False)

    p = await widget_payment(malipo)
    tx = kkiapay.widget_payment(5000, p.id, notify=False)
    assert (await confirm(malipo, p.id, tx.transaction_id)).status == (
        payment_pb2.STATUS_SUCCEEDED)
    err = await refused(malipo.stub.RefundPayment(refund(p.id, money_pb2.Money(
        amount_minor=2000, currency="XOF")), metadata=auth()))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err)[0].reason == "PARTIAL_REFUNDS_NOT_SUPPORTED"
    assert not kkiapay.calls_to("/api/v1/transactions/revert")
    assert not (await refunds_of(malipo, p.id)).refunds

    whole = await malipo.stub.RefundPayment(refund(p.id, money_pb2.Money(
        amount_minor=5000, currency="XOF")), metadata=auth())
    assert whole.payment.status == payment_pb2.STATUS_REVERSED
    assert whole.refund.status == payment_pb2.STATUS_SUCCEEDED
    assert kkiapay.transactions[tx.transaction_id].status == "REVERTED"
