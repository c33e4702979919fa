"""KKiaPay's answers read into neutral updates, and the requests we build for it.

The verify call (`POST /api/v1/transactions/status`) is the only source of truth for money:
a widget payment is credited only when KKiaPay says SUCCESS for the amount, the currency and
OUR reference (the widget's `data`, echoed back as `state`). Anything else is reported, never
credited: see `verified_update`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from malipo.connectors.amounts import exact_amount
from malipo.connectors.exact_json import plain
from malipo.connectors.unlisted import unlisted as shared_unlisted
from malipo.domain.money import InexactAmount, Money, UnknownCurrency
from malipo.domain.payments import NextAction, NextActionKind, Payment, ProviderUpdate
from malipo.domain.status import Direction, Status

log = logging.getLogger(__name__)

# Every transaction status NOTES.md section 3 names for the status call. Anything else,
# including what the status call says after a revert (a setting: `reverted_status`), is
# UNKNOWN, never FAILED, and logged once with the raw value.
TRANSACTION_STATUS: Mapping[str, Status] = {
    "SUCCESS": Status.SUCCEEDED,
    "FAILED": Status.FAILED,
    "PENDING": Status.PROCESSING,
}

# `failureCode` values the webhook body is assumed to carry (KKiaPay's own spelling), and ours;
# the documented status answer carries none, so a FAILED status alone is DECLINED.
FAILURE_REASONS: Mapping[str, str] = {
    "processing_error": "PROVIDER_PROCESSING_ERROR",
    "insufficent_fund": "INSUFFICIENT_FUNDS",
    "insufficient_fund": "INSUFFICIENT_FUNDS",
}
DEFAULT_FAILURE_REASON = "DECLINED"

# Webhook `event` names; only a hint, since every webhook is confirmed by a status call.
WEBHOOK_EVENTS: Mapping[str, Status] = {
    "transaction.success": Status.SUCCEEDED,
    "transaction.failed": Status.FAILED,
}

REFERENCE_MISMATCH = "REFERENCE_MISMATCH"
CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
AMOUNT_MISMATCH = "AMOUNT_MISMATCH"


def unlisted(kind: str, raw: str) -> Status:
    return shared_unlisted(log, "KKiaPay", kind, raw)


def status_of(raw: str, *, reverted: str = "") -> Status:
    """`reverted`: the status word the status call is assumed to give after a revert."""
    word = raw.strip().upper()
    if reverted and word == reverted.strip().upper():
        return Status.REVERSED
    status = TRANSACTION_STATUS.get(word)
    return status if status is not None else unlisted("transaction status", raw)


def failure_reason(code: str) -> str:
    return FAILURE_REASONS.get(code.strip().lower(), DEFAULT_FAILURE_REASON)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def read_amount(value: object, currency: str) -> Money | None:
    """The provider's amount as Money, or None when it is missing or not exact."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        return None
    try:
        return Money.from_decimal(value, currency)
    except (InexactAmount, UnknownCurrency):
        return None


@dataclass(frozen=True, slots=True)
class Transaction:
    """One verified transaction as KKiaPay's status call describes it."""

    transaction_id: str  # the one we asked about
    status: str
    amount: Money | None
    currency: str  # as KKiaPay gave it; "" when absent (KKiaPay is XOF-only)
    reference: str  # the widget's `data` as `state`, when KKiaPay adds it; "" otherwise
    named_id: str = ""  # a `transactionId` in the answer, when KKiaPay adds one
    failure_code: str = ""
    failure_message: str = ""
    source: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


def read_transaction(body: Mapping[str, Any], asked_id: str, currency: str) -> Transaction:
    given_currency = _text(body.get("currency")).upper()
    return Transaction(
        transaction_id=asked_id,
        named_id=_text(body.get("transactionId")),
        status=_text(body.get("status")).upper(),
        amount=read_amount(body.get("amount"), given_currency or currency),
        currency=given_currency,
        reference=_text(body.get("state")),
        failure_code=_text(body.get("failureCode")),
        failure_message=_text(body.get("failureMessage") or body.get("reason")),
        source=_text(body.get("source")),
        raw=plain(body),
    )


