"""The reconciler's claims: FOR UPDATE SKIP LOCKED with a lease, so replicas share the work.

One implementation for every table whose rows are polled (payments, refunds), told apart by
a `LeasedTable`. A claim commits only after its rows are in hand: lost before COMMIT,
nothing was leased (the server rolls back when the connection dies, or after
`_CLAIM_IDLE_MS` idle in the transaction if it never hears); lost at COMMIT, the caller has
the rows and their token and undoes the claim (reconciler/loop.py). An idle tick first asks
whether anything is due (a read that locks nothing), and claims only when something is.

Both walk the table's partial index of due rows in poll order, and are made to: their cost
must follow the due rows, never the table, and the planner cannot know that. A new
deployment's tables have no statistics until autovacuum's first look: PostgreSQL keeps the
plan it made for a prepared statement while they were empty, and without statistics it
expects a due row early in any scan, so even a fresh plan of the probe chose to read every
payment ever made, at every tick of every replica (10 ms a tick, 5% of PostgreSQL's work
per create in `make bench`). So both run with sequential and bitmap scans priced out
(`_BY_INDEX`): what is left is the index walk in order, which stops at the first row it can
use and marks the entries of rows rescheduled since (dead) so that later walks skip them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import asyncpg

from malipo.app.leases import Backlog, Claim, Leased
from malipo.app.unit_of_work import Schedule
from malipo.store.failures import DATABASE_ERRORS
from malipo.store.rows import payment_fields, payment_from_row

T = TypeVar("T")

_CLAIM_IDLE_MS = 5000    # the claimer sends COMMIT right after the rows: idle means gone

_BY_INDEX = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off"
_BEGIN_PROBE = f"BEGIN; {_BY_INDEX}"
_BEGIN_CLAIM = (f"BEGIN; SET LOCAL idle_in_transaction_session_timeout = {_CLAIM_IDLE_MS}; "
                f"{_BY_INDEX}")


@dataclass(frozen=True, slots=True)
class LeasedTable(Generic[T]):
    """A table of polled rows: each has id, next_poll_at, claimed_until and poll_attempts,
    and belongs to a payment `p`, whose provider account must be one of the claimer's."""

    name: str
    alias: str     # the rows' alias in the statements ("p" when they are the payments)
    payment: str   # SQL joining the row's payment as `p`; "" when the rows are payments
    answer: str    # SQL: what a claim answers per row, over `alias` and `p`
    read: Callable[[asyncpg.Record], T]  # one answered row, with poll_attempts, claimed_until


@dataclass(frozen=True, slots=True)
class _Statements:
    any_due: str
    claim: str
    unclaim: str
    release: str


def _statements(table: LeasedTable[T]) -> _Statements:
    name, a, payment = table.name, table.alias, table.payment
    due = (f"{name} {a} {payment} WHERE {a}.next_poll_at <= now() "
           f"AND ({a}.claimed_until IS NULL OR {a}.claimed_until < now()) "
           "AND p.provider || '/' || p.account = ANY($1::text[])")
    return _Statements(
        # Whether to claim at all: the most overdue row, if any (NULL: nothing is due).
        any_due=f"SELECT true FROM {due} ORDER BY {a}.next_poll_at LIMIT 1",
        claim=f"""
WITH leased AS (
    UPDATE {name} SET claimed_until = now() + make_interval(secs => $3),
                      poll_attempts = poll_attempts + 1
    WHERE id IN (SELECT {a}.id FROM {due}
                 ORDER BY {a}.next_poll_at LIMIT $2 FOR UPDATE OF {a} SKIP LOCKED)
    RETURNING *
)
SELECT {table.answer}, {a}.poll_attempts, {a}.claimed_until FROM leased {a} {payment}
""",
        # After a COMMIT whose answer was lost: undo exactly what the claim did, if it did
        # it. The token is tested in SET, not WHERE: the claim's transaction may still be
        # open, and a WHERE false on the version before it would skip the row without
        # waiting for the claim to end.
        unclaim=f"""
UPDATE {name} SET
    claimed_until = CASE WHEN claimed_until = $2 THEN NULL ELSE claimed_until END,
    poll_attempts = CASE WHEN claimed_until = $2 THEN poll_attempts - 1 ELSE poll_attempts END
WHERE id = ANY($1::text[])
""",
        # Fenced by the claim's token, the lease end the claim wrote: no claim can write that
        # value again (a later claim of the row needs `claimed_until < now()`, and writes
        # now() + lease), so a late release never frees another replica's lease; one that
        # finds the lease already released (NULL: our own write with a schedule, a callback
        # asking for a poll now) still writes its schedule.
        release=f"""
UPDATE {name} SET next_poll_at = $2, claimed_until = NULL,
                  poll_attempts = CASE WHEN $3 THEN 0 ELSE poll_attempts END
WHERE id = $1 AND (claimed_until IS NULL OR claimed_until = $4)
""")


