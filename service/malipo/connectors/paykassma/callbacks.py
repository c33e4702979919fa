"""Inbound Paykassma postbacks (deposit and withdrawal): verified, then read into neutral
callback events.

Shape (document, "Deposit postback" and "Example of a postback for a Mpesa withdrawal"): one
JSON object with signature, wallet_type, amount, currency_code, label, converted_amount (a map
of dozens of currencies, kept raw), direction ("ingoing" deposit / "outgoing" withdrawal),
created_datetime, access_key and additional_data, a list of transactions. Each transaction
becomes one event:
  deposit     the payment is the one named by `plugin_custom_order_id` (the
              custom_transaction_id we sent); `transaction_id` is the M-Pesa receipt, kept
              as fulfilment, not as the provider reference (the create answer's order_id).
  withdrawal  the payment is the one named by `withdrawal_id` (we send our payment id);
              `withdrawal_status` 1/5 per mapping.WITHDRAWAL_STATUS.
The id alone does not settle a payment: every event carries the amount and the number
(`account_number`, when Paykassma names one) it reports, and apply_update flags a payment
for review instead of moving it when either differs from ours.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from malipo.app.connector import CallbackEvent
from malipo.connectors.exact_json import loads, plain
from malipo.connectors.paykassma.mapping import (
    DEPOSIT_POSTBACK_STATUS,
    WITHDRAWAL_REJECTED,
    withdrawal_status,
)
from malipo.connectors.paykassma.settings import PaykassmaSettings
from malipo.connectors.paykassma.signing import postback_is_authentic
from malipo.domain.errors import CallbackRejected
from malipo.domain.money import InexactAmount, Money, UnknownCurrency
from malipo.domain.payments import ProviderUpdate
from malipo.domain.status import Direction, Status

DIRECTIONS: Mapping[str, Direction] = {
    "ingoing": Direction.COLLECTION,
    "outgoing": Direction.PAYOUT,
}


def read_postback(body: bytes) -> dict[str, Any]:
    try:
        data = loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CallbackRejected("paykassma postback is not JSON") from None
    if not isinstance(data, dict):
        raise CallbackRejected("paykassma postback is not a JSON object")
    return data  # type: ignore[return-value]


def verify(postback: Mapping[str, Any], settings: PaykassmaSettings) -> None:
    """The access_key must be ours and the signature one of our (rotating) private keys'."""
    access_key = settings.require("postback_access_key")
    sent_key = postback.get("access_key")
    if not isinstance(sent_key, str) or not hmac.compare_digest(
            sent_key.encode(), access_key.encode()):
        raise CallbackRejected("paykassma postback: access_key does not match")
    if not postback_is_authentic(postback, access_key, settings.postback_private_keys,
                                 settings.postback_signed_form):
        raise CallbackRejected("paykassma postback: signature does not match")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _amount(item: Mapping[str, Any], postback: Mapping[str, Any]) -> Money:
    value = item.get("amount", postback.get("amount"))
    currency = _text(item.get("currency_code") or postback.get("currency_code"))
    try:
        return Money.from_decimal(_text(value), currency)
    except (InexactAmount, UnknownCurrency):
        raise CallbackRejected(f"paykassma postback amount {value!r} {currency!r} "
                               "is not an amount") from None


def events(postback: Mapping[str, Any]) -> list[CallbackEvent]:
    direction = DIRECTIONS.get(_text(postback.get("direction")))
    if direction is None:
        raise CallbackRejected("paykassma postback has no known direction")
    items = postback.get("additional_data")
    if not isinstance(items, list) or not items:
        raise CallbackRejected("paykassma postback names no transaction")
    raw = plain({k: v for k, v in postback.items() if k != "signature"})
    out: list[CallbackEvent] = []
    for item in items:  # type: ignore[union-attr]
        if not isinstance(item, Mapping):
            raise CallbackRejected("paykassma postback transaction is not an object")
        reader = _deposit if direction is Direction.COLLECTION else _withdrawal
        out.append(reader(item, postback, raw))  # type: ignore[arg-type]
    return out


def _deposit(item: Mapping[str, Any], postback: Mapping[str, Any],
             raw: Mapping[str, Any]) -> CallbackEvent:
    ours = _text(item.get("plugin_custom_order_id"))
    if not ours:
        raise CallbackRejected("paykassma deposit postback has no plugin_custom_order_id")
    receipt = _text(item.get("transaction_id"))
    fulfilment = {k: v for k, v in {
        "mpesa_receipt": receipt,
        "stockpiling_id": _text(item.get("stockpiling_id")),
        "activated_at": _text(item.get("activated_datetime")),
    }.items() if v}
    update = ProviderUpdate(
        status=DEPOSIT_POSTBACK_STATUS,
        provider_status="ingoing",
        provider_message=_text(item.get("comment")),
        fulfilment=fulfilment,
        amount=_amount(item, postback),
        raw=raw,
        customer_number=_text(item.get("account_number")),
    )
    key = _text(item.get("stockpiling_id")) or receipt or ours
    return CallbackEvent(update=update, payment_id=ours, event_key=f"ingoing:{key}",
                         direction=Direction.COLLECTION.value, raw=raw)


def _withdrawal(item: Mapping[str, Any], postback: Mapping[str, Any],
                raw: Mapping[str, Any]) -> CallbackEvent:
    ours = _text(item.get("withdrawal_id"))
    if not ours:
        raise CallbackRejected("paykassma withdrawal postback has no withdrawal_id")
    code = item.get("withdrawal_status")
    status = withdrawal_status(code)
    comment = _text(item.get("comment"))
    failed = status is Status.FAILED
    update = ProviderUpdate(
        status=status,
        provider_reference=ours,
        provider_status=_text(code),
        provider_message=comment,
        failure_reason=WITHDRAWAL_REJECTED if failed else "",
        failure_message=(comment or "withdrawal rejected (status 5)") if failed else "",
        fulfilment={"transaction_id": t} if (t := _text(item.get("transaction_id"))) else {},
        amount=_amount(item, postback),
        raw=raw,
        customer_number=_text(item.get("account_number")),
    )
    return CallbackEvent(update=update, payment_id=ours,
                         event_key=f"outgoing:{ours}:{_text(code)}",
                         direction=Direction.PAYOUT.value, raw=raw)