def integrity_problem(payment: Payment, tx: Transaction) -> str:
    """Why this transaction cannot settle this payment, or "" when it can.

    The documented status answer (type, status, source, performed_at, amount) names neither
    the transaction nor our payment: the transaction id we asked about and the amount are what
    must agree. A `state` (the widget's `data`) or a `transactionId`, when KKiaPay adds one,
    must agree too; a transaction id already credited to another payment is the service's to
    refuse."""
    if tx.named_id not in ("", tx.transaction_id) or tx.reference not in ("", payment.id):
        return REFERENCE_MISMATCH
    if tx.currency and tx.currency != payment.amount.currency.code:
        return CURRENCY_MISMATCH
    if tx.amount is None or tx.amount != payment.amount:
        return AMOUNT_MISMATCH
    return ""


def verified_update(payment: Payment, tx: Transaction, *, retry_failed: bool,
                    reverted: str = "") -> ProviderUpdate:
    """The neutral answer for one verified transaction.

    A mismatch gives status None (no opinion on OUR payment) with the reason in
    `failure_reason`, no provider_reference (a foreign transaction must never be pinned to
    this payment) and, for amount or currency, the claimed `amount`, which the service's
    integrity check flags. A transaction id already used elsewhere is the service's to
    refuse: it is exposed in `provider_reference` on every accepted answer."""
    problem = integrity_problem(payment, tx)
    if problem:
        claimed = f"{tx.amount}" if tx.amount is not None else "an unreadable amount"
        why = (f"KKiaPay transaction {tx.transaction_id} ({tx.status or 'no status'}, {claimed}, "
               f"reference {tx.reference or 'none'}) does not match payment {payment.id} "
               f"({payment.amount})")
        return ProviderUpdate(
            status=None, failure_reason=problem, failure_message=why, provider_message=why,
            amount=tx.amount if problem != REFERENCE_MISMATCH else None, raw=tx.raw,
        )
    status = status_of(tx.status, reverted=reverted)
    if status is Status.FAILED:
        reason = failure_reason(tx.failure_code)
        message = tx.failure_message or tx.failure_code or "failed at KKiaPay"
        if retry_failed and payment.direction is Direction.COLLECTION:
            # The customer may reopen the widget with the same `data`; the next attempt is a
            # new transaction id, so this one is not pinned.
            return ProviderUpdate(status=Status.ACTION_REQUIRED, provider_status=tx.status,
                                  provider_message=f"attempt {tx.transaction_id}: {message}",
                                  amount=tx.amount, raw=tx.raw)
        return ProviderUpdate(status=Status.FAILED, provider_reference=tx.transaction_id,
                              provider_status=tx.status, provider_message=message,
                              failure_reason=reason, failure_message=message,
                              amount=tx.amount, raw=tx.raw)
    return ProviderUpdate(status=status, provider_reference=tx.transaction_id,
                          provider_status=tx.status, provider_message=tx.failure_message,
                          amount=tx.amount, raw=tx.raw)


def whole_francs(amount: Money) -> int:
    """KKiaPay amounts are whole units (XOF has no minor unit)."""
    return int(exact_amount(amount, 0, provider="KKiaPay"))


def widget_action(payment: Payment, *, public_key: str, sandbox: bool,
                  callback_url: str = "") -> NextAction:
    """What the front end passes to KKiaPay's widget (openKkiapayWidget and the mobile SDKs).
    `data` carries our payment id: KKiaPay echoes it as `state` when we verify."""
    details: dict[str, str] = {
        "key": public_key,
        "amount": str(whole_francs(payment.amount)),
        "currency": payment.amount.currency.code,
        "data": payment.id,
        "sandbox": "true" if sandbox else "false",
    }
    optional = {
        "phone": "".join(ch for ch in payment.customer.phone_number if ch.isdigit()),
        "name": payment.customer.name,
        "email": payment.customer.email,
        "reason": payment.description,
        "callback": callback_url,
    }
    details.update({k: v for k, v in optional.items() if v})
    return NextAction(NextActionKind.WIDGET, details)


def provider_text(body: object) -> str:
    """KKiaPay's own words from an error body, for messages (never credentials)."""
    if isinstance(body, Mapping):
        for key in ("reason", "description", "message", "code", "status"):
            value = body.get(key)  # type: ignore[union-attr]
            if value not in (None, ""):
                return _text(value)
    return ""
