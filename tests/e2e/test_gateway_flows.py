# pyright: basic
"""The gateway end to end: the real service (gRPC, callback listener, reconciler, PostgreSQL)
with a gateway account pointed at the faithful fake over 127.0.0.1. The fake calls back to
the callback_url the connector sends, which is the real listener's."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest

from malipo.config import AccountConfig, PolicyConfig
from malipo.connectors.gateway.signing import signed
from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from malipo.sandbox.fake_provider import CallbackMode
from malipo.sandbox.gateway import GatewayFake, Outcome
from tests.e2e.test_payments_api import details
from tests.harness import Running, auth, running, settings_for

pb = payment_service_pb2
S = payment_pb2
EXPIRE_AFTER_S = 3.0


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[GatewayFake]:
    server = GatewayFake(complete_after_s=0.1)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def gateway(database_url: str, fake: GatewayFake) -> AsyncIterator[Running]:
    account = AccountConfig(provider="gateway", name="default", settings={
        "base_url": fake.base_url, "public_id": fake.public_id,
        "merchant_id": fake.merchant_id, "secret_key": fake.secret_key, "timeout_s": "5"})
    # Polls start after the fake's own callbacks would have arrived, so a callback is what
    # settles a payment unless a test makes the callback go missing.
    policy = PolicyConfig(start_after_s=0.6, interval_s=0.3, backoff=1.0, max_interval_s=0.5,
                          expire_after_s=EXPIRE_AFTER_S, submit_grace_s=1.0,
                          submit_give_up_s=30.0)
    async with running(settings_for(database_url, accounts=[account],
                                    policies={"gateway": policy})) as service:
        yield service


def key() -> str:
    return f"gw-{uuid.uuid4()}"


def collection(*, channel: str = "2390", amount: int = 15050, currency: str = "KES",
               phone: str = "+254712345678", **customer: Any) -> pb.CreatePaymentRequest:
    return pb.CreatePaymentRequest(
        idempotency_key=key(), provider="gateway", channel=channel,
        amount=money_pb2.Money(amount_minor=amount, currency=currency),
        customer=payment_pb2.Customer(phone_number=phone, **customer))


def phone_for(fake: GatewayFake, outcome: Outcome) -> str:
    """A fresh Kenyan number whose 2390 customer_id the fake answers with `outcome`."""
    national = f"7{uuid.uuid4().int % 10**8:08d}"
    fake.scenarios["254" + national] = outcome
    return "+254" + national


async def create(service: Running, request: pb.CreatePaymentRequest) -> payment_pb2.Payment:
    return (await service.stub.CreatePayment(request, metadata=auth())).payment


async def get(service: Running, payment_id: str) -> payment_pb2.Payment:
    return (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id),
                                          metadata=auth())).payment


async def wait_for(service: Running, payment_id: str, status: int,
                   timeout: float = 10.0) -> payment_pb2.Payment:
    async with asyncio.timeout(timeout):
        while (got := await get(service, payment_id)).status != status:
            await asyncio.sleep(0.05)
    return got


def sent(fake: GatewayFake, suffix: str, order_id: str) -> list[dict[str, Any]]:
    bodies = [json.loads(c.body) for c in fake.calls_to(suffix)]
    return [b for b in bodies if b.get("order_id") == order_id]


def deliveries_for(fake: GatewayFake, order_id: str) -> list[int]:
    return [d.status for d in fake.deliveries if json.loads(d.body)["order_id"] == order_id]


async def moves(pool: asyncpg.Pool, payment_id: str) -> list[tuple[str, str, str]]:
    """(old, new, actor) of every recorded change, relayed or still in the outbox."""
    rows = await pool.fetch(
        "SELECT 0 AS src, sequence AS n, old_status, new_status, actor FROM events "
        "WHERE payment_id = $1 UNION ALL SELECT 1, id, payload->>'old_status', "
        "payload->>'new_status', payload->>'actor' FROM outbox "
        "WHERE payload->>'payment_id' = $1 ORDER BY 1, 2", payment_id)
    return [(r["old_status"], r["new_status"], r["actor"]) for r in rows]


def pool(service: Running) -> asyncpg.Pool:
    assert service.app.pool is not None
    return service.app.pool


async def journal_outcomes(service: Running, order_id: str) -> list[str]:
    """Outcomes of the deliveries naming the order, once each is marked (the mark follows
    the payment's commit, so a reader may see the payment settled a moment earlier)."""
    async with asyncio.timeout(5):
        while True:
            rows = await pool(service).fetch(
                "SELECT outcome FROM callback_journal WHERE provider = 'gateway' "
                "AND convert_from(body, 'UTF8')::jsonb->>'order_id' = $1 ORDER BY id",
                order_id)
            outcomes = [r["outcome"] for r in rows]
            if "RECEIVED" not in outcomes:
                return outcomes
            await asyncio.sleep(0.02)


async def wait_delivered(fake: GatewayFake, order_id: str, count: int = 1) -> list[int]:
    async with asyncio.timeout(5):
        while len(deliveries_for(fake, order_id)) < count:
            await asyncio.sleep(0.02)
    return deliveries_for(fake, order_id)


# --- C2B -------------------------------------------------------------------------------------

async def test_c2b_succeeds_by_signed_callback(gateway: Running, fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.SUCCESS)))
    assert created.status == S.STATUS_PROCESSING
    assert created.provider_reference
    done = await wait_for(gateway, created.id, S.STATUS_SUCCEEDED)
    assert done.fulfilment["transaction_ref"].startswith("MP.")
    assert done.amount == money_pb2.Money(amount_minor=15050, currency="KES")
    [body] = sent(fake, "/payment_c2b", created.id)  # one provider call for the payment
    assert body["amount"] == "150.50"
    assert body["callback_url"] == f"{gateway.callback_base}/callbacks/gateway/default"
    assert await wait_delivered(fake, created.id) == [200]
    assert await journal_outcomes(gateway, created.id) == ["APPLIED"]
    assert await moves(pool(gateway), created.id) == [
        ("", "PENDING", "tenant:acme"), ("PENDING", "PROCESSING", "provider:gateway"),
        ("PROCESSING", "SUCCEEDED", "callback:gateway")]


