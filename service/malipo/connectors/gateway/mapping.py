"""Request builders and response readers for the gateway; the exhaustive status table.

Our Payment -> the gateway's fields:
  order_id     payment.id (the gateway dedupes on it: a repeat gets the identical answer)
  customer_id  the phone rendered in the channel's format, or the Payment field the channel's
               catalogue entry names (`customer_id`: bank account number, customer reference)
  amount       "100.00": two decimals even for XOF/XAF (NOTES.md section 1)
  provider_id  the channel id (catalogue channel id = the gateway's provider id)
  extra.*      EXTRA_FIELDS below: sent when the channel requires the field for this direction,
               or when the caller supplied it in provider_fields
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from malipo.app.catalogue import Channel, field_value, national_number, render_phone
from malipo.connectors.amounts import exact_amount
from malipo.connectors.exact_json import plain
from malipo.connectors.unlisted import report_unlisted, unlisted
from malipo.domain.errors import FieldViolation, InvalidRequest
from malipo.domain.money import InexactAmount, Money
from malipo.domain.payments import NextAction, NextActionKind, Payment, ProviderUpdate
from malipo.domain.status import Direction, Status

log = logging.getLogger(__name__)

# Every status the document names. Anything else is UNKNOWN, never FAILED.
STATUS: Mapping[int, Status] = {
    -1: Status.UNKNOWN,      # undefined: "for example in an error situation"
    0: Status.PROCESSING,    # initiated
    1: Status.PROCESSING,    # in progress
    2: Status.SUCCEEDED,
    3: Status.FAILED,
    4: Status.CANCELLED,
}
STATUS_NAMES: Mapping[int, str] = {
    -1: "undefined", 0: "initiated", 1: "in progress", 2: "success", 3: "failed", 4: "cancelled",
}
OPERATION_TYPES: Mapping[int, Direction] = {16: Direction.PAYOUT, 17: Direction.COLLECTION}

# The gateway's `extra` key -> the Payment field that feeds it (catalogue.field_value paths).
EXTRA_FIELDS: Mapping[str, str] = {
    "customer_name": "customer.name",
    "customer_email": "customer.email",
    "bic": "customer.bank_account.bic",
    "bank_code": "customer.bank_account.bank_code",
    "customer_doc_type": "customer.document_type",
    "customer_doc_number": "customer.document_number",
    "return_url": "provider_fields.return_url",
    "otp": "provider_fields.otp",
}

ORDER_ID = re.compile(r"[A-Za-z0-9_\-:.]{1,128}")
FAILURE_DECLINED = "GATEWAY_DECLINED"          # result.code non-zero on submit
FAILURE_FAILED = "PROVIDER_FAILED"             # status 3
FAILURE_CANCELLED = "CANCELLED_BY_PROVIDER"    # status 4


def render_amount(amount: Money) -> str:
    """Two decimals whatever the currency's exponent ("100.00" for XOF), never rounded."""
    return format(exact_amount(amount, 2, provider="the gateway"), "f")


def parse_amount(value: object, currency: str) -> Money:
    """Callbacks carry `"amount": 100` or "100.00"; both are exact or refused."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InexactAmount(f"not an amount: {value!r}")
    return Money.from_decimal(value, currency)


def status_of(code: object, where: str = "status") -> Status:
    """The table's status; a code the document does not list is UNKNOWN, logged once here
    with its raw value so that a new gateway status is noticed, never guessed."""
    number = integer(code)
    status = STATUS.get(number) if number is not None else None
    return unlisted(log, "gateway", where, code) if status is None else status


def direction_of(code: object) -> Direction | None:
    """The operation_type's direction; an undocumented one names none and is logged once."""
    number = integer(code)
    direction = OPERATION_TYPES.get(number) if number is not None else None
    if direction is None and code is not None:
        report_unlisted(log, "gateway", "operation_type", code)
    return direction


def integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str | Decimal):
        try:
            return int(str(value).strip())
        except ValueError:
            return None
    return None


def text(value: object) -> str:
    return "" if value is None else str(value)


def customer_id(payment: Payment, channel: Channel) -> str:
    """The gateway's customer_id for this payment, or raise InvalidRequest naming the field."""
    sources: Mapping[str, str] = channel.extra.get("customer_id", {})
    path = sources.get(payment.direction.value)
    if path:
        value = field_value(payment, path).strip()
        if not value:
            raise InvalidRequest(FieldViolation(path, "rule required_field: sent as customer_id"))
        return value
    raw = payment.customer.phone_number
    if channel.phone is None:
        value = "".join(ch for ch in raw if ch.isdigit()) or payment.customer.reference
        if not value:
            raise InvalidRequest(FieldViolation("customer.phone_number",
                                                "rule required_field: sent as customer_id"))
        return value
    national = national_number(raw, channel.phone)
    if national is None:
        raise InvalidRequest(FieldViolation("customer.phone_number", "rule phone_format: "
                                            f"expected +{channel.phone.calling_code} and "
                                            f"{channel.phone.national_digits} digits"))
    if channel.extra.get("phone_render") == "national":
        return national
    return render_phone(national, channel.phone)


