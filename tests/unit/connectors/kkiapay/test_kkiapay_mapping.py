"""KKiaPay's tables, amounts, settings and request/answer shapes: pure, no I/O."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from malipo.app.connector import ProviderAccount
from malipo.connectors.exact_json import loads
from malipo.connectors.kkiapay import KkiapayConnector
from malipo.connectors.kkiapay.mapping import (
    TRANSACTION_STATUS,
    failure_reason,
    read_amount,
    read_transaction,
    status_of,
    verified_update,
    widget_action,
)
from malipo.connectors.kkiapay.settings import LIVE_BASE_URL, SANDBOX_BASE_URL, KkiapaySettings
from malipo.connectors.registry import build
from malipo.domain.errors import InvalidRequest
from malipo.domain.money import Money
from malipo.domain.payments import Customer, Payment
from malipo.domain.status import Direction, Method, Status
from tests.connectors.kkiapay.kkiapay_document_samples import (
    STATUS_ANSWER_FIELDS,
    STATUSES,
    status_answer,
)

KEYS = {"public_key": "pk", "private_key": "tpk", "secret_key": "tsk"}


def payment(amount: int = 5000, direction: Direction = Direction.COLLECTION) -> Payment:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Payment(id="pay_01J0000000000000000000000", tenant="t", direction=direction,
                   provider="kkiapay", account="main", method=Method.MOBILE_MONEY,
                   amount=Money.of(amount, "XOF"), idempotency_key="k", created_at=now,
                   updated_at=now, customer=Customer(phone_number="+229 01 97 00 00 00"))


def answer(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"transactionId": "123", "status": "SUCCESS", "amount": 5000,
                               "state": "pay_01J0000000000000000000000", "source": "MOBILE_MONEY"}
    body.update(overrides)
    return body


def test_every_documented_status_is_mapped_and_unknown_is_never_failed() -> None:
    assert set(TRANSACTION_STATUS) == set(STATUSES)  # SUCCESS/FAILED/PENDING, NOTES.md
    assert status_of("SUCCESS") is Status.SUCCEEDED
    assert status_of("failed") is Status.FAILED
    assert status_of("PENDING") is Status.PROCESSING
    for odd in ("", "CANCELLED", "INITIATED", "success?", "REVERTED"):
        assert status_of(odd) is Status.UNKNOWN


def test_the_status_after_a_revert_is_a_setting_not_a_table_entry() -> None:
    assert status_of("REVERTED", reverted="REVERTED") is Status.REVERSED
    assert status_of("REFUNDED", reverted="REVERTED") is Status.UNKNOWN


def test_an_unlisted_status_is_logged_once_with_its_raw_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = f"ON_HOLD_{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="malipo.connectors.kkiapay.mapping"):
        for _ in range(3):
            assert status_of(raw) is Status.UNKNOWN
    said = [r.getMessage() for r in caplog.records if raw in r.getMessage()]
    assert len(said) == 1
    assert "UNKNOWN" in said[0]


def test_failure_codes() -> None:
    assert failure_reason("insufficent_fund") == "INSUFFICIENT_FUNDS"  # KKiaPay's spelling
    assert failure_reason("processing_error") == "PROVIDER_PROCESSING_ERROR"
    assert failure_reason("something_new") == "DECLINED"


@pytest.mark.parametrize(("raw", "minor"), [
    (5000, 5000), ("5000", 5000), (Decimal("5000.00"), 5000), ("0", 0),
])
def test_amounts_are_exact_whole_francs(raw: object, minor: int) -> None:
    assert read_amount(raw, "XOF") == Money.of(minor, "XOF")


@pytest.mark.parametrize("raw", [Decimal("5000.5"), "abc", None, True, 5000.0, [5000]])
def test_amounts_that_are_not_exact_are_unreadable(raw: object) -> None:
    assert read_amount(raw, "XOF") is None


def test_json_decimals_never_become_floats() -> None:
    body = loads(b'{"amount": 5000.00}')
    assert isinstance(body["amount"], Decimal)
    assert read_amount(body["amount"], "XOF") == Money.of(5000, "XOF")


def test_verified_success() -> None:
    tx = read_transaction(answer(), "123", "XOF")
    update = verified_update(payment(), tx, retry_failed=False)
    assert update.status is Status.SUCCEEDED
    assert update.provider_reference == "123"
    assert update.amount == Money.of(5000, "XOF")


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"state": "pay_someone_else"}, "REFERENCE_MISMATCH"),
    ({"transactionId": "999"}, "REFERENCE_MISMATCH"),  # an answer about another transaction
    ({"amount": 4999}, "AMOUNT_MISMATCH"),
    ({"amount": "5000.5"}, "AMOUNT_MISMATCH"),
    ({"currency": "XAF"}, "CURRENCY_MISMATCH"),
    ({"status": "FAILED", "state": "x"}, "REFERENCE_MISMATCH"),
])
def test_mismatches_are_reported_never_credited(overrides: dict[str, object],
                                                reason: str) -> None:
    update = verified_update(payment(), read_transaction(answer(**overrides), "123", "XOF"),
                             retry_failed=False)
    assert update.status is None
    assert update.failure_reason == reason
    assert update.provider_reference == ""


def test_failed_and_retry_mode() -> None:
    tx = read_transaction(answer(status="FAILED", failureCode="processing_error",
                                 failureMessage="busy"), "123", "XOF")
    failed = verified_update(payment(), tx, retry_failed=False)
    assert failed.status is Status.FAILED
    assert failed.failure_reason == "PROVIDER_PROCESSING_ERROR"
    assert failed.failure_message == "busy"
    retry = verified_update(payment(), tx, retry_failed=True)
    assert retry.status is Status.ACTION_REQUIRED
    assert retry.provider_reference == ""


def test_unknown_status_is_unknown() -> None:
    tx = read_transaction(answer(status="ON_HOLD"), "123", "XOF")
    assert verified_update(payment(), tx, retry_failed=False).status is Status.UNKNOWN


def test_widget_action_carries_our_id_and_no_secret() -> None:
    action = widget_action(payment(), public_key="pk", sandbox=True)
    assert dict(action.details) == {"key": "pk", "amount": "5000", "currency": "XOF",
                                    "data": "pay_01J0000000000000000000000",
                                    "sandbox": "true", "phone": "2290197000000"}


def test_settings_defaults_and_sandbox() -> None:
    live = KkiapaySettings.from_account(ProviderAccount("kkiapay", "a", KEYS))
    assert live.base_url == LIVE_BASE_URL
    assert not live.sandbox
    assert live.failed_attempt == "fail"
    assert live.webhook_secrets == ()
    sandbox = KkiapaySettings.from_account(ProviderAccount("kkiapay", "a",
                                                           {**KEYS, "sandbox": "true"}))
    assert sandbox.base_url == SANDBOX_BASE_URL


def test_bad_settings_are_refused_and_keys_are_required() -> None:
    with pytest.raises(InvalidRequest):
        KkiapaySettings.from_account(ProviderAccount("kkiapay", "a",
                                                     {**KEYS, "failed_attempt": "maybe"}))
    with pytest.raises(KeyError):
        KkiapaySettings.from_account(ProviderAccount("kkiapay", "a", {"public_key": "pk"}))


def test_registry_builds_the_connector() -> None:
    connector = build(ProviderAccount("kkiapay", "a", KEYS))
    assert isinstance(connector, KkiapayConnector)
    caps = connector.capabilities
    assert caps.callbacks_need_confirmation
    assert caps.refunds
    assert not caps.payouts  # the payout schedule sweeps the balance: never offered
    assert not caps.status_by_our_reference


def test_documented_status_answer_without_state_confirms_when_amount_and_id_agree() -> None:
    # NOTES.md's status answer names type, status, source, performed_at, amount: no `state`.
    body = status_answer("SUCCESS", 5000)
    assert tuple(body) == STATUS_ANSWER_FIELDS
    update = verified_update(payment(), read_transaction(body, "123", "XOF"), retry_failed=False)
    assert update.status is Status.SUCCEEDED
    assert update.provider_reference == "123"
    assert update.amount == Money.of(5000, "XOF")
    short = verified_update(payment(), read_transaction(status_answer("SUCCESS", 4000), "123",
                                                        "XOF"), retry_failed=False)
    assert short.status is None
    assert short.failure_reason == "AMOUNT_MISMATCH"
