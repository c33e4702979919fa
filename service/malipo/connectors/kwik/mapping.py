"""Kwik's shapes <-> neutral ones: the status table, amounts, GMT+2 timestamps, request items.

Kwik answers `amount` as a JSON number (500.25): bodies are parsed with exact_json.loads
(Decimal for every float) so no amount ever passes through a binary float. Timestamps are
South African Standard Time (GMT+2, no daylight saving) and are converted to UTC here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from malipo.connectors.amounts import exact_amount
from malipo.connectors.exact_json import plain
from malipo.connectors.unlisted import unlisted as shared_unlisted
from malipo.domain.money import InexactAmount, Money
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.status import Status

log = logging.getLogger(__name__)

SAST = timezone(timedelta(hours=2), "SAST")
CURRENCY = "ZAR"

# Every transaction status name the documents list (NOTES.md section 5, the staging table:
# Paid, Unpaid, Rejected by Bank, Cancelled, Disputed, Reversed, Accepted by bank, Sent to
# Bank, Pending), keyed lower-case with single spaces. Any other name is UNKNOWN.
STATUS: Mapping[str, Status] = {
    "paid": Status.SUCCEEDED,
    "unpaid": Status.FAILED,
    "rejected by bank": Status.FAILED,
    "cancelled": Status.CANCELLED,
    "disputed": Status.REVERSED,
    "reversed": Status.REVERSED,
    "accepted by bank": Status.PROCESSING,
    "sent to bank": Status.PROCESSING,
    "pending": Status.PROCESSING,
}

# Stable codes for the non-success outcomes; the bank's words go to failure_message.
FAILURE_REASON: Mapping[str, str] = {
    "unpaid": "UNPAID",
    "rejected by bank": "REJECTED_BY_BANK",
    "cancelled": "CANCELLED",
    "disputed": "DISPUTED",
    "reversed": "REVERSED",
}

TIMESTAMP_FIELDS = ("created_at", "updated_at", "charged_at", "status_changed_at")


class MalformedRecord(ValueError):
    """A transaction record that cannot be read (missing reference, inexact amount...)."""


def status_of(name: str) -> Status:
    """The table's status for a Kwik status name; a name it does not list is UNKNOWN."""
    status = STATUS.get(_key(name))
    return status if status is not None else unlisted("status name", name)


def unlisted(kind: str, raw: str) -> Status:
    return shared_unlisted(log, "Kwik", kind, raw)


def _key(name: str) -> str:
    return " ".join(name.lower().split())


def parse_amount(value: object) -> Money:
    """Kwik decimals in ZAR, exactly. A float here means a body was parsed the wrong way."""
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise MalformedRecord(f"amount is not a decimal: {value!r}")
    try:
        return Money.from_decimal(value, CURRENCY)
    except InexactAmount as exc:
        raise MalformedRecord(f"amount: {exc}") from None


