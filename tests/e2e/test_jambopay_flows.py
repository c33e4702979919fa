# pyright: basic
"""JamboPay end to end: KPLC tokens and airtime as payouts through the real service.

The fake sends its callbacks to each presentment's CallbackUrl, which the service sets to its
own listener; callbacks are claims confirmed by a status call, the token reaches the caller
in payout.fulfilment and in the status event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import aiohttp
import asyncpg
import grpc
import pytest

from malipo.config import AccountConfig, PolicyConfig
from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from malipo.sandbox.fake_provider import CallbackMode
from malipo.sandbox.jambopay import JambopayFake
from tests.e2e.test_watch_status import collect
from tests.harness import Running, auth, running, settings_for

pb = payment_service_pb2
METER = "14234567890"
PHONE = "+254712345678"
STATUS_PATH = "/api/payments/gettransactionstatus"


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[JambopayFake]:
    provider = JambopayFake()
    provider.chaos.hang_seconds = 1.0
    await provider.start()
    yield provider
    await provider.stop()


@pytest.fixture(scope="module")
async def malipo(database_url: str, fake: JambopayFake) -> AsyncIterator[Running]:
    account = AccountConfig(provider="jambopay", name="default", settings={
        "base_url": fake.api_base, "username": fake.username, "password": fake.password,
        "app_key": fake.app_key, "presentment_ttl_s": "300", "timeout_s": "5"})
    # The first poll comes after 1 s, so a test can commit a presentment before the
    # reconciler looks at it; then every 0.3 s.
    policy = PolicyConfig(start_after_s=1.0, interval_s=0.3, backoff=1.0, max_interval_s=1.0,
                          submit_grace_s=1.0, submit_give_up_s=30.0)
    async with running(settings_for(database_url, accounts=[account],
                                    policies={"jambopay": policy})) as service:
        yield service


@pytest.fixture(autouse=True)
def reset(fake: JambopayFake) -> None:
    fake.commit_mode = "complete"
    fake.presentment_ttl_s = 300.0


def key() -> str:
    return f"jp-{uuid.uuid4()}"


def pool(service: Running) -> asyncpg.Pool:
    assert service.app.pool is not None
    return service.app.pool


async def settled(fake: JambopayFake) -> None:
    while fake._tasks:
        await asyncio.gather(*list(fake._tasks))


def kplc(*, amount: int = 2000, auto_commit: bool = False) -> pb.CreatePayoutRequest:
    fields = {"meter_number": METER}
    if auto_commit:
        fields["auto_commit"] = "true"
    return pb.CreatePayoutRequest(
        idempotency_key=key(), provider="jambopay", method=payment_pb2.METHOD_BILL_PAYMENT,
        channel="kplc", country="KE", amount=money_pb2.Money(amount_minor=amount, currency="KES"),
        customer=payment_pb2.Customer(phone_number=PHONE, name="Wanjiku"),
        provider_fields=fields)


async def create(service: Running, request: pb.CreatePayoutRequest) -> payment_pb2.Payment:
    return (await service.stub.CreatePayout(request, metadata=auth())).payout


async def commit(service: Running, payout_id: str) -> payment_pb2.Payment:
    return (await service.stub.ConfirmPayment(pb.ConfirmPaymentRequest(
        idempotency_key=key(), payment_id=payout_id), metadata=auth())).payment


async def get(service: Running, payout_id: str) -> payment_pb2.Payment:
    return (await service.stub.GetPayout(pb.GetPayoutRequest(payout_id=payout_id),
                                         metadata=auth())).payout


async def wait_payout(service: Running, payout_id: str, status: int,
                      timeout: float = 10.0) -> payment_pb2.Payment:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await get(service, payout_id)
        if got.status == status or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.05)


def status_calls(fake: JambopayFake, txid: str) -> int:
    return sum(1 for c in fake.calls_to(STATUS_PATH) if c.query.get("transactionid") == txid)


async def test_kplc_presentment_then_commit_delivers_the_token(
        malipo: Running, fake: JambopayFake) -> None:
    po = await create(malipo, kplc())
    assert po.status == payment_pb2.STATUS_ACTION_REQUIRED
    confirm = po.next_action.confirm
    assert confirm.account_name == "JOHN DOE KAMAU"
    assert confirm.amount == money_pb2.Money(amount_minor=2000, currency="KES")
    txn = fake.transactions[po.provider_reference]
    assert txn.meter == METER and txn.amount == 20 and not txn.committed
    form = dict(parse_qsl(fake.calls_to("/api/payments/POST")[-1].body.decode()))
    assert form["CallbackUrl"] == f"{malipo.callback_base}/callbacks/jambopay/default"

    done = await commit(malipo, po.id)
    assert done.status == payment_pb2.STATUS_SUCCEEDED
    assert txn.token and done.fulfilment["token"] == txn.token
    assert done.fulfilment["units"] == str(txn.units)
    assert done.fulfilment["receipt_number"] == txn.receipt
    events = await collect(malipo, "acme", after=0, payment_id=po.id)
    final = [e for e in events if e.new_status == payment_pb2.STATUS_SUCCEEDED]
    assert len(final) == 1
    assert final[0].fulfilment["token"] == txn.token
    stored = await pool(malipo).fetchval(
        "SELECT fulfilment->>'token' FROM events WHERE payment_id = $1 "
        "AND new_status = 'SUCCEEDED'", po.id)
    assert stored == txn.token
    # The commit's own callback follows; confirmed by a status call, it changes nothing.
    await settled(fake)
    await asyncio.sleep(0.2)
    assert (await get(malipo, po.id)).status == payment_pb2.STATUS_SUCCEEDED
    assert status_calls(fake, po.provider_reference) >= 1
    count = await pool(malipo).fetchval(
        "SELECT count(*) FROM events WHERE payment_id = $1 AND new_status = 'SUCCEEDED'", po.id)
    assert count == 1


async def test_airtime_presentment_and_commit(malipo: Running, fake: JambopayFake) -> None:
    po = await create(malipo, pb.CreatePayoutRequest(
        idempotency_key=key(), provider="jambopay", method=payment_pb2.METHOD_AIRTIME,
        channel="airtime_safaricom", country="KE",
        amount=money_pb2.Money(amount_minor=5000, currency="KES"),
        customer=payment_pb2.Customer(phone_number="+254722000111", name="Otieno")))
    assert po.status == payment_pb2.STATUS_ACTION_REQUIRED
    txn = fake.transactions[po.provider_reference]
    assert (txn.stream, txn.operator_code, txn.phone) == ("credit", "4", "254722000111")
    done = await commit(malipo, po.id)
    assert done.status == payment_pb2.STATUS_SUCCEEDED
    assert done.fulfilment["receipt_number"] == txn.receipt
    assert "token" not in done.fulfilment


async def test_automatic_commit_succeeds_in_one_call(malipo: Running, fake: JambopayFake) -> None:
    before_commits = len(fake.calls_to("/api/payments/PUT"))
    po = await create(malipo, kplc(auto_commit=True))
    assert po.status == payment_pb2.STATUS_SUCCEEDED
    txn = fake.transactions[po.provider_reference]
    assert po.fulfilment["token"] == txn.token
    assert len(fake.calls_to("/api/payments/PUT")) == before_commits + 1


async def test_commit_of_an_expired_presentment_cancels_without_moving_money(
        malipo: Running, fake: JambopayFake) -> None:
    fake.presentment_ttl_s = 0.2
    po = await create(malipo, kplc())
    balance = fake.float_balance
    await asyncio.sleep(0.4)
    got = await commit(malipo, po.id)
    assert got.status == payment_pb2.STATUS_CANCELLED
    assert got.failure_reason == "PROVIDER_CANCELLED"
    assert fake.float_balance == balance
    assert not fake.transactions[po.provider_reference].committed
    assert "token" not in got.fulfilment


@pytest.mark.parametrize(("outcome", "status", "reason"), [
    ("failed", payment_pb2.STATUS_FAILED, "PROVIDER_FAILED"),
    ("cancelled", payment_pb2.STATUS_CANCELLED, "PROVIDER_CANCELLED"),
])
async def test_failed_and_cancelled_after_commit(
        malipo: Running, fake: JambopayFake, outcome: str, status: int, reason: str) -> None:
    fake.commit_mode = "pending"
    po = await create(malipo, kplc())
    assert (await commit(malipo, po.id)).status == payment_pb2.STATUS_PROCESSING
    fake.settle(po.provider_reference, outcome)  # its callback says "Agent Refunded"
    await settled(fake)
    got = await wait_payout(malipo, po.id, status)
    assert got.status == status
    assert got.failure_reason == reason
    assert "token" not in got.fulfilment


async def test_status_polling_settles_it_when_no_callback_comes(
        malipo: Running, fake: JambopayFake) -> None:
    fake.commit_mode = "pending"
    po = await create(malipo, kplc())
    assert (await commit(malipo, po.id)).status == payment_pb2.STATUS_PROCESSING
    deliveries = len(fake.deliveries)
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.NEVER, 1
    fake.settle(po.provider_reference, "completed")
    got = await wait_payout(malipo, po.id, payment_pb2.STATUS_SUCCEEDED)
    assert got.status == payment_pb2.STATUS_SUCCEEDED
    assert got.fulfilment["token"] == fake.transactions[po.provider_reference].token
    assert len(fake.deliveries) == deliveries  # no callback helped
    assert status_calls(fake, po.provider_reference) >= 1


async def test_agent_refunded_callback_reverses_a_succeeded_payout(
        malipo: Running, fake: JambopayFake) -> None:
    po = await create(malipo, kplc())
    done = await commit(malipo, po.id)
    assert done.status == payment_pb2.STATUS_SUCCEEDED
    await settled(fake)
    fake.settle(po.provider_reference, "refunded")
    await settled(fake)
    got = await wait_payout(malipo, po.id, payment_pb2.STATUS_REVERSED)
    assert got.status == payment_pb2.STATUS_REVERSED
    assert got.failure_reason == "AGENT_REFUNDED"
    assert got.fulfilment["token"] == done.fulfilment["token"]  # what was delivered stays


async def test_forged_callback_is_contradicted_by_the_status_call(
        malipo: Running, fake: JambopayFake) -> None:
    po = await create(malipo, kplc())
    assert (await commit(malipo, po.id)).status == payment_pb2.STATUS_SUCCEEDED
    await settled(fake)
    txn = fake.transactions[po.provider_reference]
    calls = status_calls(fake, txn.id)
    forged = fake.callback_body(txn, forged=True)  # "Agent Refunded" for a vended token
    async with aiohttp.ClientSession() as session, session.post(
            f"{malipo.callback_base}/callbacks/jambopay/default", data=forged,
            headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 200
    assert status_calls(fake, txn.id) == calls + 1
    got = await get(malipo, po.id)
    assert got.status == payment_pb2.STATUS_SUCCEEDED
    assert not got.needs_review
    reversed_ = await pool(malipo).fetchval(
        "SELECT count(*) FROM events WHERE payment_id = $1 AND new_status = 'REVERSED'", po.id)
    assert reversed_ == 0


async def test_token_is_refreshed_once_on_401(malipo: Running, fake: JambopayFake) -> None:
    await create(malipo, kplc())  # a token is cached
    tokens = len(fake.calls_to("/token"))
    fake.revoke_tokens()
    po = await create(malipo, kplc())
    assert po.status == payment_pb2.STATUS_ACTION_REQUIRED
    assert len(fake.calls_to("/token")) == tokens + 1
    presentments = [c.status for c in fake.calls_to("/api/payments/POST")[-2:]]
    assert presentments == [401, 200]


async def test_wrong_method_for_the_channel_is_refused(malipo: Running) -> None:
    request = kplc()
    request.method = payment_pb2.METHOD_AIRTIME
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(malipo, request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
