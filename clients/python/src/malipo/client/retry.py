"""Retries of calls whose outcome may be unknown, always with the same idempotency key.

UNAVAILABLE and DEADLINE_EXCEEDED can both mean "the server did the work but the answer was
lost". Retrying is safe only because every attempt carries the same idempotency key: the
server then returns the payment the first attempt made instead of making a second one.
When the server says how long to wait (google.rpc.RetryInfo), the wait is at least that.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from malipo.client.errors import error_details

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


def wait_before_retry(exc: grpc.aio.AioRpcError, policy: RetryPolicy, retry: int) -> float:
    """The jittered backoff, but never less than the server's RetryInfo delay."""
    asked = error_details(exc).retry_delay_s or 0.0
    return max(policy.backoff(retry), asked)


async def with_retries(attempt: Callable[[bool], Awaitable[T]], policy: RetryPolicy) -> T:
    """Run `attempt` until it succeeds, fails for good, or the attempts are used up.

    `attempt(retrying)`: a retry should wait for the channel to be ready (within its
    deadline) rather than fail at once: after a lost connection gRPC redials only after its
    own backoff, and fails calls meanwhile, so quick retries would all fail before it does.
    """
    for number in range(1, policy.attempts + 1):
        try:
            return await attempt(number > 1)
        except grpc.aio.AioRpcError as exc:
            if number == policy.attempts or not retryable(exc):
                raise
            delay = wait_before_retry(exc, policy, number)
        await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
