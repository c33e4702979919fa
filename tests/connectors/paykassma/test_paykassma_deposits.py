"""Paykassma deposits (API and hosted window) against the fake, over HTTP."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from paykassma_support import World, account_for, build_payment, open_world

from malipo.app.connector import CallContext
from malipo.connectors.paykassma import PaykassmaConnector
from malipo.domain.errors import (
    InvalidRequest,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
    Unsupported,
)
from malipo.domain.payments import NextActionKind
from malipo.domain.status import Method, Status
from malipo.sandbox.fake_provider import ResponseFault
from malipo.sandbox.paykassma import PaykassmaFake


async def test_deposit_success_then_postback(world: World) -> None:
    payment = build_payment(300000, "+254712344321")
    ctx = CallContext()
    update = await world.connector.create_payment(payment, ctx)

    [call] = world.fake.calls_to("/api/v1/payment/create/mpesa")
    assert call.query == {"secret": "pluginapi-secret"}
    assert json.loads(call.body) == {"amount": 3000, "phone_number": "254712344321",
                                     "currency": "KES", "label": "user-42",
                                     "custom_transaction_id": payment.id}
    deposit = world.fake.deposits[payment.id]
    assert update.status is Status.PROCESSING
    assert update.provider_reference == deposit.order_id
    assert update.provider_message == "Success. Request accepted for processing"
    [exchange] = ctx.exchanges
    assert exchange.path == "/api/v1/payment/create/mpesa"
    assert "pluginapi-secret" not in exchange.request_body + exchange.response_body
    assert "254712344321" not in exchange.request_body  # masked phone

    world.receiver.track(payment, status=update.status,
                         provider_reference=update.provider_reference)
    deliveries = await world.fake.complete_deposit(payment.id)
    assert [(d.status, d.answer) for d in deliveries] == [(200, b'{"status":"ok"}')]
    settled = world.receiver.payments[payment.id]
    assert settled.status is Status.SUCCEEDED
    assert settled.provider_reference == deposit.order_id
    assert settled.fulfilment["mpesa_receipt"]


@pytest.mark.parametrize(("phone", "sent"), [
    ("0712344321", "254712344321"), ("+254712344321", "254712344321"),
    ("254712344321", "254712344321"), ("254112344321", "254112344321"),
    ("0112344321", "254112344321")])
async def test_phone_forms_are_normalised(world: World, phone: str, sent: str) -> None:
    payment = build_payment(phone=phone)
    update = await world.connector.create_payment(payment, CallContext())
    [call] = world.fake.calls
    assert json.loads(call.body)["phone_number"] == sent
    assert update.status is Status.PROCESSING  # the fake took it: a 12-digit MSISDN


@pytest.mark.parametrize("phone", ["712344321", "0812344321", "+255712344321", "0712-3443"])
async def test_bad_phone_is_a_field_violation_before_any_call(world: World, phone: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await world.connector.create_payment(build_payment(phone=phone), CallContext())
    assert caught.value.violations[0].field == "customer.phone_number"
    assert world.fake.calls == []


async def test_fractional_amount_is_a_field_violation(world: World) -> None:
    with pytest.raises(InvalidRequest) as caught:
        world.connector.validate(build_payment(300050))
    assert caught.value.violations[0].field == "amount.amount_minor"
    with pytest.raises(InvalidRequest):
        await world.connector.create_payment(build_payment(300050), CallContext())
    assert world.fake.calls == []


async def test_declined_deposit_is_failed_with_a_reason(world: World) -> None:
    world.fake.max_amount = 1000
    update = await world.connector.create_payment(build_payment(500000), CallContext())
    assert update.status is Status.FAILED
    assert update.failure_reason == "INVALID_AMOUNT"
    assert update.failure_message == "The amount must be between 1 and 1000."


async def test_decline_in_the_documents_single_quoted_dialect(world: World) -> None:
    world.fake.document_dialect = True
    payment = build_payment()
    await world.connector.create_payment(payment, CallContext())
    update = await world.connector.create_payment(payment, CallContext())  # same id again
    assert update.status is Status.FAILED
    assert update.failure_reason == "DUPLICATE_REFERENCE"
    assert update.provider_status == "fail"


async def test_wrong_secret_is_rejected_without_leaking_it(world: World) -> None:
    connector = PaykassmaConnector(account_for(world.fake, pluginapi_secret="not-the-secret"))
    try:
        with pytest.raises(ProviderRejectedRequest) as caught:
            await connector.create_payment(build_payment(), CallContext())
    finally:
        await connector.close()
    assert "not-the-secret" not in str(caught.value)
    assert world.fake.deposits == {}


async def test_server_error_after_processing_is_unknown(world: World) -> None:
    world.fake.chaos.next_response = ResponseFault.ERROR_500_AFTER
    world.fake.chaos.response_count = 1
    payment = build_payment()
    with pytest.raises(ProviderOutcomeUnknown):
        await world.connector.create_payment(payment, CallContext())
    assert payment.id in world.fake.deposits  # it did happen: UNKNOWN, not FAILED


async def test_timeout_is_unknown(world: World) -> None:
    world.fake.chaos.next_response = ResponseFault.TIMEOUT
    world.fake.chaos.response_count = 1
    world.fake.chaos.hang_seconds = 2
    with pytest.raises(ProviderOutcomeUnknown):
        await world.connector.create_payment(build_payment(),
                                             CallContext(deadline=time.monotonic() + 0.3))


async def test_unreachable_provider_is_unavailable() -> None:
    fake = PaykassmaFake()
    await fake.start()
    await fake.stop()  # nothing listens there any more
    connector = PaykassmaConnector(account_for(fake))
    try:
        with pytest.raises(ProviderUnavailable):
            await connector.create_payment(build_payment(), CallContext())
    finally:
        await connector.close()


@pytest.mark.parametrize("how", ["method", "channel", "field"])
async def test_hosted_window_is_a_redirect(world: World, how: str) -> None:
    payment = build_payment(
        250000, "", method=Method.HOSTED if how == "method" else Method.MOBILE_MONEY,
        channel="mpesa_hosted" if how == "channel" else "",
        provider_fields={"flow": "hosted", "success_url": "https://shop.example/ok"}
        if how == "field" else None)
    update = await world.connector.create_payment(payment, CallContext())
    assert update.status is Status.ACTION_REQUIRED
    assert update.next_action is not None
    assert update.next_action.kind is NextActionKind.REDIRECT
    url = urlsplit(update.next_action.details["url"])
    assert f"{url.scheme}://{url.netloc}" == "https://plugin.paykassma.example"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["custom_transaction_id"] == payment.id
    assert query["fixed_amount"] == "2500"
    assert (query["wallet_type"], query["currency_code"], query["label"]) == (
        "mpesa", "KES", "user-42")
    assert world.fake.calls == []  # no API call: the window talks to Paykassma


async def test_no_status_endpoint() -> None:
    async with open_world() as world:
        assert world.connector.capabilities.status_polling is False
        assert world.connector.capabilities.callbacks is True
        with pytest.raises(Unsupported, match="no status endpoint"):
            await world.connector.fetch_status(build_payment(), CallContext())
        assert world.fake.calls == []
