"""Ports to persistence: what use cases need from storage, not how it is stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self

from malipo.app.connector import Exchange
from malipo.app.journal import JournaledDelivery
from malipo.domain.payments import Change, Payment
from malipo.domain.refunds import Refund, RefundTotals
from malipo.domain.resolutions import Resolution
from malipo.domain.status import Direction, Status


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    tenant: str
    key: str
    operation: str
    fingerprint: str
    resource_id: str


@dataclass(frozen=True, slots=True)
class ListQuery:
    tenant: str
    direction: Direction
    page_size: int
    statuses: frozenset[Status] = frozenset()
    provider: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    needs_review: bool = False  # only the review queue
    # keyset cursor: strictly older than (created_at, id)
    before: tuple[datetime, str] | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """Reconciler bookkeeping written with a change. `next_poll_at` None: stop polling."""

    next_poll_at: datetime | None
    reset_attempts: bool = False


@dataclass(frozen=True, slots=True)
class LockedPayment:
    """A locked payment, with what an update bringing a provider reference must know."""

    payment: Payment
    reference_taken: bool    # another payment of this account holds the reference
    callbacks_waiting: bool  # callbacks naming the reference wait in the journal (deferred)


@dataclass(frozen=True, slots=True)
class Written:
    """A write made without a row lock went through."""

    callbacks_waiting: bool  # deferred callbacks name the reference it brought


@dataclass(frozen=True, slots=True)
class ClaimedBefore:
    """A journaled write that wrote nothing because its callback's event was claimed before
    (a re-sent delivery): deciding again on a fresh read would not change that."""


@dataclass(frozen=True, slots=True)
class Added:
    """A payment inserted. `cursor`: a log sequence before all of its events, for its
    last_event_sequence (watching from it misses none of them)."""

    cursor: int


@dataclass(frozen=True, slots=True)
class KeyTaken:
    """Nothing inserted: the idempotency key was claimed before. `holder` is the key with its
    payment when the same statement could already see them (a replay's usual case: one
    round trip); None when the claim that beat ours committed during the statement."""

    holder: KeyHolder | None


class PaymentRepository(Protocol):
    async def add(self, payment: Payment, *, actor: str, schedule: Schedule,
                  key: IdempotencyRecord | None = None) -> Added | KeyTaken:
        """Insert a new payment and its creation event. With `key`, claim that idempotency
        key atomically with the insert: KeyTaken (nothing inserted) when it is taken."""
        ...

    async def get(self, payment_id: str, *, tenant: str | None = None) -> Payment | None: ...

    async def lock(self, payment_id: str) -> Payment | None:
        """Read and lock the row until commit, so racing writers queue."""
        ...

    async def lock_for_reference(self, payment_id: str, reference: str) -> LockedPayment | None:
        """`lock`, plus the checks for `reference` ("" checks nothing), in one round trip."""
        ...

    async def write(self, change: Change, *, actor: str, schedule: Schedule | None = None,
                    submitted: bool = False) -> bool:
        """Persist a change with a guard on the version and status it was decided from, plus
        its event.
        False when the guard failed (someone else moved it first)."""
        ...

    async def write_if_unchanged(self, change: Change, *, actor: str,
                                 schedule: Schedule | None = None, submitted: bool = False,
                                 new_reference: str = "",
                                 journaled: JournaledDelivery | None = None
                                 ) -> Written | ClaimedBefore | None:
        """`write` for a change decided on a row read without a lock, as a unit of work by
        itself: None (nothing written) when the row changed since that read, or when
        `new_reference` (a first provider reference) is held by another payment.
        With `journaled`, the callback delivery that brought the change is journaled and its
        event claimed in the same commit, or nothing at all is written: None as above, or
        ClaimedBefore when the event was claimed before."""
        ...

    async def is_submitted(self, payment_id: str) -> bool: ...

    async def schedule(self, payment_id: str, schedule: Schedule) -> None: ...

    async def list(self, query: ListQuery) -> Sequence[Payment]: ...

    async def by_provider_reference(self, provider: str, account: str,
                                    reference: str) -> Payment | None: ...

    async def total_today(self, tenant: str, provider: str, channel: str, customer_key: str,
                          direction: Direction, since: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """An idempotency key with the payment it created, read together for a replay."""

    record: IdempotencyRecord
    payment: Payment | None
    submitted: bool  # the first call's provider answer (or later news) is recorded


class IdempotencyKeys(Protocol):
    async def holder(self, tenant: str, key: str) -> KeyHolder | None: ...

    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Store the key, or return the record that already holds it."""
        ...

    async def release(self, tenant: str, key: str) -> None: ...


