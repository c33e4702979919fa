"""A payment or payout, and how what a provider says changes it."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from malipo.domain.money import Money
from malipo.domain.review import ReviewReason, flagged
from malipo.domain.status import FINAL, Direction, Method, Status, can_move


@dataclass(frozen=True, slots=True)
class BankAccount:
    account_number: str = ""
    bank_code: str = ""
    bic: str = ""
    account_type: str = ""
    holder_name: str = ""



_LEAVES = (str, int, float, type(None))  # with their enums (StrEnum, IntEnum) and bool


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def plain(value: object) -> Any:
    """What `dataclasses.asdict` gives, without deep-copying the leaves (all immutable
    here): it runs on every create (request fingerprint, stored customer). Leaves are tested
    first and field names are cached per class: most values are leaves, and the generic
    tests (is_dataclass, the Mapping ABC) were a sixth of a create's CPU in the app layer."""
    if isinstance(value, _LEAVES):
        return value
    cls = type(value)
    if hasattr(cls, "__dataclass_fields__"):  # an instance: a class's own type has none
        return {name: plain(getattr(value, name)) for name in _field_names(cls)}
    if isinstance(value, Mapping):
        items: Mapping[Any, Any] = value
        return {plain(k): plain(v) for k, v in items.items()}
    if isinstance(value, list | tuple):
        seq: Sequence[Any] = value
        return type(value)(plain(v) for v in seq)  # pyright: ignore[reportCallIssue]
    return value

@dataclass(frozen=True, slots=True)
class Customer:
    phone_number: str = ""
    name: str = ""
    email: str = ""
    reference: str = ""
    bank_account: BankAccount = field(default_factory=BankAccount)
    document_type: str = ""
    document_number: str = ""


class NextActionKind(StrEnum):
    OTP = "OTP"
    REDIRECT = "REDIRECT"
    BANK_TRANSFER = "BANK_TRANSFER"
    CONFIRM = "CONFIRM"
    WIDGET = "WIDGET"


@dataclass(frozen=True, slots=True)
class NextAction:
    """What the customer or caller must do. `details` keys per kind:
    BANK_TRANSFER: account_number, bank_name, account_name, amount_minor, reference;
    CONFIRM: account_name, amount_minor, description, expires_at (ISO 8601);
    WIDGET: any parameters of the provider's widget; OTP: prompt; REDIRECT: url."""

    kind: NextActionKind
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderUpdate:
    """What a provider said about one payment, neutral of any provider's format.

    `status` None means "no opinion" (only raw fields are refreshed). `amount` is what the
    provider claims, checked against ours before anything is applied; so is `customer_number`,
    the payer's or payee's phone number when the provider names one. `raw` is the parsed
    callback or answer in the provider's own words (JSON types): it rides on the event this
    update causes, masked and size-capped by the store."""

    status: Status | None
    provider_reference: str = ""
    provider_status: str = ""
    provider_message: str = ""
    failure_reason: str = ""
    failure_message: str = ""
    next_action: NextAction | None = None
    fulfilment: Mapping[str, str] = field(default_factory=dict)
    amount: Money | None = None
    raw: Mapping[str, object] = field(default_factory=dict)
    customer_number: str = ""


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    tenant: str
    direction: Direction
    provider: str
    account: str
    method: Method
    amount: Money
    idempotency_key: str
    created_at: datetime
    updated_at: datetime
    channel: str = ""
    country: str = ""
    customer: Customer = field(default_factory=Customer)
    provider_fields: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    status: Status = Status.PENDING
    provider_reference: str = ""
    provider_status: str = ""
    provider_message: str = ""
    failure_reason: str = ""
    failure_message: str = ""
    next_action: NextAction | None = None
    fulfilment: Mapping[str, str] = field(default_factory=dict)
    needs_review: bool = False
    review_reason: str = ""
    last_event_sequence: int = 0
    # The stored row's version when it was read: a write must name it (optimistic
    # concurrency) and bumps it. Not part of the contract.
    version: int = 0


class ChangeKind(StrEnum):
    TRANSITION = "TRANSITION"  # the status moved: one event
    REFRESH = "REFRESH"        # raw fields only: no event
    REVIEW = "REVIEW"          # flagged for review, status untouched: one event
    IGNORED = "IGNORED"        # stale or backwards: nothing changes


@dataclass(frozen=True, slots=True)
class Change:
    """What one decision does to a payment. `provider_payload` is the raw update that caused
    it (ProviderUpdate.raw), kept on the event; empty for changes Malipo makes itself."""

    kind: ChangeKind
    before: Payment
    after: Payment
    reason: str = ""
    provider_payload: Mapping[str, object] = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        return self.kind is not ChangeKind.IGNORED and self.after != self.before


