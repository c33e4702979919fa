"""JamboPay's tables and readers, on the document's own samples: pure, no I/O."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from malipo.connectors.exact_json import loads
from malipo.connectors.jambopay.mapping import (
    ERRORS,
    STATUS,
    ErrorKind,
    Presentment,
    commit_fulfilment,
    confirm_action,
    money_of,
    presentment_form,
    read_commit,
    read_fault,
    read_presentment,
    read_status,
    status_of,
)
from malipo.domain.errors import ProviderRejectedRequest
from malipo.domain.money import Money
from malipo.domain.payments import Customer, NextAction, NextActionKind, Payment
from malipo.domain.status import Direction, Method, Status
from tests.connectors.jambopay.jambopay_document_samples import (
    STATUS_AIRTIME,
    STATUS_KPLC,
    STATUSES,
)


def payout(amount_minor: int, status: Status, *, meter: str = "14234567890",
           reference: str = "1042955") -> Payment:
    now = datetime.now(UTC)
    return Payment(
        id="po_1", tenant="t", direction=Direction.PAYOUT, provider="jambopay", account="a",
        method=Method.BILL_PAYMENT if meter else Method.AIRTIME,
        amount=Money.of(amount_minor, "KES"), idempotency_key="k", created_at=now,
        updated_at=now, channel="kplc" if meter else "airtime_safaricom",
        customer=Customer(phone_number="254703263713"),
        provider_fields={"meter_number": meter} if meter else {}, status=status,
        provider_reference=reference)


def test_status_table_lists_exactly_the_documented_statuses() -> None:
    assert list(STATUS) == list(STATUSES)
    assert dict(STATUS) == {"Checking": Status.PROCESSING, "Completed": Status.SUCCEEDED,
                            "Failed": Status.FAILED, "Cancelled": Status.CANCELLED}


@pytest.mark.parametrize("raw", ["completed", " COMPLETED ", "Completed"])
def test_status_lookup_ignores_case(raw: str) -> None:
    assert status_of(raw) is Status.SUCCEEDED


@pytest.mark.parametrize("raw", ["Pending", "Reversed", "", None, 3, "Failed!"])
def test_unknown_status_is_unknown_never_failed(raw: object) -> None:
    assert status_of(raw) is Status.UNKNOWN


def test_an_unlisted_status_is_logged_once_with_its_raw_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = f"Reversing-{uuid.uuid4().hex[:8]}"
    body = loads(STATUS_KPLC.replace(b'"Completed"', f'"{raw}"'.encode()))
    with caplog.at_level(logging.WARNING, logger="malipo.connectors.jambopay.mapping"):
        for _ in range(3):
            assert read_status(body, payout(2000, Status.PROCESSING)).status is Status.UNKNOWN
    said = [r.getMessage() for r in caplog.records if raw in r.getMessage()]
    assert len(said) == 1
    assert "UNKNOWN" in said[0]


def test_kplc_sample_reads_exactly() -> None:
    update = read_status(loads(STATUS_KPLC), payout(2000, Status.PROCESSING))
    assert update.status is Status.SUCCEEDED
    assert update.provider_reference == "1042955"
    assert update.amount == Money.of(2000, "KES")
    assert update.fulfilment["token"] == "11165751758259169338"
    assert update.fulfilment["units"] == "0.040000"
    assert update.fulfilment["receipt_number"] == "211104001042955"
    assert update.raw["Amount"] == "20.0000"  # JSON-safe, exact


def test_airtime_sample_is_processing_and_keeps_the_recipient() -> None:
    update = read_status(loads(STATUS_AIRTIME), payout(5000, Status.PROCESSING, meter=""))
    assert update.status is Status.PROCESSING
    assert update.amount == Money.of(5000, "KES")
    assert update.fulfilment["destination_phone_number"] == "254703263713"
    assert update.fulfilment["operator_name"] == "ORANGE"
    assert "receipt_number" not in update.fulfilment  # null is not a receipt


def test_checking_while_awaiting_our_confirmation_stays_action_required() -> None:
    action = NextAction(NextActionKind.CONFIRM, {"account_name": "X"})
    waiting = replace(payout(5000, Status.ACTION_REQUIRED, meter=""), next_action=action)
    update = read_status(loads(STATUS_AIRTIME), waiting)
    assert update.status is Status.ACTION_REQUIRED
    assert update.next_action == action


@pytest.mark.parametrize("raw", ["Cancelled", "Failed"])
def test_cancelled_after_success_is_a_reversal(raw: str) -> None:
    body = loads(STATUS_KPLC.replace(b'"Completed"', f'"{raw}"'.encode()))
    update = read_status(body, payout(2000, Status.SUCCEEDED))
    assert update.status is Status.REVERSED
    assert update.failure_reason == "AGENT_REFUNDED"
    before = read_status(body, payout(2000, Status.PROCESSING))
    assert before.status is STATUS[raw]
    assert before.failure_reason in ("PROVIDER_FAILED", "PROVIDER_CANCELLED")


def test_unrecognised_status_keeps_the_raw_value() -> None:
    body = loads(STATUS_KPLC.replace(b'"Completed"', b'"Reversing"'))
    update = read_status(body, payout(2000, Status.PROCESSING))
    assert update.status is Status.UNKNOWN
    assert update.provider_status == "Reversing"
    assert "Reversing" in update.provider_message
    assert update.failure_reason == ""


def test_amounts_never_pass_through_float() -> None:
    assert loads(b'{"Amount": 0.1}')["Amount"] == Decimal("0.1")
    assert money_of(Decimal("20.0000"), "KES") == Money.of(2000, "KES")
    assert money_of("1234.5600", "KES") == Money.of(123456, "KES")
    assert money_of(50, "KES") == Money.of(5000, "KES")
    assert money_of(None, "KES") is None
    with pytest.raises(ProviderRejectedRequest):
        money_of(Decimal("20.001"), "KES")  # finer than the shilling's cents
    with pytest.raises(ProviderRejectedRequest):
        money_of(20.0, "KES")
    with pytest.raises(ProviderRejectedRequest):
        money_of(True, "KES")


def test_presentment_forms() -> None:
    amount = Money.of(2000, "KES")
    kplc = presentment_form(stream="kplc", phone="254712345678", amount=amount,
                            callback_url="https://cb/x", meter_number="14234567890")
    assert kplc == {"Stream": "kplc", "PhoneNumber": "254712345678", "Amount": "20.00",
                    "MeterNumber": "14234567890", "CallbackUrl": "https://cb/x"}
    air = presentment_form(stream="credit", phone="254712345678", amount=amount,
                           callback_url="", operator_code="4")
    assert air == {"Stream": "credit", "PhoneNumber": "254712345678", "Amount": "20.00",
                   "OperatorCode": "4"}


def test_presentment_reading_and_confirm_action() -> None:
    body = loads(b'{"Customer": {"ReferenceNumber": "R", "Names": "JANE W", "Address": "X"},'
                 b'"TransactionID": "77", "Amount": 20.0000, "MeterNumber": "14234567890"}')
    presentment = read_presentment(body, "KES")
    assert presentment == Presentment("77", "JANE W", Money.of(2000, "KES"))
    action = confirm_action(payout(2000, Status.PENDING), presentment, "")
    assert action.kind is NextActionKind.CONFIRM
    assert action.details == {"account_name": "JANE W", "amount_minor": "2000",
                              "description": "KPLC tokens for meter 14234567890: 20.00 KES"}
    with pytest.raises(ProviderRejectedRequest):
        read_presentment({"Names": "no id"}, "KES")


@pytest.mark.parametrize("tokens", [
    b'{"Token": "1111", "Units": 1.5, "UnitType": "kWh", "ReceiptNumber": "R1"}',
    b'[{"Token": "1111", "Units": 1.5, "UnitType": "kWh", "ReceiptNumber": "R1"}]',
])
def test_commit_reads_tokens_as_object_or_list(tokens: bytes) -> None:
    body = loads(b'{"TransactionID": "77", "ReceiptNumber": "R1", "Amount": 20.00, "Tokens": '
                 + tokens + b"}")
    update = read_commit(body, payout(2000, Status.ACTION_REQUIRED), "77")
    assert update.status is Status.SUCCEEDED
    assert update.fulfilment["token"] == "1111"
    assert update.fulfilment["units"] == "1.5"
    assert update.fulfilment["unit_type"] == "kWh"


def test_commit_without_token_is_still_processing_for_kplc() -> None:
    body = {"TransactionID": "77", "ReceiptNumber": "R1", "Tokens": []}
    assert read_commit(body, payout(2000, Status.ACTION_REQUIRED), "77").status is (
        Status.PROCESSING)
    airtime = read_commit(body, payout(2000, Status.ACTION_REQUIRED, meter=""), "77")
    assert airtime.status is Status.SUCCEEDED  # a receipt confirms an airtime sale
    no_receipt = read_commit({"TransactionID": "77"}, payout(2000, Status.ACTION_REQUIRED,
                                                            meter=""), "77")
    assert no_receipt.status is Status.PROCESSING


def test_several_tokens_are_all_delivered() -> None:
    out = commit_fulfilment({"Tokens": [{"Token": "1", "Units": Decimal("1.0")},
                                        {"Token": "2", "Units": Decimal("2.0")}]})
    assert out["token"] == "1,2"
    assert out["units"] == "1.0,2.0"


def test_error_codes() -> None:
    assert {code for code, (kind, _) in ERRORS.items() if kind is ErrorKind.STATE} == {
        1051, 1053}
    low = read_fault(400, {"ErrorCode": 1060, "Message": "Low agent balance"})
    assert (low.kind, low.reason, low.message) == (
        ErrorKind.DECLINE, "INSUFFICIENT_AGENT_FLOAT", "Low agent balance")
    assert read_fault(400, {"ErrorCode": "4440"}).kind is ErrorKind.INTERNAL
    assert read_fault(401, None).kind is ErrorKind.AUTH
    assert read_fault(404, None).kind is ErrorKind.STATE
    plain = read_fault(400, {"Message": "Invalid meter number"})
    assert (plain.kind, plain.reason) == (ErrorKind.DECLINE, "PROVIDER_DECLINED")
    masked = read_fault(400, {"Message": "phone 254712345678 is barred"})
    assert "254712345678" not in masked.message