class ExchangeKind(StrEnum):
    REQUEST = "REQUEST"    # we called the provider
    CALLBACK = "CALLBACK"  # the provider called us
    RESOLUTION = "RESOLUTION"  # an operator settled the payment or a refund of it


@dataclass(frozen=True, slots=True)
class ExchangeRecord:
    """One stored exchange of a payment, as support reads it; bodies are already masked."""

    kind: ExchangeKind
    operation: str
    method: str
    path: str
    request_body: str
    status: int
    response_body: str
    latency_ms: float
    at: datetime
    detail: str = ""
    resolution: Resolution | None = None  # for RESOLUTION


class ExchangeLog(Protocol):
    async def add(self, payment: Payment, exchanges: Sequence[Exchange]) -> None: ...

    async def for_payment(self, payment: Payment) -> Sequence[ExchangeRecord]:
        """Requests and callbacks of one payment, oldest first."""
        ...


class RefundRepository(Protocol):
    async def add(self, refund: Refund, payment: Payment, *, actor: str,
                  first_poll: datetime) -> bool:
        """Insert a refund and its creation event if it fits: the payment's amount less
        `held` must cover it. The caller holds the payment's row lock (PaymentRepository.lock),
        which every refund of that payment takes first, so concurrent refunds queue and the
        sum is read after the one before committed. False: it did not fit, nothing written.
        `first_poll`: when the reconciler looks at it if its provider answer is never
        recorded (a crash between this commit and the provider call)."""
        ...

    async def write(self, before: Refund, after: Refund, payment: Payment, *, actor: str,
                    provider_payload: Mapping[str, object],
                    schedule: Schedule | None = None, reason: str = "") -> bool:
        """Persist a refund's change (its review flag too) guarded by the status it was
        decided from, plus its event (refund_id set; `reason` its reason, "" the refund's
        failure_reason). False when the guard failed. `schedule`: its next poll (None leaves
        the schedule as it is)."""
        ...

    async def flag(self, flagged: Refund) -> bool:
        """Write a refund's review flag (domain.review.flagged) and stop polling it, its
        status untouched (guarded by it). The caller flags the payment beside it, which
        carries the event."""
        ...

    async def get(self, refund_id: str, *, tenant: str) -> Refund | None: ...

    async def for_payment(self, payment_id: str) -> Sequence[Refund]:
        """Oldest first."""
        ...

    async def totals(self, payment_id: str) -> RefundTotals: ...


class ResolutionLog(Protocol):
    async def add(self, resolution: Resolution) -> None: ...

    async def get(self, resolution_id: str) -> Resolution | None: ...

    async def for_payment(self, payment_id: str) -> Sequence[Resolution]:
        """Oldest first."""
        ...


class UnitOfWork(Protocol):
    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def refunds(self) -> RefundRepository: ...

    @property
    def resolutions(self) -> ResolutionLog: ...

    @property
    def keys(self) -> IdempotencyKeys: ...

    @property
    def exchanges(self) -> ExchangeLog: ...

    @property
    def committed_events(self) -> bool:
        """After the block: its commit wrote outbox rows (the relay has news to move)."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        """Commit when the block succeeded, roll back otherwise."""
        ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
