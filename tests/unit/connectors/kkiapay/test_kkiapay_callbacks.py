"""The x-kkiapay-secret check and KKiaPay's webhook body, on literal bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from malipo.app.connector import InboundCallback
from malipo.connectors.kkiapay import signing
from malipo.connectors.kkiapay.callbacks import parse, verify
from malipo.domain.errors import CallbackRejected
from malipo.domain.money import Money
from malipo.domain.status import Status
from malipo.sandbox import kkiapay as fake
from tests.connectors.kkiapay.kkiapay_document_samples import (
    KEY_HEADERS,
    NOTES_ADMIN_API,
    NOTES_WEBHOOKS,
    SECRET_HEADER,
)

# The webhook body is not in the documents: these are the fields the connector and the fake
# each assume (see sandbox/kkiapay.py), including KKiaPay's `isPaymentSucces` spelling.
SUCCESS = (b'{"transactionId":"1234567","isPaymentSucces":true,"account":"2290197000000",'
           b'"label":"MTN BENIN","method":"MOBILE_MONEY","amount":5000,"fees":100,'
           b'"partnerId":"","performedAt":"2026-01-01T10:00:00.000Z",'
           b'"stateData":"pay_01J0000000000000000000000","event":"transaction.success"}')
FAILED = (b'{"transactionId":"7654321","isPaymentSucces":false,"amount":5000,'
          b'"stateData":"pay_01J0000000000000000000000","event":"transaction.failed",'
          b'"failureCode":"insufficent_fund","failureMessage":"balance too low"}')


def callback(body: bytes, headers: dict[str, str] | None = None) -> InboundCallback:
    return InboundCallback("kkiapay", "main", headers or {}, body, {}, "127.0.0.1",
                           datetime.now(UTC))


def test_verify_needs_a_configured_secret_and_the_header() -> None:
    with pytest.raises(CallbackRejected):
        verify(callback(SUCCESS, {"x-kkiapay-secret": "x"}), ())
    with pytest.raises(CallbackRejected):
        verify(callback(SUCCESS), ("x",))
    verify(callback(SUCCESS, {"x-kkiapay-secret": "x"}), ("x",))


def test_success_body() -> None:
    [event] = parse(callback(SUCCESS), "XOF")
    assert event.payment_id == "pay_01J0000000000000000000000"
    assert event.event_key == "1234567:transaction.success"
    assert event.update.status is Status.SUCCEEDED
    assert event.update.provider_reference == "1234567"
    assert event.update.amount == Money.of(5000, "XOF")


def test_failed_body() -> None:
    [event] = parse(callback(FAILED), "XOF")
    assert event.update.status is Status.FAILED
    assert event.update.failure_reason == "INSUFFICIENT_FUNDS"
    assert event.update.failure_message == "balance too low"


def test_event_name_alone_is_a_claim_and_unknown_events_claim_unknown() -> None:
    [event] = parse(callback(b'{"transactionId":"1","event":"transaction.failed"}'), "XOF")
    assert event.update.status is Status.FAILED
    [event] = parse(callback(b'{"transactionId":1,"event":"payout.whatever"}'), "XOF")
    assert event.update.status is Status.UNKNOWN
    assert event.update.provider_reference == "1"


@pytest.mark.parametrize("body", [b"", b"[]", b"not json", b'{"isPaymentSucces":true}',
                                  b'{"transactionId":""}', b'{"transactionId":true}',
                                  b"\xff\xfe"])
def test_bodies_that_are_not_kkiapay_webhooks(body: bytes) -> None:
    with pytest.raises(CallbackRejected):
        parse(callback(body), "XOF")


def test_both_readings_use_the_documented_secret_header() -> None:
    assert signing.SECRET_HEADER == SECRET_HEADER
    assert fake.SECRET_HEADER == SECRET_HEADER
    assert SECRET_HEADER in NOTES_WEBHOOKS
    verify(callback(SUCCESS, {SECRET_HEADER: "s"}), ("s",))
    assert fake.KEY_HEADERS == KEY_HEADERS
    assert all(name in NOTES_ADMIN_API for name in KEY_HEADERS)
