"""The reconciler's claims of unsettled refunds: FOR UPDATE SKIP LOCKED with a lease, so
replicas share the work and never poll one refund twice at once (store/leases.py's shape).

A claim here is one statement, atomic by itself. Unlike a payments claim it is not undone
when its answer is lost: its refunds then wait for the lease to end (a minute), which is
cheap for refunds, few and slow to settle anyway."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from malipo.app.leases import LeasedRefund
from malipo.app.unit_of_work import Schedule
from malipo.store.failures import DATABASE_ERRORS
from malipo.store.refunds import REFUND_FIELDS, refund_from_row

_DUE = """
refunds r JOIN payments p ON p.id = r.payment_id
WHERE r.next_poll_at <= now() AND (r.claimed_until IS NULL OR r.claimed_until < now())
  AND p.provider || '/' || p.account = ANY($1::text[])
"""

_ANY_DUE = f"SELECT EXISTS (SELECT 1 FROM {_DUE})"

_CLAIM = f"""
UPDATE refunds SET claimed_until = now() + make_interval(secs => $3),
                   poll_attempts = poll_attempts + 1
WHERE id IN (SELECT r.id FROM {_DUE} ORDER BY r.next_poll_at LIMIT $2 FOR UPDATE OF r SKIP LOCKED)
RETURNING {REFUND_FIELDS}, poll_attempts, claimed_until
"""

# Fenced by the claim's token (the lease end it wrote), as store/leases.py explains: a late
# release never frees another replica's lease.
_RELEASE = """
UPDATE refunds SET next_poll_at = $2, claimed_until = NULL,
                   poll_attempts = CASE WHEN $3 THEN 0 ELSE poll_attempts END
WHERE id = $1 AND (claimed_until IS NULL OR claimed_until = $4)
"""


class PostgresRefundLeases:
    faults = DATABASE_ERRORS

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def any_due(self, accounts: Sequence[str]) -> bool:
        return bool(await self._pool.fetchval(_ANY_DUE, list(accounts)))

    async def claim(self, accounts: Sequence[str], batch: int,
                    lease_s: float) -> Sequence[LeasedRefund]:
        rows = await self._pool.fetch(_CLAIM, list(accounts), batch, lease_s)
        return [LeasedRefund(refund_from_row(r), r["poll_attempts"], r["claimed_until"])
                for r in rows]

    async def release(self, refund_id: str, schedule: Schedule, token: datetime) -> None:
        await self._pool.execute(_RELEASE, refund_id, schedule.next_poll_at,
                                 schedule.reset_attempts, token)
