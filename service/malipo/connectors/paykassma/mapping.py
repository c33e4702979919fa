"""Paykassma request builders and answer readers, with the exhaustive status tables.

Wire facts from paykassma-mpesa.txt: amounts are whole units ("amount": 3000 is KES 3,000);
MSISDNs are 12 digits, e.g. 2547XXXXXXXX (2541XXXXXXXX is the other Kenyan mobile range);
answers are {"status":"ok",...} or {"status":"fail","message":...} where message is a
string or a {field: [texts]} map.
The document's own examples are not strict JSON (single quotes, a trailing comma), so the
answer reader accepts Python-literal syntax as a fallback rather than calling them garbage.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from malipo.connectors.amounts import exact_amount
from malipo.connectors.exact_json import loads, plain
from malipo.connectors.unlisted import unlisted
from malipo.domain.errors import FieldViolation, InvalidRequest
from malipo.domain.money import Money
from malipo.domain.payments import NextAction, NextActionKind, Payment, ProviderUpdate
from malipo.domain.status import Status

log = logging.getLogger(__name__)

WALLET_TYPE = "mpesa"

# Every value of "status" the document shows in a create/withdrawal answer.
ANSWER_STATUS: Mapping[str, Status] = {
    "ok": Status.PROCESSING,   # accepted: the customer gets the M-Pesa prompt / payout queued
    "fail": Status.FAILED,
}

# Withdrawal statuses, "Withdrawal statuses" table of the document.
WITHDRAWAL_STATUS: Mapping[int, Status] = {
    1: Status.SUCCEEDED,   # SUCCESS
    5: Status.FAILED,      # FAIL
}

# A deposit postback has no status field: the document's flow sends it once the funds are
# credited ("Paykassma sends a postback ... funds are credited"), so its arrival is success.
DEPOSIT_POSTBACK_STATUS = Status.SUCCEEDED

# Known fail texts -> stable reason codes (matched case-insensitively, first match wins).
FAILURE_REASONS: tuple[tuple[str, str], ...] = (
    ("insufficient balance", "INSUFFICIENT_FUNDS"),
    ("must be unique", "DUPLICATE_REFERENCE"),
    ("already been taken", "DUPLICATE_REFERENCE"),
    ("phone", "INVALID_PHONE_NUMBER"),
    ("account_number", "INVALID_PHONE_NUMBER"),
    ("amount", "INVALID_AMOUNT"),
)
DEFAULT_FAILURE_REASON = "PROVIDER_DECLINED"
WITHDRAWAL_REJECTED = "WITHDRAWAL_REJECTED"

# A Kenyan mobile number: 254 then 7XXXXXXXX or 1XXXXXXXX (the 010x/011x ranges). The
# document's "e.g. 2547XXXXXXXX" is one example of its "12-digit cell phone number".
_MSISDN = re.compile(r"^(?:\+254|254|0)([17]\d{8})$")


def _unlisted(table: str, value: object) -> Status:
    return unlisted(log, "Paykassma", f"{table} status", value)


def answer_status(value: object) -> Status:
    status = ANSWER_STATUS.get(str(value).lower())
    return _unlisted("answer", value) if status is None else status


def withdrawal_status(code: object) -> Status:
    try:
        status = WITHDRAWAL_STATUS.get(int(str(code)))
    except ValueError:
        status = None
    return _unlisted("withdrawal", code) if status is None else status


def msisdn(raw: str) -> str:
    """254XXXXXXXXX from 07XXXXXXXX/01XXXXXXXX, +254... or 254...; anything else refused."""
    compact = re.sub(r"[\s-]", "", raw)
    match = _MSISDN.match(compact)
    if match is None:
        raise InvalidRequest(FieldViolation(
            "customer.phone_number",
            "rule phone_format: Paykassma M-Pesa takes a 12-digit Kenyan mobile number "
            "254XXXXXXXXX starting 2547 or 2541 (07/01XXXXXXXX and +254... are accepted "
            "and normalised)"))
    return "254" + match.group(1)


def whole_amount(amount: Money) -> int:
    return int(exact_amount(amount, 0, provider="Paykassma"))


def label(payment: Payment) -> str:
    """The payer's id at the caller (the document's `label`), at most 190 characters."""
    value = payment.customer.reference.strip()
    if not value or len(value) > 190:
        raise InvalidRequest(FieldViolation(
            "customer.reference", "rule label: the payer's id, 1 to 190 characters"))
    return value


def deposit_body(payment: Payment) -> dict[str, Any]:
    return {
        "amount": whole_amount(payment.amount),
        "phone_number": msisdn(payment.customer.phone_number),
        "currency": payment.amount.currency.code,
        "label": label(payment),
        "custom_transaction_id": payment.id,
    }


def withdrawal_fields(payment: Payment, *, is_test: bool) -> dict[str, Any]:
    """The withdrawal request without its signature, in the document's order."""
    fields: dict[str, Any] = {
        "withdrawal_id": payment.id,
        "payment_system": WALLET_TYPE,
        "amount": whole_amount(payment.amount),
        "currency_code": payment.amount.currency.code,
        "label": label(payment),
    }
    if payment.description:
        fields["comment"] = payment.description
    fields["account_number"] = msisdn(payment.customer.phone_number)
    fields["is_test"] = is_test
    return fields