class PostgresLeases(Generic[T]):
    """Claims, undoes and releases leases on the rows of one `LeasedTable`."""

    faults = DATABASE_ERRORS

    def __init__(self, pool: asyncpg.Pool, table: LeasedTable[T]) -> None:
        self._pool = pool
        self._read = table.read
        self._sql = _statements(table)

    async def any_due(self, accounts: Sequence[str]) -> bool:
        async with self._pool.acquire() as conn:  # on a fault, released: rolled back
            try:
                await conn.execute(_BEGIN_PROBE)
                due = await conn.fetchval(self._sql.any_due, list(accounts))
                await conn.execute("ROLLBACK")  # it wrote nothing
            except asyncio.CancelledError:
                conn.terminate()  # as in claim: stopping, not a fault to log
                raise
        return bool(due)

    async def claim(self, accounts: Sequence[str], batch: int, lease_s: float) -> Claim[T]:
        async with self._pool.acquire() as conn:
            try:
                await conn.execute(_BEGIN_CLAIM)
                try:
                    rows = await conn.fetch(self._sql.claim, list(accounts), batch, lease_s)
                except Exception:
                    with contextlib.suppress(*DATABASE_ERRORS):  # dead: rolled back anyway
                        await conn.execute("ROLLBACK")
                    raise
                if not rows:
                    await conn.execute("ROLLBACK")
                    return Claim([])
                try:
                    await conn.execute("COMMIT")
                    return Claim([self._read(r) for r in rows])
                except DATABASE_ERRORS as exc:
                    failed = exc
            except asyncio.CancelledError:
                # Stopping mid-transaction: drop the connection (the server rolls back)
                # rather than have the pool roll back for us and log it as an error.
                conn.terminate()
                raise
        return Claim([self._read(r) for r in rows], uncertain=type(failed).__name__)

    async def unclaim(self, ids: Sequence[str], token: datetime) -> None:
        await self._pool.execute(self._sql.unclaim, list(ids), token)

    async def release(self, row_id: str, schedule: Schedule, token: datetime) -> None:
        await self._pool.execute(self._sql.release, row_id, schedule.next_poll_at,
                                 schedule.reset_attempts, token)


def _leased(row: asyncpg.Record) -> Leased:
    return Leased(payment_from_row(row), row["poll_attempts"], row["submit_state"] == "NEW",
                  row["claimed_until"])


PAYMENTS = LeasedTable("payments", "p", "", f"{payment_fields('p')}, p.submit_state", _leased)

_BACKLOG = """
SELECT count(*) FILTER (WHERE next_poll_at <= now()) AS due,
       count(*) FILTER (WHERE next_poll_at > now()) AS later,
       extract(epoch FROM now() - min(next_poll_at) FILTER (WHERE next_poll_at <= now()))
           AS oldest_due,
       extract(epoch FROM now() - min(created_at)) AS oldest
FROM payments WHERE next_poll_at IS NOT NULL
"""


class PostgresPollLeases(PostgresLeases[Leased]):
    """Unsettled payments due for a poll."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool, PAYMENTS)

    async def backlog(self) -> Backlog:
        row = await self._pool.fetchrow(_BACKLOG, timeout=5)
        assert row is not None  # an aggregate always returns its row
        return Backlog(row["due"], row["later"], float(row["oldest_due"] or 0),
                       float(row["oldest"] or 0))
