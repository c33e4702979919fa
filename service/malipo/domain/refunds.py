"""A refund of a collection: its own resource with its own small lifecycle."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from malipo.domain.money import Money
from malipo.domain.payments import Change, ChangeKind, Payment
from malipo.domain.review import ReviewReason, split_review
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

# The reason of the payment's event that clears its REFUND_UNSETTLED flag when the provider's
# final word on the refund came late (an operator's resolution says OPERATOR_RESOLVED).
REFUND_SETTLED = "REFUND_SETTLED"

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


def awaits_review(refund: Refund) -> bool:
    """Flagged and still unsettled: an operator's to settle (ResolveRefund). A flag left on a
    refund a provider answer settled since asks nothing of anyone."""
    return refund.needs_review and refund.status in REFUND_UNSETTLED


def payment_unflagged(payment: Payment, refunds: Iterable[Refund], now: datetime, reason: str,
                      provider_payload: Mapping[str, object]) -> Change | None:
    """The payment's own REFUND_UNSETTLED flag (set beside its refund's, app/refund_polls.py)
    cleared once none of `refunds` (the payment's, as they now stand) still awaits review,
    whoever settled them: an operator (ResolveRefund) or the provider's late answer. None
    when it stays: another refund awaits review, or the flag says something else, which is
    not a refund's settling to clear."""
    code, _ = split_review(payment.review_reason)
    if not payment.needs_review or code != ReviewReason.REFUND_UNSETTLED or any(
            awaits_review(r) for r in refunds):
        return None
    after = replace(payment, needs_review=False, review_reason="", updated_at=now)
    # A TRANSITION with the status kept: a REVIEW event would say "flagged".
    return Change(ChangeKind.TRANSITION, payment, after, reason, provider_payload)


def is_whole(refund: Refund, payment: Payment) -> bool:
    """A refund of the payment's whole amount: the provider answers it with the payment's
    own status (REVERSED once done), not the refund's."""
    return refund.amount == payment.amount


def settled_by_reversal(refund: Refund, payment: Payment) -> bool:
    """The payment REVERSED is the provider's word that its whole amount went back: a whole
    refund still waiting for an answer is SUCCEEDED by it. A part says nothing: the payment
    may have been reversed otherwise (a chargeback)."""
    return (is_whole(refund, payment) and payment.status is Status.REVERSED
            and refund.status in REFUND_UNSETTLED)


@dataclass(frozen=True, slots=True)
class RefundTotals:
    """A payment's refunds summed: `refunded` succeeded; `held` is every refund not FAILED
    (pending or unknown ones included), which is what limits further refunds."""

    refunded: int
    held: int


def refund_totals(refunds: Iterable[Refund]) -> RefundTotals:
    """The totals of one payment's refunds, as the store sums them (RefundRepository.totals)."""
    refunded = held = 0
    for refund in refunds:
        if refund.status is Status.SUCCEEDED:
            refunded += refund.amount.minor
        if refund.status is not Status.FAILED:
            held += refund.amount.minor
    return RefundTotals(refunded=refunded, held=held)
