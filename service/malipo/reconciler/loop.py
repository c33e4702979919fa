"""Poll due payments under a lease (store/leases.py claims them), so replicas share the work.

A lease is 60 s because it must outlast the provider call it covers (30 s deadline). A brief
database fault must not stretch it to a minute, which happened in two ways:

- The release failed (the poll's write, then the reschedule, hit the same fault): it is
  retried with bounded backoff until the lease would end, fenced by the claim's token, so a
  late release never frees another replica's lease.
- The claim's answer was lost after its UPDATE committed: the claim commits only after its
  rows are in hand, and one whose COMMIT went unanswered is undone, fenced and retried like
  a release.
  Rejected: a claim-round token column (a migration, and a retried claim would still need
  the failed round's token found again) and a short lease renewed while polling (renewals
  that fail under a partition let another replica call the provider for the same payment
  while the first call is still out).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from malipo import logs
from malipo.app.connector import CallContext, SettlesNotBefore
from malipo.app.leases import Leased, LeasedRefund, Leases, PollLeases, RefundLeases
from malipo.app.lifecycle import expire, poll, resume
from malipo.app.refund_polls import reconcile_refund
from malipo.app.services import Services
from malipo.app.unit_of_work import Schedule
from malipo.domain.errors import MalipoError, ProviderNotFound, ProviderUnavailable
from malipo.domain.payments import Payment
from malipo.domain.refunds import REFUND_UNSETTLED
from malipo.domain.status import UNSETTLED, Status

log = logging.getLogger("malipo.reconciler")
LEASE_S = 60
RETRY_FIRST_S = 0.05     # release retries: doubling up to RETRY_MAX_S, so a poll comes at
RETRY_MAX_S = 1.0        # most about a second after the fault ends


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
    leases: PollLeases
    interval_s: float = 0.5
    batch: int = 50
    breakers: dict[tuple[str, str], Breaker] = field(default_factory=dict)
    polls: int = 0  # provider status calls made by this reconciler (tests, metrics)
    # Unsettled refunds, claimed in the same tick after the payments (app/refund_polls.py).
    refund_leases: RefundLeases | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except self.leases.faults as exc:
                log.warning("reconciler tick failed: %s", type(exc).__name__)
            except Exception:
                # Never let one bad payment stop reconciliation for everyone.
                log.exception("reconciler tick failed")
            await asyncio.sleep(self.interval_s)

    async def tick(self) -> int:
        """Payments then refunds claimed and worked; how many of both."""
        # Only accounts this process can talk to: a replica configured with other accounts
        # must never claim (and drop) another replica's payments.
        accounts = [f"{c.provider}/{c.account.name}" for c in self.services.connectors.all()]
        worked = await self._payments(accounts)
        if self.refund_leases is not None:
            worked += await self._refunds(self.refund_leases, accounts)
        return worked

    async def _payments(self, accounts: Sequence[str]) -> int:
        if not await self.leases.any_due(accounts):
            return 0
        # The lease's end by our clock, taken before the claim went out: never late.
        ends = time.monotonic() + LEASE_S
        claim = await self.leases.claim(accounts, self.batch, float(LEASE_S))
        if not claim.leased:
            return 0
        if claim.uncertain:
            ids = [leased.payment.id for leased in claim.leased]
            await self._undo(self.leases, "payments", ids, Lease(claim.leased[0].token, ends),
                             claim.uncertain)
            return 0
        await asyncio.gather(*(self._work(leased, Lease(leased.token, ends))
                               for leased in claim.leased))
        return len(claim.leased)

    async def _undo(self, leases: Leases[object], what: str, ids: Sequence[str], lease: Lease,
                    failure: str) -> None:
        """A claim that may or may not have committed: undone, so those rows are due again.
        `lease.token` is every row's: one now() per transaction."""
        log.warning("claim of %d %s may or may not have committed (%s): undoing it",
                    len(ids), what, failure)
        await self._while_leased(lease, "undoing a claim",
                                 lambda: leases.unclaim(ids, lease.token))

    async def _work(self, leased: Leased, lease: Lease) -> None:
        payment = leased.payment
        logs.payment_id.set(payment.id)  # each _work runs in its own task (gather)
        attempts = leased.attempts
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
            if payment.status is Status.PENDING and leased.never_sent:
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
        except self.leases.faults as exc:  # a fault, not a bug: no traceback per payment
            log.warning("reconciling %s failed: %r", payment.id, exc)
            await self._release(payment, lease, later)
        except Exception:
            log.exception("reconciling %s failed unexpectedly", payment.id)
            await self._release(payment, lease, later)

    async def _refunds(self, leases: RefundLeases, accounts: Sequence[str]) -> int:
        """The payments' round again for refunds: claim, undo an uncertain claim, work."""
        if not await leases.any_due(accounts):
            return 0
        ends = time.monotonic() + LEASE_S
        claim = await leases.claim(accounts, self.batch, float(LEASE_S))
        if not claim.leased:
            return 0
        if claim.uncertain:
            ids = [leased.refund.id for leased in claim.leased]
            await self._undo(leases, "refunds", ids, Lease(claim.leased[0].token, ends),
                             claim.uncertain)
            return 0
        await asyncio.gather(*(self._work_refund(leases, leased, Lease(leased.token, ends))
                               for leased in claim.leased))
        return len(claim.leased)

    async def _work_refund(self, leases: RefundLeases, leased: LeasedRefund,
                           lease: Lease) -> None:
        """Every way out gives the claim back, as `_work` does: with the next poll while the
        refund is unsettled, with none once it is settled or flagged, so a refund whose
        answer is lost or not recorded is polled again on schedule, not after the lease."""
        refund, payment = leased.refund, leased.payment
        logs.payment_id.set(payment.id)
        policy = self.services.connectors.policy(payment.provider)
        later = Schedule(policy.next_poll(leased.attempts, self.services.clock()))
        connector = self.services.connectors.get(payment.provider, payment.account)
        breaker = self.breakers.setdefault((payment.provider, payment.account), Breaker())
        after = refund
        if connector is not None and breaker.allow():
            try:
                after = await reconcile_refund(self.services, refund, payment, leased.attempts,
                                               connector,
                                               CallContext(deadline=time.monotonic() + 30))
                breaker.success()
            except ProviderNotFound:
                breaker.success()
            except ProviderUnavailable:
                breaker.failure()
            except MalipoError as exc:
                log.warning("reconciling refund %s failed: %s", refund.id, exc.message)
            except leases.faults as exc:  # a fault, not a bug: no traceback per refund
                log.warning("reconciling refund %s failed: %r", refund.id, exc)
            except Exception:
                log.exception("reconciling refund %s failed unexpectedly", refund.id)
        polled = after.status in REFUND_UNSETTLED and not after.needs_review
        # A settled or flagged one is given back too: a late release (ours, after its answer
        # was recorded but not acknowledged) may have made it due again.
        schedule = later if polled else Schedule(None)
        await self._while_leased(lease, f"releasing refund {refund.id}",
                                 lambda: leases.release(refund.id, schedule, lease.token))

    async def _release(self, payment: Payment, lease: Lease, schedule: Schedule) -> None:
        """Give the payment back with its next poll time (None: no more polls)."""
        await self._while_leased(
            lease, f"releasing {payment.id}",
            lambda: self.leases.release(payment.id, schedule, lease.token))

    async def _while_leased(self, lease: Lease, what: str,
                            statement: Callable[[], Awaitable[object]]) -> bool:
        """Run `statement`, retrying database failures with bounded backoff until the lease
        ends; after that the row is due for anyone anyway, and retrying gains nothing."""
        delay = RETRY_FIRST_S
        while True:
            try:
                await statement()
                return True
            except self.leases.faults as exc:
                if time.monotonic() + delay >= lease.ends:
                    log.warning("%s failed until its lease ended: %r", what, exc)
                    return False
                log.debug("%s failed, retrying in %.2fs: %r", what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

