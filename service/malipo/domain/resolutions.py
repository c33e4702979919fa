"""An operator's decision about a payment, or one of its refunds, flagged for review or left
UNKNOWN."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from malipo.domain.errors import FailedPrecondition, FieldViolation, InvalidRequest
from malipo.domain.payments import Change, ChangeKind, Payment
from malipo.domain.refunds import (
    REFUND_UNSETTLED,
    Refund,
    can_move_refund,
    payment_unflagged,
)
from malipo.domain.status import Status, can_move

# What an operator may settle a payment as: the outcomes a provider's records can prove.
RESOLUTIONS: frozenset[Status] = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
# A refund's: the money went back or it did not (a refund is never CANCELLED).
REFUND_RESOLUTIONS: frozenset[Status] = frozenset({Status.SUCCEEDED, Status.FAILED})
RESOLVED = "OPERATOR_RESOLVED"  # the failure_reason and the event's reason


@dataclass(frozen=True, slots=True)
class Operator:
    """Who resolves: the name from MALIPO_OPERATOR_KEYS and a non-secret id of the key."""

    name: str
    key_id: str


@dataclass(frozen=True, slots=True)
class Resolution:
    id: str
    payment_id: str
    tenant: str
    operator: Operator
    from_status: Status
    to_status: Status
    review_reason: str  # the code the payment was flagged with ("" if only UNKNOWN)
    reason: str
    evidence: str  # masked before it is stored or shown
    idempotency_key: str
    resolved_at: datetime
    # Set for a refund's resolution: the statuses and review_reason above are the refund's.
    refund_id: str = ""

    def record(self) -> dict[str, object]:
        """What the resolution's status event carries as its provider_payload."""
        record: dict[str, object] = {
            "resolution_id": self.id, "operator": self.operator.name,
            "key_id": self.operator.key_id, "from_status": self.from_status.value,
            "to_status": self.to_status.value, "review_reason": self.review_reason,
            "reason": self.reason, "evidence": self.evidence,
        }
        if self.refund_id:
            record["refund_id"] = self.refund_id
        return {"resolution": record}


def check_target(target: Status) -> None:
    if target not in RESOLUTIONS:
        raise InvalidRequest(FieldViolation("resolution", "one of SUCCEEDED, FAILED, CANCELLED"))


def resolve(payment: Payment, resolution: Resolution) -> Change:
    """The change a resolution makes: only along the transition table, or keeping the status
    of a flagged payment (the operator confirms it); the flag is cleared either way."""
    target = resolution.to_status
    check_target(target)
    if not payment.needs_review and payment.status is not Status.UNKNOWN:
        raise FailedPrecondition(f"payment {payment.id} is {payment.status} and not flagged for "
                                 "review: nothing to resolve", reason="NOT_UNDER_REVIEW")
    if target is not payment.status and not can_move(payment.status, target):
        raise FailedPrecondition(f"a {payment.status} payment cannot become {target}",
                                 reason="TRANSITION_NOT_ALLOWED")
    after = replace(payment, status=target, needs_review=False, review_reason="",
                    updated_at=resolution.resolved_at)
    if target is not payment.status:
        failed = target is not Status.SUCCEEDED
        after = replace(after, next_action=None,
                        failure_reason=RESOLVED if failed else "",
                        failure_message=resolution.reason if failed else "")
    return Change(ChangeKind.TRANSITION, payment, after, RESOLVED, resolution.record())


def check_refund_target(target: Status) -> None:
    if target not in REFUND_RESOLUTIONS:
        raise InvalidRequest(FieldViolation("resolution", "one of SUCCEEDED, FAILED"))


def resolved_refund(refund: Refund, resolution: Resolution) -> Refund:
    """The refund a resolution makes, flag cleared: only of an unsettled refund flagged for
    review or UNKNOWN (as `resolve` asks of a payment). FAILED releases its amount under the
    cap, so it is an operator's word on the provider's records, never the reconciler's guess."""
    target = resolution.to_status
    check_refund_target(target)
    if not refund.needs_review and refund.status is not Status.UNKNOWN:
        raise FailedPrecondition(f"refund {refund.id} is {refund.status} and not flagged for "
                                 "review: nothing to resolve", reason="NOT_UNDER_REVIEW")
    if refund.status not in REFUND_UNSETTLED or not can_move_refund(refund.status, target):
        raise FailedPrecondition(f"refund {refund.id} is {refund.status}, settled: it cannot "
                                 f"become {target}", reason="TRANSITION_NOT_ALLOWED")
    failed = target is Status.FAILED
    return replace(refund, status=target, needs_review=False, review_reason="",
                   updated_at=resolution.resolved_at,
                   failure_reason=RESOLVED if failed else "",
                   failure_message=resolution.reason if failed else "")


def clear_refund_flag(payment: Payment, resolution: Resolution,
                      refunds: Iterable[Refund]) -> Change | None:
    """The payment's REFUND_UNSETTLED flag cleared by a refund's resolution (see
    `payment_unflagged`), the event carrying the resolution's record as `resolve`'s does."""
    return payment_unflagged(payment, refunds, resolution.resolved_at, RESOLVED,
                             resolution.record())
