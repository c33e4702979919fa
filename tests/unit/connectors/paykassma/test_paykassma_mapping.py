"""Paykassma mapping: phone and amount conversion, status tables, answers, postbacks."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from malipo.app.catalogue import check_payment
from malipo.app.connector import CallbackOutcome, ProviderAccount
from malipo.connectors.paykassma import PaykassmaConnector, callbacks, mapping, settings
from malipo.connectors.settings import BadSetting
from malipo.domain.errors import CallbackRejected, InvalidRequest
from malipo.domain.money import Money
from malipo.domain.payments import ChangeKind, Customer, Payment, apply_update
from malipo.domain.status import Direction, Method, Status

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def payment(minor: int = 300000, phone: str = "0712344321", *, direction: Direction =
            Direction.COLLECTION, method: Method = Method.MOBILE_MONEY, ref: str = "user-42",
            status: Status = Status.PENDING) -> Payment:
    return Payment(id="pay_01", tenant="t", direction=direction, provider="paykassma",
                   account="main", method=method, amount=Money.of(minor, "KES"),
                   idempotency_key="k", created_at=NOW, updated_at=NOW,
                   customer=Customer(phone_number=phone, reference=ref), status=status)


@pytest.mark.parametrize(("raw", "expected"), [
    ("0712344321", "254712344321"),
    ("+254712344321", "254712344321"),
    ("254712344321", "254712344321"),
    ("0712 344-321", "254712344321"),
    # Safaricom's and Airtel's 01xx ranges are 12-digit 254 MSISDNs too: the document's
    # 2547XXXXXXXX is an example ("e.g."), not the only form.
    ("254112344321", "254112344321"),
    ("+254110344321", "254110344321"),
    ("0101344321", "254101344321"),
])
def test_msisdn_normalised(raw: str, expected: str) -> None:
    assert mapping.msisdn(raw) == expected


@pytest.mark.parametrize("raw", ["712344321", "0812344321", "+255712344321", "07123443",
                                 "254812344321", "254202344321", "+2547123443210", "",
                                 "07l2344321", "25411234432"])
def test_msisdn_refused_with_a_field_violation(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        mapping.msisdn(raw)
    assert caught.value.violations[0].field == "customer.phone_number"
    assert "254XXXXXXXXX" in caught.value.violations[0].description


def test_amounts_are_whole_units() -> None:
    assert mapping.whole_amount(Money.of(300000, "KES")) == 3000
    with pytest.raises(InvalidRequest) as caught:
        mapping.whole_amount(Money.of(300050, "KES"))
    violation = caught.value.violations[0]
    assert violation.field == "amount.amount_minor"
    assert "whole_units" in violation.description
    assert "3000.50" in violation.description


def test_deposit_body_is_the_documented_shape() -> None:
    assert mapping.deposit_body(payment()) == {
        "amount": 3000, "phone_number": "254712344321", "currency": "KES",
        "label": "user-42", "custom_transaction_id": "pay_01"}


def test_status_tables_are_exhaustive_and_unknown_is_never_failed() -> None:
    assert dict(mapping.WITHDRAWAL_STATUS) == {1: Status.SUCCEEDED, 5: Status.FAILED}
    assert mapping.withdrawal_status("1") is Status.SUCCEEDED
    assert mapping.withdrawal_status(5) is Status.FAILED
    for odd in (0, 2, 3, "x", None):
        assert mapping.withdrawal_status(odd) is Status.UNKNOWN
    assert dict(mapping.ANSWER_STATUS) == {"ok": Status.PROCESSING, "fail": Status.FAILED}
    assert mapping.answer_status("pending") is Status.UNKNOWN


def test_structured_insufficient_balance_keeps_its_text() -> None:
    update = mapping.read_answer(
        {"status": "fail", "message": {"withdrawals_sum_amount": ["Insufficient balance"]}},
        reference="pay_01")
    assert update.status is Status.FAILED
    assert update.failure_reason == "INSUFFICIENT_FUNDS"
    assert update.failure_message == "Insufficient balance"
    assert update.provider_message == "withdrawals_sum_amount: Insufficient balance"


@pytest.mark.parametrize(("text", "reason"), [
    ("Insufficient balance", "INSUFFICIENT_FUNDS"),
    ("The custom transaction id must be unique.", "DUPLICATE_REFERENCE"),
    ("The phone number format is invalid.", "INVALID_PHONE_NUMBER"),
    ("Something odd", "PROVIDER_DECLINED"),
])
def test_failure_reasons_are_stable_codes(text: str, reason: str) -> None:
    assert mapping.failure_reason(text) == reason


def test_documented_non_json_answers_are_read() -> None:
    assert mapping.lenient_json(b"{ 'status': 'fail', 'message': 'MESSAGE' }") == {
        "status": "fail", "message": "MESSAGE"}
    assert mapping.lenient_json(b'{ "status": "ok", }') == {"status": "ok"}
    with pytest.raises(ValueError, match="JSON"):
        mapping.lenient_json(b"<html>")


def test_hosted_url_carries_the_plugin_parameters() -> None:
    url = mapping.hosted_url(payment(phone=""), "https://plugin.example/", lang="en",
                             page_ids={"payment_url_fail_id": "1", "payment_url_success_id": ""})
    assert url == ("https://plugin.example/?label=user-42&currency_code=KES&lang=en"
                   "&wallet_type=mpesa&custom_transaction_id=pay_01&fixed_amount=3000"
                   "&payment_url_fail_id=1")


def test_catalogue_rules_are_data() -> None:
    connector = PaykassmaConnector(ProviderAccount("paykassma", "main"))
    catalogue = connector.catalogue()
    assert catalogue.currencies == ("KES",)
    assert check_payment(payment(), catalogue) == []
    fields = {v.field for v in check_payment(payment(300050, "+255712344321"), catalogue)}
    assert fields == {"amount.amount_minor", "customer.phone_number"}
    no_phone = payment(phone="")
    assert [v.field for v in check_payment(no_phone, catalogue)] == ["customer.phone_number"]
    hosted = replace(no_phone, channel="mpesa_hosted", method=Method.HOSTED)
    assert check_payment(hosted, catalogue) == []
    connector.validate(hosted)  # the window collects the number itself
    payout = replace(hosted, direction=Direction.PAYOUT)
    assert [v.field for v in check_payment(payout, catalogue)] == ["channel"]
    with pytest.raises(InvalidRequest):  # a withdrawal always needs the number
        connector.validate(payout)


def _deposit_postback(amount: str = "3000") -> bytes:
    item = ('{"amount":"' + amount + '","currency_code":"KES","stockpiling_id":4822019,'
            '"transaction_id":"RIR7U1Y6OH","plugin_custom_order_id":"pay_01",'
            '"withdrawal_status":null,"comment":""}')
    return ('{"signature":"x","amount":3000,"currency_code":"KES",'
            '"converted_amount":{"USD":20.34,"BTC":0.00077816},"direction":"ingoing",'
            '"access_key":"a","additional_data":[' + item + "]}").encode()


def test_deposit_postback_event() -> None:
    [event] = callbacks.events(callbacks.read_postback(_deposit_postback()))
    assert event.payment_id == "pay_01"
    assert event.direction == "COLLECTION"
    assert event.event_key == "ingoing:4822019"
    assert event.update.status is Status.SUCCEEDED
    assert event.update.amount == Money.of(300000, "KES")
    assert event.update.provider_reference == ""  # the order_id from create stays
    assert event.update.fulfilment["mpesa_receipt"] == "RIR7U1Y6OH"
    assert event.raw["converted_amount"] == {"USD": "20.34", "BTC": "0.00077816"}
    assert "signature" not in event.raw


def test_withdrawal_postback_failed_status() -> None:
    body = (b'{"amount":15944,"currency_code":"KES","direction":"outgoing","additional_data":'
            b'[{"amount":"15944","currency_code":"KES","withdrawal_id":"pay_02",'
            b'"withdrawal_status":5,"comment":"rejected by operator"}]}')
    [event] = callbacks.events(callbacks.read_postback(body))
    assert (event.payment_id, event.direction) == ("pay_02", "PAYOUT")
    assert event.update.status is Status.FAILED
    assert event.update.failure_reason == "WITHDRAWAL_REJECTED"
    assert event.update.failure_message == "rejected by operator"
    assert event.update.provider_reference == "pay_02"


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"direction":"sideways","additional_data":[{}]}',
    b'{"direction":"ingoing","additional_data":[]}',
    b'{"direction":"ingoing","additional_data":[{"amount":"1.005","currency_code":"KES",'
    b'"plugin_custom_order_id":"p"}]}',
    b'{"direction":"outgoing","additional_data":[{"amount":"1","currency_code":"KES"}]}',
])
def test_malformed_postbacks_are_rejected(body: bytes) -> None:
    with pytest.raises(CallbackRejected):
        callbacks.events(callbacks.read_postback(body))


def test_amount_mismatch_is_flagged_not_applied() -> None:
    [event] = callbacks.events(callbacks.read_postback(_deposit_postback("2999")))
    change = apply_update(payment(status=Status.PROCESSING), event.update, NOW)
    assert change.kind is ChangeKind.REVIEW
    assert change.after.status is Status.PROCESSING
    assert change.after.needs_review


def test_callback_answers() -> None:
    connector = PaykassmaConnector(ProviderAccount("paykassma", "main"))
    ok = (200, b'{"status":"ok"}')
    for outcome in (CallbackOutcome.APPLIED, CallbackOutcome.DUPLICATE, CallbackOutcome.IGNORED,
                    CallbackOutcome.DEFERRED, CallbackOutcome.MISMATCH):
        answer = connector.callback_answer(outcome)
        assert (answer.status, answer.body) == ok
        assert answer.content_type == "application/json"
    assert connector.callback_answer(CallbackOutcome.REJECTED).status == 401
    assert connector.callback_answer(CallbackOutcome.INVALID).status == 400
    unknown = connector.callback_answer(CallbackOutcome.UNKNOWN_PAYMENT)
    assert unknown.status == 404
    assert b'"status":"fail"' in unknown.body
    stop = PaykassmaConnector(ProviderAccount("paykassma", "main",
                                              {"unknown_postback_answer": "ok"}))
    assert (stop.callback_answer(CallbackOutcome.UNKNOWN_PAYMENT).status,
            stop.callback_answer(CallbackOutcome.UNKNOWN_PAYMENT).body) == ok


def test_misconfigured_names_fail_at_start() -> None:
    for values in ({"withdrawal_signature_algorithm": "md5"},
                   {"postback_signed_form": "all"}, {"unknown_postback_answer": "maybe"}):
        with pytest.raises(BadSetting, match="one of"):
            PaykassmaConnector(ProviderAccount("paykassma", "main", values))
    defaults = PaykassmaConnector(ProviderAccount("paykassma", "main")).settings
    assert (defaults.postback_signed_form, defaults.withdrawal_signature_algorithm) == (
        settings.DEFAULT_SIGNED_FORM, settings.DEFAULT_WITHDRAWAL_ALGORITHM) == (
        "additional_data", "sha1_private_md5_json")


def test_settings_never_show_their_secrets() -> None:
    keys = {"pluginapi_secret": "s-one", "withdrawal_private_key": "s-two",
            "postback_access_key": "s-three", "postback_private_key": "s-four",
            "postback_private_key_previous": "s-five"}
    shown = repr(settings.PaykassmaSettings.from_account(
        ProviderAccount("paykassma", "main", keys)))
    assert not [v for v in keys.values() if v in shown]


def test_a_flow_without_its_credential_refuses_before_any_call() -> None:
    bare = settings.PaykassmaSettings.from_account(ProviderAccount("paykassma", "main"))
    with pytest.raises(KeyError, match="pluginapi_secret"):
        bare.require("pluginapi_secret")


def test_unlisted_statuses_are_unknown_and_logged_once_with_the_raw_value(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="malipo.connectors.paykassma")
    for _ in range(3):
        assert mapping.withdrawal_status(7) is Status.UNKNOWN
        assert mapping.withdrawal_status("in review") is Status.UNKNOWN
        assert mapping.answer_status("queued") is Status.UNKNOWN
    body = (b'{"amount":15944,"currency_code":"KES","direction":"outgoing","additional_data":'
            b'[{"amount":"15944","currency_code":"KES","withdrawal_id":"pay_03",'
            b'"withdrawal_status":9,"comment":""}]}')
    [event] = callbacks.events(callbacks.read_postback(body))
    assert event.update.status is Status.UNKNOWN  # never FAILED, never PROCESSING
    assert event.update.provider_status == "9"
    assert mapping.withdrawal_status(1) is Status.SUCCEEDED  # listed: not logged
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    for raw in ("7", "'in review'", "'queued'", "9"):
        assert sum(raw in line for line in lines) == 1, (raw, lines)


def _withdrawal_to(account_number: str, amount: str = "15944") -> bytes:
    return (b'{"amount":15944,"currency_code":"KES","direction":"outgoing","additional_data":'
            b'[{"amount":"' + amount.encode() + b'","currency_code":"KES",'
            b'"withdrawal_id":"pay_01","withdrawal_status":1,"comment":"",'
            b'"account_number":"' + account_number.encode() + b'"}]}')


@pytest.mark.parametrize(("ours", "theirs", "kind"), [
    ("0790916213", "254790916213", ChangeKind.TRANSITION),
    ("+254 790 916 213", "254790916213", ChangeKind.TRANSITION),
    ("0790916213", "", ChangeKind.TRANSITION),   # not named (the deposit example): no check
    ("0790916213", "254790916214", ChangeKind.REVIEW),
    ("0790916213", "254112344321", ChangeKind.REVIEW),
])
def test_postback_applies_only_when_its_number_is_the_payments(
        ours: str, theirs: str, kind: ChangeKind) -> None:
    # plugin_custom_order_id / withdrawal_id finds the payment; the number it names must be
    # the payment's own too, or the money went to (or came from) someone else.
    subject = payment(1594400, ours, direction=Direction.PAYOUT, status=Status.PROCESSING)
    [event] = callbacks.events(callbacks.read_postback(_withdrawal_to(theirs)))
    change = apply_update(subject, event.update, NOW)
    assert change.kind is kind
    if kind is ChangeKind.REVIEW:
        assert change.after.status is Status.PROCESSING
        assert change.after.review_reason.startswith("ACCOUNT_MISMATCH")
        assert theirs not in change.after.review_reason  # numbers are never echoed
    else:
        assert change.after.status is Status.SUCCEEDED


def test_deposit_postback_naming_another_payer_is_flagged() -> None:
    body = _deposit_postback().replace(b'"comment":""', b'"comment":"","account_number":'
                                       b'"254700000001"')
    [event] = callbacks.events(callbacks.read_postback(body))
    change = apply_update(payment(status=Status.PROCESSING), event.update, NOW)
    assert change.kind is ChangeKind.REVIEW
    assert change.after.needs_review
