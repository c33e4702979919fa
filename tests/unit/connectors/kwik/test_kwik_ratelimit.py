"""The sliding-window limiter, with a hand-driven clock."""

from __future__ import annotations

import asyncio

import pytest

from malipo.connectors.kwik.ratelimit import SlidingWindowLimiter
from malipo.domain.errors import ProviderUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_slot_is_held_until_a_window_after_the_answer() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(2, 1.0, clock=clock)
    async with limiter.slot():
        clock.now += 5  # a slow answer: still counted while in flight
        assert limiter.in_use == 1
    async with limiter.slot():
        pass
    assert limiter.in_use == 2
    with pytest.raises(ProviderUnavailable):
        async with limiter.slot(within_s=0):
            pass
    clock.now += 0.999
    assert limiter.in_use == 2
    clock.now += 0.002
    assert limiter.in_use == 0


async def test_waiters_proceed_when_a_slot_frees() -> None:
    limiter = SlidingWindowLimiter(1, 0.05)
    order: list[int] = []

    async def call(i: int) -> None:
        async with limiter.slot():
            order.append(i)

    await asyncio.gather(*(call(i) for i in range(4)))
    assert order == [0, 1, 2, 3]


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SlidingWindowLimiter(0)
