"""Claim due payments with FOR UPDATE SKIP LOCKED and a lease, so replicas share the work.

A lease is 60 s because it must outlast the provider call it covers (30 s deadline). A brief
database fault must not stretch it to a minute, which happened in two ways (issue 5):

- The release failed (the poll's write, then the reschedule, hit the same fault): it is now
  retried with bounded backoff until the lease would end. It is fenced by the claim's token,
  the lease end the claim wrote: no claim can write that value again (a later claim of the
  row needs `claimed_until < now()`, and writes now() + lease), so a late release never frees
  another replica's lease; one that finds the lease already released (NULL: our own write
  with a schedule, a callback asking for a poll now) still writes its schedule, as before.
- The claim's answer was lost after its UPDATE committed. The claim now commits only after
  its rows are in hand: lost before COMMIT, nothing was leased (the server rolls back when
  the connection dies, or after `_CLAIM_IDLE_MS` idle in the transaction if it never hears);
  lost at COMMIT, we have the rows and their token, and undo the claim, fenced and retried
  like a release. A claim costs three round trips (BEGIN, the claim, COMMIT), not one, so
  an idle tick first asks in one whether anything is due.
  Rejected: a claim-round token column (a migration, and a retried claim would still need
  the failed round's token found again) and a short lease renewed while polling (renewals
  that fail under a partition let another replica call the provider for the same payment
  while the first call is still out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from malipo import logs
from malipo.app.connector import CallContext, SettlesNotBefore
from malipo.app.lifecycle import expire, poll, resume
from malipo.app.services import Services
from malipo.app.unit_of_work import Schedule
from malipo.domain.errors import MalipoError, ProviderNotFound, ProviderUnavailable
from malipo.domain.payments import Payment
from malipo.domain.status import UNSETTLED, Status
from malipo.store.failures import DATABASE_ERRORS
from malipo.store.rows import PAYMENT_FIELDS, payment_from_row

log = logging.getLogger("malipo.reconciler")
LEASE_S = 60
RETRY_FIRST_S = 0.05     # release retries: doubling up to RETRY_MAX_S, so a poll comes at
RETRY_MAX_S = 1.0        # most about a second after the fault ends
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

_RELEASE = """
UPDATE payments SET next_poll_at = $2, claimed_until = NULL,
                    poll_attempts = CASE WHEN $3 THEN 0 ELSE poll_attempts END
