"""A stand-in for the callback listener (built elsewhere): verify, parse, answer exactly as
the connector says, and remember what arrived. Its own module so tests can import its types
(conftest.py is not importable by name when several test folders have one)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from malipo.app.connector import CallbackEvent, CallbackOutcome, InboundCallback
from malipo.connectors.gateway import GatewayConnector
from malipo.domain.errors import CallbackRejected
from malipo.domain.payments import Payment

MakePayment = Callable[..., Payment]
MakeConnector = Callable[..., GatewayConnector]


@dataclass
class Received:
    callback: InboundCallback
    outcome: CallbackOutcome
    events: list[CallbackEvent]
    answer_status: int


@dataclass
class Receiver:
    """Stands in for the callback listener: verify, parse, answer as the connector says."""

    url: str = ""
    connector: GatewayConnector | None = None
    received: list[Received] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        assert self.connector is not None
        body = await request.read()
        callback = InboundCallback(
            provider="gateway", account="main",
            headers={k.lower(): v for k, v in request.headers.items()}, body=body,
            query=dict(request.query), remote=request.remote or "", received_at=datetime.now(UTC))
        events: list[CallbackEvent] = []
        try:
            self.connector.verify_callback(callback)
            events = self.connector.parse_callback(callback)
            outcome = CallbackOutcome.APPLIED
            if all(e.event_key in self.seen for e in events):
                outcome = CallbackOutcome.DUPLICATE
            self.seen.update(e.event_key for e in events)
        except CallbackRejected:
            outcome = CallbackOutcome.REJECTED
        answer = self.connector.callback_answer(outcome)
        self.received.append(Received(callback, outcome, events, answer.status))
        self.arrived.set()
        return web.Response(status=answer.status, body=answer.body,
                            content_type=answer.content_type)

    async def wait_for(self, count: int, within_s: float = 3.0) -> list[Received]:
        async with asyncio.timeout(within_s):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received
