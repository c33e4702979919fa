"""Outbound webhook delivery: each endpoint reads its tenant's events from the event log.

The log is the queue and the endpoint's row its position, so nothing is copied per endpoint
and a restart (or another replica) resumes from the stored cursor: at least once, never lost.
Order: one deliverer holds an endpoint at a time (a lease claimed FOR UPDATE SKIP LOCKED, as
the reconciler claims payments) and sends one event at a time; the cursor moves only past a
2xx, so a refused event blocks the ones after it until it is accepted, the endpoint turns
FAILING after the retry budget, or RedeliverWebhooks moves the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import asyncpg
from aiohttp.abc import AbstractResolver

from malipo.app.webhooks import check_url
from malipo.domain.events import StatusEvent
from malipo.metrics import WEBHOOK_POSTS
from malipo.store.events import event_to_json
from malipo.store.failures import DATABASE_ERRORS
from malipo.store.webhooks import Claim, DeliveryClaims
from malipo.webhooks.addresses import InternalAddress, PublicOnlyResolver
from malipo.webhooks.signing import WebhookSigner

log = logging.getLogger("malipo.webhooks")
EVENT_TYPE = "payment.status_changed"


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """When to try, how long to wait, when to give up (Settings.webhook_*)."""

    poll_s: float = 1.0           # idle check for due endpoints: one cheap query
    # After a check, the least wait before the next one when new events wake the dispatcher
    # (wake()): a burst of commits costs one check, and a new event waits at most this long.
    wake_gap_s: float = 0.05
    timeout_s: float = 10.0       # per POST, connection included
    lease_s: float = 60.0         # an endpoint's hold; a crashed holder's ends after this
    backoff_first_s: float = 5.0  # after the first failure; doubles per failure
    backoff_max_s: float = 3600.0
    retry_for_s: float = 86400.0  # a refused event is retried this long, then FAILING
    endpoints_per_claim: int = 20  # endpoints one process serves at once
    events_per_read: int = 100
    # Connect to internal addresses too (on-premises receivers); off, they are refused.
    private_networks: bool = False

    def __post_init__(self) -> None:
        if self.lease_s <= self.timeout_s + 1.0:
            # A POST is only started when it ends inside the lease: nothing would be sent.
            raise ValueError("webhook_lease_s must exceed webhook_timeout_s + 1 s")

    def backoff(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Wait after the `attempts`-th failure in a row: doubling, capped, with jitter in
        [half, full) so endpoints that failed together do not retry together."""
        full = min(self.backoff_max_s, self.backoff_first_s * 2 ** min(attempts - 1, 40))
        return full * (0.5 + rand() / 2)


def payload(event: StatusEvent) -> bytes:
    """The body: the same bytes on every attempt, so only the signature headers change."""
    return json.dumps({"type": EVENT_TYPE, "timestamp": event.occurred_at.isoformat(),
                       "data": event_to_json(event)},
                      separators=(",", ":"), ensure_ascii=False).encode()


def message_id(endpoint_id: str, sequence: int) -> str:
    """Stable per endpoint and event, so a receiver drops a redelivery it already has."""
    return f"{endpoint_id}_{sequence}"


