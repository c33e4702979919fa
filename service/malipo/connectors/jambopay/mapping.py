"""JamboPay's words in our terms: status table, error codes, request forms, response readers.

Amounts arrive as JSON decimals ("Amount": 20.0000); bodies are parsed with
malipo.connectors.exact_json so no amount ever passes through a float.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from malipo.connectors.exact_json import plain
from malipo.connectors.unlisted import unlisted as shared_unlisted
from malipo.domain.errors import ProviderRejectedRequest
from malipo.domain.money import InexactAmount, Money
from malipo.domain.payments import NextAction, NextActionKind, Payment, ProviderUpdate
from malipo.domain.status import Status
from malipo.redaction import mask_number, mask_text

log = logging.getLogger(__name__)

# Every status the transaction-status document names. Anything else is UNKNOWN, never FAILED,
# and logged once with the raw value.
STATUS: Mapping[str, Status] = {
    "Checking": Status.PROCESSING,   # prepared, awaiting completion
    "Completed": Status.SUCCEEDED,
    "Failed": Status.FAILED,
    "Cancelled": Status.CANCELLED,
}
_STATUS_FOLDED = {name.casefold(): status for name, status in STATUS.items()}

FAILURE_REASON: Mapping[Status, str] = {
    Status.FAILED: "PROVIDER_FAILED",
    Status.CANCELLED: "PROVIDER_CANCELLED",
}
AGENT_REFUNDED_REASON = "AGENT_REFUNDED"


class ErrorKind(StrEnum):
    DECLINE = "DECLINE"      # refused for a business reason: the payout fails
    STATE = "STATE"          # depends on the transaction's state: ask the status endpoint
    AUTH = "AUTH"            # our credentials: a configuration problem, not a decline
    INTERNAL = "INTERNAL"    # JamboPay's own failure: outcome of a mutation is unknown


# Error codes assumed for presentment and commit answers (the documents list none); an
# unlisted code is read by HTTP status in read_fault.
ERRORS: Mapping[int, tuple[ErrorKind, str]] = {
    1000: (ErrorKind.DECLINE, "PROVIDER_RESERVED_ERROR"),
    1010: (ErrorKind.AUTH, "INVALID_USERNAME"),
    1011: (ErrorKind.AUTH, "INVALID_PASSWORD"),
    1012: (ErrorKind.DECLINE, "INVALID_TRANSACTION_ID_FORMAT"),
    1050: (ErrorKind.DECLINE, "INVALID_CURRENCY"),
    1051: (ErrorKind.STATE, "INVALID_TRANSACTION_ID"),
    1052: (ErrorKind.INTERNAL, "PROVIDER_INTERNAL_ERROR"),
    1053: (ErrorKind.STATE, "ALREADY_COMPLETED"),
    1054: (ErrorKind.INTERNAL, "PROVIDER_INTERNAL_ERROR"),
    1060: (ErrorKind.DECLINE, "INSUFFICIENT_AGENT_FLOAT"),
    4440: (ErrorKind.INTERNAL, "PROVIDER_INTERNAL_ERROR"),
}


def unlisted(kind: str, raw: str) -> Status:
    return shared_unlisted(log, "JamboPay", kind, raw)


def status_of(raw: object) -> Status:
    """The document capitalises statuses; the callback text writes them in lower case."""
    status = _STATUS_FOLDED.get(raw.strip().casefold()) if isinstance(raw, str) else None
    return status if status is not None else unlisted("status", text(raw))


def money_of(value: object, currency: str) -> Money | None:
    """JamboPay's decimal amount, exactly; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ProviderRejectedRequest(f"JamboPay sent an amount that is not a decimal: {value!r}")
    try:
        return Money.from_decimal(value, currency)
    except InexactAmount as exc:
        raise ProviderRejectedRequest(f"JamboPay sent an unusable amount: {exc}") from None


def text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value).strip()


@dataclass(frozen=True, slots=True)
class Fault:
    """A non-2xx answer from JamboPay, read as far as its body allows."""

    http_status: int
    code: int | None
    message: str
    kind: ErrorKind
    reason: str


def read_fault(http_status: int, data: object) -> Fault:
    body: Mapping[str, Any] = data if isinstance(data, Mapping) else {}  # type: ignore[assignment]
    raw_code = body.get("ErrorCode", body.get("Code"))
    code = int(raw_code) if isinstance(raw_code, int | str) and str(raw_code).isdigit() else None
    message = mask_text(text(body.get("Message") or body.get("ErrorMessage")
                             or body.get("error_description") or body.get("error")))[:300]
    if code is not None and code in ERRORS:
        kind, reason = ERRORS[code]
    elif http_status == 401:
        kind, reason = ErrorKind.AUTH, "UNAUTHORIZED"
    elif http_status == 404:
        kind, reason = ErrorKind.STATE, "NOT_FOUND"
    else:
        kind, reason = ErrorKind.DECLINE, "PROVIDER_DECLINED"
    return Fault(http_status, code, message or f"HTTP {http_status}", kind, reason)


# --- requests ---------------------------------------------------------------------------

def presentment_form(*, stream: str, phone: str, amount: Money, callback_url: str,
                     meter_number: str = "", operator_code: str = "") -> dict[str, str]:
    """Presentment (NOTES.md section 4): KPLC takes MeterNumber, airtime (assumed) OperatorCode."""
    form = {"Stream": stream, "PhoneNumber": phone, "Amount": amount.format()}
    if meter_number:
        form["MeterNumber"] = meter_number
    if operator_code:
        form["OperatorCode"] = operator_code
    if callback_url:
        form["CallbackUrl"] = callback_url
    return form


