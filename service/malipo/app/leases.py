"""Ports to the reconciler's work queues: unsettled payments and refunds due for a poll,
leased to one replica at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

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


T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Claim(Generic[T_co]):
    leased: Sequence[T_co]
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


class Leases(Protocol[T_co]):
    """Rows (payments, refunds) due for a poll, leased to one replica at a time."""

    # What a lost, restarting or flapping database raises: retried, never a reason to stop.
    faults: tuple[type[BaseException], ...]

    async def any_due(self, accounts: Sequence[str]) -> bool:
        """Whether anything of these "provider/account" keys is due and unleased."""
        ...

    async def claim(self, accounts: Sequence[str], batch: int, lease_s: float) -> Claim[T_co]:
        """Lease up to `batch` due rows of payments of these "provider/account" keys, most
        overdue first, skipping rows others hold."""
        ...

    async def unclaim(self, ids: Sequence[str], token: datetime) -> None:
        """Undo exactly what a claim with this token did, where it did it."""
        ...

    async def release(self, row_id: str, schedule: Schedule, token: datetime) -> None:
        """Give the row back with its next poll, unless another lease holds it now."""
        ...


class PollLeases(Leases[Leased], Protocol):
    async def backlog(self) -> Backlog: ...


@dataclass(frozen=True, slots=True)
class LeasedRefund:
    """A refund this replica holds until its lease ends, with its payment (not locked: read
    by the claim, so the poll needs no query of its own)."""

    refund: Refund
    payment: Payment
    attempts: int      # polls claimed so far, this one included
    token: datetime    # the lease's end as the claim wrote it: fences release and undo


class RefundLeases(Leases[LeasedRefund], Protocol):
    """Unsettled refunds, each claimed with its payment."""
