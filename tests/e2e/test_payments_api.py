# pyright: basic
"""The foundation end to end: the real server over a socket, the real database."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from tests.harness import Running, auth, create_request

pb = payment_service_pb2


def key() -> str:
    return f"k-{uuid.uuid4()}"


def details(err: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo,
                                                 error_details_pb2.BadRequest]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status is not None
    for d in status.details:
        if d.Is(info.DESCRIPTOR):
            d.Unpack(info)
        if d.Is(bad.DESCRIPTOR):
            d.Unpack(bad)
    return info, bad


async def wait_status(service: Running, payment_id: str, status: int,
                      timeout: float = 10.0) -> payment_pb2.Payment:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id),
                                             metadata=auth())).payment
        if got.status == status or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.05)


async def test_create_goes_processing_then_succeeded_by_callback(malipo: Running) -> None:
    created = (await malipo.stub.CreatePayment(create_request(key()), metadata=auth())).payment
    assert created.id.startswith("pay_")
    assert created.status == payment_pb2.STATUS_PROCESSING
    assert created.amount == money_pb2.Money(amount_minor=1000, currency="KES")
    assert created.provider_reference
    done = await wait_status(malipo, created.id, payment_pb2.STATUS_SUCCEEDED)
    assert done.status == payment_pb2.STATUS_SUCCEEDED


async def test_replay_returns_same_payment_without_second_provider_call(malipo: Running) -> None:
    k = key()
    first = (await malipo.stub.CreatePayment(create_request(k), metadata=auth())).payment
    second = (await malipo.stub.CreatePayment(create_request(k), metadata=auth())).payment
    assert second.id == first.id
    assert malipo.connector("simulator").calls_for(first.id) == 1


async def test_key_reused_with_other_body_is_refused_and_changes_nothing(
        malipo: Running) -> None:
    k = key()
    first = (await malipo.stub.CreatePayment(create_request(k), metadata=auth())).payment
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await malipo.stub.CreatePayment(create_request(k, amount=2000), metadata=auth())
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details(err.value)[0].reason == "IDEMPOTENCY_KEY_REUSED"
    again = (await malipo.stub.GetPayment(pb.GetPaymentRequest(payment_id=first.id),
                                          metadata=auth())).payment
    assert again.amount.amount_minor == 1000
    listed = await malipo.stub.ListPayments(pb.ListPaymentsRequest(page_size=100),
                                            metadata=auth())
    assert sum(1 for p in listed.payments if p.idempotency_key == k) == 1


async def test_fifty_concurrent_duplicates_make_one_payment_and_one_call(
        malipo: Running) -> None:
    k = key()
    # A payment that stays PROCESSING (no callback): its state cannot move between answers.
    answers = await asyncio.gather(*(
        malipo.stub.CreatePayment(create_request(k, phone="+254712345605"), metadata=auth())
        for _ in range(50)))
    ids = {a.payment.id for a in answers}
    assert len(ids) == 1
    (payment_id,) = ids
    assert malipo.connector("simulator").calls_for(payment_id) == 1
    # Identical answers; last_event_sequence alone may advance while the relay catches up.
    for a in answers:
        a.payment.ClearField("last_event_sequence")
    assert len({a.payment.SerializeToString(deterministic=True) for a in answers}) == 1
    assert malipo.app.pool is not None
    rows = await malipo.app.pool.fetchval(
        "SELECT count(*) FROM payments WHERE idempotency_key = $1", k)
    assert rows == 1


@pytest.mark.parametrize(("field", "request_"), [
    ("idempotency_key", create_request("")),
    ("idempotency_key", create_request("x" * 256)),
    ("amount.amount_minor", create_request("k1", amount=0)),
    ("amount.amount_minor", create_request("k2", amount=-5)),
    ("amount.currency", create_request("k3", currency="KESX")),
    ("amount.currency", create_request("k4", currency="")),
    ("customer.phone_number", create_request("k5", phone="call me")),
    ("country", pb.CreatePaymentRequest(
        idempotency_key="k6", provider="simulator", country="kenya",
        amount=money_pb2.Money(amount_minor=100, currency="KES"))),
    ("amount", pb.CreatePaymentRequest(idempotency_key="k7", provider="simulator")),
    ("provider", create_request("k8", provider="")),
    ("provider", create_request("k9", provider="no-such-provider")),
    ("metadata[x]", create_request("k10", metadata={"x": "v" * 600})),
    ("provider_fields.scenario", create_request("k11", provider_fields={"scenario": "nope"})),
])
async def test_invalid_input_names_the_field_and_stores_nothing(
        malipo: Running, field: str, request_: pb.CreatePaymentRequest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await malipo.stub.CreatePayment(request_, metadata=auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, bad = details(err.value)
    assert field in [v.field for v in bad.field_violations]
    assert malipo.app.pool is not None
    if request_.idempotency_key:
        assert await malipo.app.pool.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE key = $1", request_.idempotency_key) == 0


async def test_unknown_provider_reason(malipo: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await malipo.stub.CreatePayment(create_request(key(), provider="mpesa-x"),
                                        metadata=auth())
    assert details(err.value)[0].reason == "UNKNOWN_PROVIDER"


async def test_unauthenticated_calls_are_refused(malipo: Running) -> None:
    for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", "Basic x"),)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await malipo.stub.CreatePayment(create_request(key()), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "key-acme" not in (err.value.details() or "")


async def test_another_tenants_payment_is_not_found(malipo: Running) -> None:
    mine = (await malipo.stub.CreatePayment(create_request(key()), metadata=auth())).payment
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await malipo.stub.GetPayment(pb.GetPaymentRequest(payment_id=mine.id),
                                     metadata=auth("globex"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    theirs = await malipo.stub.ListPayments(pb.ListPaymentsRequest(), metadata=auth("globex"))
    assert mine.id not in [p.id for p in theirs.payments]
    for call in (
        malipo.stub.RefreshPayment(pb.RefreshPaymentRequest(payment_id=mine.id),
                                   metadata=auth("globex")),
        malipo.stub.CancelPayment(pb.CancelPaymentRequest(idempotency_key=key(),
                                                          payment_id=mine.id),
                                  metadata=auth("globex")),
        malipo.stub.ConfirmPayment(pb.ConfirmPaymentRequest(idempotency_key=key(),
                                                            payment_id=mine.id, otp="123456"),
                                   metadata=auth("globex")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_decline_is_a_failed_payment_not_an_error(malipo: Running) -> None:
    p = (await malipo.stub.CreatePayment(create_request(key(), phone="+254712345601"),
                                         metadata=auth())).payment
    assert p.status == payment_pb2.STATUS_FAILED
    assert p.failure_reason == "INSUFFICIENT_FUNDS"


async def test_otp_flow(malipo: Running) -> None:
    p = (await malipo.stub.CreatePayment(create_request(key(), phone="+254712345603"),
                                         metadata=auth())).payment
    assert p.status == payment_pb2.STATUS_ACTION_REQUIRED
    assert p.next_action.HasField("otp")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await malipo.stub.ConfirmPayment(pb.ConfirmPaymentRequest(
            idempotency_key=key(), payment_id=p.id, otp="000000"), metadata=auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    done = (await malipo.stub.ConfirmPayment(pb.ConfirmPaymentRequest(
        idempotency_key=key(), payment_id=p.id, otp="123456"), metadata=auth())).payment
    assert done.status == payment_pb2.STATUS_SUCCEEDED


async def test_timeout_becomes_unknown_then_resolved_by_poll_without_second_charge(
        malipo: Running) -> None:
    p = (await malipo.stub.CreatePayment(create_request(key(), phone="+254712345604"),
                                         metadata=auth())).payment
    assert p.status == payment_pb2.STATUS_UNKNOWN
    done = await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)
    assert done.status == payment_pb2.STATUS_SUCCEEDED
    assert malipo.connector("simulator").calls_for(p.id) == 1


async def test_payouts_are_separate_resources(malipo: Running) -> None:
    request = pb.CreatePayoutRequest(
        idempotency_key=key(), provider="simulator",
        amount=money_pb2.Money(amount_minor=500, currency="KES"),
        customer=payment_pb2.Customer(phone_number="+254712345600"))
    payout = (await malipo.stub.CreatePayout(request, metadata=auth())).payout
    assert payout.id.startswith("po_")
    assert payout.direction == payment_pb2.DIRECTION_PAYOUT
    got = (await malipo.stub.GetPayout(pb.GetPayoutRequest(payout_id=payout.id),
                                       metadata=auth())).payout
    assert got.id == payout.id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await malipo.stub.GetPayment(pb.GetPaymentRequest(payment_id=payout.id),
                                     metadata=auth())
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_pages_newest_first(malipo: Running) -> None:
    ids = [(await malipo.stub.CreatePayment(create_request(key()), metadata=auth("globex")))
           .payment.id for _ in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = await malipo.stub.ListPayments(pb.ListPaymentsRequest(page_size=2,
                                                                     page_token=token),
                                              metadata=auth("globex"))
        seen.extend(p.id for p in page.payments)
        token = page.next_page_token
        if not token:
            break
    assert seen[:5] == list(reversed(ids))


async def test_refund_then_refund_again_is_refused(malipo: Running) -> None:
    p = (await malipo.stub.CreatePayment(create_request(key()), metadata=auth())).payment
    await wait_status(malipo, p.id, payment_pb2.STATUS_SUCCEEDED)
    refunded = (await malipo.stub.RefundPayment(pb.RefundPaymentRequest(
        idempotency_key=key(), payment_id=p.id, reason="customer asked"),
        metadata=auth())).payment
    assert refunded.status == payment_pb2.STATUS_REVERSED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await malipo.stub.RefundPayment(pb.RefundPaymentRequest(
            idempotency_key=key(), payment_id=p.id), metadata=auth())
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_list_providers_and_health(malipo: Running) -> None:
    providers = await malipo.stub.ListProviders(pb.ListProvidersRequest(), metadata=auth())
    assert [p.name for p in providers.providers] == ["simulator"]
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(malipo.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(  # pyright: ignore[reportAttributeAccessIssue]
        service="malipo.payments.v1.PaymentService"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
