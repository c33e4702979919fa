# pyright: basic
"""Paykassma end to end: the real service with a Paykassma account pointed at the faithful fake,
whose postbacks go to the real callback listener (at Paykassma the postback URL is set in the
back office, so the test sets the fake's postback_url to the listener's account URL)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import asyncpg
import grpc
import pytest
from google.protobuf import json_format

from malipo.config import AccountConfig, PolicyConfig
from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from malipo.sandbox.fake_provider import Delivery
from malipo.sandbox.paykassma import PaykassmaFake, read_json
from tests.e2e.test_payments_api import details
from tests.e2e.test_watch_status import collect
from tests.harness import Running, auth, running, settings_for

pb = payment_service_pb2
S = payment_pb2
OK = b'{"status":"ok"}'
EXPIRE_AFTER_S = 2.0
DEPOSIT = "/api/v1/payment/create/mpesa"
WITHDRAWAL = "/v2/withdrawal/create"


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[PaykassmaFake]:
    server = PaykassmaFake(postback_attempts=6, retry_delay_s=0.02)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def paykassma(database_url: str, fake: PaykassmaFake) -> AsyncIterator[Running]:
    account = AccountConfig(provider="paykassma", name="default", settings={
        "api_url": fake.base_url, "pluginapi_secret": fake.secret,
        "withdrawal_private_key": fake.withdrawal_private_key,
        "postback_access_key": fake.postback_access_key,
        "postback_private_key": fake.postback_private_key,
        "plugin_url": "https://plugin.paykassma.example", "is_test": "true", "timeout_s": "5"})
    # No status endpoint: the reconciler can only apply the expiry rule.
    policy = PolicyConfig(start_after_s=0.2, interval_s=0.2, backoff=1.0, max_interval_s=0.5,
                          expire_after_s=EXPIRE_AFTER_S, submit_grace_s=1.0,
                          submit_give_up_s=30.0)
    async with running(settings_for(database_url, accounts=[account],
                                    policies={"paykassma": policy})) as service:
        fake.postback_url = f"{service.callback_base}/callbacks/paykassma/default"
        yield service


def key() -> str:
    return f"pk-{uuid.uuid4()}"


def customer(phone: str = "0712344321", reference: str = "user-42") -> payment_pb2.Customer:
    return payment_pb2.Customer(phone_number=phone, reference=reference)


def deposit(amount: int = 300000, **kwargs: object) -> pb.CreatePaymentRequest:
    return pb.CreatePaymentRequest(
        idempotency_key=key(), provider="paykassma",
        amount=money_pb2.Money(amount_minor=amount, currency="KES"),
        customer=kwargs.pop("customer", customer()), **kwargs)  # type: ignore[arg-type]


def withdrawal(amount: int = 150000, phone: str = "+254712344321") -> pb.CreatePayoutRequest:
    return pb.CreatePayoutRequest(
        idempotency_key=key(), provider="paykassma", description="winnings",
        amount=money_pb2.Money(amount_minor=amount, currency="KES"),
        customer=customer(phone))


async def create(service: Running, request: pb.CreatePaymentRequest) -> payment_pb2.Payment:
    return (await service.stub.CreatePayment(request, metadata=auth())).payment


async def create_payout(service: Running, request: pb.CreatePayoutRequest
                        ) -> payment_pb2.Payment:
    return (await service.stub.CreatePayout(request, metadata=auth())).payout


async def get(service: Running, payment_id: str) -> payment_pb2.Payment:
    if payment_id.startswith("po_"):
        return (await service.stub.GetPayout(pb.GetPayoutRequest(payout_id=payment_id),
                                             metadata=auth())).payout
    return (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id),
                                          metadata=auth())).payment


async def wait_for(service: Running, payment_id: str, status: int,
                   timeout: float = 10.0) -> payment_pb2.Payment:
    async with asyncio.timeout(timeout):
        while (got := await get(service, payment_id)).status != status:
            await asyncio.sleep(0.05)
    return got


def pool(service: Running) -> asyncpg.Pool:
    assert service.app.pool is not None
    return service.app.pool


def sent(fake: PaykassmaFake, path: str, ours: str) -> list[dict[str, object]]:
    field = "custom_transaction_id" if path == DEPOSIT else "withdrawal_id"
    bodies = [json.loads(c.body) for c in fake.calls_to(path)]
    return [b for b in bodies if b.get(field) == ours]


async def moves(service: Running, payment_id: str) -> list[tuple[str, str, str]]:
    rows = await pool(service).fetch(
        "SELECT 0 AS src, sequence AS n, old_status, new_status, actor FROM events "
        "WHERE payment_id = $1 UNION ALL SELECT 1, id, payload->>'old_status', "
        "payload->>'new_status', payload->>'actor' FROM outbox "
        "WHERE payload->>'payment_id' = $1 ORDER BY 1, 2", payment_id)
    return [(r["old_status"], r["new_status"], r["actor"]) for r in rows]


async def journal(service: Running, ours: str) -> list[str]:
    """Outcomes of the postbacks naming `ours`, oldest first."""
    rows = await pool(service).fetch(
        "SELECT outcome FROM callback_journal WHERE provider = 'paykassma' AND "
        "position($1::bytea IN body) > 0 ORDER BY id", ours.encode())
    return [r["outcome"] for r in rows]


def statuses(deliveries: list[Delivery]) -> list[tuple[int, bytes]]:
    return [(d.status, d.answer) for d in deliveries]


# --- deposits ---------------------------------------------------------------------------------

async def test_deposit_succeeds_by_postback_and_resending_stops_at_ok(
        paykassma: Running, fake: PaykassmaFake) -> None:
    created = await create(paykassma, deposit())
    assert created.status == S.STATUS_PROCESSING
    assert created.provider_reference == fake.deposits[created.id].order_id
    [body] = sent(fake, DEPOSIT, created.id)  # one provider call
    assert body == {"amount": 3000, "phone_number": "254712344321", "currency": "KES",
                    "label": "user-42", "custom_transaction_id": created.id}
    assert fake.calls_to(DEPOSIT)[-1].query["secret"] == fake.secret
    deliveries = await fake.complete_deposit(created.id)
    # Exactly {"status":"ok"} on the first attempt, so Paykassma sends it once.
    assert statuses(deliveries) == [(200, OK)]
    done = await wait_for(paykassma, created.id, S.STATUS_SUCCEEDED)
    assert done.fulfilment["mpesa_receipt"]
    await asyncio.sleep(0.2)  # several of the fake's retry delays
    assert len([d for d in fake.deliveries if created.id.encode() in d.body]) == 1
    assert await journal(paykassma, created.id) == ["APPLIED"]
    kept = await pool(paykassma).fetchval(
        "SELECT body FROM callback_journal WHERE provider = 'paykassma' AND "
        "position($1::bytea IN body) > 0", created.id.encode())
    assert json.loads(kept)["converted_amount"]["BTC"]  # the raw map, kept for audit
    assert await moves(paykassma, created.id) == [
        ("", "PENDING", "tenant:acme"), ("PENDING", "PROCESSING", "provider:paykassma"),
        ("PROCESSING", "SUCCEEDED", "callback:paykassma")]


async def test_deposit_refused_by_paykassma_is_a_failed_payment(
        paykassma: Running, fake: PaykassmaFake) -> None:
    fake.max_amount = 1000  # the account's limit at Paykassma is lower than the catalogue's
    try:
        created = await create(paykassma, deposit(200000))
    finally:
        fake.max_amount = 250_000
    assert created.status == S.STATUS_FAILED
    assert created.failure_reason == "INVALID_AMOUNT"
    assert created.failure_message == "The amount must be between 1 and 1000."
    assert len(sent(fake, DEPOSIT, created.id)) == 1


async def test_deposit_never_approved_expires_without_polling(
        paykassma: Running, fake: PaykassmaFake) -> None:
    calls = len(fake.calls)
    created = await create(paykassma, deposit(100000))
    assert created.status == S.STATUS_PROCESSING
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await paykassma.stub.RefreshPayment(pb.RefreshPaymentRequest(payment_id=created.id),
                                            metadata=auth())
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err.value)[0].reason == "NO_STATUS_POLLING"
    done = await wait_for(paykassma, created.id, S.STATUS_FAILED, timeout=EXPIRE_AFTER_S + 5)
    assert done.failure_reason == "EXPIRED"
    assert len(fake.calls) == calls + 1  # the deposit itself; nothing was ever polled
    assert ("PROCESSING", "FAILED", "reconciler") in await moves(paykassma, created.id)
    assert await pool(paykassma).fetchval(
        "SELECT next_poll_at FROM payments WHERE id = $1", created.id) is None


async def test_hosted_window_is_a_redirect_settled_by_postback(
        paykassma: Running, fake: PaykassmaFake) -> None:
    calls = len(fake.calls)
    created = await create(paykassma, deposit(50000, customer=customer(phone=""),
                                              channel="mpesa_hosted"))
    assert created.status == S.STATUS_ACTION_REQUIRED
    url = created.next_action.redirect.url
    assert url.startswith("https://plugin.paykassma.example/?")
    assert f"custom_transaction_id={created.id}" in url
    assert "fixed_amount=500" in url
    assert len(fake.calls) == calls  # the window needs no API call
    # The customer pays in the window; Paykassma then has the deposit and posts back.
    assert statuses(await fake.pay_in_window(created.id, 500, "user-42", "254712344321")) == [
        (200, OK)]
    assert (await wait_for(paykassma, created.id, S.STATUS_SUCCEEDED)).status == \
        S.STATUS_SUCCEEDED


async def test_events_carry_the_postback_raw_and_masked(paykassma: Running,
                                                         fake: PaykassmaFake) -> None:
    created = await create(paykassma, deposit())
    # Paykassma may name the payer's number in account_number: send one that does.
    postback = read_json(fake.deposit_postback(created.id).body)
    postback["additional_data"][0]["account_number"] = "254712344321"
    callback = fake.signed(postback)
    assert statuses(await fake.post(callback)) == [(200, OK)]
    events = await collect(paykassma, "acme", after=0, payment_id=created.id)
    assert [e.new_status for e in events] == [
        S.STATUS_PENDING, S.STATUS_PROCESSING, S.STATUS_SUCCEEDED]
    assert not events[0].HasField("provider_payload")  # ours: nothing the provider said
    answer = json_format.MessageToDict(events[1].provider_payload)
    assert answer["data"]["order_id"] == created.provider_reference  # the create answer
    said = json_format.MessageToDict(events[2].provider_payload)
    # The converted_amount map exactly as sent: decimals as their exact text, integers as
    # numbers (the fake mixes both, as the document does).
    sent = postback["converted_amount"]
    assert any(isinstance(v, Decimal) for v in sent.values())
    assert any(isinstance(v, int) for v in sent.values())
    assert said["converted_amount"] == {
        k: format(v, "f") if isinstance(v, Decimal) else v for k, v in sent.items()}
    assert said["additional_data"][0]["account_number"] == "***321"
    assert said["additional_data"][0]["plugin_custom_order_id"] == created.id
    assert said["access_key"] == "***"
    assert "signature" not in said
    text = json.dumps(said)
    assert "254712344321" not in text
    assert fake.postback_access_key not in text


# --- withdrawals ------------------------------------------------------------------------------

async def test_withdrawal_succeeds_by_postback(paykassma: Running, fake: PaykassmaFake) -> None:
    payout = await create_payout(paykassma, withdrawal())
    assert payout.status == S.STATUS_PROCESSING
    [body] = sent(fake, WITHDRAWAL, payout.id)  # the fake checked its signature
    assert (body["amount"], body["account_number"], body["payment_system"]) == (
        1500, "254712344321", "mpesa")
    assert fake.calls_to(WITHDRAWAL)[-1].status == 200
    assert statuses(await fake.settle_withdrawal(payout.id, 1)) == [(200, OK)]
    done = await wait_for(paykassma, payout.id, S.STATUS_SUCCEEDED)
    assert done.direction == S.DIRECTION_PAYOUT
    assert await journal(paykassma, payout.id) == ["APPLIED"]
    settled = (await collect(paykassma, "acme", after=0, payment_id=payout.id))[-1]
    said = json_format.MessageToDict(settled.provider_payload)
    item = said["additional_data"][0]
    assert (item["withdrawal_status"], item["account_number"]) == (1, "***321")
    assert said["converted_amount"]["KES"] == 1500


async def test_withdrawal_rejected_by_postback(paykassma: Running, fake: PaykassmaFake) -> None:
    payout = await create_payout(paykassma, withdrawal(100000))
    assert statuses(await fake.settle_withdrawal(payout.id, 5)) == [(200, OK)]
    done = await wait_for(paykassma, payout.id, S.STATUS_FAILED)
    assert done.failure_reason == "WITHDRAWAL_REJECTED"


async def test_unlisted_withdrawal_status_changes_nothing_until_a_listed_one_comes(
        paykassma: Running, fake: PaykassmaFake) -> None:
    # The document lists 1 SUCCESS and 5 FAIL only: a 3 is UNKNOWN, never FAILED; it is kept
    # in the journal and the payout waits for a status the document names.
    payout = await create_payout(paykassma, withdrawal(120000))
    odd = read_json(fake.withdrawal_postback(payout.id, 1).body)
    odd["additional_data"][0]["withdrawal_status"] = 3
    assert statuses(await fake.post(fake.signed(odd))) == [(200, OK)]
    assert await journal(paykassma, payout.id) == ["IGNORED"]
    assert (await get(paykassma, payout.id)).status == S.STATUS_PROCESSING
    assert statuses(await fake.settle_withdrawal(payout.id, 1)) == [(200, OK)]
    await wait_for(paykassma, payout.id, S.STATUS_SUCCEEDED)
    assert await journal(paykassma, payout.id) == ["IGNORED", "APPLIED"]


async def test_withdrawal_postback_naming_another_number_is_flagged(
        paykassma: Running, fake: PaykassmaFake) -> None:
    # withdrawal_id names our payout, but the money went to another number: not applied.
    payout = await create_payout(paykassma, withdrawal(110000))
    other = read_json(fake.withdrawal_postback(payout.id, 1).body)
    other["additional_data"][0]["account_number"] = "254799999999"
    assert statuses(await fake.post(fake.signed(other))) == [(200, OK)]
    assert await journal(paykassma, payout.id) == ["MISMATCH"]
    got = await get(paykassma, payout.id)
    assert got.status == S.STATUS_PROCESSING
    assert got.needs_review
    assert got.review_reason.startswith("ACCOUNT_MISMATCH")
    assert "254799999999" not in got.review_reason


async def test_insufficient_balance_is_a_failed_payout(paykassma: Running,
                                                       fake: PaykassmaFake) -> None:
    balance, fake.balance = fake.balance, 0
    try:
        payout = await create_payout(paykassma, withdrawal(500000))
    finally:
        fake.balance = balance
    assert payout.status == S.STATUS_FAILED
    assert payout.failure_reason == "INSUFFICIENT_FUNDS"
    assert payout.failure_message == "Insufficient balance"
    assert fake.withdrawals.get(payout.id) is None
    assert len(sent(fake, WITHDRAWAL, payout.id)) == 1


# --- phone numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize(("phone", "msisdn"), [
    ("+254712344321", "254712344321"), ("254712344321", "254712344321"),
    ("0712344321", "254712344321"), ("0712 344 321", "254712344321"),
    ("254112344321", "254112344321"), ("0112344321", "254112344321")])
async def test_accepted_phone_forms_are_sent_as_12_digit_msisdns(
        paykassma: Running, fake: PaykassmaFake, phone: str, msisdn: str) -> None:
    created = await create(paykassma, deposit(customer=customer(phone)))
    assert created.status == S.STATUS_PROCESSING
    assert sent(fake, DEPOSIT, created.id)[0]["phone_number"] == msisdn


@pytest.mark.parametrize("phone", ["+254812344321", "0812344321", "+255712344321",
                                   "071234432", "07123443210", "+1 202 555 0143"])
@pytest.mark.parametrize("payout", [False, True], ids=["deposit", "withdrawal"])
async def test_bad_phone_formats_are_refused_before_paykassma(
        paykassma: Running, fake: PaykassmaFake, phone: str, payout: bool) -> None:
    calls = len(fake.calls)
    call = (create_payout(paykassma, withdrawal(phone=phone)) if payout
            else create(paykassma, deposit(customer=customer(phone))))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = details(err.value)[1].field_violations
    assert [(v.field, v.description.split(":")[0]) for v in violations] == [
        ("customer.phone_number", "rule phone_format")]
    assert phone not in str(err.value.details())  # numbers are never echoed
    assert len(fake.calls) == calls


async def test_fractional_shillings_are_refused(paykassma: Running, fake: PaykassmaFake) -> None:
    calls = len(fake.calls)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(paykassma, deposit(300050))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    rules = {v.description.split(":")[0] for v in details(err.value)[1].field_violations}
    assert rules & {"rule multiple_of", "rule whole_units"}
    assert len(fake.calls) == calls


# --- postback integrity -----------------------------------------------------------------------

async def test_duplicate_postback_is_ok_and_changes_nothing(paykassma: Running,
                                                            fake: PaykassmaFake) -> None:
    created = await create(paykassma, deposit())
    postback = fake.deposit_postback(created.id)
    assert statuses(await fake.post(postback)) == [(200, OK)]
    await wait_for(paykassma, created.id, S.STATUS_SUCCEEDED)
    assert statuses(await fake.post(postback)) == [(200, OK)]  # ok again, or it re-sends
    assert await journal(paykassma, created.id) == ["APPLIED", "DUPLICATE"]
    transitions = [m for m in await moves(paykassma, created.id) if m[1] == "SUCCEEDED"]
    assert len(transitions) == 1


async def test_forged_postback_is_401_kept_and_never_applied(paykassma: Running,
                                                             fake: PaykassmaFake) -> None:
    created = await create(paykassma, deposit())
    forged = fake.forge(fake.deposit_postback(created.id))
    deliveries = await fake.deliver(forged, attempts=2, retry_delay_s=0.01)
    assert [d.status for d in deliveries] == [401, 401]
    assert all(json.loads(d.answer)["status"] == "fail" for d in deliveries)
    assert await journal(paykassma, created.id) == ["REJECTED", "REJECTED"]
    got = await get(paykassma, created.id)
    assert got.status == S.STATUS_PROCESSING
    assert not got.needs_review


async def test_postback_for_an_unknown_transaction_is_journaled_and_not_acknowledged(
        paykassma: Running, fake: PaykassmaFake) -> None:
    # A deposit Malipo never made (created at Paykassma by someone else).
    ours = "pay_not_from_malipo_" + uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as session, session.post(
            f"{fake.base_url}{DEPOSIT}", params={"secret": fake.secret},
            json={"amount": 700, "phone_number": "254712344321", "currency": "KES",
                  "label": "elsewhere", "custom_transaction_id": ours}) as resp:
        assert resp.status == 200
    deliveries = await fake.complete_deposit(ours)
    # Not {"status":"ok"}: if the postback outran a payment we are still recording,
    # Paykassma's re-send is what delivers it (connector.callback_answer).
    assert len(deliveries) == fake.postback_attempts
    assert {d.status for d in deliveries} == {404}
    assert all(d.answer != OK for d in deliveries)
    assert await journal(paykassma, ours) == ["UNKNOWN_PAYMENT"] * fake.postback_attempts
    assert await pool(paykassma).fetchval(
        "SELECT count(*) FROM payments WHERE id = $1", ours) == 0


async def test_amount_mismatch_is_flagged_not_applied(paykassma: Running,
                                                      fake: PaykassmaFake) -> None:
    created = await create(paykassma, deposit(300000))
    # Held durably and flagged: acknowledged, since a re-send would carry the same numbers.
    assert statuses(await fake.complete_deposit(created.id, amount=2999)) == [(200, OK)]
    assert await journal(paykassma, created.id) == ["MISMATCH"]
    got = await get(paykassma, created.id)
    assert got.status == S.STATUS_PROCESSING
    assert got.needs_review
    assert got.review_reason.startswith("AMOUNT_MISMATCH")


async def test_postback_before_the_create_answer_is_recorded(paykassma: Running,
                                                             fake: PaykassmaFake) -> None:
    fake.auto_postback = True  # Paykassma posts back while our create call is in flight
    try:
        created = await create(paykassma, deposit(120000))
    finally:
        fake.auto_postback = False
    done = await wait_for(paykassma, created.id, S.STATUS_SUCCEEDED)
    assert done.status == S.STATUS_SUCCEEDED
    assert [m[1] for m in await moves(paykassma, created.id)][-1] == "SUCCEEDED"
    assert len(sent(fake, DEPOSIT, created.id)) == 1
