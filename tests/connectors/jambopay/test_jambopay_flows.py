"""The JamboPay connector against its fake over real HTTP: presentment, commit, status."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
from jambopay_support import Listener, PayoutFactory, moved

from malipo.app.connector import CallContext, Confirmation
from malipo.connectors.jambopay import JambopayConnector
from malipo.domain.errors import (
    InvalidRequest,
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderUnavailable,
    Unsupported,
)
from malipo.domain.payments import NextActionKind
from malipo.domain.status import Status
from malipo.sandbox.fake_provider import CallbackMode, ResponseFault
from malipo.sandbox.jambopay import JambopayFake


def form_of(fake: JambopayFake, suffix: str) -> dict[str, str]:
    call = fake.calls_to(suffix)[-1]
    return {k: v[0] for k, v in parse_qs(call.body.decode()).items()}


async def test_kplc_presentment_then_commit_delivers_the_token(
    fake: JambopayFake, connector: JambopayConnector, listener: Listener, payout: PayoutFactory,
) -> None:
    payment = payout(amount_minor=2000)
    presented = await connector.create_payout(payment, CallContext())

    assert presented.status is Status.ACTION_REQUIRED
    assert presented.next_action is not None
    assert presented.next_action.kind is NextActionKind.CONFIRM
    assert presented.next_action.details["account_name"] == "JOHN DOE KAMAU"
    assert presented.next_action.details["amount_minor"] == "2000"
    assert "expires_at" in presented.next_action.details
    assert presented.amount == payment.amount
    sent = form_of(fake, "/api/payments/POST")
    assert sent == {"Stream": "kplc", "PhoneNumber": "254712345678", "Amount": "20.00",
                    "MeterNumber": "14234567890", "CallbackUrl": listener.url}
    headers = fake.calls_to("/api/payments/POST")[-1].headers
    assert headers["app_key"] == fake.app_key
    assert headers["authorization"].startswith("Bearer ")
    assert fake.calls_to("/api/payments/PUT") == []  # nothing committed before confirm

    payment = moved(payment, presented)
    done = await connector.confirm(payment, Confirmation(), CallContext())
    txn = fake.transactions[presented.provider_reference]
    assert done.status is Status.SUCCEEDED
    assert done.fulfilment["token"] == txn.token
    assert len(done.fulfilment["token"]) == 20
    assert done.fulfilment["units"] == "0.040000"
    assert done.fulfilment["receipt_number"] == txn.receipt
    assert done.amount == payment.amount
    assert form_of(fake, "/api/payments/PUT") == {
        "Stream": "kplc", "TransactionID": txn.id}  # NOTES.md: Stream, TransactionID

    payment = moved(payment, done)
    assert payment.status is Status.SUCCEEDED
    assert payment.fulfilment["token"] == txn.token
    polled = await connector.fetch_status(payment, CallContext())
    assert polled.status is Status.SUCCEEDED
    assert polled.fulfilment["token"] == txn.token


async def test_airtime_presentment_and_commit(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    payment = payout(channel="airtime_safaricom", amount_minor=5000, phone="0703263713")
    presented = await connector.create_payout(payment, CallContext())
    assert presented.status is Status.ACTION_REQUIRED
    assert form_of(fake, "/api/payments/POST") == {
        "Stream": "credit", "PhoneNumber": "254703263713", "Amount": "50.00",
        "OperatorCode": "4", "CallbackUrl": connector.account.callback_url}
    assert presented.next_action is not None
    assert presented.next_action.details["account_name"] == "SAFARICOM"

    payment = moved(payment, presented)
    done = await connector.confirm(payment, Confirmation(), CallContext())
    assert done.status is Status.SUCCEEDED
    txn = fake.transactions[presented.provider_reference]
    assert done.fulfilment["receipt_number"] == txn.receipt
    assert "token" not in done.fulfilment

    polled = await connector.fetch_status(moved(payment, done), CallContext())
    assert polled.status is Status.SUCCEEDED
    assert polled.fulfilment["operator_name"] == "SAFARICOM"
    assert polled.fulfilment["destination_phone_number"] == "254703263713"
    assert polled.fulfilment["utility_name"] == "Airtime"
    assert polled.amount is not None
    assert polled.amount.minor == 5000


async def test_automatic_commit_buys_in_one_call(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    update = await connector.create_payout(payout(auto_commit=True), CallContext())
    assert update.status is Status.SUCCEEDED
    assert update.fulfilment["token"] == fake.transactions[update.provider_reference].token
    assert len(fake.calls_to("/api/payments/POST")) == 1
    assert len(fake.calls_to("/api/payments/PUT")) == 1


async def test_commit_of_an_expired_presentment_moves_no_money(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    fake.presentment_ttl_s = 0.05
    balance = fake.float_balance
    payment = payout()
    payment = moved(payment, await connector.create_payout(payment, CallContext()))
    await asyncio.sleep(0.1)

    update = await connector.confirm(payment, Confirmation(), CallContext())
    assert update.status is Status.CANCELLED
    assert update.failure_reason == "PROVIDER_CANCELLED"
    assert "expired" in update.provider_message
    assert fake.float_balance == balance


async def test_low_agent_float_is_a_decline(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    fake.float_balance = Decimal("5.00")
    payment = payout()
    payment = moved(payment, await connector.create_payout(payment, CallContext()))
    update = await connector.confirm(payment, Confirmation(), CallContext())
    assert update.status is Status.FAILED
    assert update.failure_reason == "INSUFFICIENT_AGENT_FLOAT"
    assert update.failure_message == "Low agent balance"


async def test_invalid_meter_fails_the_payout(
    connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    update = await connector.create_payout(payout(meter="00000000000"), CallContext())
    assert update.status is Status.FAILED
    assert update.failure_message == "Invalid meter number"


@pytest.mark.parametrize(("outcome", "expected"), [("failed", Status.FAILED),
                                                    ("cancelled", Status.CANCELLED)])
async def test_failed_and_cancelled_after_a_pending_commit(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
    outcome: str, expected: Status,
) -> None:
    fake.commit_mode = "pending"
    payment = payout()
    payment = moved(payment, await connector.create_payout(payment, CallContext()))
    committed = await connector.confirm(payment, Confirmation(), CallContext())
    assert committed.status is Status.PROCESSING
    payment = moved(payment, committed)

    fake.settle(payment.provider_reference, outcome)
    update = await connector.fetch_status(payment, CallContext())
    assert update.status is expected
    assert update.failure_reason in ("PROVIDER_FAILED", "PROVIDER_CANCELLED")
    assert moved(payment, update).status is expected


async def test_status_polling_settles_when_no_callback_comes(
    fake: JambopayFake, connector: JambopayConnector, listener: Listener,
    payout: PayoutFactory,
) -> None:
    fake.commit_mode = "pending"
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.NEVER, 1
    payment = payout()
    payment = moved(payment, await connector.create_payout(payment, CallContext()))
    waiting = await connector.fetch_status(payment, CallContext())
    assert waiting.status is Status.ACTION_REQUIRED  # Checking, but not committed by us yet
    assert moved(payment, waiting).next_action == payment.next_action

    payment = moved(payment, await connector.confirm(payment, Confirmation(), CallContext()))
    assert (await connector.fetch_status(payment, CallContext())).status is Status.PROCESSING
    task = fake.settle(payment.provider_reference, "completed")
    assert task is not None
    assert await task == []
    assert listener.received == []

    update = await connector.fetch_status(payment, CallContext())
    assert update.status is Status.SUCCEEDED
    assert update.fulfilment["token"] == fake.transactions[payment.provider_reference].token


async def test_unknown_transaction_is_not_found(
    connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    with pytest.raises(ProviderNotFound):
        await connector.fetch_status(replace(payout(), provider_reference="999"), CallContext())
    with pytest.raises(ProviderNotFound):
        await connector.fetch_status(payout(), CallContext())


async def test_lost_commit_answer_is_unknown_and_the_poll_resolves_it(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    payment = payout()
    payment = moved(payment, await connector.create_payout(payment, CallContext()))
    fake.chaos.next_response, fake.chaos.response_count = ResponseFault.TIMEOUT, 1

    with pytest.raises(ProviderOutcomeUnknown):
        await connector.confirm(payment, Confirmation(),
                                CallContext(deadline=time.monotonic() + 0.3))
    # The commit went through: a retried confirm (1053) and a poll both find the token.
    retried = await connector.confirm(payment, Confirmation(), CallContext())
    token = fake.transactions[payment.provider_reference].token
    assert retried.status is Status.SUCCEEDED
    assert retried.fulfilment["token"] == token
    assert "already completed" in retried.provider_message
    polled = await connector.fetch_status(payment, CallContext())
    assert polled.status is Status.SUCCEEDED
    assert polled.fulfilment["token"] == token


async def test_auto_commit_with_a_lost_answer_keeps_the_reference(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await connector.create_payout(payout(), CallContext())  # the token is cached now
    faults = iter([ResponseFault.NONE, ResponseFault.TIMEOUT])  # presentment ok, commit lost
    monkeypatch.setattr(fake.chaos, "take_response_fault",
                        lambda: next(faults, ResponseFault.NONE))
    payment = payout(auto_commit=True)
    update = await connector.create_payout(payment, CallContext(deadline=time.monotonic() + 0.5))
    assert update.status is Status.UNKNOWN
    assert update.provider_reference in fake.transactions  # the reconciler can poll it
    polled = await connector.fetch_status(moved(payment, update), CallContext())
    assert polled.status is Status.SUCCEEDED
    assert polled.fulfilment["token"] == fake.transactions[update.provider_reference].token


async def test_presentment_5xx_is_retryable(
    fake: JambopayFake, connector: JambopayConnector, payout: PayoutFactory,
) -> None:
    await connector.create_payout(payout(), CallContext())
    fake.chaos.next_response, fake.chaos.response_count = ResponseFault.ERROR_500, 1
    with pytest.raises(ProviderUnavailable):
        await connector.create_payout(payout(), CallContext())


async def test_verbs_jambopay_lacks(connector: JambopayConnector, payout: PayoutFactory) -> None:
    for verb in (connector.create_payment, connector.refund, connector.cancel):
        with pytest.raises(Unsupported):
            await verb(payout(), CallContext())
    with pytest.raises(InvalidRequest):
        await connector.confirm(payout(), Confirmation(), CallContext())
