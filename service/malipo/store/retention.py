"""Retention of the provider exchange log, the callback journal and the idempotency keys.

The exchange log and the callback journal hold masked but still personal data (amounts,
masked numbers, names in bodies), so they are kept only as long as support needs them
(`exchange_retention_days`, default 30). Idempotency keys are kept for their own window
(`idempotency_key_retention_days`, default 30, never under a day), and longer while what
they made is still in flight. One periodic job deletes
both, in small batches so a large backlog never holds long locks.
The event log has its own purge (streaming/), with its own cursor rules.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg

from malipo.domain.status import UNSETTLED, Status
from malipo.store.failures import DATABASE_ERRORS

log = logging.getLogger("malipo.retention")
BATCH = 5000


@dataclass(frozen=True, slots=True)
class Purged:
    exchanges: int
    callback_events: int
    callback_deliveries: int
    idempotency_keys: int = 0


def _count(tag: str) -> int:
    return int(tag.rsplit(" ", 1)[-1])


async def _in_batches(pool: asyncpg.Pool, sql: str, before: datetime, batch: int) -> int:
    """Run a `DELETE ... LIMIT $2` until a round deletes less than a batch; rows deleted."""
    total = 0
    while True:
        deleted = _count(await pool.execute(sql, before, batch))
        total += deleted
        if deleted < batch:
            return total


async def purge_exchange_log(pool: asyncpg.Pool, before: datetime) -> Purged:
    """Delete exchanges and callback journal rows recorded before `before`."""
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
    return Purged(*[await _in_batches(pool, sql, before, BATCH) for sql in statements])


# Not yet submitted or not settled: a retry of its request must still find its key.
_IN_FLIGHT = ", ".join(f"'{s.value}'" for s in sorted({Status.PENDING, *UNSETTLED}))

# Oldest first through idempotency_keys_age, then each row by its primary key; the payment
# or refund a key made (resource_id) is looked up by its own.
_PURGE_KEYS = (
    "DELETE FROM idempotency_keys WHERE (tenant, key) IN (SELECT k.tenant, k.key "
    "FROM idempotency_keys k WHERE k.created_at < $1 "
    f"AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = k.resource_id "
    f"AND p.status IN ({_IN_FLIGHT})) "
    f"AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.id = k.resource_id "
    f"AND r.status IN ({_IN_FLIGHT})) LIMIT $2)")


async def purge_idempotency_keys(pool: asyncpg.Pool, before: datetime, *,
                                 batch: int = BATCH) -> int:
    """Delete the idempotency keys claimed before `before`; how many.

    A purged key is forgotten: a request that reuses it afterwards is a new request, as the
    contract says (ARCHITECTURE section 4, "kept at least 30 days, then purged"). A
    CreatePayment or CreatePayout makes a second payment; a RefundPayment a new refund
    (within what is left to refund); a confirm, cancel or an operator's resolution is decided
    again against the payment as it is then. Keys of every operation, tenants' and
    operators', live in this one table and follow this one rule; the payments, refunds and
    resolutions they made are kept.

    Except while what the key made is in flight: the key of a payment or refund still
    PENDING, PROCESSING, ACTION_REQUIRED or UNKNOWN (the key of a confirm or cancel of such a
    payment too) stays until it settles. A client retrying a create that is still in flight
    must get that payment back, never a second charge, however long the provider takes.
    """
    return await _in_batches(pool, _PURGE_KEYS, before, batch)


class ExchangeRetention:
    """The periodic job bootstrap starts: purge, sleep, repeat; errors are logged, not fatal.
    `keep` is the exchange log's and callback journal's window, `keep_keys` the idempotency
    keys'."""

    def __init__(self, pool: asyncpg.Pool, *, keep: timedelta, keep_keys: timedelta,
                 interval_s: float) -> None:
        self._pool, self._keep, self._keep_keys = pool, keep, keep_keys
        self._interval_s = interval_s

    async def run_once(self) -> Purged:
        now = datetime.now(UTC)
        purged = await purge_exchange_log(self._pool, now - self._keep)
        if purged.exchanges or purged.callback_deliveries:
            log.info("retention: purged %d exchanges, %d callback events, %d deliveries",
                     purged.exchanges, purged.callback_events, purged.callback_deliveries)
        keys = await purge_idempotency_keys(self._pool, now - self._keep_keys)
        if keys:
            log.info("retention: purged %d idempotency keys older than %g days", keys,
                     self._keep_keys / timedelta(days=1))
        return replace(purged, idempotency_keys=keys)

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except DATABASE_ERRORS as exc:
                log.warning("retention: purge failed, retrying later: %s", type(exc).__name__)
            await asyncio.sleep(self._interval_s)