async def test_decline_is_a_failed_payment_not_an_error(gateway: Running,
                                                        fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.DECLINE)))
    assert created.status == S.STATUS_FAILED
    assert created.failure_reason == "GATEWAY_DECLINED"
    assert created.failure_message == "Insufficient funds"
    assert len(sent(fake, "/payment_c2b", created.id)) == 1
    await asyncio.sleep(0.3)
    assert deliveries_for(fake, created.id) == []
    assert (await get(gateway, created.id)).status == S.STATUS_FAILED


async def test_failure_arrives_by_callback(gateway: Running, fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.FAIL)))
    assert created.status == S.STATUS_PROCESSING
    done = await wait_for(gateway, created.id, S.STATUS_FAILED)
    assert done.failure_reason == "PROVIDER_FAILED"
    assert done.failure_message == "Transaction failed"
    assert await journal_outcomes(gateway, created.id) == ["APPLIED"]


async def test_otp_confirmation(gateway: Running, fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.OTP)))
    assert created.status == S.STATUS_ACTION_REQUIRED
    assert created.next_action.WhichOneof("action") == "otp"
    confirmed = (await gateway.stub.ConfirmPayment(pb.ConfirmPaymentRequest(
        idempotency_key=key(), payment_id=created.id, otp=fake.otp), metadata=auth())).payment
    assert confirmed.status == S.STATUS_PROCESSING
    assert not confirmed.HasField("next_action")
    [first] = sent(fake, "/payment_c2b", created.id)  # C2B confirms through status
    assert "extra" not in first
    confirmation = [b for b in sent(fake, "/status", created.id) if "extra" in b]
    assert [b["extra"] for b in confirmation] == [{"otp": fake.otp}]
    done = await wait_for(gateway, created.id, S.STATUS_SUCCEEDED)
    assert done.status == S.STATUS_SUCCEEDED


async def test_wrong_otp_fails_the_payment(gateway: Running, fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.OTP)))
    confirmed = (await gateway.stub.ConfirmPayment(pb.ConfirmPaymentRequest(
        idempotency_key=key(), payment_id=created.id, otp="0000"), metadata=auth())).payment
    assert confirmed.status == S.STATUS_FAILED
    assert confirmed.failure_message == "Invalid OTP"


async def test_redirect_next_action(gateway: Running, fake: GatewayFake) -> None:
    created = await create(gateway, collection(
        channel="2351", currency="RWF", amount=5000, phone="+250781234567",
        name="Jean Uwimana", email="j@example.rw"))
    assert created.status == S.STATUS_ACTION_REQUIRED
    url = created.next_action.redirect.url
    assert url.startswith(fake.base_url)
    [body] = sent(fake, "/payment_c2b", created.id)
    assert body["amount"] == "5000.00"  # two decimals even for RWF
    assert body["extra"] == {"customer_name": "Jean Uwimana", "customer_email": "j@example.rw"}
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200  # the customer confirms on the provider's page
    done = await wait_for(gateway, created.id, S.STATUS_SUCCEEDED)
    assert done.amount.amount_minor == 5000


