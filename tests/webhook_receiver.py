# pyright: basic
"""A team's webhook receiver for the tests: an aiohttp server on 127.0.0.1 that checks every
signature with the Standard Webhooks algorithm written out here from the specification
(standardwebhooks.com), never with Malipo's signer, and can refuse or hold requests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


def verify(secret: str, headers: Any, body: bytes, tolerance_s: int = 300) -> bool:
    """The receiver's side of standardwebhooks.com, as a team would write it from the spec."""
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > tolerance_s:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body,
                                         hashlib.sha256).digest()).decode()
    return any(version == "v1" and hmac.compare_digest(signature, expected)
               for version, _, signature in (part.partition(",") for part in
                                             headers.get("webhook-signature", "").split()))


@dataclass
class Attempt:
    msg_id: str
    sequence: int
    body: dict[str, Any]
    verified: bool
    answered: int


@dataclass
class Receiver:
    """A team's endpoint: refuses the first `fail_first` requests (503), or all while
    `refuse`; holds the request numbered `hold_at` until `release` is set."""

    secret: str = ""
    fail_first: int = 0
    refuse: bool = False
    hold_at: int = 0
    delay_s: float = 0.0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    attempts: list[Attempt] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = json.loads(raw)
            ok = verify(self.secret, request.headers, raw)
            status = 401 if not ok else 503 if (
                self.refuse or len(self.attempts) < self.fail_first) else 204
            attempt = Attempt(request.headers["webhook-id"], body["data"]["sequence"], body,
                              ok, status)
            self.attempts.append(attempt)
            if len(self.attempts) == self.hold_at:
                await self.release.wait()
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return web.Response(status=status)
        finally:
            self.in_flight -= 1

    @property
    def accepted(self) -> list[Attempt]:
        return [a for a in self.attempts if a.answered == 204]

    def accepted_sequences(self) -> list[int]:
        return [a.sequence for a in self.accepted]


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Any]]:
    runners: list[tuple[web.AppRunner, Receiver]] = []

    async def start(**options: Any) -> Receiver:
        receiver = Receiver(**options)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        receiver.url = f"http://127.0.0.1:{port}/hook"
        runners.append((runner, receiver))
        return receiver

    yield start
    for runner, receiver in runners:
        receiver.release.set()
        await runner.cleanup()


async def eventually(check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> None:
    """Wait for `check()` to be true (a generous deadline: only a bug makes it run out)."""
    deadline = time.monotonic() + timeout_s
    while not await _value(check()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


async def _value(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result
