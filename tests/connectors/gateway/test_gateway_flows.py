"""Every gateway flow (C2B, B2C, OTP, redirect, bank details, status) at the connector
level, against the fake gateway over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp
import pytest
from gateway_document_samples import C2B_STATUS_REQUEST_WITH_OTP, CALLBACK, as_json
from gateway_receiver import MakeConnector, MakePayment, Receiver

from malipo.app.connector import (
    CallbackOutcome,
    CallContext,
    Confirmation,
    Connector,
    InboundCallback,
)
from malipo.connectors.gateway import GatewayConnector
from malipo.connectors.gateway.signing import signed, verify
from malipo.connectors.registry import build
from malipo.domain.errors import (
    CallbackRejected,
    InvalidRequest,
    ProviderNotFound,
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
    Unsupported,
)
from malipo.domain.money import Money
from malipo.domain.payments import NextActionKind
from malipo.domain.status import Direction, Status
from malipo.sandbox.fake_provider import CallbackMode, ResponseFault
from malipo.sandbox.gateway import GatewayFake, Outcome


async def _delivered(fake: GatewayFake, count: int = 1) -> int:
    """The fake records a delivery once it has read the answer, just after the receiver saw it."""
    async with asyncio.timeout(2):
        while len(fake.deliveries) < count:
            await asyncio.sleep(0.01)
    return fake.deliveries[count - 1].status


def _sent(fake: GatewayFake, suffix: str, index: int = -1) -> dict[str, object]:
    return json.loads(fake.calls_to(suffix)[index].body)


async def test_c2b_success_with_signed_callback(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    payment = make_payment(amount="150.50", phone="0712345678")
    ctx = CallContext()
    update = await connector.create_payment(payment, ctx)
    assert update.status is Status.PROCESSING
    assert update.provider_reference
    sent = _sent(fake, "/payment_c2b")
    assert verify(sent, fake.secret_key)  # type: ignore[arg-type]
    assert sent["customer_id"] == "254712345678"
    assert sent["amount"] == "150.50"
    assert sent["order_id"] == payment.id
    assert sent["callback_url"] == receiver.url
    assert sent["provider_id"] == 2390
    got = (await receiver.wait_for(1))[0]
    assert got.outcome is CallbackOutcome.APPLIED
    assert got.answer_status == 200
    assert list(json.loads(got.callback.body)) == list(as_json(CALLBACK))  # the document's shape
    assert await _delivered(fake) == 200
    event = got.events[0]
    assert event.payment_id == payment.id
    assert event.direction == Direction.COLLECTION
    assert event.update.status is Status.SUCCEEDED
    assert event.update.amount == payment.amount
    assert event.update.provider_reference == update.provider_reference
    polled = await connector.fetch_status(payment, ctx)
    assert polled.status is Status.SUCCEEDED
    assert polled.fulfilment["transaction_ref"].startswith("MP.")
    exchanges = " ".join(e.request_body + e.response_body for e in ctx.exchanges)
    assert fake.secret_key not in exchanges
    assert str(sent["signature"]) not in exchanges
    assert "254712345678" not in exchanges


async def test_repeat_submit_is_idempotent_on_order_id(
        connector: GatewayConnector, fake: GatewayFake, make_payment: MakePayment) -> None:
    fake.default_outcome = Outcome.PENDING
    payment = make_payment()
    first = await connector.create_payment(payment, CallContext())
    second = await connector.create_payment(payment, CallContext())
    assert first == second
    calls = fake.calls_to("/payment_c2b")
    assert len(calls) == 2
    assert len(fake.orders) == 1


async def test_decline_is_a_failed_payment_with_the_message(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    fake.scenarios["254712345678"] = Outcome.DECLINE
    update = await connector.create_payment(make_payment(), CallContext())
    assert update.status is Status.FAILED
    assert update.failure_reason == "GATEWAY_DECLINED"
    assert update.failure_message == "Insufficient funds"
    await asyncio.sleep(0.1)
    assert receiver.received == []


async def test_failure_arrives_by_callback(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    fake.scenarios["254712345678"] = Outcome.FAIL
    update = await connector.create_payment(make_payment(), CallContext())
    assert update.status is Status.PROCESSING
    event = (await receiver.wait_for(1))[0].events[0]
    assert event.update.status is Status.FAILED
    assert event.update.failure_reason == "PROVIDER_FAILED"
    assert event.update.failure_message == "Transaction failed"


async def test_c2b_otp_is_confirmed_by_a_status_request_as_the_document_shows(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    """A repeated payment_c2b gets the identical first answer (order_id is the idempotency
    key), so it cannot carry the code: the document's C2B example sends it in `status`."""
    fake.scenarios["254712345678"] = Outcome.OTP
    payment = make_payment()
    update = await connector.create_payment(payment, CallContext())
    assert update.status is Status.ACTION_REQUIRED
    assert update.next_action is not None
    assert update.next_action.kind is NextActionKind.OTP
    with pytest.raises(InvalidRequest):
        await connector.confirm(payment, Confirmation(otp=" "), CallContext())
    confirmed = await connector.confirm(payment, Confirmation(otp=fake.otp), CallContext())
    assert confirmed.status is Status.PROCESSING
    assert len(fake.calls_to("/payment_c2b")) == 1
    sent = _sent(fake, "/status")
    assert list(sent) == list(as_json(C2B_STATUS_REQUEST_WITH_OTP))  # the document's example
    assert sent["customer_id"] == "254712345678"
    assert sent["extra"] == {"otp": fake.otp}
    event = (await receiver.wait_for(1))[0].events[0]
    assert event.update.status is Status.SUCCEEDED


