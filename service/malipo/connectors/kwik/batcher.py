"""Gathers create_payment calls into one POST /payments/submit, each caller keeping its own answer.

Kwik takes collections in batches. Calls arriving within `window_s` (or until `max_size`
are waiting) leave together; each waits on its own future and gets its own ProviderUpdate
or phase error. A second call for a payment id that is waiting or in flight joins the first
one's future instead of being sent again. Answers that mean "Kwik has it" (accepted, or
outcome unknown) are remembered for a while, so a retry after the batch returned is not
sent a second time either; refusals and "nothing was sent" are forgotten, so those may be
tried again. This memory is per process: the service's idempotency store stays the real
guard across restarts and replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from malipo.app.connector import CallContext
from malipo.domain.errors import (
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderUnavailable,
)
from malipo.domain.payments import ProviderUpdate

Outcome = ProviderUpdate | ProviderError
# Sends one batch; returns one outcome per item, in order.
SendBatch = Callable[[Sequence[Mapping[str, Any]], CallContext], Awaitable[Sequence[Outcome]]]


@dataclass(eq=False)
class _Entry:
    key: str
    item: Mapping[str, Any]
    future: asyncio.Future[ProviderUpdate]
    deadline: float | None
    waiters: list[CallContext] = field(default_factory=list)
    sent: bool = False


class Batcher:
    def __init__(self, send: SendBatch, *, window_s: float, max_size: int,
                 default_timeout_s: float, remember: int = 10_000) -> None:
        self._send = send
        self._window_s = window_s
        self._max_size = max(1, max_size)
        self._default_timeout_s = default_timeout_s
        self._remember = remember
        self._pending: list[_Entry] = []
        self._live: dict[str, _Entry] = {}          # waiting or in flight
        self._done: OrderedDict[str, Outcome] = OrderedDict()
        self._timer: asyncio.Task[None] | None = None
        self._flights: set[asyncio.Task[None]] = set()
        self.batches_sent = 0

    async def submit(self, key: str, item: Mapping[str, Any], ctx: CallContext) -> ProviderUpdate:
        known = self._done.get(key)
        if known is not None:
            if isinstance(known, ProviderError):
                raise type(known)(f"{known.message} (remembered; not sent again)")
            return known
        entry = self._live.get(key)
        if entry is None:
            loop = asyncio.get_running_loop()
            entry = _Entry(key, item, loop.create_future(), ctx.deadline)
            entry.future.add_done_callback(_consume)
            self._live[key] = entry
            self._pending.append(entry)
            if len(self._pending) >= self._max_size:
                self._flush()
            elif self._timer is None:
                self._timer = asyncio.create_task(self._after_window())
        entry.waiters.append(ctx)
        timeout = ctx.timeout(self._window_s + self._default_timeout_s)
        try:
            return await asyncio.wait_for(asyncio.shield(entry.future), timeout)
        except TimeoutError:
            entry.waiters.remove(ctx)
            if not entry.sent:
                if not entry.waiters:
                    self._withdraw(entry)
                raise ProviderUnavailable("deadline passed before the Kwik batch left") from None
            raise ProviderOutcomeUnknown("deadline passed while the Kwik batch was in flight") \
                from None

    def _withdraw(self, entry: _Entry) -> None:
        self._pending.remove(entry)
        del self._live[entry.key]
        entry.future.cancel()

    async def _after_window(self) -> None:
        await asyncio.sleep(self._window_s)
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = (self._pending[:self._max_size],
                                    self._pending[self._max_size:])
            for entry in batch:
                entry.sent = True
            task = asyncio.create_task(self._fly(batch))
            self._flights.add(task)
            task.add_done_callback(self._flights.discard)

    async def _fly(self, batch: list[_Entry]) -> None:
        deadlines = [e.deadline for e in batch]
        # The batch lives as long as its most patient member: one short deadline must not
        # turn a whole batch into unknowns.
        deadline = None if None in deadlines else max(d for d in deadlines if d is not None)
        ctx = CallContext(deadline=deadline)
        outcomes: Sequence[Outcome]
        try:
            self.batches_sent += 1
            outcomes = await self._send([e.item for e in batch], ctx)
            if len(outcomes) != len(batch):
                raise ProviderOutcomeUnknown("Kwik batch answer does not match what was sent")
        except ProviderError as exc:
            outcomes = [exc] * len(batch)
        except Exception as exc:  # a bug after sending: the money's fate is unknown
            outcomes = [ProviderOutcomeUnknown(f"Kwik batch failed: {type(exc).__name__}")
                        ] * len(batch)
        for entry, outcome in zip(batch, outcomes, strict=True):
            for waiter in entry.waiters:
                waiter.exchanges.extend(ctx.exchanges)
            self._live.pop(entry.key, None)
            if isinstance(outcome, ProviderUpdate | ProviderOutcomeUnknown):
                self._done[entry.key] = outcome
                while len(self._done) > self._remember:
                    self._done.popitem(last=False)
            if entry.future.done():
                continue
            if isinstance(outcome, ProviderError):
                entry.future.set_exception(outcome)
            else:
                entry.future.set_result(outcome)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for entry in self._pending:
            self._live.pop(entry.key, None)
            if not entry.future.done():
                entry.future.set_exception(ProviderUnavailable("Kwik connector closed"))
        self._pending = []
        for task in list(self._flights):
            with contextlib.suppress(Exception):
                await task


def _consume(future: asyncio.Future[ProviderUpdate]) -> None:
    """Nobody may be left awaiting (deadline passed): mark the exception as seen."""
    if not future.cancelled():
        future.exception()