def hosted_url(payment: Payment, plugin_url: str, *, lang: str,
               page_ids: Mapping[str, str]) -> str:
    """The payment-window link of the document's "Payment window integration" section."""
    params: dict[str, str] = {
        "label": label(payment),
        "currency_code": payment.amount.currency.code,
        "lang": lang,
        "wallet_type": WALLET_TYPE,
        "custom_transaction_id": payment.id,
        "fixed_amount": str(whole_amount(payment.amount)),
    }
    params.update({k: v for k, v in page_ids.items() if v})
    for key in ("success_url", "fail_url", "pending_url"):
        if payment.provider_fields.get(key):
            params[key] = payment.provider_fields[key]
    return plugin_url.rstrip("/") + "/?" + urlencode(params)


def hosted_update(url: str) -> ProviderUpdate:
    return ProviderUpdate(
        status=Status.ACTION_REQUIRED,
        provider_status="payment_window",
        next_action=NextAction(NextActionKind.REDIRECT, {"url": url}),
    )


def lenient_json(body: bytes) -> Any:
    """JSON (decimals exact), or the Python-literal dialect the document's examples are
    written in."""
    try:
        return loads(body)
    except ValueError:
        pass
    text = body.decode("utf-8", "replace").strip()
    if not text.startswith("{") or len(text) > 65536:
        raise ValueError("not JSON")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("not JSON") from None


def fail_texts(message: object) -> tuple[str, str]:
    """(plain text, text with field names) of a fail message: a string or {field: [texts]}."""
    if isinstance(message, Mapping):
        plain: list[str] = []
        named: list[str] = []
        for key, value in message.items():  # type: ignore[union-attr]
            texts = [str(v) for v in value] if isinstance(value, list) else [str(value)]
            plain.extend(texts)
            named.append(f"{key}: {'; '.join(texts)}")
        return "; ".join(plain), "; ".join(named)
    text = "" if message is None else str(message)
    return text, text


def failure_reason(text: str) -> str:
    lowered = text.lower()
    return next((code for needle, code in FAILURE_REASONS if needle in lowered),
                DEFAULT_FAILURE_REASON)


def read_answer(answer: Mapping[str, Any], *, reference: str) -> ProviderUpdate:
    """A create/withdrawal answer as an update; Status.UNKNOWN when the status is unknown."""
    raw_status = str(answer.get("status", ""))
    status = answer_status(raw_status)
    if status is Status.FAILED:
        text, named = fail_texts(answer.get("message"))
        return ProviderUpdate(status=Status.FAILED, provider_status=raw_status,
                              provider_message=named, failure_reason=failure_reason(named),
                              failure_message=text or "declined without a message",
                              raw=plain(answer))
    data = answer.get("data")
    data = data if isinstance(data, Mapping) else {}
    return ProviderUpdate(
        status=status,
        provider_reference=str(data.get("order_id") or reference),  # type: ignore[union-attr]
        provider_status=raw_status,
        provider_message=str(data.get("message", "")),  # type: ignore[union-attr]
        raw=plain(answer),
    )