async def test_b2c_otp_is_confirmed_by_a_second_payment_b2c(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    """The document's payment_b2c: "send the second payment_b2c request with confirmation
    data"."""
    fake.scenarios["254712345678"] = Outcome.OTP
    payout = make_payment(direction=Direction.PAYOUT, amount="300.00")
    update = await connector.create_payout(payout, CallContext())
    assert update.status is Status.ACTION_REQUIRED
    confirmed = await connector.confirm(payout, Confirmation(otp=fake.otp), CallContext())
    assert confirmed.status is Status.PROCESSING
    first, second = (json.loads(c.body) for c in fake.calls_to("/payment_b2c"))
    assert "extra" not in first
    assert second == {**first, "extra": {"otp": fake.otp}, "signature": second["signature"]}
    assert fake.calls_to("/status") == []
    event = (await receiver.wait_for(1))[0].events[0]
    assert event.update.status is Status.SUCCEEDED


async def test_a_poll_while_a_code_or_a_transfer_is_awaited_keeps_the_action(
        connector: GatewayConnector, fake: GatewayFake, make_payment: MakePayment) -> None:
    """The document's status answer carries neither confirm_type nor the bank details of the
    "synchronized response": "in progress" there does not mean the customer has acted."""
    fake.scenarios["254712345678"] = Outcome.OTP
    awaiting = [make_payment(),
                make_payment(channel="2311", currency="NGN", amount="2500", phone="",
                             customer={"reference": "cust-77"})]
    for payment in awaiting:
        created = await connector.create_payment(payment, CallContext())
        assert created.status is Status.ACTION_REQUIRED
        shown = replace(payment, status=created.status, next_action=created.next_action)
        polled = await connector.fetch_status(shown, CallContext())
        async with aiohttp.ClientSession() as http, http.get(
                f"{fake.base_url}/_gateway/orders/{payment.id}") as resp:
            assert not {"confirm_type", "extra"} & set(await resp.json())  # status's shape
        assert (polled.status, polled.next_action) == (Status.ACTION_REQUIRED,
                                                       created.next_action)


async def test_wrong_otp_fails(connector: GatewayConnector, fake: GatewayFake,
                               make_payment: MakePayment) -> None:
    fake.scenarios["254712345678"] = Outcome.OTP
    payment = make_payment()
    await connector.create_payment(payment, CallContext())
    update = await connector.confirm(payment, Confirmation(otp="0000"), CallContext())
    assert update.status is Status.FAILED
    assert update.failure_message == "Invalid OTP"


async def test_redirect_from_status_extra(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    payment = make_payment(channel="2351", currency="RWF", amount="5000", phone="+250781234567",
                           customer={"name": "Jean Uwimana", "email": "j@example.rw"})
    update = await connector.create_payment(payment, CallContext())
    assert update.status is Status.ACTION_REQUIRED
    assert update.next_action is not None
    assert update.next_action.kind is NextActionKind.REDIRECT
    url = update.next_action.details["url"]
    assert url.startswith(fake.base_url)
    sent = _sent(fake, "/payment_c2b")
    assert sent["extra"] == {"customer_name": "Jean Uwimana", "customer_email": "j@example.rw"}
    assert sent["amount"] == "5000.00"
    assert "extra" not in fake.orders[payment.id].first_response  # type: ignore[operator]
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
    event = (await receiver.wait_for(1))[0].events[0]
    assert event.update.status is Status.SUCCEEDED
    assert event.update.amount == Money.of(5000, "RWF")


async def test_redirect_lookup_can_be_left_to_polling(
        make_connector: MakeConnector, make_payment: MakePayment) -> None:
    connector = make_connector(redirect_lookup="false")
    payment = make_payment(channel="2313", currency="EGP", amount="400", phone="+201012345678",
                           customer={"name": "Mona"},
                           provider_fields={"return_url": "https://shop.example/back"})
    update = await connector.create_payment(payment, CallContext())
    assert update.status is Status.PROCESSING
    polled = await connector.fetch_status(payment, CallContext())
    assert polled.next_action is not None
    assert polled.next_action.kind is NextActionKind.REDIRECT


async def test_nigerian_bank_transfer_details(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    payment = make_payment(channel="2311", currency="NGN", amount="2500", phone="",
                           customer={"reference": "cust-77"})
    update = await connector.create_payment(payment, CallContext())
    assert update.status is Status.ACTION_REQUIRED
    assert update.next_action is not None
    assert update.next_action.kind is NextActionKind.BANK_TRANSFER
    assert update.next_action.details == {
        "account_number": "4000000000", "bank_name": "Premium Trust Bank",
        "account_name": "Test Ltd / Test Limited", "reference": payment.id,
        "amount_minor": "250000"}
    assert _sent(fake, "/payment_c2b")["customer_id"] == "cust-77"
    fake.complete(payment.id, 2)
    event = (await receiver.wait_for(1))[0].events[0]
    assert event.update.status is Status.SUCCEEDED


async def test_b2c_with_required_extra_fields(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    payout = make_payment(channel="2311", currency="NGN", amount="100", phone="",
                          direction=Direction.PAYOUT,
                          customer={"name": "Name Lastname", "email": "Name@domen.com"},
                          bank={"account_number": "16280954971628095497",
                                "bank_code": "000001"})
    update = await connector.create_payout(payout, CallContext())
    assert update.status is Status.PROCESSING
    sent = _sent(fake, "/payment_b2c")
    assert sent["customer_id"] == "16280954971628095497"
    assert sent["extra"] == {"customer_name": "Name Lastname",
                             "customer_email": "Name@domen.com", "bank_code": "000001"}
    event = (await receiver.wait_for(1))[0].events[0]
    assert event.direction == Direction.PAYOUT
    assert event.update.status is Status.SUCCEEDED
    with pytest.raises(InvalidRequest):
        await connector.create_payment(payout, CallContext())


async def test_a_4xx_saying_status_minus_1_is_an_unknown_outcome_not_a_refusal(
        connector: GatewayConnector, make_payment: MakePayment) -> None:
    """The document's -1 is "undefined (for example in an error situation)": whatever the
    HTTP status, the gateway does not say that nothing happened, so it is never FAILED."""
    payout = make_payment(channel="2303", currency="XOF", amount="1000", phone="+2250701234567",
                          direction=Direction.PAYOUT)  # no customer.name: the service would stop it
    with pytest.raises(ProviderOutcomeUnknown, match=r"HTTP 400.*extra\.customer_name"):
        await connector.create_payout(payout, CallContext())


async def test_simulator_stays_in_progress_and_never_calls_back(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    payment = make_payment(channel="14")
    update = await connector.create_payment(payment, CallContext())
    assert update.status is Status.PROCESSING
    assert update.raw["provider_result"] == {"code": -8888, "message": "Good"}
    await asyncio.sleep(0.15)
    assert receiver.received == []
    assert fake.complete(payment.id, 2) is None
    assert fake.deliveries == []


async def test_undefined_status_is_unknown_then_resolved_by_polling(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    fake.scenarios["254712345678"] = Outcome.UNDEFINED
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.NEVER, 1
    payment = make_payment()
    update = await connector.create_payment(payment, CallContext())
    assert update.status is Status.UNKNOWN
    assert update.provider_status == "-1"
    await asyncio.sleep(0.1)
    polled = await connector.fetch_status(payment, CallContext())
    assert polled.status is Status.SUCCEEDED
    assert receiver.received == []


async def test_forged_callback_is_rejected_with_401(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.FORGED, 1
    await connector.create_payment(make_payment(), CallContext())
    got = (await receiver.wait_for(1))[0]
    assert got.outcome is CallbackOutcome.REJECTED
    assert got.answer_status == 401
    assert await _delivered(fake) == 401


async def test_callback_for_another_merchant_is_rejected(
        connector: GatewayConnector, fake: GatewayFake, make_payment: MakePayment) -> None:
    body = signed({"merchant_id": "someone-else", "operation_type": 17, "amount": 100,
                   "order_id": "x", "status": 2}, fake.secret_key)
    callback = InboundCallback("gateway", "main", {}, json.dumps(body).encode(), {}, "",
                               datetime.now(UTC))
    with pytest.raises(CallbackRejected, match="another merchant"):
        connector.verify_callback(callback)
    with pytest.raises(CallbackRejected):
        connector.verify_callback(replace(callback, body=b"not json"))


async def test_rotated_secret_still_verifies(
        make_connector: MakeConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    rotated = make_connector(secret_key="brand-new", previous_secret_key=fake.secret_key)
    receiver.connector = rotated
    fake.default_outcome = Outcome.PENDING
    legit = make_connector()
    await legit.create_payment(make_payment(), CallContext())
    order = next(iter(fake.orders))
    await fake.complete(order, 2)  # type: ignore[misc]
    got = (await receiver.wait_for(1))[0]
    assert got.outcome is CallbackOutcome.APPLIED


async def test_callback_with_a_different_amount_is_reported_for_the_integrity_check(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    fake.default_outcome = Outcome.PENDING
    payment = make_payment(amount="100.00")
    await connector.create_payment(payment, CallContext())
    fake.complete(payment.id, 2, amount="99.00")
    event = (await receiver.wait_for(1))[0].events[0]
    assert event.update.amount == Money.of(9900, "KES")
    assert event.update.amount != payment.amount


@pytest.mark.parametrize("as_number", [True, False])
async def test_callback_amount_number_or_string_compares_exactly(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment, as_number: bool) -> None:
    fake.callback_amount_as_number = as_number
    payment = make_payment(channel="2303", currency="XOF", amount="1005",
                           phone="+2250701234567")
    await connector.create_payment(payment, CallContext())
    got = (await receiver.wait_for(1))[0]
    raw = json.loads(got.callback.body)
    assert raw["amount"] == (1005 if as_number else "1005.00")
    assert got.events[0].update.amount == payment.amount


async def test_duplicate_and_out_of_order_callbacks(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.TWICE, 1
    await connector.create_payment(make_payment(), CallContext())
    twice = await receiver.wait_for(2)
    assert [r.outcome for r in twice] == [CallbackOutcome.APPLIED, CallbackOutcome.DUPLICATE]
    assert twice[0].events[0].event_key == twice[1].events[0].event_key
    fake.chaos.next_callback, fake.chaos.callback_count = CallbackMode.OUT_OF_ORDER, 1
    await connector.create_payment(make_payment(), CallContext())
    late = (await receiver.wait_for(4))[2:]
    assert [r.events[0].update.status for r in late] == [Status.SUCCEEDED, Status.PROCESSING]
    assert late[0].events[0].event_key != late[1].events[0].event_key


async def test_bad_credentials_are_an_unknown_outcome_or_an_unavailable_read(
        make_connector: MakeConnector, make_payment: MakePayment) -> None:
    wrong = make_connector(secret_key="not-the-secret")
    payment = make_payment()
    with pytest.raises(ProviderOutcomeUnknown, match="401"):
        await wrong.create_payment(payment, CallContext())
    with pytest.raises(ProviderUnavailable, match="401"):
        await wrong.fetch_status(payment, CallContext())


async def test_phases_of_http_failures(
        connector: GatewayConnector, fake: GatewayFake, make_payment: MakePayment) -> None:
    payment = make_payment()
    fake.chaos.next_response, fake.chaos.response_count = ResponseFault.ERROR_500_AFTER, 1
    with pytest.raises(ProviderOutcomeUnknown):
        await connector.create_payment(payment, CallContext())
    assert payment.id in fake.orders  # processed: a repeat is answered identically
    again = await connector.create_payment(payment, CallContext())
    assert again.status is Status.PROCESSING
    fake.chaos.next_response, fake.chaos.response_count = ResponseFault.ERROR_500, 1
    with pytest.raises(ProviderUnavailable):
        await connector.fetch_status(payment, CallContext())
    with pytest.raises(ProviderNotFound):
        await connector.fetch_status(make_payment(), CallContext())
    fake.chaos.next_response, fake.chaos.response_count = ResponseFault.TIMEOUT, 1
    fake.chaos.hang_seconds = 0.6
    started = time.monotonic()
    with pytest.raises(ProviderOutcomeUnknown):
        await connector.create_payment(make_payment(), CallContext(time.monotonic() + 0.3))
    assert time.monotonic() - started < 1.5


async def test_validate_rules_beyond_the_catalogue(
        connector: GatewayConnector, make_payment: MakePayment) -> None:
    connector.validate(make_payment())
    with pytest.raises(InvalidRequest) as err:
        connector.validate(make_payment(payment_id="pay/with/slashes"))
    assert err.value.violations[0].description.startswith("rule order_id")
    with pytest.raises(InvalidRequest) as err:
        connector.validate(make_payment(channel="2405", currency="TZS", phone=""))
    assert err.value.violations[0].field == "customer.bank_account.account_number"
    with pytest.raises(InvalidRequest) as err:
        connector.validate(make_payment(channel="4242"))
    assert err.value.violations[0].field == "channel"


async def test_contract_surface(connector: GatewayConnector, fake: GatewayFake,
                                make_payment: MakePayment) -> None:
    assert isinstance(connector, Connector)
    assert connector.capabilities.payouts
    assert connector.capabilities.idempotent_submit
    assert connector.capabilities.status_by_our_reference
    assert not connector.capabilities.refunds
    with pytest.raises(Unsupported):
        await connector.refund(make_payment(), CallContext())
    with pytest.raises(Unsupported):
        await connector.cancel(make_payment(), CallContext())
    assert connector.callback_answer(CallbackOutcome.APPLIED).status == 200
    assert connector.callback_answer(CallbackOutcome.DUPLICATE).status == 200
    assert connector.callback_answer(CallbackOutcome.MISMATCH).status == 200
    assert connector.callback_answer(CallbackOutcome.REJECTED).status == 401
    built = build(connector.account)
    assert isinstance(built, GatewayConnector)
    await built.close()


async def test_fake_control_over_http(
        connector: GatewayConnector, fake: GatewayFake, receiver: Receiver,
        make_payment: MakePayment) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/_gateway/scenario",
                             json={"customer_id": "254712345678", "outcome": "pending"}) as r:
            assert r.status == 200
        payment = make_payment()
        await connector.create_payment(payment, CallContext())
        async with http.get(f"{fake.base_url}/_gateway/orders/{payment.id}") as r:
            assert (await r.json())["outcome"] == "pending"
        async with http.post(f"{fake.base_url}/_gateway/complete",
                             json={"order_id": payment.id, "status": 4}) as r:
            assert r.status == 200
    event = (await receiver.wait_for(1))[0].events[0]
    assert event.update.status is Status.CANCELLED
    assert event.update.failure_reason == "CANCELLED_BY_PROVIDER"


async def test_a_path_other_than_the_default_is_refused_before_anything_happens(
        make_connector: MakeConnector, make_payment: MakePayment, fake: GatewayFake) -> None:
    """The document names no paths: the fake serves only the settings' defaults, so a
    changed default shows here, and a 4xx without a gateway status is a plain refusal."""
    moved = make_connector(c2b_path="/api/v2/{public_id}/payment_c2b")
    with pytest.raises(ProviderRejectedRequest, match="HTTP 404"):
        await moved.create_payment(make_payment(), CallContext())
    assert fake.orders == {}
