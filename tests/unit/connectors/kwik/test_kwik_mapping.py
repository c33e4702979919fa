"""Kwik's status table, exact amounts, GMT+2 times and request items: pure."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from malipo.connectors.exact_json import loads
from malipo.connectors.kwik.mapping import (
    STATUS,
    MalformedRecord,
    TransactionFilter,
    parse_amount,
    parse_timestamp,
    payment_item,
    status_of,
    transaction_update,
)
from malipo.domain.money import Money
from malipo.domain.payments import BankAccount, Customer, Payment
from malipo.domain.status import Direction, Method, Status


# Exactly the names NOTES.md section 5 lists (the staging table); nothing else is known.
@pytest.mark.parametrize(("name", "status"), [
    ("Paid", Status.SUCCEEDED), ("Unpaid", Status.FAILED),
    ("Rejected by Bank", Status.FAILED), ("Cancelled", Status.CANCELLED),
    ("Disputed", Status.REVERSED), ("Reversed", Status.REVERSED),
    ("Accepted by bank", Status.PROCESSING),
    ("Sent to Bank", Status.PROCESSING), ("SENT  TO BANK", Status.PROCESSING),
    ("Pending", Status.PROCESSING),
])
def test_status_names(name: str, status: Status) -> None:
    assert status_of(name) is status


# Names the documents do not list: never FAILED, never PROCESSING.
@pytest.mark.parametrize("name", ["Rejected", "Accepted", "In Tracking", "Awaiting Mandate", ""])
def test_a_name_the_documents_do_not_list_is_unknown(name: str) -> None:
    assert status_of(name) is Status.UNKNOWN


def test_no_name_maps_to_failed_unless_the_bank_said_no() -> None:
    failed = {n for n, s in STATUS.items() if s is Status.FAILED}
    assert failed == {"unpaid", "rejected by bank"}


def test_unknown_name_keeps_the_raw_value_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"Awaiting Debit {uuid.uuid4().hex[:6]}"  # logged once per process: a fresh one
    with caplog.at_level(logging.WARNING, logger="malipo.connectors.kwik.mapping"):
        updates = [transaction_update(_tx(), name) for _ in range(3)]
    assert {u.status for u in updates} == {Status.UNKNOWN}
    assert {u.provider_status for u in updates} == {name}
    assert {u.failure_reason for u in updates} == {""}
    assert caplog.text.count(repr(name)) == 1


@pytest.mark.parametrize(("text", "minor"), [
    (b'{"a": 500.25}', 50025), (b'{"a": 0.1}', 10), (b'{"a": 1e2}', 10000),
    (b'{"a": 20000.00}', 2000000), (b'{"a": "500.25"}', 50025), (b'{"a": 7}', 700),
])
def test_amounts_are_exact(text: bytes, minor: int) -> None:
    assert parse_amount(loads(text)["a"]) == Money.of(minor, "ZAR")


@pytest.mark.parametrize("bad", [Decimal("0.001"), 0.1, True, None, "abc", "NaN"])
def test_inexact_or_non_decimal_amounts_are_refused(bad: object) -> None:
    with pytest.raises(MalformedRecord):
        parse_amount(bad)


def test_gmt_plus_2_to_utc_across_midnight() -> None:
    assert parse_timestamp("2024-02-04 01:45:23") == datetime(2024, 2, 3, 23, 45, 23, tzinfo=UTC)
    assert parse_timestamp(None) is None
    with pytest.raises(MalformedRecord):
        parse_timestamp("2024-02-04T01:45:23Z")


def test_unpaid_record_maps_reason_and_keeps_history_raw() -> None:
    history = [{"date": "2025-04-07 07:35:02", "code": "000080", "message": "** WARNING **"}]
    update = transaction_update(_tx(unpaid_reason="NO SUCH ACCOUNT", submission_data=history),
                                "Unpaid")
    assert (update.status, update.failure_reason, update.failure_message) == (
        Status.FAILED, "UNPAID", "NO SUCH ACCOUNT")
    assert update.raw["submission_data"] == history
    assert update.raw["amount"] == "500.25"  # JSON-storable, still exact
    assert update.raw["times_utc"] == {"created_at": "2024-12-28T20:14:47Z"}
    assert update.provider_reference == "pay_kwik1"


def test_record_without_reference_is_malformed() -> None:
    with pytest.raises(MalformedRecord):
        transaction_update(_tx(transaction_reference=None), "Paid")


def test_filter_uses_kwiks_names_and_dates() -> None:
    params = TransactionFilter(charged_end_date=date(2024, 10, 26),
                               payment_methods_id="pam_1").params()
    assert params == {"charged_end_date": "2024-10-26", "payment_methods_id": "pam_1"}


def test_payment_item_is_our_id_and_a_two_decimal_string() -> None:
    now = datetime.now(UTC)
    payment = Payment(
        id="pay_01J", tenant="t", direction=Direction.COLLECTION, provider="kwik",
        account="main", method=Method.DEBIT_ORDER, amount=Money.of(50025, "ZAR"),
        idempotency_key="k", created_at=now, updated_at=now,
        customer=Customer(name="John Doe", reference="CLN1",
                          bank_account=BankAccount("10004291601", "632005")),
        provider_fields={"action_date": "2025-03-01"},
    )
    assert payment_item(payment, "pam_1") == {
        "transaction_reference": "pay_01J", "payment_methods_id": "pam_1", "amount": "500.25",
        "action_date": "2025-03-01",
        "customer": {"reference": "CLN1", "person_name": "John", "person_surname": "Doe"},
        "bank_account": {"bank_account_holder_name": "John Doe",
                         "bank_account_number": "10004291601", "bank_branch_code": "632005"},
    }


def _tx(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "tra_1", "created_at": "2024-12-28 22:14:47", "updated_at": None,
        "payments_id": "pay_kwik1", "transaction_reference": "INV0045",
        "transaction_status_lookups_id": "loo_1", "amount": Decimal("500.25"),
        "unpaid_reason": None, "submission_data": [],
    }
    return {**base, **overrides}
