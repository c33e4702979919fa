"""The status lifecycle shared by payments and payouts, and the table of allowed moves."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Status(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    ACTION_REQUIRED = "ACTION_REQUIRED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REVERSED = "REVERSED"
    UNKNOWN = "UNKNOWN"


class Direction(StrEnum):
    COLLECTION = "COLLECTION"
    PAYOUT = "PAYOUT"


class Method(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    MOBILE_MONEY = "MOBILE_MONEY"
    BANK_TRANSFER = "BANK_TRANSFER"
    BANK_CARD = "BANK_CARD"
    DEBIT_ORDER = "DEBIT_ORDER"
    BILL_PAYMENT = "BILL_PAYMENT"
    AIRTIME = "AIRTIME"
    HOSTED = "HOSTED"


_S = Status
# Moves a payment may make. Anything absent is refused, so a late PROCESSING can never
# overwrite SUCCEEDED and two racing callbacks cannot both win. UNKNOWN may only be entered
# from states where we were talking to the provider about an outcome we cannot yet see.
ALLOWED: Mapping[Status, frozenset[Status]] = {
    _S.PENDING: frozenset({_S.PROCESSING, _S.ACTION_REQUIRED, _S.SUCCEEDED, _S.FAILED,
                           _S.CANCELLED, _S.UNKNOWN}),
    _S.UNKNOWN: frozenset({_S.PROCESSING, _S.ACTION_REQUIRED, _S.SUCCEEDED, _S.FAILED,
                           _S.CANCELLED}),
    _S.PROCESSING: frozenset({_S.ACTION_REQUIRED, _S.SUCCEEDED, _S.FAILED, _S.CANCELLED}),
    _S.ACTION_REQUIRED: frozenset({_S.PROCESSING, _S.SUCCEEDED, _S.FAILED, _S.CANCELLED,
                                   _S.UNKNOWN}),
    _S.SUCCEEDED: frozenset({_S.REVERSED}),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REVERSED: frozenset(),
}

# Statuses the reconciler keeps asking the provider about.
UNSETTLED: frozenset[Status] = frozenset({_S.PROCESSING, _S.ACTION_REQUIRED, _S.UNKNOWN})
FINAL: frozenset[Status] = frozenset({_S.FAILED, _S.CANCELLED, _S.REVERSED})


def can_move(old: Status, new: Status) -> bool:
    return new in ALLOWED[old]


def predecessors(new: Status) -> frozenset[Status]:
    """Statuses from which `new` may be entered: the SQL guard of a conditional UPDATE."""
    return frozenset(old for old, targets in ALLOWED.items() if new in targets)
