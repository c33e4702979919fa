"""Status table, amounts, request building and response reading: pure, no I/O."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from malipo.connectors.exact_json import loads
from malipo.connectors.gateway import mapping
from malipo.connectors.gateway.callbacks import read_callback
from malipo.connectors.gateway.connector import CATALOGUE
from malipo.domain.errors import CallbackRejected, InvalidRequest
from malipo.domain.money import Money
from malipo.domain.payments import NextActionKind, Payment
from malipo.domain.status import Direction, Status

MakePayment = Callable[..., Payment]


def test_status_table_names_every_documented_code() -> None:
    assert set(mapping.STATUS) == {-1, 0, 1, 2, 3, 4} == set(mapping.STATUS_NAMES)
    assert mapping.status_of(-1) is Status.UNKNOWN
    assert mapping.status_of(0) is Status.PROCESSING
    assert mapping.status_of("1") is Status.PROCESSING
    assert mapping.status_of(2) is Status.SUCCEEDED
    assert mapping.status_of(3) is Status.FAILED
    assert mapping.status_of(4) is Status.CANCELLED


@pytest.mark.parametrize("code", [5, 99, -2, "x", None, True, Decimal("2.5")])
def test_unknown_status_is_unknown_never_failed(code: object) -> None:
    assert mapping.status_of(code) is Status.UNKNOWN


def test_operation_types() -> None:
    assert mapping.OPERATION_TYPES == {16: Direction.PAYOUT, 17: Direction.COLLECTION}


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (100, "XOF", "100.00"), (10000, "KES", "100.00"), (1, "KES", "0.01"),
    (1_000_000, "XOF", "1000000.00"), (550, "UGX", "550.00"),
])
def test_amounts_have_two_decimals_even_for_zero_decimal_currencies(
        minor: int, currency: str, text: str) -> None:
    assert mapping.render_amount(Money.of(minor, currency)) == text


@pytest.mark.parametrize(("value", "currency", "minor"), [
    (100, "XOF", 100), ("100.00", "XOF", 100), (Decimal("100.5"), "KES", 10050),
    ("100.50", "KES", 10050), (100, "KES", 10000),
])
def test_callback_amounts_as_numbers_or_strings(value: Any, currency: str, minor: int) -> None:
    assert mapping.parse_amount(value, currency) == Money.of(minor, currency)


@pytest.mark.parametrize("value", [Decimal("100.5"), True, None, 100.5])
def test_inexact_or_odd_amounts_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match=r"."):
        mapping.parse_amount(value, "XOF")


def test_payment_request_in_document_order(make_payment: MakePayment) -> None:
    catalogue = CATALOGUE
    payment = make_payment(channel="9210", currency="XOF", amount="1100", phone="+2290197000000")
    body = mapping.payment_request(payment, catalogue.channel("9210"),  # type: ignore[arg-type]
                                   merchant_id="m", callback_url="https://cb", send_country=True)
    assert list(body) == ["merchant_id", "customer_id", "order_id", "amount", "currency",
                          "country", "callback_url", "provider_id"]
    assert body["customer_id"] == "2290197000000"
    assert body["amount"] == "1100.00"
    assert body["country"] == "BJ"
    assert body["provider_id"] == 9210


@pytest.mark.parametrize(("channel", "phone", "sent"), [
    ("2197", "+243812345678", "0812345678"),    # Orange DRC: leading 0
    ("2198", "0991234567", "991234567"),        # Airtel DRC: no prefix, no 0
    ("2196", "0812345678", "243812345678"),     # Vodacom DRC: country code
    ("2390", "0712345678", "254712345678"),
])
def test_phone_rendering_per_channel(make_payment: MakePayment, channel: str, phone: str,
                                     sent: str) -> None:
    ch = CATALOGUE.channel(channel)
    assert ch is not None
    payment = make_payment(channel=channel, currency=ch.currency, amount="500", phone=phone)
    assert mapping.customer_id(payment, ch) == sent


def test_extra_fields_mapped_from_payment(make_payment: MakePayment) -> None:
    ch = CATALOGUE.channel("2311")
    assert ch is not None
    payout = make_payment(channel="2311", currency="NGN", direction=Direction.PAYOUT, phone="",
                          customer={"name": "Name Lastname", "email": "n@x.io"},
                          bank={"account_number": "0123456789", "bank_code": "000001"})
    body = mapping.payment_request(payout, ch, merchant_id="m", callback_url="",
                                   send_country=False)
    assert body["customer_id"] == "0123456789"
    assert body["extra"] == {"customer_name": "Name Lastname", "customer_email": "n@x.io",
                             "bank_code": "000001"}
    assert "country" not in body
    assert "callback_url" not in body
    tz = CATALOGUE.channel("2402")
    assert tz is not None
    doc = make_payment(channel="2402", currency="TZS", amount="5000", phone="+255712345678",
                       customer={"document_type": "national_id", "document_number": "N1"},
                       provider_fields={"return_url": "https://back"})
    assert mapping.extras(doc, tz) == {"customer_doc_type": "national_id",
                                       "customer_doc_number": "N1", "return_url": "https://back"}


def test_missing_customer_id_source_is_a_field_violation(make_payment: MakePayment) -> None:
    ch = CATALOGUE.channel("2405")
    assert ch is not None
    with pytest.raises(InvalidRequest) as err:
        mapping.customer_id(make_payment(channel="2405", currency="TZS"), ch)
    assert err.value.violations[0].field == "customer.bank_account.account_number"


def _reply(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "order_id": "pay_01JTEST0000000000000000001", "transaction_id": "732007046722",
        "transaction_ref": "", "status": 1, "result": {"code": 0, "message": "OK"},
        "provider_result": {"code": -8888, "message": "Good"}, "confirm_type": 0,
    }
    return base | over


def test_read_reply_shapes(make_payment: MakePayment) -> None:
    payment = make_payment(channel="2311", currency="NGN", phone="")
    processing = mapping.read_reply(_reply(), payment, submit=True)
    assert processing.status is Status.PROCESSING
    assert processing.provider_reference == "732007046722"
    declined = mapping.read_reply(_reply(status=3, result={"code": 5, "message": "No funds"}),
                                  payment, submit=True)
    assert (declined.status, declined.failure_reason, declined.failure_message) == (
        Status.FAILED, "GATEWAY_DECLINED", "No funds")
    undefined = mapping.read_reply(_reply(status=-1, result={"code": 9, "message": "err"}),
                                   payment, submit=True)
    assert undefined.status is Status.UNKNOWN
    otp = mapping.read_reply(_reply(confirm_type=1), payment, submit=True)
    assert otp.status is Status.ACTION_REQUIRED
    assert otp.next_action is not None
    assert otp.next_action.kind is NextActionKind.OTP
    bank = mapping.read_reply(_reply(extra={"transfer_amount": 100, "account_name": "Test Ltd",
                                            "account_number": "4000000000",
                                            "bank_name": "Premium Trust Bank"}),
                              payment, submit=True)
    assert bank.next_action is not None
    assert bank.next_action.kind is NextActionKind.BANK_TRANSFER
    assert bank.next_action.details["amount_minor"] == "10000"
    assert bank.next_action.details["account_number"] == "4000000000"
    redirect = mapping.read_reply(_reply(extra={"customer_redirect": "https://pay"}), payment,
                                  submit=False)
    assert redirect.next_action is not None
    assert redirect.next_action.details["url"] == \
        "https://pay"
    done = mapping.read_reply(_reply(status=2, extra={"customer_redirect": "https://pay"},
                                     transaction_ref="MP.1"), payment, submit=False)
    assert (done.status, done.next_action, done.fulfilment) == (
        Status.SUCCEEDED, None, {"transaction_ref": "MP.1"})


def test_read_callback(make_payment: MakePayment) -> None:
    body = loads(b'{"merchant_id":"m","operation_type":16,"amount":100.5,'
                         b'"order_id":"o1","transaction_id":"7","status":3,'
                         b'"result":{"code":3,"message":"Declined by operator"}}')
    event = read_callback(body, "KES")
    assert event.payment_id == "o1"
    assert event.direction == "PAYOUT"
    assert event.update.amount == Money.of(10050, "KES")
    assert event.update.status is Status.FAILED
    assert event.update.failure_message == "Declined by operator"
    with pytest.raises(CallbackRejected):
        read_callback(body, "XOF")  # 100.5 XOF is not a whole franc
    with pytest.raises(CallbackRejected):
        read_callback({"status": 2}, "KES")


@pytest.mark.parametrize("status", [0, 1])
@pytest.mark.parametrize("result", [{"code": 5, "message": "Awaiting operator"},
                                    {"code": -1, "message": "error"}])
def test_initiated_or_in_progress_is_never_failed_whatever_result_code_says(
        make_payment: MakePayment, status: int, result: dict[str, Any]) -> None:
    payment = make_payment()
    for submit in (True, False):
        update = mapping.read_reply(_reply(status=status, result=result), payment, submit=submit)
        assert update.status is Status.PROCESSING
        assert update.failure_reason == ""
        assert update.provider_message == "Good"


def test_a_declined_submit_still_fails_with_the_gateway_message(make_payment: MakePayment) -> None:
    update = mapping.read_reply(_reply(status=3, result={"code": 5, "message": "No funds"},
                                       provider_result={"code": 5, "message": ""}),
                                make_payment(), submit=True)
    assert (update.status, update.failure_reason, update.failure_message) == (
        Status.FAILED, "GATEWAY_DECLINED", "No funds")


@pytest.mark.parametrize("raw", [7, "9", -2, None, "in progress"])
def test_an_undocumented_status_is_unknown_and_logged_once_with_its_raw_value(
        make_payment: MakePayment, caplog: pytest.LogCaptureFixture, raw: object) -> None:
    with caplog.at_level(logging.WARNING, logger="malipo.connectors.gateway"):
        reply = mapping.read_reply(_reply(status=raw, result={"code": 3, "message": "x"}),
                                   make_payment(), submit=True)
    assert reply.status is Status.UNKNOWN
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1
    assert repr(raw) in logged[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="malipo.connectors.gateway"):
        event = read_callback({"order_id": "o1", "status": raw, "amount": 100}, "KES")
    assert event.update.status is Status.UNKNOWN
    assert event.update.failure_reason == ""
    assert [repr(raw) in r.getMessage() for r in caplog.records] == [True]


def test_an_undocumented_operation_type_names_no_direction_and_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="malipo.connectors.gateway"):
        event = read_callback({"order_id": "o1", "operation_type": 18, "status": 2}, "KES")
    assert event.direction == ""
    assert [("18" in r.getMessage()) for r in caplog.records] == [True]


def test_success_beside_an_error_code_is_unknown_not_settled(make_payment: MakePayment) -> None:
    update = mapping.read_reply(_reply(status=2, result={"code": 7, "message": "error"}),
                                make_payment(), submit=True)
    assert update.status is Status.UNKNOWN