def apply_update(payment: Payment, update: ProviderUpdate, now: datetime) -> Change:
    """Decide what an update does to a payment. Pure: the store writes the result with a
    conditional UPDATE guarded by the status it was decided from."""
    if update.amount is not None and update.amount != payment.amount:
        why = f"provider reported {update.amount}, expected {payment.amount}"
        code = ReviewReason.AMOUNT_MISMATCH
        return Change(ChangeKind.REVIEW, payment, flagged(payment, code, why, now), code,
                      update.raw)
    if update.provider_reference and payment.provider_reference and (
        update.provider_reference != payment.provider_reference
    ):
        why = f"provider reference {update.provider_reference} != {payment.provider_reference}"
        code = ReviewReason.REFERENCE_MISMATCH
        return Change(ChangeKind.REVIEW, payment, flagged(payment, code, why, now), code,
                      update.raw)
    ours = payment.customer.phone_number
    if update.customer_number and ours and not same_number(update.customer_number, ours):
        # Never the numbers themselves: review reasons reach callers and logs.
        code = ReviewReason.ACCOUNT_MISMATCH
        why = "the provider names another customer number"
        return Change(ChangeKind.REVIEW, payment, flagged(payment, code, why, now), code,
                      update.raw)

    # What the update says whatever the status does; a transition applies it in the same
    # copy as the move (a copy of a Payment is ~9 us: one per decision, not two).
    news = {
        "provider_reference": update.provider_reference or payment.provider_reference,
        "provider_status": update.provider_status or payment.provider_status,
        "provider_message": update.provider_message or payment.provider_message,
        "fulfilment": {**payment.fulfilment, **update.fulfilment},
    }
    target = update.status
    if target is not None and target != payment.status and can_move(payment.status, target):
        moved = replace(
            payment,
            **news,
            status=target,
            next_action=update.next_action if target is Status.ACTION_REQUIRED else None,
            failure_reason=update.failure_reason if target is not Status.SUCCEEDED else "",
            failure_message=update.failure_message if target is not Status.SUCCEEDED else "",
            updated_at=now,
        )
        return Change(ChangeKind.TRANSITION, payment, moved, update.failure_reason, update.raw)
    refreshed = replace(payment, **news)
    if target is None or target == payment.status:
        if target is Status.ACTION_REQUIRED and update.next_action is not None:
            refreshed = replace(refreshed, next_action=update.next_action)
        kind = ChangeKind.REFRESH if refreshed != payment else ChangeKind.IGNORED
        return Change(kind, payment, replace(refreshed, updated_at=now) if kind is
                      ChangeKind.REFRESH else payment, provider_payload=update.raw)
    if target is Status.REVERSED and payment.status not in _SETTLED:
        return _reversed_unseen(payment, refreshed, update, now)
    return Change(ChangeKind.IGNORED, payment, payment,
                  f"{payment.status} -> {target} is not allowed", update.raw)


def same_number(a: str, b: str) -> bool:
    """Two writings of one phone number (0712..., +254 712..., 254712...): the national digits
    of the shorter end the longer. Seven digits at least, so an empty or junk value never
    matches."""
    da, db = (re.sub(r"\D", "", n).lstrip("0") for n in (a, b))
    short, long = sorted((da, db), key=len)
    return len(short) >= 7 and long.endswith(short)


REVERSED_UNSEEN = ReviewReason.REVERSED_UNSEEN_SUCCESS
_SETTLED = FINAL | {Status.SUCCEEDED}


def _reversed_unseen(payment: Payment, refreshed: Payment, update: ProviderUpdate,
                     now: datetime) -> Change:
    """The provider says the money went back (Kwik "Disputed"/"Reversed", KKiaPay REVERTED)
    for a payment we never saw succeed: its success report was lost. REVERSED is only
    entered from SUCCEEDED, and inventing the missed SUCCEEDED is not ours to do, so the
    status stays and the payment is flagged once for review (later reports change nothing)."""
    if payment.needs_review and payment.review_reason.startswith(REVERSED_UNSEEN):
        return Change(ChangeKind.IGNORED, payment, payment, REVERSED_UNSEEN, update.raw)
    said = update.provider_status or str(update.status)
    why = f"provider reports {said} but no success was seen"
    return Change(ChangeKind.REVIEW, payment, flagged(refreshed, REVERSED_UNSEEN, why, now),
                  REVERSED_UNSEEN, update.raw)
