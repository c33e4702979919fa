# pyright: basic
"""Reconciler leases against brief database faults: a fault that hits a claim or a
release delays the payment's next poll by about the fault's length, not by the 60 s lease.

The service runs in this process on a database of its own, reached only through the fault
proxy; its simulator connector is wrapped to note when each poll of our payment happens (and
to start a fault at that moment). The payment stays PROCESSING, so the reconciler keeps
polling it every `INTERVAL_S`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from malipo.config import PolicyConfig
from malipo.reconciler.loop import LEASE_S
from tests.harness import Running, auth, create_request, running, settings_for
from tests.reliability.faultproxy import CUT_AFTER, LOSE, PASS, FaultProxy
from tests.reliability.process import fresh_database
from tests.reliability.test_postgres_fault_proxy import postgres_proxy, through

pytestmark = pytest.mark.reliability

INTERVAL_S = 0.5
FAULT_S = 1.0
# Well under the lease: the fault, one poll interval and slack for a loaded 2-core machine.
BACK_WITHIN_S = FAULT_S + INTERVAL_S + 3.0
assert BACK_WITHIN_S < LEASE_S / 4
CLAIM_MARK = b"simulator/default"   # only the claim (and its due check) send this parameter


class Polls:
    """When the reconciler asked the simulator about one payment; `on_poll` runs first."""

    def __init__(self, service: Running, payment_id: str) -> None:
        self.times: list[float] = []
        self.on_poll: Callable[[], None] | None = None
        connector = service.connector("simulator")
        fetch = connector.fetch_status

        async def fetch_status(payment: Any, ctx: Any) -> Any:
            if payment.id == payment_id:
                self.times.append(time.monotonic())
                if self.on_poll is not None:
                    hook, self.on_poll = self.on_poll, None
                    hook()
            return await fetch(payment, ctx)

        connector.fetch_status = fetch_status

    async def next_after(self, since: float, within: float) -> float:
        """Seconds from `since` to the first poll after it; fails after `within` s."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            later = [t for t in self.times if t > since]
            if later:
                return later[0] - since
            await asyncio.sleep(0.02)
        raise AssertionError(f"no poll within {within} s of the fault (lease {LEASE_S} s)")


@pytest.fixture
async def proxied(server_dsn: str) -> AsyncIterator[tuple[Running, FaultProxy]]:
    async with fresh_database(server_dsn) as url:
        proxy = postgres_proxy(url)
        await proxy.start()
        policy = PolicyConfig(start_after_s=INTERVAL_S, interval_s=INTERVAL_S, backoff=1.0,
                              max_interval_s=INTERVAL_S, submit_grace_s=1.0,
                              submit_give_up_s=60.0)
        try:
            async with running(settings_for(through(url, proxy),
                                            policies={"simulator": policy})) as service:
                yield service, proxy
        finally:
            proxy.inspect = None
            proxy.mode = "pass"
            await proxy.stop()


async def _polled_payment(service: Running) -> tuple[str, Polls]:
    """A payment that stays PROCESSING (phone suffix 05), once the reconciler polls it."""
    answer = await service.stub.CreatePayment(
        create_request(f"lease-{uuid.uuid4()}", phone="+254712345605"), metadata=auth())
    polls = Polls(service, answer.payment.id)
    await polls.next_after(0.0, 10.0)
    return answer.payment.id, polls


async def test_a_failed_release_is_retried_while_the_lease_is_ours(
        proxied: tuple[Running, FaultProxy]) -> None:
    """Every database connection reset, and new ones refused, for FAULT_S from the moment a
    poll is at the provider: the poll's write and the release after it both fail."""
    service, proxy = proxied
    _, polls = await _polled_payment(service)
    fault_began = asyncio.get_running_loop().create_future()

    def fault() -> None:
        proxy.mode = "reset"
        proxy.cut_all()
        fault_began.set_result(time.monotonic())
        asyncio.get_running_loop().call_later(FAULT_S, setattr, proxy, "mode", "pass")

    polls.on_poll = fault
    began = await asyncio.wait_for(fault_began, 10.0)
    assert await polls.next_after(began, BACK_WITHIN_S) >= FAULT_S


async def test_a_lost_claim_answer_does_not_keep_the_lease(
        proxied: tuple[Running, FaultProxy]) -> None:
    """The claim reaches the database, its answer (the rows) never comes back: the
    connection is reset instead."""
    service, proxy = proxied
    payment_id, polls = await _polled_payment(service)
    lost_at: list[float] = []

    def lose_claim_answer(state: dict[str, Any], data: bytes, upstream: bool) -> str:
        if upstream:
            state["claim"] = CLAIM_MARK in data
        elif state.get("claim") and payment_id.encode() in data and not lost_at:
            lost_at.append(time.monotonic())
            return LOSE
        return PASS

    proxy.inspect = lose_claim_answer
    await _until(lambda: bool(lost_at))
    assert await polls.next_after(lost_at[0], BACK_WITHIN_S) > 0


async def test_a_lost_commit_answer_of_a_claim_releases_its_rows(
        proxied: tuple[Running, FaultProxy]) -> None:
    """The claim's rows came back, its COMMIT reached the database (and committed), the
    answer to the COMMIT never came back: the claimer cannot know whether it holds them."""
    service, proxy = proxied
    payment_id, polls = await _polled_payment(service)
    cut_at: list[float] = []

    def lose_commit_answer(state: dict[str, Any], data: bytes, upstream: bool) -> str:
        if not upstream:
            if state.get("claim") and payment_id.encode() in data:
                state["rows"] = True
            return PASS
        if state.get("rows") and b"COMMIT" in data and not cut_at:
            cut_at.append(time.monotonic())
            return CUT_AFTER
        state["claim"], state["rows"] = CLAIM_MARK in data, False
        return PASS

    proxy.inspect = lose_commit_answer
    await _until(lambda: bool(cut_at))
    assert await polls.next_after(cut_at[0], BACK_WITHIN_S) > 0


async def _until(done: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, "the fault never fired"
        await asyncio.sleep(0.02)
