"""The dependencies every use case needs, built once by bootstrap (no globals)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from malipo.app.directory import ConnectorDirectory
from malipo.app.inflight import Submissions
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

    @asynccontextmanager
    async def uow(self) -> AsyncGenerator[UnitOfWork]:
        """A unit of work; once it committed outbox rows, the outbox is nudged."""
        unit = self.units()
        try:
            async with unit:
                yield unit
        finally:
            if unit.committed_events and self.outbox is not None:
                self.outbox.nudge()
