"""Client-side limit for Kwik's 100 requests/second, shared by every call of one account.

A plain "N sends per second" log at the client is not enough: a request queued in the
connection pool or slowed on the wire reaches Kwik later than we sent it, so Kwik can see
N+1 in its own one-second window. Here a request holds its slot from the moment it is sent
until `window_s` after its answer came back. Whatever second Kwik measures, every request
it counted was in flight or answered less than a window before the last one of them was
sent, so they all held slots then: Kwik never sees more than `limit`. The price is a little
throughput (limit / (window + latency)), which is the right side to err on.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager, suppress

from malipo.domain.errors import ProviderUnavailable


class SlidingWindowLimiter:
    def __init__(self, limit: int, window_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("rate limit must be at least 1 request per window")
        self._limit = limit
        self._window = window_s
        self._clock = clock
        self._in_flight = 0
        self._finished: deque[float] = deque()
        self._turn = asyncio.Lock()  # first come, first served
        self._released = asyncio.Event()

    @property
    def in_use(self) -> int:
        self._prune(self._clock())
        return self._in_flight + len(self._finished)

    def _prune(self, now: float) -> None:
        while self._finished and self._finished[0] <= now - self._window:
            self._finished.popleft()

    async def _acquire(self, within_s: float | None) -> None:
        give_up = None if within_s is None else self._clock() + within_s
        async with self._turn:
            while True:
                now = self._clock()
                self._prune(now)
                if self._in_flight + len(self._finished) < self._limit:
                    self._in_flight += 1
                    return
                wait = self._finished[0] + self._window - now if self._finished else None
                if give_up is not None:
                    left = give_up - now
                    if left <= 0:
                        raise ProviderUnavailable(
                            "Kwik rate limit: no request slot before the deadline")
                    wait = left if wait is None else min(wait, left)
                self._released.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), wait)

    def _release(self) -> None:
        self._in_flight -= 1
        self._finished.append(self._clock())
        self._released.set()

    @asynccontextmanager
    async def slot(self, within_s: float | None = None) -> AsyncGenerator[None]:
        """Hold one request slot; give up (ProviderUnavailable) after `within_s`."""
        await self._acquire(within_s)
        try:
            yield
        finally:
            self._release()
