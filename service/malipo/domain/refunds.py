"""A refund of a collection: its own resource with its own small lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from malipo.domain.money import Money
from malipo.domain.status import Status

_S = Status
# A refund's moves; it never leaves SUCCEEDED or FAILED. UNKNOWN (sent, answer lost) still
# counts against what may be refunded, so money is never refunded twice on a guess.
REFUND_ALLOWED: Mapping[Status, frozenset[Status]] = {
    _S.PENDING: frozenset({_S.PROCESSING, _S.SUCCEEDED, _S.FAILED, _S.UNKNOWN}),
    _S.PROCESSING: frozenset({_S.SUCCEEDED, _S.FAILED}),
    _S.UNKNOWN: frozenset({_S.PROCESSING, _S.SUCCEEDED, _S.FAILED}),
    _S.SUCCEEDED: frozenset(),
    _S.FAILED: frozenset(),
}

# Not final: the reconciler polls these (app/refund_polls.py).
REFUND_UNSETTLED = frozenset({_S.PENDING, _S.PROCESSING, _S.UNKNOWN})


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    payment_id: str
    tenant: str
    amount: Money
    idempotency_key: str
    created_at: datetime
    updated_at: datetime
    status: Status = Status.PENDING
    reason: str = ""
    provider_reference: str = ""
    provider_status: str = ""
    failure_reason: str = ""
    failure_message: str = ""
    # No provider answer settled it before the expiry rule: a person decides (never FAILED
    # on a guess, which would release its amount for a second refund).
    needs_review: bool = False
    review_reason: str = ""


def refund_status(payment_status: Status | None) -> Status:
    """A refund's status from what a provider's refund answer says. A whole refund answers
    with the payment's new status (REVERSED once done); a partial one with the refund's."""
    if payment_status in (Status.REVERSED, Status.SUCCEEDED):
        return Status.SUCCEEDED
    if payment_status is Status.FAILED or payment_status is Status.UNKNOWN:
        return payment_status
    return Status.PROCESSING  # accepted, not confirmed yet (None, PROCESSING)


def can_move_refund(old: Status, new: Status) -> bool:
    return new in REFUND_ALLOWED.get(old, frozenset())