async def test_nigerian_bank_transfer_details(gateway: Running, fake: GatewayFake) -> None:
    created = await create(gateway, collection(
        channel="2311", currency="NGN", amount=250000, phone="", reference="cust-77"))
    assert created.status == S.STATUS_ACTION_REQUIRED
    bank = created.next_action.bank_transfer
    assert (bank.account_number, bank.bank_name, bank.account_name) == (
        "4000000000", "Premium Trust Bank", "Test Ltd / Test Limited")
    assert bank.amount == money_pb2.Money(amount_minor=250000, currency="NGN")
    assert bank.reference == created.id
    assert sent(fake, "/payment_c2b", created.id)[0]["customer_id"] == "cust-77"
    fake.complete(created.id, 2)  # the customer's transfer lands
    done = await wait_for(gateway, created.id, S.STATUS_SUCCEEDED)
    assert not done.HasField("next_action")


# --- B2C -------------------------------------------------------------------------------------

async def test_b2c_with_required_extra_fields(gateway: Running, fake: GatewayFake) -> None:
    payout = (await gateway.stub.CreatePayout(pb.CreatePayoutRequest(
        idempotency_key=key(), provider="gateway", channel="2311",
        amount=money_pb2.Money(amount_minor=10000, currency="NGN"),
        customer=payment_pb2.Customer(
            name="Name Lastname", email="Name@domen.com",
            bank_account=payment_pb2.BankAccount(account_number="16280954971628095497",
                                                 bank_code="000001"))),
        metadata=auth())).payout
    assert payout.direction == S.DIRECTION_PAYOUT
    assert payout.status == S.STATUS_PROCESSING
    [body] = sent(fake, "/payment_b2c", payout.id)
    assert body["customer_id"] == "16280954971628095497"
    assert body["amount"] == "100.00"
    assert body["extra"] == {"customer_name": "Name Lastname",
                             "customer_email": "Name@domen.com", "bank_code": "000001"}
    async with asyncio.timeout(10):
        while (got := (await gateway.stub.GetPayout(pb.GetPayoutRequest(
                payout_id=payout.id), metadata=auth())).payout).status != S.STATUS_SUCCEEDED:
            await asyncio.sleep(0.05)
    assert got.status == S.STATUS_SUCCEEDED
    assert await journal_outcomes(gateway, payout.id) == ["APPLIED"]


# --- catalogue rules: refused before any provider call ------------------------------------------

RULES = [
    # (rule, field, request changes)
    ("currency", "amount.currency", {"currency": "USD"}),
    ("channel", "channel", {"channel": "99999"}),
    ("country", "country", {"country": "TZ"}),
    ("min_amount", "amount.amount_minor", {"amount": 50}),
    ("max_amount", "amount.amount_minor", {"amount": 15000001}),
    ("multiple_of", "amount.amount_minor", {"channel": "9209", "currency": "XOF",
                                            "amount": 203, "phone": "+22670123456",
                                            "payout": True}),
    ("required_field", "customer.email", {"channel": "2351", "currency": "RWF",
                                          "amount": 5000, "phone": "+250781234567",
                                          "name": "Jean"}),
    ("phone_format", "customer.phone_number", {"phone": "+25571234567"}),
    ("document_type", "customer.document_type", {
        "channel": "2403", "currency": "TZS", "amount": 200000, "phone": "+255712345678",
        "document_type": "library_card", "document_number": "X1"}),
    ("direction", "channel", {"channel": "707", "currency": "NGN", "amount": 100000,
                              "phone": "", "payout": True, "reference": "c-1",
                              "account_number": "0123456789"}),
]


def rule_request(changes: dict[str, Any]) -> tuple[bool, Any]:
    c = dict(changes)
    payout = c.pop("payout", False)
    bank = payment_pb2.BankAccount(account_number=c.pop("account_number", ""),
                                   bank_code=c.pop("bank_code", ""))
    money = money_pb2.Money(amount_minor=c.pop("amount", 15050),
                            currency=c.pop("currency", "KES"))
    top = {k: c.pop(k) for k in ("channel", "country") if k in c}
    customer = payment_pb2.Customer(phone_number=c.pop("phone", "+254712345678"),
                                    bank_account=bank, **c)
    fields = {"idempotency_key": key(), "provider": "gateway", "channel": "2390",
              "amount": money, "customer": customer, **top}
    if payout:
        return True, pb.CreatePayoutRequest(**fields)
    return False, pb.CreatePaymentRequest(**fields)