def extras(payment: Payment, channel: Channel) -> dict[str, str]:
    limits = channel.limits_for(payment.direction)
    required = set(limits.required_fields) if limits else set()
    out: dict[str, str] = {}
    for key, path in EXTRA_FIELDS.items():
        value = field_value(payment, path).strip()
        if value and (path in required or path.startswith("provider_fields.")):
            out[key] = value
    return out


def payment_request(payment: Payment, channel: Channel, *, merchant_id: str, callback_url: str,
                    send_country: bool, otp: str = "") -> dict[str, Any]:
    """The payment_c2b / payment_b2c body in the document's field order (the order is signed)."""
    body: dict[str, Any] = {
        "merchant_id": merchant_id,
        "customer_id": customer_id(payment, channel),
        "order_id": payment.id,
        "amount": render_amount(payment.amount),
        "currency": payment.amount.currency.code,
    }
    country = payment.country or channel.country
    if send_country and country:
        body["country"] = country
    if callback_url:
        body["callback_url"] = callback_url
    body["provider_id"] = int(channel.id) if channel.id.isdigit() else channel.id
    extra = extras(payment, channel)
    if otp:
        extra["otp"] = otp
    if extra:
        body["extra"] = extra
    return body


def status_request(merchant_id: str, order_id: str) -> dict[str, Any]:
    return {"merchant_id": merchant_id, "order_id": order_id}


def messages(body: Mapping[str, Any]) -> tuple[int, str, str]:
    result: Mapping[str, Any] = body.get("result") or {}
    provider: Mapping[str, Any] = body.get("provider_result") or {}
    code = integer(result.get("code"))
    return (0 if code is None else code, text(result.get("message")),
            text(provider.get("message")))


def _next_action(body: Mapping[str, Any], payment: Payment) -> NextAction | None:
    extra: Mapping[str, Any] = body.get("extra") or {}
    redirect = text(extra.get("customer_redirect"))
    if redirect:
        return NextAction(NextActionKind.REDIRECT, {"url": redirect})
    if extra.get("account_number"):
        details = {k: text(extra.get(k)) for k in ("account_number", "bank_name",
                                                      "account_name")}
        details["reference"] = payment.id
        transfer = extra.get("transfer_amount")
        if transfer is not None:
            details["amount_minor"] = str(parse_amount(transfer, payment.amount.currency.code)
                                          .minor)
        return NextAction(NextActionKind.BANK_TRANSFER, details)
    confirm_type = integer(body.get("confirm_type"))
    if confirm_type:
        # The document's "Confirmation Types" section is missing: every non-zero type is
        # treated as a code the customer received, sent back in extra.otp.
        return NextAction(NextActionKind.OTP, {"prompt": "one-time code the customer received",
                                               "confirm_type": str(confirm_type)})
    return None


def _still_awaited(payment: Payment, *, submit: bool) -> NextAction | None:
    """A status read never shows confirm_type nor the bank details of the submit's answer
    (the document's status sample), so "in progress" there leaves an awaited code or
    transfer awaited; only the answer to the confirmation itself (submit) moves it on."""
    if submit or payment.status is not Status.ACTION_REQUIRED or payment.next_action is None:
        return None
    if payment.next_action.kind in (NextActionKind.OTP, NextActionKind.BANK_TRANSFER):
        return payment.next_action
    return None


def read_reply(body: Mapping[str, Any], payment: Payment, *, submit: bool) -> ProviderUpdate:
    """A payment or status answer as a neutral update.

    `status` decides; result.code only explains it. A submit answered with a non-zero
    result.code and status 3 is a decline (GATEWAY_DECLINED, message kept). Initiated and in
    progress (0, 1) stay PROCESSING whatever result.code says: the gateway still has the
    operation. A success (2) beside a non-zero result.code contradicts itself, so it is
    UNKNOWN and the reconciler asks again, as for -1 and any undocumented status."""
    code, result_message, provider_message = messages(body)
    raw_status = body.get("status")
    status = status_of(raw_status)
    reason, failure = "", ""
    if status is Status.SUCCEEDED and code != 0:
        status = Status.UNKNOWN
    elif status is Status.FAILED and submit and code != 0:
        reason, failure = FAILURE_DECLINED, result_message or provider_message
    elif status is Status.FAILED:
        reason, failure = FAILURE_FAILED, provider_message or result_message
    elif status is Status.CANCELLED:
        reason, failure = FAILURE_CANCELLED, provider_message or result_message
    next_action = None
    if status is Status.PROCESSING:
        next_action = _next_action(body, payment) or _still_awaited(payment, submit=submit)
        if next_action is not None:
            status = Status.ACTION_REQUIRED
    ref = text(body.get("transaction_ref"))
    return ProviderUpdate(
        status=status,
        provider_reference=text(body.get("transaction_id")),
        provider_status=text(raw_status),
        provider_message=provider_message or result_message,
        failure_reason=reason,
        failure_message=failure,
        next_action=next_action,
        fulfilment={"transaction_ref": ref} if ref else {},
        raw=plain(body),
    )
