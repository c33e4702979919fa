"""Retention of the provider exchange log and the callback journal.

Both hold masked but still personal data (amounts, masked numbers, names in bodies), so they
are kept only as long as support needs them (`exchange_retention_days`, default 30) and then
deleted by a periodic job, in small batches so a large backlog never holds long locks.
The event log has its own purge (streaming/), with its own cursor rules.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from malipo.store.failures import DATABASE_ERRORS

log = logging.getLogger("malipo.retention")
BATCH = 5000


@dataclass(frozen=True, slots=True)
class Purged:
    exchanges: int
    callback_events: int
    callback_deliveries: int


def _count(tag: str) -> int:
    return int(tag.rsplit(" ", 1)[-1])


async def purge_exchange_log(pool: asyncpg.Pool, before: datetime) -> Purged:
    """Delete exchanges and callback journal rows recorded before `before`."""
    totals = [0, 0, 0]
    statements = (
        "DELETE FROM provider_exchanges WHERE id IN (SELECT id FROM provider_exchanges "
        "WHERE at < $1 LIMIT $2)",
        # An event row goes with the delivery that carried it (it references it).
        "DELETE FROM callback_events WHERE (provider, account, event_key) IN ("
        "SELECT e.provider, e.account, e.event_key FROM callback_events e "
        "JOIN callback_journal j ON j.id = e.journal_id WHERE j.received_at < $1 LIMIT $2)",
        "DELETE FROM callback_journal WHERE id IN (SELECT j.id FROM callback_journal j "
        "WHERE j.received_at < $1 AND NOT EXISTS (SELECT 1 FROM callback_events e "
        "WHERE e.journal_id = j.id) LIMIT $2)",
    )
    for index, sql in enumerate(statements):
        while True:
            deleted = _count(await pool.execute(sql, before, BATCH))
            totals[index] += deleted
            if deleted < BATCH:
                break
    return Purged(*totals)


class ExchangeRetention:
    """The periodic job bootstrap starts: purge, sleep, repeat; errors are logged, not fatal."""

    def __init__(self, pool: asyncpg.Pool, *, keep: timedelta, interval_s: float) -> None:
        self._pool, self._keep, self._interval_s = pool, keep, interval_s

    async def run_once(self) -> Purged:
        purged = await purge_exchange_log(self._pool, datetime.now(UTC) - self._keep)
        if purged.exchanges or purged.callback_deliveries:
            log.info("retention: purged %d exchanges, %d callback events, %d deliveries",
                     purged.exchanges, purged.callback_events, purged.callback_deliveries)
        return purged

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except DATABASE_ERRORS as exc:
                log.warning("retention: purge failed, retrying later: %s", type(exc).__name__)
            await asyncio.sleep(self._interval_s)
