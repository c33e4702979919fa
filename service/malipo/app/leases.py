"""Port to the reconciler's work queue: unsettled payments due for a poll, leased to one
replica at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from malipo.app.unit_of_work import Schedule
from malipo.domain.payments import Payment
from malipo.domain.refunds import Refund


@dataclass(frozen=True, slots=True)
class Leased:
    """A payment this replica holds until its lease ends."""

    payment: Payment
    attempts: int      # polls claimed so far, this one included
    never_sent: bool   # the first provider call was not recorded (submit_state NEW)
    token: datetime    # the lease's end as the claim wrote it: fences release and undo


@dataclass(frozen=True, slots=True)
class Claim:
    leased: Sequence[Leased]
    # Non-empty: the answer to COMMIT was lost, so whether the claim holds is unknown; the
    # caller undoes it (`unclaim`) and the rows are due again at once.
    uncertain: str = ""


@dataclass(frozen=True, slots=True)
class Backlog:
    """The reconciler's queue at a glance, for the metrics."""

    due: int                   # unsettled payments whose poll is due now
    later: int                 # scheduled for later
    oldest_due_s: float        # how long the most overdue one has waited
    oldest_unsettled_s: float  # age of the oldest payment not yet final


class PollLeases(Protocol):
    # What a lost, restarting or flapping database raises: retried, never a reason to stop.
    faults: tuple[type[BaseException], ...]

    async def any_due(self, accounts: Sequence[str]) -> bool:
        """Whether anything of these "provider/account" keys is due and unleased."""
        ...

    async def claim(self, accounts: Sequence[str], batch: int, lease_s: float) -> Claim:
        """Lease up to `batch` due payments, most overdue first, skipping rows others hold."""
        ...

    async def unclaim(self, payment_ids: Sequence[str], token: datetime) -> None:
        """Undo exactly what a claim with this token did, where it did it."""
        ...

    async def release(self, payment_id: str, schedule: Schedule, token: datetime) -> None:
        """Give the payment back with its next poll, unless another lease holds it now."""
        ...

    async def backlog(self) -> Backlog: ...


@dataclass(frozen=True, slots=True)
class LeasedRefund:
    """A refund this replica holds until its lease ends."""

    refund: Refund
    attempts: int      # polls claimed so far, this one included
    token: datetime    # the lease's end as the claim wrote it: fences the release


class RefundLeases(Protocol):
    """Unsettled refunds due for a poll, leased to one replica at a time (PollLeases' shape)."""

    faults: tuple[type[BaseException], ...]

    async def any_due(self, accounts: Sequence[str]) -> bool: ...

    async def claim(self, accounts: Sequence[str], batch: int,
                    lease_s: float) -> Sequence[LeasedRefund]:
        """Lease up to `batch` due refunds of payments of these "provider/account" keys."""
        ...

    async def release(self, refund_id: str, schedule: Schedule, token: datetime) -> None:
        """Give the refund back with its next poll, unless another lease holds it now."""
        ...