@pytest.mark.parametrize(("rule", "field", "changes"), RULES, ids=[r[0] for r in RULES])
async def test_broken_catalogue_rule_is_refused_before_the_provider(
        gateway: Running, fake: GatewayFake, rule: str, field: str,
        changes: dict[str, Any]) -> None:
    calls = len(fake.calls)
    payout, request = rule_request(changes)
    rpc = gateway.stub.CreatePayout if payout else gateway.stub.CreatePayment
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rpc(request, metadata=auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, bad = details(err.value)
    assert info.reason == "PROVIDER_RULE"
    named = {(v.field, v.description.split(":")[0]) for v in bad.field_violations}
    assert (field, f"rule {rule}") in named, named
    assert len(fake.calls) == calls  # nothing reached the provider
    stored = await pool(gateway).fetchval(
        "SELECT count(*) FROM payments WHERE idempotency_key = $1", request.idempotency_key)
    assert stored == 0


async def test_daily_limit_counts_the_day_and_refuses_before_the_provider(
        gateway: Running, fake: GatewayFake) -> None:
    phone = "+22890123456"  # TOGOCOM: XOF 200 000 a day per customer
    first = await create(gateway, collection(channel="2359", currency="XOF", amount=150000,
                                             phone=phone))
    assert first.status == S.STATUS_PROCESSING
    calls = len(fake.calls)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(gateway, collection(channel="2359", currency="XOF", amount=60000,
                                         phone=phone))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [violation] = details(err.value)[1].field_violations
    assert violation.description.startswith("rule daily_max")
    assert len(fake.calls) == calls


# --- polling, UNKNOWN, expiry ---------------------------------------------------------------

def complete_without_callback(fake: GatewayFake, order_id: str) -> None:
    """The provider settles the order and its callback is lost (armed and used at once, so
    no other payment's callback can take the one-shot switch)."""
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.NEVER, 1
    fake.complete(order_id, 2)
    assert fake.chaos.callback_count == 0


async def test_lost_callback_is_found_by_polling(gateway: Running, fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.PENDING)))
    assert created.status == S.STATUS_PROCESSING
    complete_without_callback(fake, created.id)
    done = await wait_for(gateway, created.id, S.STATUS_SUCCEEDED)
    assert done.fulfilment["transaction_ref"].startswith("MP.")
    assert deliveries_for(fake, created.id) == []
    assert sent(fake, "/status", created.id)
    assert ("PROCESSING", "SUCCEEDED", "reconciler") in await moves(pool(gateway), created.id)


async def test_simulator_id_14_is_polled_until_the_expiry_rule(gateway: Running,
                                                               fake: GatewayFake) -> None:
    created = await create(gateway, collection(channel="14", amount=1000))
    assert created.status == S.STATUS_PROCESSING
    [body] = sent(fake, "/payment_c2b", created.id)
    assert body["provider_id"] == 14
    async with asyncio.timeout(EXPIRE_AFTER_S):
        while len(sent(fake, "/status", created.id)) < 2:
            await asyncio.sleep(0.05)
    assert (await get(gateway, created.id)).status == S.STATUS_PROCESSING
    done = await wait_for(gateway, created.id, S.STATUS_FAILED, timeout=EXPIRE_AFTER_S + 5)
    assert done.failure_reason == "EXPIRED"
    assert deliveries_for(fake, created.id) == []  # the simulator never calls back
    polls = len(sent(fake, "/status", created.id))
    assert polls >= 2
    await asyncio.sleep(0.8)
    assert len(sent(fake, "/status", created.id)) == polls  # settled: polling stopped
    assert await pool(gateway).fetchval(
        "SELECT next_poll_at FROM payments WHERE id = $1", created.id) is None


async def test_undefined_status_is_unknown_then_resolved(gateway: Running,
                                                         fake: GatewayFake) -> None:
    fake.complete_after_s = 60.0  # the fake settles this one only when told below
    try:
        created = await create(gateway, collection(phone=phone_for(fake, Outcome.UNDEFINED)))
    finally:
        fake.complete_after_s = 0.1
    assert created.status == S.STATUS_UNKNOWN  # never FAILED for an outcome we do not know
    assert created.failure_reason == ""
    async with asyncio.timeout(5):  # the reconciler keeps asking; the answer stays -1
        while len(sent(fake, "/status", created.id)) < 2:
            await asyncio.sleep(0.05)
    assert (await get(gateway, created.id)).status == S.STATUS_UNKNOWN
    complete_without_callback(fake, created.id)
    done = await wait_for(gateway, created.id, S.STATUS_SUCCEEDED)
    assert done.status == S.STATUS_SUCCEEDED
    assert len(sent(fake, "/payment_c2b", created.id)) == 1  # asked again, never resent
    assert ("UNKNOWN", "SUCCEEDED", "reconciler") in await moves(pool(gateway), created.id)


