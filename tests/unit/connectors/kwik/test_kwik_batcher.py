"""The batcher's promises with a scripted sender: who gets sent, once, and what a deadline means."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from malipo.app.connector import CallContext
from malipo.connectors.kwik.batcher import Batcher, Outcome
from malipo.domain.errors import (
    ProviderOutcomeUnknown,
    ProviderRejectedRequest,
    ProviderUnavailable,
)
from malipo.domain.payments import ProviderUpdate
from malipo.domain.status import Status


class Sender:
    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.delay = delay

    async def __call__(self, items: Sequence[Mapping[str, Any]],
                       ctx: CallContext) -> Sequence[Outcome]:
        self.batches.append([str(i["ref"]) for i in items])
        await asyncio.sleep(self.delay)
        return [ProviderRejectedRequest("no") if i["ref"] == "bad"
                else ProviderUpdate(Status.PROCESSING, provider_reference="k" + str(i["ref"]))
                for i in items]


async def test_rejections_are_forgotten_and_may_be_sent_again() -> None:
    sender = Sender()
    batcher = Batcher(sender, window_s=0.01, max_size=10, default_timeout_s=1)
    with pytest.raises(ProviderRejectedRequest):
        await batcher.submit("bad", {"ref": "bad"}, CallContext())
    with pytest.raises(ProviderRejectedRequest):
        await batcher.submit("bad", {"ref": "bad"}, CallContext())
    assert sender.batches == [["bad"], ["bad"]]


async def test_deadline_before_the_batch_leaves_withdraws_the_payment() -> None:
    sender = Sender()
    batcher = Batcher(sender, window_s=0.2, max_size=10, default_timeout_s=1)
    with pytest.raises(ProviderUnavailable):
        await batcher.submit("a", {"ref": "a"}, CallContext(deadline=time.monotonic() + 0.02))
    assert (await batcher.submit("b", {"ref": "b"}, CallContext())).provider_reference == "kb"
    assert sender.batches == [["b"]]


async def test_deadline_in_flight_is_unknown_but_the_batch_still_completes() -> None:
    sender = Sender(delay=0.2)
    batcher = Batcher(sender, window_s=0.0, max_size=10, default_timeout_s=1)
    with pytest.raises(ProviderOutcomeUnknown):
        await batcher.submit("a", {"ref": "a"}, CallContext(deadline=time.monotonic() + 0.05))
    await asyncio.sleep(0.25)
    again = await batcher.submit("a", {"ref": "a"}, CallContext())  # remembered, not resent
    assert again.provider_reference == "ka"
    assert sender.batches == [["a"]]
