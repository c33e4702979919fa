"""The periodic purge of the event log (default: keep 30 days)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import asyncpg

from malipo.store.events import purge_events
from malipo.store.failures import DATABASE_ERRORS

log = logging.getLogger(__name__)


class EventRetention:
    """Purge, sleep, repeat; a failed round is logged and retried next interval. Safe to run
    in every process: purges serialize on the log state row and only ever move forward."""

    def __init__(self, pool: asyncpg.Pool, *, keep: timedelta = timedelta(days=30),
                 interval_s: float = 3600.0) -> None:
        self._pool = pool
        self._keep = keep
        self._interval_s = interval_s

    async def run(self) -> None:
        while True:
            try:
                purged = await purge_events(self._pool, self._keep)
                if purged:
                    log.info("event retention: purged %d events older than %s",
                             purged, self._keep)
            except DATABASE_ERRORS as exc:
                log.warning("event retention failed: %r", exc)
            await asyncio.sleep(self._interval_s)
