"""Claim due payments with FOR UPDATE SKIP LOCKED and a lease, so replicas share the work."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import asyncpg

from malipo import logs
from malipo.app.connector import CallContext
from malipo.app.lifecycle import expire, poll, resume
from malipo.app.services import Services
from malipo.app.unit_of_work import Schedule
from malipo.domain.errors import MalipoError, ProviderNotFound, ProviderUnavailable
from malipo.domain.payments import Payment
from malipo.domain.status import UNSETTLED, Status
from malipo.store.rows import PAYMENT_FIELDS, payment_from_row

log = logging.getLogger("malipo.reconciler")
LEASE_S = 60

_CLAIM = f"""
UPDATE payments SET claimed_until = now() + make_interval(secs => $2),
                    poll_attempts = poll_attempts + 1
WHERE id IN (
    SELECT id FROM payments
    WHERE next_poll_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
      AND provider || '/' || account = ANY($3::text[])
    ORDER BY next_poll_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
RETURNING {PAYMENT_FIELDS}, poll_attempts, submit_state
"""


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
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("reconciler tick failed: %s", type(exc).__name__)
            except Exception:
                # Never let one bad payment stop reconciliation for everyone.
                log.exception("reconciler tick failed")
            await asyncio.sleep(self.interval_s)

    async def tick(self) -> int:
        # Only accounts this process can talk to: a replica configured with other accounts
        # must never claim (and drop) another replica's payments.
        accounts = [f"{c.provider}/{c.account.name}" for c in self.services.connectors.all()]
        rows = await self.pool.fetch(_CLAIM, self.batch, float(LEASE_S), accounts)
        await asyncio.gather(*(self._work(row) for row in rows))
        return len(rows)

    async def _work(self, row: asyncpg.Record) -> None:
        payment = payment_from_row(row)
        logs.payment_id.set(payment.id)  # each _work runs in its own task (gather)
        attempts: int = row["poll_attempts"]
        connector = self.services.connectors.get(payment.provider, payment.account)
        policy = self.services.connectors.policy(payment.provider)
        now = self.services.clock()
        if connector is None:  # configuration changed under us: keep it due for others
            await self._reschedule(payment, Schedule(policy.next_poll(attempts, now)))
            return
        breaker = self.breakers.setdefault((payment.provider, payment.account), Breaker())
        if not breaker.allow():
            await self._reschedule(payment, Schedule(policy.next_poll(attempts, now)))
            return
        ctx = CallContext(deadline=time.monotonic() + 30)
        try:
            if payment.status is Status.PENDING and row["submit_state"] == "NEW":
                await resume(self.services, payment, connector, ctx)
                breaker.success()
                return
            if payment.status not in UNSETTLED:
                await self._reschedule(payment, Schedule(None))
                return
            if policy.expired(payment.created_at, attempts, now):
                await expire(self.services, payment)
                return
            if not connector.capabilities.status_polling:
                await self._reschedule(payment, Schedule(policy.next_poll(attempts, now)))
                return
            self.polls += 1
            change = await poll(self.services, payment, ctx)
            breaker.success()
            if change.after.status in UNSETTLED:
                await self._reschedule(payment, Schedule(policy.next_poll(attempts, now)))
        except ProviderNotFound:
            breaker.success()
            await self._reschedule(payment, Schedule(policy.next_poll(attempts, now)))
        except ProviderUnavailable:
            breaker.failure()
            await self._reschedule(payment, Schedule(policy.next_poll(attempts, now)))
        except MalipoError as exc:
            log.warning("reconciling %s failed: %s", payment.id, exc.message)
            await self._reschedule(payment, Schedule(policy.next_poll(attempts, now)))
        except Exception:
            log.exception("reconciling %s failed unexpectedly", payment.id)
            await self._reschedule(payment, Schedule(policy.next_poll(attempts, now)))

    async def _reschedule(self, payment: Payment, schedule: Schedule | None) -> None:
        async with self.services.uow() as uow:
            await uow.payments.schedule(payment.id, schedule or Schedule(None))
