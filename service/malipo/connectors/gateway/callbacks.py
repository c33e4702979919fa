"""Inbound gateway callbacks: verify the signature, then read one event from the body.

The document's callback carries operation_type, status, transaction_id, transaction_ref,
result and the amount, but no currency: the amount is read in the currency of the catalogue
channel named by provider_id (a `currency` field wins when present), numbers and strings alike.
Callbacks whose merchant_id is not ours are rejected even when correctly signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from malipo.app.catalogue import ProviderCatalogue
from malipo.app.connector import CallbackEvent
from malipo.connectors.exact_json import loads, plain
from malipo.connectors.gateway.mapping import (
    FAILURE_CANCELLED,
    FAILURE_FAILED,
    direction_of,
    messages,
    parse_amount,
    status_of,
    text,
)
from malipo.connectors.gateway.signing import verify
from malipo.domain.errors import CallbackRejected
from malipo.domain.money import InexactAmount, Money, UnknownCurrency
from malipo.domain.payments import ProviderUpdate
from malipo.domain.status import Status


def read_body(raw: bytes) -> dict[str, Any]:
    """The callback's fields in the order received, decimals exact (the order is signed)."""
    try:
        body = loads(raw)
    except ValueError:
        raise CallbackRejected("gateway callback is not a JSON object") from None
    if not isinstance(body, dict):
        raise CallbackRejected("gateway callback is not a JSON object")
    return body  # type: ignore[return-value]


def verify_callback(raw: bytes, secrets: tuple[str, ...], merchant_id: str) -> None:
    """Signed with the current or the previous key, and for our merchant."""
    body = read_body(raw)
    if not verify(body, secrets):
        raise CallbackRejected("gateway callback signature does not match")
    if str(body.get("merchant_id", "")) != merchant_id:
        raise CallbackRejected("gateway callback is for another merchant")


def parse_callback(raw: bytes, catalogue: ProviderCatalogue) -> list[CallbackEvent]:
    body = read_body(raw)
    channel = catalogue.channel(str(body.get("provider_id", "")))
    return [read_callback(body, channel.currency if channel else "")]


def read_callback(body: Mapping[str, Any], currency: str) -> CallbackEvent:
    """One callback -> one event; `currency` is used only when the body names none."""
    order_id = text(body.get("order_id"))
    if not order_id or "status" not in body:
        raise CallbackRejected("gateway callback without order_id or status")
    code, result_message, provider_message = messages(body)
    status = status_of(body.get("status"), "callback status")
    amount: Money | None = None
    cur = text(body.get("currency")) or currency
    if body.get("amount") is not None and cur:
        try:
            amount = parse_amount(body.get("amount"), cur)
        except (InexactAmount, UnknownCurrency) as exc:
            raise CallbackRejected(f"gateway callback amount is not exact: {exc}") from None
    reason = {Status.FAILED: FAILURE_FAILED, Status.CANCELLED: FAILURE_CANCELLED}.get(status, "")
    direction = direction_of(body.get("operation_type"))
    ref = text(body.get("transaction_ref"))
    update = ProviderUpdate(
        status=status,
        provider_reference=text(body.get("transaction_id")),
        provider_status=text(body.get("status")),
        provider_message=provider_message or result_message,
        failure_reason=reason,
        failure_message=(provider_message or result_message) if reason else "",
        fulfilment={"transaction_ref": ref} if ref else {},
        amount=amount,
        raw=plain(body),
    )
    return CallbackEvent(
        update=update,
        payment_id=order_id,
        event_key=f"{order_id}:{text(body.get('status'))}:{code}:{update.provider_reference}",
        direction=direction.value if direction else "",
        raw=plain(body),
    )