# --- callback integrity -------------------------------------------------------------------------

def callback_body(fake: GatewayFake, order_id: str, *, status: int = 2,
                  amount: object = None, secret: str | None = None,
                  operation_type: int | None = None) -> bytes:
    order = fake.orders[order_id]
    body = {
        "merchant_id": fake.merchant_id,
        "operation_type": operation_type or order.operation_type,
        "customer_id": order.customer_id,
        "amount": amount if amount is not None else int(order.amount),
        "order_id": order_id, "transaction_id": order.transaction_id,
        "transaction_ref": "MP.FORGED.CP33", "status": status,
        "provider_id": int(order.provider_id), "destination_id": "",
        "result": {"code": 0, "message": "OK"},
    }
    return json.dumps(signed(body, secret if secret is not None else fake.secret_key)).encode()


async def post_callback(service: Running, raw: bytes) -> int:
    async with aiohttp.ClientSession() as session, session.post(
            f"{service.callback_base}/callbacks/gateway/default", data=raw,
            headers={"Content-Type": "application/json"}) as resp:
        return resp.status


async def test_bad_signature_is_401_journaled_not_applied(gateway: Running,
                                                          fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.PENDING)))
    polls = len(sent(fake, "/status", created.id))
    raw = callback_body(fake, created.id, secret="not-the-" + fake.secret_key)
    assert await post_callback(gateway, raw) == 401
    assert await journal_outcomes(gateway, created.id) == ["REJECTED"]
    # Instead, the service asks the provider, which says "in progress".
    async with asyncio.timeout(5):
        while len(sent(fake, "/status", created.id)) <= polls:
            await asyncio.sleep(0.05)
    got = await get(gateway, created.id)
    assert got.status == S.STATUS_PROCESSING
    assert not got.needs_review
    assert all(new != "SUCCEEDED" for _, new, _ in await moves(pool(gateway), created.id))


async def test_different_amount_is_flagged_not_applied(gateway: Running,
                                                       fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.PENDING)))
    assert created.status == S.STATUS_PROCESSING
    raw = callback_body(fake, created.id, amount=149)  # we asked for 150.50
    assert await post_callback(gateway, raw) == 200
    assert await journal_outcomes(gateway, created.id) == ["MISMATCH"]
    got = await get(gateway, created.id)
    assert got.status == S.STATUS_PROCESSING
    assert got.needs_review
    assert got.review_reason.startswith("AMOUNT_MISMATCH")
    assert ("PROCESSING", "PROCESSING", "callback:gateway") in await moves(
        pool(gateway), created.id)  # the review flag is itself an event


async def test_exact_amount_as_a_number_or_a_string_applies(gateway: Running,
                                                            fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.PENDING)))
    assert await post_callback(gateway, callback_body(fake, created.id, amount=150.5)) == 200
    done = await wait_for(gateway, created.id, S.STATUS_SUCCEEDED)
    assert not done.needs_review
    again = await create(gateway, collection(phone=phone_for(fake, Outcome.PENDING)))
    assert await post_callback(gateway, callback_body(fake, again.id, amount="150.50")) == 200
    assert (await wait_for(gateway, again.id, S.STATUS_SUCCEEDED)).status == S.STATUS_SUCCEEDED


async def test_callback_of_the_other_direction_is_flagged(gateway: Running,
                                                          fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.PENDING)))
    raw = callback_body(fake, created.id, operation_type=16)  # 16 is a payout (B2C)
    assert await post_callback(gateway, raw) == 200
    assert await journal_outcomes(gateway, created.id) == ["MISMATCH"]
    got = await get(gateway, created.id)
    assert got.status == S.STATUS_PROCESSING
    assert got.review_reason.startswith("DIRECTION_MISMATCH")


async def test_callback_sent_twice_applies_once(gateway: Running, fake: GatewayFake) -> None:
    created = await create(gateway, collection(phone=phone_for(fake, Outcome.PENDING)))
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.TWICE, 1
    fake.complete(created.id, 2)
    assert await wait_delivered(fake, created.id, 2) == [200, 200]
    assert await journal_outcomes(gateway, created.id) == ["APPLIED", "DUPLICATE"]
    settled = [m for m in await moves(pool(gateway), created.id) if m[1] == "SUCCEEDED"]
    assert settled == [("PROCESSING", "SUCCEEDED", "callback:gateway")]