WHERE id = $1 AND (claimed_until IS NULL OR claimed_until = $4)
"""


@dataclass(frozen=True, slots=True)
class Lease:
    """One claim round's hold on its rows: the token all of them carry, and when (by our
    clock, measured before the claim went out, so never late) it ends."""

    token: datetime
    ends: float


@dataclass
class Breaker:
    """Per provider account: opens after `threshold` failures in a row, half-opens later."""

    threshold: int = 5
    cool_down_s: float = 30.0
    failures: int = 0
    opened_at: float = 0.0
    state: str = "closed"

    def allow(self) -> bool:
        if self.state == "open" and time.monotonic() - self.opened_at >= self.cool_down_s:
            self.state = "half_open"
        return self.state != "open"

    def success(self) -> None:
        self.failures, self.state = 0, "closed"

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.threshold:
            self.state, self.opened_at = "open", time.monotonic()


@dataclass
class Reconciler:
    services: Services
    pool: asyncpg.Pool
    interval_s: float = 0.5
    batch: int = 50
    breakers: dict[tuple[str, str], Breaker] = field(default_factory=dict)
    polls: int = 0  # provider status calls made by this reconciler (tests, metrics)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except DATABASE_ERRORS as exc:
                log.warning("reconciler tick failed: %s", type(exc).__name__)
            except Exception:
                # Never let one bad payment stop reconciliation for everyone.
                log.exception("reconciler tick failed")
            await asyncio.sleep(self.interval_s)

    async def tick(self) -> int:
        # Only accounts this process can talk to: a replica configured with other accounts
        # must never claim (and drop) another replica's payments.
        accounts = [f"{c.provider}/{c.account.name}" for c in self.services.connectors.all()]
        if not await self.pool.fetchval(_ANY_DUE, accounts):
            return 0
        ends = time.monotonic() + LEASE_S
        rows = await self._claim(accounts, ends)
        if not rows:
            return 0
        await asyncio.gather(*(self._work(row, Lease(row["claimed_until"], ends))
                               for row in rows))
        return len(rows)

    async def _claim(self, accounts: list[str], ends: float) -> list[asyncpg.Record]:
        """The due rows, leased; [] when none, or when it is unknown whether the claim
        committed (then undone: those rows are due again at once)."""
        async with self.pool.acquire() as conn:
            try:
                await conn.execute(_BEGIN_CLAIM)
                try:
                    rows = await conn.fetch(_CLAIM, self.batch, float(LEASE_S), accounts)
                except Exception:
                    with contextlib.suppress(*DATABASE_ERRORS):  # dead: rolled back anyway
                        await conn.execute("ROLLBACK")
                    raise
                if not rows:
                    await conn.execute("ROLLBACK")
                    return []
                try:
                    await conn.execute("COMMIT")
                    return rows
                except DATABASE_ERRORS as exc:
                    failed = exc
            except asyncio.CancelledError:
                # Stopping mid-transaction: drop the connection (the server rolls back)
                # rather than have the pool roll back for us and log it as an error.
                conn.terminate()
                raise
        ids = [r["id"] for r in rows]
        token: datetime = rows[0]["claimed_until"]  # one now() per transaction: one token
        log.warning("claim of %d payments may or may not have committed (%s): undoing it",
                    len(ids), type(failed).__name__)
        await self._while_leased(Lease(token, ends), "undoing a claim",
                                 lambda: self.pool.execute(_UNCLAIM, ids, token))
        return []

    async def _work(self, row: asyncpg.Record, lease: Lease) -> None:
        payment = payment_from_row(row)
        logs.payment_id.set(payment.id)  # each _work runs in its own task (gather)
        attempts: int = row["poll_attempts"]
        connector = self.services.connectors.get(payment.provider, payment.account)
        policy = self.services.connectors.policy(payment.provider)
        now = self.services.clock()
        later = Schedule(policy.next_poll(attempts, now))
        if connector is None:  # configuration changed under us: keep it due for others
            await self._release(payment, lease, later)
            return
        breaker = self.breakers.setdefault((payment.provider, payment.account), Breaker())
        if not breaker.allow():
            await self._release(payment, lease, later)
            return
        ctx = CallContext(deadline=time.monotonic() + 30)
        try:
            if payment.status is Status.PENDING and row["submit_state"] == "NEW":
                await resume(self.services, payment, connector, ctx)
                breaker.success()
                return
            if payment.status not in UNSETTLED:
                await self._release(payment, lease, Schedule(None))
                return
            not_before = (connector.settles_not_before(payment)
                          if isinstance(connector, SettlesNotBefore) else None)
            if policy.expired(payment.created_at, attempts, now, not_before=not_before):
                await expire(self.services, payment)
                return
            if not connector.capabilities.status_polling:
                await self._release(payment, lease, later)
                return
            self.polls += 1
            change = await poll(self.services, payment, ctx)
            breaker.success()
            if change.after.status in UNSETTLED:
                await self._release(payment, lease, later)
        except ProviderNotFound:
            breaker.success()
            await self._release(payment, lease, later)
        except ProviderUnavailable:
            breaker.failure()
            await self._release(payment, lease, later)
        except MalipoError as exc:
            log.warning("reconciling %s failed: %s", payment.id, exc.message)
            await self._release(payment, lease, later)
        except DATABASE_ERRORS as exc:  # a fault, not a bug: no traceback per payment
            log.warning("reconciling %s failed: %r", payment.id, exc)
            await self._release(payment, lease, later)
        except Exception:
            log.exception("reconciling %s failed unexpectedly", payment.id)
            await self._release(payment, lease, later)

    async def _release(self, payment: Payment, lease: Lease, schedule: Schedule) -> None:
        """Give the payment back with its next poll time (None: no more polls)."""
        await self._while_leased(
            lease, f"releasing {payment.id}",
            lambda: self.pool.execute(_RELEASE, payment.id, schedule.next_poll_at,
                                      schedule.reset_attempts, lease.token))

    @staticmethod
    async def _while_leased(lease: Lease, what: str,
                            statement: Callable[[], Awaitable[object]]) -> bool:
        """Run `statement`, retrying database failures with bounded backoff until the lease
        ends; after that the row is due for anyone anyway, and retrying gains nothing."""
        delay = RETRY_FIRST_S
        while True:
            try:
                await statement()
                return True
            except DATABASE_ERRORS as exc:
                if time.monotonic() + delay >= lease.ends:
                    log.warning("%s failed until its lease ended: %r", what, exc)
                    return False
                log.debug("%s failed, retrying in %.2fs: %r", what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

