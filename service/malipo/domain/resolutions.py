"""An operator's decision about a payment flagged for review or left UNKNOWN."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from malipo.domain.errors import FailedPrecondition, FieldViolation, InvalidRequest
from malipo.domain.payments import Change, ChangeKind, Payment
from malipo.domain.status import Status, can_move

# What an operator may settle a payment as: the outcomes a provider's records can prove.
RESOLUTIONS: frozenset[Status] = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
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

    def record(self) -> dict[str, object]:
        """What the resolution's status event carries as its provider_payload."""
        return {"resolution": {
            "resolution_id": self.id, "operator": self.operator.name,
            "key_id": self.operator.key_id, "from_status": self.from_status.value,
            "to_status": self.to_status.value, "review_reason": self.review_reason,
            "reason": self.reason, "evidence": self.evidence,
        }}


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