class WebhookDispatcher:
    def __init__(self, pool: asyncpg.Pool, policy: DeliveryPolicy,
                 clock: Callable[[], float] = time.time,
                 resolver: AbstractResolver | None = None) -> None:
        """`resolver`: how names are looked up (aiohttp's default; tests pass a fake)."""
        self._claims = DeliveryClaims(pool)
        self._policy = policy
        self._clock = clock
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._serving: set[asyncio.Task[None]] = set()
        self._woken = asyncio.Event()
        self.attempts = 0  # POSTs tried by this process (refused addresses included)

    def wake(self) -> None:
        """New events are in the log (the event hub heard a relay's NOTIFY): check for due
        endpoints soon rather than at the next poll."""
        self._woken.set()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._policy.timeout_s)
        resolver = (self._resolver if self._policy.private_networks
                    else PublicOnlyResolver(self._resolver))
        connector = aiohttp.TCPConnector(resolver=resolver)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as self._session:
            try:
                while True:
                    self._woken.clear()  # a wake from here on means another check
                    try:
                        await self.tick()
                    except DATABASE_ERRORS as exc:
                        log.warning("webhook tick failed: %s", type(exc).__name__)
                    except Exception:
                        log.exception("webhook tick failed")
                    await self._rest()
            finally:
                # Each hands its endpoint over as it ends (see _serve).
                serving = list(self._serving)
                for task in serving:
                    task.cancel()
                await asyncio.gather(*serving, return_exceptions=True)
                if resolver is not None:  # the connector closes only a resolver it made
                    await resolver.close()

    async def _rest(self) -> None:
        """Until the next check: `poll_s` (backoffs and leases end without a wake), or from
        `wake_gap_s` on as soon as new events wake the dispatcher."""
        gap = min(self._policy.wake_gap_s, self._policy.poll_s)
        await asyncio.sleep(gap)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._policy.poll_s - gap):
                await self._woken.wait()

    async def tick(self) -> int:
        """Claim due endpoints, up to `endpoints_per_claim` served at once by this process,
        and serve each in its own task until it is drained, failing or out of lease: a slow
        or busy endpoint never holds up the others."""
        room = self._policy.endpoints_per_claim - len(self._serving)
        if room <= 0 or not await self._claims.any_due():
            return 0
        ends = time.monotonic() + self._policy.lease_s  # measured before the claim: never late
        claims = await self._claims.claim(room, self._policy.lease_s)
        for claim in claims:
            task = asyncio.create_task(self._serve(claim, ends))
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        return len(claims)

    async def _serve(self, claim: Claim, ends: float) -> None:
        try:
            await self._deliver(claim, ends)
        except asyncio.CancelledError:
            # Shutting down: hand the endpoint over now rather than after the lease.
            with contextlib.suppress(*DATABASE_ERRORS):
                await self._claims.release(claim)
            raise
        except DATABASE_ERRORS as exc:  # the lease runs out and another tick resumes
            log.warning("webhook endpoint %s: %s", claim.id, type(exc).__name__)
        except Exception:
            log.exception("webhook endpoint %s failed", claim.id)
            with contextlib.suppress(*DATABASE_ERRORS):
                await self._claims.release(claim)

    async def _deliver(self, claim: Claim, ends: float) -> None:
        signer = WebhookSigner(claim.secret)
        cursor, attempts = claim.cursor, claim.attempts
        while self._fits(ends):
            pending = await self._claims.pending(claim, cursor, self._policy.events_per_read)
            if cursor < pending.purged_through:
                log.warning("webhook endpoint %s: events %d..%d were purged before delivery",
                            claim.id, cursor + 1, pending.purged_through)
            if not pending.events:
                # Every event up to head is another tenant's (or purged): skip past them.
                if pending.head > cursor:
                    await self._claims.advance(claim, pending.head)
                break
            for event in pending.events:
                if not self._fits(ends):
                    break
                error = await self._post(claim, signer, event)
                if error:
                    await self._failed(claim, event, error, attempts + 1)  # releases
                    return
                if not await self._claims.advance(claim, event.sequence):
                    return  # lease lost: redelivered meanwhile, or it ran out
                cursor, attempts = event.sequence, 0
        await self._claims.release(claim)

    def _fits(self, ends: float) -> bool:
        """Whether a whole POST still ends inside the lease: past it, another replica may
        claim the endpoint and two deliveries would race."""
        return time.monotonic() + self._policy.timeout_s + 1.0 < ends

    async def _failed(self, claim: Claim, event: StatusEvent, error: str,
                      attempts: int) -> None:
        delay = self._policy.backoff(attempts)
        failing = await self._claims.failed(claim, error, retry_in_s=delay,
                                            retry_for_s=self._policy.retry_for_s)
        if failing:
            log.warning("webhook endpoint %s is FAILING: event %d refused (%s) for %.0f s",
                        claim.id, event.sequence, error, self._policy.retry_for_s)
        else:
            log.info("webhook endpoint %s: event %d attempt %d failed (%s), retry in %.1f s",
                     claim.id, event.sequence, attempts, error, delay)

    async def _post(self, claim: Claim, signer: WebhookSigner, event: StatusEvent) -> str:
        """"" when the receiver acknowledged (2xx), else why not (no URL: it may hold a
        token in its query). An internal address is refused without connecting: one written
        in the URL here (an endpoint stored before the rule, or while the operator allowed
        them), one a name resolves to by the session's PublicOnlyResolver."""
        assert self._session is not None
        self.attempts += 1
        refused = check_url(claim.url, private_networks=self._policy.private_networks)
        if refused:
            WEBHOOK_POSTS.labels("blocked").inc()
            return refused[0].description
        body = payload(event)
        headers = signer.headers(message_id(claim.id, event.sequence), int(self._clock()), body)
        try:
            async with self._session.post(claim.url, data=body, headers=headers,
                                          allow_redirects=False) as response:
                delivered = 200 <= response.status < 300
                WEBHOOK_POSTS.labels("delivered" if delivered else "refused").inc()
                return "" if delivered else f"HTTP {response.status}"
        except TimeoutError:
            WEBHOOK_POSTS.labels("unanswered").inc()
            return "timeout"
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, InternalAddress):
                WEBHOOK_POSTS.labels("blocked").inc()
                return str(exc.os_error)
            WEBHOOK_POSTS.labels("unanswered").inc()
            return type(exc).__name__
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            WEBHOOK_POSTS.labels("unanswered").inc()
            return type(exc).__name__
