"""Why a payment is flagged for review: stable codes, the one list the contract documents."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeVar


class ReviewReason(StrEnum):
    """A payment's review_reason is stored as "CODE: detail"; callers get the code and the
    detail apart (Payment.review_reason, Payment.review_message). New codes may be added;
    none may change meaning, since operators and callers route on them."""

    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    REFERENCE_MISMATCH = "REFERENCE_MISMATCH"
    ACCOUNT_MISMATCH = "ACCOUNT_MISMATCH"
    REFERENCE_REUSED = "REFERENCE_REUSED"
    DIRECTION_MISMATCH = "DIRECTION_MISMATCH"
    REVERSED_UNSEEN_SUCCESS = "REVERSED_UNSEEN_SUCCESS"
    EXPIRED = "EXPIRED"
    REFUND_UNSETTLED = "REFUND_UNSETTLED"  # a refund of the payment got no final answer


def review_text(code: ReviewReason, detail: str) -> str:
    """The stored form of a review reason."""
    return f"{code}: {detail}" if detail else str(code)


class Reviewable(Protocol):
    """A payment or a refund: a frozen dataclass a person may be asked to look at."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def needs_review(self) -> bool: ...

    @property
    def review_reason(self) -> str: ...

    @property
    def updated_at(self) -> datetime: ...


R = TypeVar("R", bound=Reviewable)


def flagged(item: R, code: ReviewReason, detail: str, now: datetime) -> R:
    """`item` flagged for review ("CODE: detail"), its status and everything else untouched."""
    return replace(item, needs_review=True, review_reason=review_text(code, detail),
                   updated_at=now)


def split_review(text: str) -> tuple[str, str]:
    """(code, detail) of a stored review reason."""
    code, _, detail = text.partition(":")
    return code.strip(), detail.strip()
