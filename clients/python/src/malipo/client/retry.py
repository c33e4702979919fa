"""Retries of calls whose outcome may be unknown, always with the same idempotency key.

UNAVAILABLE and DEADLINE_EXCEEDED can both mean "the server did the work but the answer was
lost". Retrying is safe only because every attempt carries the same idempotency key: the
server then returns the payment the first attempt made instead of making a second one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

T = TypeVar("T")
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry; `attempts` counts the first call too."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts counts the first call: at least 1")

    attempts: int = 4
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 3.0
    multiplier: float = 2.0

    def backoff(self, retry: int) -> float:
        """Full-jitter exponential backoff before retry number `retry` (1-based)."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))
        return random.uniform(0, ceiling)


NO_RETRY = RetryPolicy(attempts=1)


def retryable(exc: grpc.aio.AioRpcError) -> bool:
    return exc.code() in RETRYABLE


async def with_retries(attempt: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Run `attempt` until it succeeds, fails for good, or the attempts are used up."""
    for number in range(1, policy.attempts + 1):
        try:
            return await attempt()
        except grpc.aio.AioRpcError as exc:
            if number == policy.attempts or not retryable(exc):
                raise
        await asyncio.sleep(policy.backoff(number))
    raise AssertionError("unreachable: the last attempt returns or raises")
