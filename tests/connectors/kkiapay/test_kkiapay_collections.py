"""Widget payments: registered without a call, credited only after server-side verification."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp
import pytest
from kkiapay_document_samples import (
    KEY_HEADERS,
    STATUS_ANSWER_FIELDS,
    STATUS_PATH,
    STATUSES,
    status_request,
)
from kkiapay_support import KEYS, PaymentFactory, account_for

from malipo.app.catalogue import check_payment
from malipo.app.connector import CallContext, Confirmation
from malipo.connectors.kkiapay import KkiapayConnector
from malipo.domain.errors import (
    InvalidRequest,
    ProviderNotFound,
    ProviderRejectedRequest,
    ProviderUnavailable,
    Unsupported,
)
from malipo.domain.money import Money
from malipo.domain.payments import ChangeKind, NextActionKind, apply_update
from malipo.domain.status import Direction, Status
from malipo.sandbox.kkiapay import KkiapayFake


def by_id(transaction_id: str) -> Confirmation:
    return Confirmation(provider_transaction_id=transaction_id)


async def test_create_registers_the_payment_and_returns_the_widget_without_any_call(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payment = make_payment(5000)
    assert check_payment(payment, connector.catalogue()) == []
    connector.validate(payment)
    ctx = CallContext()
    update = await connector.create_payment(payment, ctx)
    assert update.status is Status.ACTION_REQUIRED
    assert update.next_action is not None
    assert update.next_action.kind is NextActionKind.WIDGET
    details = update.next_action.details
    assert details["key"] == KEYS["public_key"]
    assert details["amount"] == "5000"
    assert details["data"] == payment.id
    assert details["sandbox"] == "true"
    assert details["phone"] == "2290197000000"
    assert KEYS["private_key"] not in details.values()
    assert KEYS["secret_key"] not in details.values()
    assert fake.calls == []
    assert ctx.exchanges == []


async def test_live_account_widget_says_not_sandbox(fake: KkiapayFake,
                                                    make_payment: PaymentFactory) -> None:
    conn = KkiapayConnector(account_for(fake, sandbox="false"))
    update = await conn.create_payment(make_payment(), CallContext())
    assert update.next_action is not None
    assert update.next_action.details["sandbox"] == "false"
    await conn.close()


async def test_verified_success_succeeds_with_the_transaction_as_reference(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payment = make_payment(5000)
    tx = fake.widget_payment(5000, payment.id, notify=False)
    ctx = CallContext()
    update = await connector.confirm(payment, by_id(tx.transaction_id), ctx)
    assert update.status is Status.SUCCEEDED
    assert update.provider_reference == tx.transaction_id
    assert update.amount == Money.of(5000, "XOF")
    call = fake.calls_to("/api/v1/transactions/status")[-1]
    assert json.loads(call.body) == {"transactionId": tx.transaction_id}
    assert call.headers["x-api-key"] == KEYS["public_key"]
    assert call.headers["x-private-key"] == KEYS["private_key"]
    assert call.headers["x-secret-key"] == KEYS["secret_key"]
    exchange = ctx.exchanges[-1]
    assert exchange.status == 200
    assert exchange.operation == "kkiapay.transaction_status"
    for secret in KEYS.values():
        assert secret not in exchange.request_body + exchange.response_body
    moved = apply_update(payment, update, datetime.now(UTC))
    assert moved.kind is ChangeKind.TRANSITION
    assert moved.after.status is Status.SUCCEEDED


async def test_a_transaction_for_another_amount_is_reported_and_not_credited(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payment = make_payment(5000)
    tx = fake.widget_payment(100, payment.id, notify=False)  # front end tampered the amount
    update = await connector.confirm(payment, by_id(tx.transaction_id), CallContext())
    assert update.status is None
    assert update.failure_reason == "AMOUNT_MISMATCH"
    assert update.provider_reference == ""
    assert update.amount == Money.of(100, "XOF")
    change = apply_update(payment, update, datetime.now(UTC))
    assert change.kind is ChangeKind.REVIEW
    assert change.after.status is Status.ACTION_REQUIRED
    assert change.after.needs_review


async def test_a_transaction_of_another_payment_is_pinned_by_its_id_for_the_service_to_refuse(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    # The documented answer does not name our payment, so the connector cannot tell; it
    # always reports the transaction id, which the service refuses to credit twice
    # (tests/e2e/test_kkiapay_flows.py::test_used_transaction_id_is_refused_for_a_second_payment).
    first, second = make_payment(5000), make_payment(5000)
    tx = fake.widget_payment(5000, first.id, notify=False)
    for payment in (first, second):
        update = await connector.confirm(payment, by_id(tx.transaction_id), CallContext())
        assert update.provider_reference == tx.transaction_id


async def test_a_transaction_without_our_reference_is_confirmed_by_amount_and_id(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    # The documented status answer carries no `state`: the widget's `data` is not required.
    payment = make_payment(5000)
    tx = fake.widget_payment(5000, None, notify=False)
    update = await connector.confirm(payment, by_id(tx.transaction_id), CallContext())
    assert update.status is Status.SUCCEEDED
    assert update.provider_reference == tx.transaction_id


async def test_failed_transaction_fails_the_payment(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    # The documented status answer gives no failure code: the reason is the generic one.
    payment = make_payment(5000)
    tx = fake.widget_payment(5000, payment.id, status="FAILED", failure_code="insufficent_fund",
                             notify=False)
    update = await connector.confirm(payment, by_id(tx.transaction_id), CallContext())
    assert update.status is Status.FAILED
    assert update.failure_reason == "DECLINED"
    assert update.provider_status == "FAILED"
    assert update.provider_reference == tx.transaction_id


async def test_failed_attempt_can_leave_the_payment_open_for_another_try(
    fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    conn = KkiapayConnector(account_for(fake, failed_attempt="retry"))
    payment = make_payment(5000)
    failed = fake.widget_payment(5000, payment.id, status="FAILED",
                                 failure_code="processing_error", notify=False)
    update = await conn.confirm(payment, by_id(failed.transaction_id), CallContext())
    assert update.status is Status.ACTION_REQUIRED
    assert update.provider_reference == ""
    retried = fake.widget_payment(5000, payment.id, notify=False)
    update = await conn.confirm(payment, by_id(retried.transaction_id), CallContext())
    assert update.status is Status.SUCCEEDED
    await conn.close()


async def test_pending_then_success_through_status_polls(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payment = make_payment(7500)
    tx = fake.widget_payment(7500, payment.id, status="PENDING")
    update = await connector.confirm(payment, by_id(tx.transaction_id), CallContext())
    assert update.status is Status.PROCESSING
    assert update.provider_reference == tx.transaction_id
    processing = apply_update(payment, update, datetime.now(UTC)).after
    assert (await connector.fetch_status(processing, CallContext())).status is Status.PROCESSING
    fake.settle(tx.transaction_id, "SUCCESS", notify=False)
    assert (await connector.fetch_status(processing, CallContext())).status is Status.SUCCEEDED


async def test_status_without_a_transaction_id_has_no_opinion_and_calls_nothing(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    update = await connector.fetch_status(make_payment(), CallContext())
    assert update.status is None
    assert fake.calls == []


async def test_unknown_transaction(connector: KkiapayConnector,
                                   make_payment: PaymentFactory) -> None:
    payment = make_payment()
    with pytest.raises(ProviderRejectedRequest) as caught:
        await connector.confirm(payment, Confirmation(provider_transaction_id="999"), CallContext())
    assert caught.value.reason == "TRANSACTION_NOT_FOUND"
    with pytest.raises(ProviderNotFound):
        await connector.fetch_status(make_payment(provider_reference="999",
                                                  status=Status.PROCESSING), CallContext())


async def test_confirm_needs_a_transaction_id_and_payouts_have_none(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    with pytest.raises(InvalidRequest):
        await connector.confirm(make_payment(), Confirmation(provider_transaction_id=" "),
                                CallContext())
    with pytest.raises(Unsupported):
        await connector.confirm(make_payment(direction=Direction.PAYOUT),
                                Confirmation(provider_transaction_id="1"), CallContext())
    assert fake.calls == []


async def test_wrong_keys_are_refused_without_leaking_them(
    fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    conn = KkiapayConnector(account_for(fake, private_key="wrong-private-key"))
    payment = make_payment()
    tx = fake.widget_payment(5000, payment.id, notify=False)
    with pytest.raises(ProviderRejectedRequest) as caught:
        await conn.confirm(payment, by_id(tx.transaction_id), CallContext())
    assert caught.value.reason == "PROVIDER_AUTH_REFUSED"
    assert "wrong-private-key" not in str(caught.value)
    await conn.close()


async def test_provider_error_on_a_status_read_is_retryable(
    connector: KkiapayConnector, fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    payment = make_payment()
    tx = fake.widget_payment(5000, payment.id, notify=False)
    fake.chaos.next_response, fake.chaos.response_count = fake.chaos.next_response.ERROR_500, 1
    with pytest.raises(ProviderUnavailable):
        await connector.confirm(payment, by_id(tx.transaction_id), CallContext())
    ok = await connector.confirm(payment, by_id(tx.transaction_id), CallContext())
    assert ok.status is Status.SUCCEEDED


async def test_catalogue_rules_are_data(connector: KkiapayConnector,
                                        make_payment: PaymentFactory) -> None:
    catalogue = connector.catalogue()
    assert catalogue.currencies == ("XOF",)
    assert {c.id for c in catalogue.channels} == {"kkiapay-widget", "mtn-bj", "moov-bj"}
    too_small = check_payment(make_payment(50), catalogue)
    assert [v.field for v in too_small] == ["amount.amount_minor"]
    bad_phone = check_payment(make_payment(phone="+22997000000"), catalogue)
    assert [v.field for v in bad_phone] == ["customer.phone_number"]


async def test_fake_enforces_the_key_headers_and_the_documented_body(
    fake: KkiapayFake, make_payment: PaymentFactory,
) -> None:
    tx = fake.widget_payment(5000, make_payment().id, notify=False)
    url = f"{fake.base_url}{STATUS_PATH}"
    headers: dict[str, str] = dict(zip(KEY_HEADERS, (KEYS["public_key"], KEYS["private_key"],
                                                     KEYS["secret_key"]), strict=True))
    async with aiohttp.ClientSession() as http:
        for missing in headers:
            partial = {k: v for k, v in headers.items() if k != missing}
            async with http.post(url, json=status_request(tx.transaction_id),
                                 headers=partial) as resp:
                assert resp.status == 401, missing
        async with http.post(url, json=status_request(tx.transaction_id),
                             headers=headers) as resp:
            answer = await resp.json()
            assert tuple(answer) == STATUS_ANSWER_FIELDS
            assert answer["status"] in STATUSES
            assert answer["source"] == "MOBILE_MONEY"
            assert answer["amount"] == 5000
        refused: list[dict[str, object]] = [
            {"data": {"transactionId": tx.transaction_id}},  # a form body: not documented
            {"json": {}},
            {"json": {**status_request(tx.transaction_id), "state": "x"}},
            {"json": {"transactionId": 123}},
            {"json": [tx.transaction_id]},
        ]
        for shape in refused:
            async with http.post(url, headers=headers, **shape) as resp:  # type: ignore[arg-type]
                assert resp.status == 400, shape
