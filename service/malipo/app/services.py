"""The dependencies every use case needs, built once by bootstrap (no globals)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from malipo.app.directory import ConnectorDirectory
from malipo.app.journal import CallbackJournal
from malipo.app.unit_of_work import UnitOfWorkFactory


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    uow: UnitOfWorkFactory
    connectors: ConnectorDirectory
    journal: CallbackJournal
    clock: Callable[[], datetime] = utc_now
    # Create calls in flight in this process, so same-process duplicates wait on a future
    # instead of polling the database.
    inflight: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    # Background tasks the use cases started (shielded provider calls); drained on shutdown.
    tasks: set[asyncio.Task[object]] = field(default_factory=set)
