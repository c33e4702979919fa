"""The simulator's callback document: what it sends, and how we read it."""

from __future__ import annotations

import json

from malipo.app.connector import CallbackEvent
from malipo.domain.errors import CallbackRejected
from malipo.domain.money import Money
from malipo.domain.payments import Payment, ProviderUpdate
from malipo.domain.status import Status


def callback_body(payment: Payment, update: ProviderUpdate, *, amount_minor: int | None = None,
                  event_id: str | None = None) -> bytes:
    status = update.status or Status.PROCESSING
    return json.dumps({
        "event_id": event_id or f"{payment.id}:{status.value}",
        "payment_id": payment.id,
        "reference": update.provider_reference,
        "status": status.value,
        "provider_status": update.provider_status,
        "failure_reason": update.failure_reason,
        "failure_message": update.failure_message,
        "amount_minor": payment.amount.minor if amount_minor is None else amount_minor,
        "currency": payment.amount.currency.code,
    }, separators=(",", ":")).encode()


def read_callback(body: bytes) -> list[CallbackEvent]:
    try:
        data = json.loads(body)
        update = ProviderUpdate(
            status=Status(data["status"]),
            provider_reference=str(data.get("reference", "")),
            provider_status=str(data.get("provider_status", data["status"].lower())),
            failure_reason=str(data.get("failure_reason", "")),
            failure_message=str(data.get("failure_message", "")),
            amount=Money.of(int(data["amount_minor"]), str(data["currency"])),
            raw=data,
        )
        return [CallbackEvent(update=update, payment_id=str(data["payment_id"]),
                              event_key=str(data["event_id"]), raw=data)]
    except (ValueError, KeyError, TypeError) as exc:
        raise CallbackRejected(f"not a simulator callback: {type(exc).__name__}") from None