def parse_timestamp(value: object) -> datetime | None:
    """'YYYY-MM-DD HH:mm:ss' in GMT+2 -> aware UTC datetime; None stays None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedRecord(f"timestamp is not a string: {value!r}")
    try:
        local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SAST)
    except ValueError:
        raise MalformedRecord(f"timestamp not in YYYY-MM-DD HH:mm:ss: {value!r}") from None
    return local.astimezone(UTC)


def parse_action_date(value: str) -> date:
    return datetime.strptime(value, "%Y-%m-%d").date()


def end_of_action_date(value: str) -> datetime | None:
    """When the collection run of this action date is surely over: the end of that day in
    South Africa. None for a date that cannot be read (validate refuses those)."""
    try:
        day = parse_action_date(value)
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=1), time(), SAST).astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class TransactionUpdate:
    """One transaction of a sweep: our payment id (Kwik's transaction_reference) and what it
    says."""

    reference: str
    update: ProviderUpdate


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    """The documented filters of GET /transactions. Names are Kwik's, including the
    asymmetric `charged_end_date`. Dates are Kwik (GMT+2) calendar dates."""

    transaction_status_lookups_id: str = ""
    charged_at_start_date: date | None = None
    charged_end_date: date | None = None
    status_changed_at_start_date: date | None = None
    status_changed_at_end_date: date | None = None
    payment_methods_id: str = ""

    def params(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in self.__slots__:  # type: ignore[attr-defined]
            value = getattr(self, name)
            if isinstance(value, date):
                out[name] = value.isoformat()
            elif value:
                out[name] = str(value)
        return out


def render_amount(amount: Money) -> str:
    """The submit item's "0.00" text, never rounded."""
    return format(exact_amount(amount, 2, provider="Kwik"), "f")


def payment_item(payment: Payment, payment_methods_id: str) -> dict[str, Any]:
    """One entry of POST /payments/submit `payments[]` (NOTES.md section 5)."""
    fields = payment.provider_fields
    customer = payment.customer
    item: dict[str, Any] = {
        "transaction_reference": payment.id,
        "payment_methods_id": fields.get("payment_methods_id") or payment_methods_id,
        "amount": render_amount(payment.amount),
        "action_date": fields.get("action_date", ""),
    }
    if fields.get("customer_id"):
        item["customer_id"] = fields["customer_id"]
    else:
        name, _, surname = customer.name.strip().partition(" ")
        item["customer"] = _drop_empty({
            "reference": customer.reference or payment.id,
            "person_name": name,
            "person_surname": surname,
            "email": customer.email,
            "contact_number": customer.phone_number,
        })
    if fields.get("bank_account_id"):
        item["bank_account_id"] = fields["bank_account_id"]
    else:
        bank = customer.bank_account
        item["bank_account"] = _drop_empty({
            "bank_account_holder_name": bank.holder_name or customer.name,
            "bank_account_number": bank.account_number,
            "bank_branch_code": bank.bank_code,
            "bank_account_type_lookups_id": fields.get("bank_account_type_lookups_id", ""),
            "bank_name_lookups_id": fields.get("bank_name_lookups_id", ""),
        })
    if payment.description:
        item["description"] = payment.description
    return item


def _drop_empty(values: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v}


def submission_update(result: Mapping[str, Any]) -> ProviderUpdate:
    """A payment Kwik holds (from the submit answer or found by our reference) whose
    collection run has not made a transaction yet: at Kwik, not yet charged."""
    amount = parse_amount(result["amount"]) if result.get("amount") is not None else None
    return ProviderUpdate(
        status=Status.PROCESSING,
        provider_reference=str(result.get("id") or ""),
        provider_status="SUBMITTED",
        amount=amount,
        raw=plain(result),
    )


def transaction_update(tx: Mapping[str, Any], status_name: str | None, *,
                       unnamed: Status | None = None) -> ProviderUpdate:
    """A transaction record -> neutral update. `status_name` None: the lookup id has no
    name; the status is then `unnamed` (None: no opinion, for a webhook read before the
    names are known; UNKNOWN once Kwik's own lookups do not name it), raw id kept."""
    reference = tx.get("transaction_reference")
    if not isinstance(reference, str) or not reference:
        raise MalformedRecord("transaction_reference missing")
    amount = parse_amount(tx.get("amount"))
    times = {k: parse_timestamp(tx.get(k)) for k in TIMESTAMP_FIELDS}
    lookup_id = str(tx.get("transaction_status_lookups_id") or "")
    unpaid = str(tx.get("unpaid_reason") or "")
    if status_name is not None:
        status = status_of(status_name)
    else:
        status = unnamed
        if unnamed is Status.UNKNOWN:
            unlisted("transaction_status_lookups_id", lookup_id)
    key = _key(status_name or "")
    failed = status in (Status.FAILED, Status.CANCELLED, Status.REVERSED)
    fulfilment = _drop_empty({
        "payment_reference": str(tx.get("payment_reference") or ""),
        "submission_batch_reference": str(tx.get("submission_batch_reference") or ""),
        "kwik_transaction_id": str(tx.get("id") or ""),
    })
    raw = plain(dict(tx))
    raw["status_name"] = status_name
    raw["times_utc"] = {k: iso_utc(v) for k, v in times.items() if v is not None}
    return ProviderUpdate(
        status=status,
        provider_reference=str(tx.get("payments_id") or ""),
        provider_status=status_name if status_name is not None else lookup_id,
        provider_message=unpaid,
        failure_reason=FAILURE_REASON.get(key, "") if failed else "",
        failure_message=unpaid if failed else "",
        fulfilment=fulfilment,
        amount=amount,
        raw=raw,
    )


def require_object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedRecord(f"{what} is not an object")
    return value  # type: ignore[return-value]
