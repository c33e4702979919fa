"""The reconciler's claims: FOR UPDATE SKIP LOCKED with a lease, so replicas share the work.

A claim commits only after its rows are in hand: lost before COMMIT, nothing was leased (the
server rolls back when the connection dies, or after `_CLAIM_IDLE_MS` idle in the
transaction if it never hears); lost at COMMIT, the caller has the rows and their token and
undoes the claim (reconciler/loop.py). A claim costs three round trips (BEGIN, the claim,
COMMIT), not one, so an idle tick first asks in one whether anything is due.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from malipo.app.leases import Backlog, Claim, Leased
from malipo.app.unit_of_work import Schedule
from malipo.store.failures import DATABASE_ERRORS
from malipo.store.rows import PAYMENT_FIELDS, payment_from_row

_CLAIM_IDLE_MS = 5000    # the claimer sends COMMIT right after the rows: idle means gone

_BEGIN_CLAIM = f"BEGIN; SET LOCAL idle_in_transaction_session_timeout = {_CLAIM_IDLE_MS}"


def _due(accounts: str) -> str:
    """SQL: the payments due for a poll, unleased, of the provider accounts `accounts`."""
    return ("payments WHERE next_poll_at <= now() "
            "AND (claimed_until IS NULL OR claimed_until < now()) "
            f"AND provider || '/' || account = ANY({accounts}::text[])")


# Whether to claim at all: an idle tick costs this one round trip, not the claim's three.
_ANY_DUE = f"SELECT EXISTS (SELECT 1 FROM {_due('$1')})"

_CLAIM = f"""
UPDATE payments SET claimed_until = now() + make_interval(secs => $2),
                    poll_attempts = poll_attempts + 1
WHERE id IN (SELECT id FROM {_due('$3')} ORDER BY next_poll_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING {PAYMENT_FIELDS}, poll_attempts, submit_state, claimed_until
"""

# After a COMMIT whose answer was lost: undo exactly what the claim did, if it did it. The
# token is tested in SET, not WHERE: the claim's transaction may still be open, and a WHERE
# false on the version before it would skip the row without waiting for the claim to end.
_UNCLAIM = """
UPDATE payments SET
    claimed_until = CASE WHEN claimed_until = $2 THEN NULL ELSE claimed_until END,
    poll_attempts = CASE WHEN claimed_until = $2 THEN poll_attempts - 1 ELSE poll_attempts END
WHERE id = ANY($1::text[])
"""

# Fenced by the claim's token, the lease end the claim wrote: no claim can write that value
# again (a later claim of the row needs `claimed_until < now()`, and writes now() + lease),
# so a late release never frees another replica's lease; one that finds the lease already
# released (NULL: our own write with a schedule, a callback asking for a poll now) still
# writes its schedule.
_RELEASE = """
UPDATE payments SET next_poll_at = $2, claimed_until = NULL,
                    poll_attempts = CASE WHEN $3 THEN 0 ELSE poll_attempts END
WHERE id = $1 AND (claimed_until IS NULL OR claimed_until = $4)
"""


_BACKLOG = """
SELECT count(*) FILTER (WHERE next_poll_at <= now()) AS due,
       count(*) FILTER (WHERE next_poll_at > now()) AS later,
       extract(epoch FROM now() - min(next_poll_at) FILTER (WHERE next_poll_at <= now()))
           AS oldest_due,
       extract(epoch FROM now() - min(created_at)) AS oldest
FROM payments WHERE next_poll_at IS NOT NULL
"""


def _leased(row: asyncpg.Record) -> Leased:
    return Leased(payment_from_row(row), row["poll_attempts"], row["submit_state"] == "NEW",
                  row["claimed_until"])


class PostgresPollLeases:
    faults = DATABASE_ERRORS

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def any_due(self, accounts: Sequence[str]) -> bool:
        return bool(await self._pool.fetchval(_ANY_DUE, list(accounts)))

    async def claim(self, accounts: Sequence[str], batch: int, lease_s: float) -> Claim:
        async with self._pool.acquire() as conn:
            try:
                await conn.execute(_BEGIN_CLAIM)
                try:
                    rows = await conn.fetch(_CLAIM, batch, lease_s, list(accounts))
                except Exception:
                    with contextlib.suppress(*DATABASE_ERRORS):  # dead: rolled back anyway
                        await conn.execute("ROLLBACK")
                    raise
                if not rows:
                    await conn.execute("ROLLBACK")
                    return Claim([])
                try:
                    await conn.execute("COMMIT")
                    return Claim([_leased(r) for r in rows])
                except DATABASE_ERRORS as exc:
                    failed = exc
            except asyncio.CancelledError:
                # Stopping mid-transaction: drop the connection (the server rolls back)
                # rather than have the pool roll back for us and log it as an error.
                conn.terminate()
                raise
        return Claim([_leased(r) for r in rows], uncertain=type(failed).__name__)

    async def unclaim(self, payment_ids: Sequence[str], token: datetime) -> None:
        await self._pool.execute(_UNCLAIM, list(payment_ids), token)

    async def release(self, payment_id: str, schedule: Schedule, token: datetime) -> None:
        await self._pool.execute(_RELEASE, payment_id, schedule.next_poll_at,
                                 schedule.reset_attempts, token)

    async def backlog(self) -> Backlog:
        row = await self._pool.fetchrow(_BACKLOG, timeout=5)
        assert row is not None  # an aggregate always returns its row
        return Backlog(row["due"], row["later"], float(row["oldest_due"] or 0),
                       float(row["oldest"] or 0))
