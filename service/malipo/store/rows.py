"""Mapping between payments rows and domain Payments."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import asyncpg

from malipo.domain.money import Money
from malipo.domain.payments import (
    BankAccount,
    Customer,
    NextAction,
    NextActionKind,
    Payment,
    plain,
)
from malipo.domain.status import Direction, Method, Status
from malipo.redaction import mask_mapping

# Every lookup by provider reference repeats the partial index's predicate as a literal:
# a prepared statement's generic plan cannot prove `provider_reference <> ''` from
# `provider_reference = $n`, and without it the lookup scans the whole table
# (tests/integration/test_query_plans.py).
BY_REFERENCE = "provider_reference <> ''"


PAYMENT_COLUMNS = (
    "id, tenant, direction, provider, account, method, channel, country, amount_minor, "
    "currency, customer, provider_fields, description, metadata, idempotency_key, status, "
    "provider_reference, provider_status, provider_message, failure_reason, failure_message, "
    "next_action, fulfilment, needs_review, review_reason, created_at, updated_at"
)
_READ = [c.strip() for c in PAYMENT_COLUMNS.split(",")] + ["version"]


def last_event_sequence(payment: str) -> str:
    """SQL: the sequence of the newest event of `payment` (a row alias) in the log; the purge
    horizon when the log holds none of its events (not relayed yet, or purged), which a
    watch accepts as a cursor and which misses nothing of this payment.

    Read, not stored: the relay used to stamp it on the payment row for every event it
    moved, an extra UPDATE per event whose row locks made writers of the same payments
    wait for the relay's commit (and the relay for theirs). One index probe per payment
    read costs less."""
    return (f"(SELECT coalesce(max(e.sequence), (SELECT s.purged_through FROM "
            f"event_log_state s WHERE s.id = 1)) FROM events e WHERE e.payment_id = "
            f"{payment}.id)")


def payment_fields(alias: str) -> str:
    """What a read of payment rows (under `alias`) selects for payment_from_row. Every read
    carries the cursor: the payment a change (refund, cancel, a poll) answers with comes
    from the read it was decided on."""
    return (", ".join(f"{alias}.{c}" for c in _READ)
            + f", {last_event_sequence(alias)} AS last_event_sequence")


PAYMENT_FIELDS = payment_fields("payments")


def customer_to_json(customer: Customer) -> dict[str, Any]:
    return plain(customer)  # asdict's form, cheaper


_NO_BANK_ACCOUNT = BankAccount()  # frozen: one shared for the customers without one


def customer_from_json(data: Mapping[str, Any]) -> Customer:
    bank: Mapping[str, str] = data.get("bank_account") or {}
    return Customer(
        phone_number=data.get("phone_number", ""), name=data.get("name", ""),
        email=data.get("email", ""), reference=data.get("reference", ""),
        bank_account=BankAccount(**bank) if bank else _NO_BANK_ACCOUNT,
        document_type=data.get("document_type", ""),
        document_number=data.get("document_number", ""),
    )


def next_action_to_json(action: NextAction | None) -> dict[str, Any] | None:
    if action is None:
        return None
    return {"kind": action.kind.value, "details": dict(action.details)}


def next_action_from_json(data: Mapping[str, Any] | None) -> NextAction | None:
    if not data:
        return None
    return NextAction(NextActionKind(data["kind"]), dict(data.get("details") or {}))


# Enum members by value: a dict lookup, where calling the Enum costs a microsecond each.
_DIRECTIONS = {d.value: d for d in Direction}
_METHODS = {m.value: m for m in Method}
_STATUSES = {s.value: s for s in Status}


def payment_from_row(row: asyncpg.Record | Mapping[str, Any]) -> Payment:
    return Payment(
        id=row["id"],
        tenant=row["tenant"],
        direction=_DIRECTIONS[row["direction"]],
        provider=row["provider"],
        account=row["account"],
        method=_METHODS[row["method"]],
        channel=row["channel"],
        country=row["country"],
        amount=Money.of(row["amount_minor"], row["currency"]),
        customer=customer_from_json(row["customer"]),
        provider_fields=row["provider_fields"],
        description=row["description"],
        metadata=row["metadata"],
        idempotency_key=row["idempotency_key"],
        status=_STATUSES[row["status"]],
        provider_reference=row["provider_reference"],
        provider_status=row["provider_status"],
        provider_message=row["provider_message"],
        failure_reason=row["failure_reason"],
        failure_message=row["failure_message"],
        next_action=next_action_from_json(row["next_action"]),
        fulfilment=row["fulfilment"],
        needs_review=row["needs_review"],
        review_reason=row["review_reason"],
        last_event_sequence=row["last_event_sequence"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


# Beyond this much JSON an event keeps a note instead of the provider's payload: events are
# read by every subscriber, and the callback journal keeps the whole body anyway.
PROVIDER_PAYLOAD_LIMIT = 16 * 1024
_NOTE_KEYS = 50
_EXACT_INT = 2**53  # a protobuf Struct number is a double


def _text(value: str) -> str:
    # jsonb stores neither U+0000 nor lone surrogates (json.loads accepts both).
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _json_safe(value: Any) -> Any:
    """Plain JSON types; decimals and integers a double cannot hold keep their exact text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # jsonb has no NaN
    if isinstance(value, int):
        return value if -_EXACT_INT <= value <= _EXACT_INT else str(value)
    if isinstance(value, Decimal):
        return format(value, "f")  # positional: 0.00000026, not 2.6E-7
    if isinstance(value, Mapping):
        return {_text(str(k)): _json_safe(v) for k, v in value.items()}  # type: ignore[misc]
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]  # type: ignore[misc]
    return _text(str(value))


def stored_provider_payload(raw: Mapping[str, object]) -> dict[str, Any]:
    """ProviderUpdate.raw as an event keeps it: masked by the shared redaction rules (secrets
    whole, phone and account numbers to their last 3 digits) and at most
    PROVIDER_PAYLOAD_LIMIT bytes of JSON; a larger one becomes a note saying so, so an
    oversized callback never fails the update it carries."""
    if not raw:
        return {}
    masked = mask_mapping(_json_safe(raw))
    size = len(json.dumps(masked, ensure_ascii=False, separators=(",", ":")).encode())
    if size <= PROVIDER_PAYLOAD_LIMIT:
        return masked
    return {"truncated": True, "json_bytes": size,
            "keys": [key[:64] for key in list(masked)[:_NOTE_KEYS]]}


def event_payload(before: Payment | None, after: Payment, *, reason: str, actor: str,
                  review: bool = False,
                  provider_payload: Mapping[str, object] | None = None) -> dict[str, Any]:
    """The outbox row of one change; the relay turns it into an event with a sequence."""
    return {
        "event_id": str(uuid.uuid4()),
        "tenant": after.tenant,
        "payment_id": after.id,
        "direction": after.direction.value,
        "provider": after.provider,
        "account": after.account,
        "old_status": before.status.value if before is not None else "",
        "new_status": after.status.value,
        "provider_status": after.provider_status,
        "provider_reference": after.provider_reference,
        "amount_minor": after.amount.minor,
        "currency": after.amount.currency.code,
        "reason": reason or after.failure_reason,
        "message": after.review_reason if review else after.failure_message,
        "fulfilment": dict(after.fulfilment),
        "needs_review": review,
        "actor": actor,
        "occurred_at": after.updated_at.isoformat(),
        "provider_payload": stored_provider_payload(provider_payload or {}),
    }
