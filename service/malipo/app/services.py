"""The dependencies every use case needs, built once by bootstrap (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

from malipo.app.directory import ConnectorDirectory
from malipo.app.inflight import RecentKeys, RecentPayments, Submissions
from malipo.app.journal import CallbackJournal
from malipo.app.unit_of_work import UnitOfWork, UnitOfWorkFactory


def utc_now() -> datetime:
    return datetime.now(UTC)


class OutboxSignal(Protocol):
    def nudge(self) -> None:
        """Committed outbox rows wait to be moved into the event log (a wake-up only: the
        relay polls as well)."""
        ...


@dataclass(frozen=True)
class Services:
    units: UnitOfWorkFactory
    connectors: ConnectorDirectory
    journal: CallbackJournal
    outbox: OutboxSignal | None = None
    clock: Callable[[], datetime] = utc_now
    submissions: Submissions = field(default_factory=Submissions)
    recent_keys: RecentKeys = field(default_factory=RecentKeys)
    recent_payments: RecentPayments = field(default_factory=RecentPayments)

    def uow(self) -> _Nudging:
        """A unit of work; once it committed outbox rows, the outbox is nudged."""
        return _Nudging(self.units(), self.outbox)


class _Nudging:
    """The unit of work's context, then the outbox's wake-up after a commit that wrote
    events (a class, not a generator: this wraps every unit of work on the hot paths)."""

    __slots__ = ("_outbox", "_unit")

    def __init__(self, unit: UnitOfWork, outbox: OutboxSignal | None) -> None:
        self._unit = unit
        self._outbox = outbox

    async def __aenter__(self) -> UnitOfWork:
        return await self._unit.__aenter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            await self._unit.__aexit__(exc_type, exc, tb)
        finally:
            if self._unit.committed_events and self._outbox is not None:
                self._outbox.nudge()