def commit_form(*, stream: str, transaction_id: str) -> dict[str, str]:
    """The two documented commit fields (NOTES.md section 4), no more."""
    return {"Stream": stream, "TransactionID": transaction_id}


# --- responses --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Presentment:
    transaction_id: str
    account_name: str
    amount: Money | None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}  # type: ignore[return-value]


def read_presentment(data: object, currency: str) -> Presentment:
    body = _mapping(data)
    txid = text(body.get("TransactionID") or body.get("TransactionId"))
    if not txid:
        raise ProviderRejectedRequest("JamboPay's presentment answer carries no TransactionID")
    customer = _mapping(body.get("Customer"))
    name = text(customer.get("Names") or body.get("Names") or body.get("OperatorName"))
    return Presentment(txid, name, money_of(body.get("Amount"), currency))


def confirm_action(payment: Payment, presentment: Presentment, expires_at: str) -> NextAction:
    """What the caller confirms before money leaves the float: whose meter, how much."""
    if payment.provider_fields.get("meter_number"):
        what = f"KPLC tokens for meter {payment.provider_fields['meter_number']}"
    else:
        what = f"airtime for {mask_number(payment.customer.phone_number)}"
    details = {
        "account_name": presentment.account_name,
        "amount_minor": str(payment.amount.minor),
        "description": f"{what}: {payment.amount}",
    }
    if expires_at:
        details["expires_at"] = expires_at
    return NextAction(NextActionKind.CONFIRM, details)


def _tokens(value: object) -> list[Mapping[str, Any]]:
    """The commit's Tokens[...] is one object or a list of them (several tokens per sale)."""
    if isinstance(value, list):
        return [_mapping(v) for v in value]  # type: ignore[misc]
    return [_mapping(value)] if isinstance(value, Mapping) else []


def _put(out: dict[str, str], key: str, value: object) -> None:
    rendered = text(value)
    if rendered and rendered.lower() != "null":
        out[key] = rendered


def commit_fulfilment(data: object) -> dict[str, str]:
    body = _mapping(data)
    out: dict[str, str] = {}
    tokens = _tokens(body.get("Tokens"))
    _put(out, "token", ",".join(text(t.get("Token")) for t in tokens if text(t.get("Token"))))
    _put(out, "units", ",".join(text(t.get("Units")) for t in tokens if text(t.get("Units"))))
    if tokens:
        _put(out, "unit_type", tokens[0].get("UnitType"))
        _put(out, "tariff", tokens[0].get("Tarrif"))
    _put(out, "receipt_number", body.get("ReceiptNumber")
         or (tokens[0].get("ReceiptNumber") if tokens else None))
    _put(out, "meter_number", body.get("MeterNumber"))
    _put(out, "customer_name", _mapping(body.get("Customer")).get("Names"))
    _put(out, "phone_number", body.get("PhoneNumber"))
    return out


def status_fulfilment(data: object) -> dict[str, str]:
    body = _mapping(data)
    item = _mapping(body.get("PaidItem"))
    out: dict[str, str] = {}
    _put(out, "receipt_number", body.get("ReceiptNumber"))
    _put(out, "utility_name", body.get("UtilityName"))
    _put(out, "transaction_date", body.get("TransactionDate"))
    _put(out, "token", item.get("Token"))
    _put(out, "units", item.get("Units"))
    _put(out, "destination_phone_number", item.get("DestinationPhoneNumber"))
    _put(out, "denomination", item.get("Denomination"))
    _put(out, "quantity", item.get("Quantity"))
    _put(out, "operator_name", item.get("OperatorName"))
    return out


def read_commit(data: object, payment: Payment, transaction_id: str) -> ProviderUpdate:
    """A receipt confirms completion (NOTES.md: token, units, receipt); KPLC also needs its token.
    Without them the commit was taken but not finished: PROCESSING until callback or poll."""
    body = _mapping(data)
    fulfilment = commit_fulfilment(body)
    done = bool(fulfilment.get("receipt_number")) and (
        bool(fulfilment.get("token")) or not payment.provider_fields.get("meter_number"))
    return ProviderUpdate(
        status=Status.SUCCEEDED if done else Status.PROCESSING,
        provider_reference=text(body.get("TransactionID")) or transaction_id,
        provider_status="Completed" if done else "Committed",
        fulfilment=fulfilment,
        amount=money_of(body.get("Amount"), payment.amount.currency.code),
        raw=plain(body),
    )


def read_status(data: object, payment: Payment) -> ProviderUpdate:
    """The status table, read in the light of what we already know about the payout:
    "Checking" is also an uncommitted presentment (still ours to confirm), and a transaction
    that turns Cancelled or Failed after Completed had its agent float refunded: REVERSED."""
    body = _mapping(data)
    raw = text(body.get("Status"))
    status = status_of(raw)
    next_action: NextAction | None = None
    reason = FAILURE_REASON.get(status, "")
    if status is Status.PROCESSING and payment.status is Status.ACTION_REQUIRED:
        status, next_action = Status.ACTION_REQUIRED, payment.next_action
    elif status in (Status.FAILED, Status.CANCELLED) and payment.status is Status.SUCCEEDED:
        status, reason = Status.REVERSED, AGENT_REFUNDED_REASON
    message = f"unrecognised JamboPay status {raw!r}" if status is Status.UNKNOWN else ""
    return ProviderUpdate(
        status=status,
        provider_reference=text(body.get("TransactionId") or body.get("TransactionID")),
        provider_status=raw,
        provider_message=message,
        failure_reason=reason,
        failure_message=f"JamboPay reports the transaction {raw}" if reason else "",
        next_action=next_action,
        fulfilment=status_fulfilment(body),
        amount=money_of(body.get("Amount"), payment.amount.currency.code),
        raw=plain(body),
    )
