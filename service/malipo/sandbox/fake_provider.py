"""What every fake provider shares: a recorded aiohttp app, chaos switches, callback delivery.

Control surface (documented in the README): `GET /_control` shows the switches and call
counts; `POST /_control` with JSON such as
  {"next_callback": "late"|"twice"|"out_of_order"|"forged"|"never", "late_seconds": 5,
   "next_response": "timeout"|"error_500"|"error_500_after", "count": 1}
arms a one-shot behaviour for the next callback(s) or the next response(s).

The offline sandbox (`malipo serve --demo`, sandbox/demo.py) finds every fake in this package
and asks each for itself (`for_demo`), the account settings that point its connector at it
(`demo_settings`) and its lines of the banner (`demo_guide`): adding a provider's fake adds it
to the sandbox without touching demo.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
from aiohttp import web


class CallbackMode(StrEnum):
    NORMAL = "normal"
    LATE = "late"
    TWICE = "twice"
    OUT_OF_ORDER = "out_of_order"
    FORGED = "forged"
    NEVER = "never"


class ResponseFault(StrEnum):
    NONE = "none"
    TIMEOUT = "timeout"                  # the request is processed, the answer never comes
    ERROR_500 = "error_500"              # refused with 500 before processing
    ERROR_500_AFTER = "error_500_after"  # processed, then answered 500


@dataclass
class Chaos:
    next_callback: CallbackMode = CallbackMode.NORMAL
    callback_count: int = 0
    late_seconds: float = 5.0
    next_response: ResponseFault = ResponseFault.NONE
    response_count: int = 0
    hang_seconds: float = 60.0

    def take_callback_mode(self) -> CallbackMode:
        if self.callback_count <= 0:
            return CallbackMode.NORMAL
        self.callback_count -= 1
        return self.next_callback

    def take_response_fault(self) -> ResponseFault:
        if self.response_count <= 0:
            return ResponseFault.NONE
        self.response_count -= 1
        return self.next_response


@dataclass(frozen=True, slots=True)
class RecordedCall:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    status: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One callback attempt and what the receiver answered (0: connection failed)."""

    url: str
    body: bytes
    status: int
    answer: bytes


@dataclass
class Callback:
    """A callback the fake wants to send; `headers` already carry its signature."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


AcceptAnswer = Callable[[int, bytes], bool]


def accepted_on_2xx(status: int, _answer: bytes) -> bool:
    return 200 <= status < 300


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """What the sandbox hands each fake it builds."""

    callback_url: str        # where this provider's callbacks reach Malipo
    complete_after_s: float  # time to a final callback, where the fake decides it
    retry_delay_s: float = 0.5

    @staticmethod
    def key() -> str:
        """A fresh random credential."""
        return secrets.token_hex(12)


class FakeProvider:
    """Base of the fakes. Subclasses add routes in `routes()` and may override `forge()`;
    one standing for a provider sets `name` to the provider's name and the demo hooks."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.deliveries: list[Delivery] = []
        self.chaos = Chaos()
        self.app = web.Application(middlewares=[self._middleware])
        self.app.router.add_get("/_control", self._control_get)
        self.app.router.add_post("/_control", self._control_post)
        self.app.router.add_routes(self.routes())
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.base_url = ""

    def routes(self) -> Sequence[web.RouteDef]:
        return []

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- the offline sandbox -------------------------------------------------------------

    @classmethod
    def for_demo(cls, setup: DemoSetup) -> FakeProvider:
        """This fake with fresh credentials, calling back `setup.callback_url`."""
        raise NotImplementedError(f"{cls.__name__} has no demo")

    def demo_settings(self) -> dict[str, str]:
        """The connector account settings that point at this fake (after `start`)."""
        raise NotImplementedError(f"{type(self).__name__} has no demo")

    def demo_guide(self) -> list[str]:
        """How to try this provider's flow: lines under the sandbox's banner."""
        return []

    def demo_step(self) -> None:
        """Called every few seconds while the sandbox runs (a bank moving debit orders)."""

    def calls_to(self, path_suffix: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.path.endswith(path_suffix)]

    # --- chaos on responses -------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/_control":
            return await handler(request)
        body = await request.read()
        fault = self.chaos.take_response_fault()
        if fault is ResponseFault.ERROR_500:
            response: web.StreamResponse = web.json_response({"error": "injected"}, status=500)
        else:
            response = await handler(request)
        self.calls.append(RecordedCall(
            request.method, request.path, dict(request.query),
            {k.lower(): v for k, v in request.headers.items()}, body, response.status,
        ))
        if fault is ResponseFault.TIMEOUT:
            await asyncio.sleep(self.chaos.hang_seconds)
        if fault is ResponseFault.ERROR_500_AFTER:
            return web.json_response({"error": "injected after processing"}, status=500)
        return response

    async def _control_get(self, _request: web.Request) -> web.Response:
        return web.json_response({
            "provider": self.name,
            "next_callback": self.chaos.next_callback, "callback_count": self.chaos.callback_count,
            "late_seconds": self.chaos.late_seconds,
            "next_response": self.chaos.next_response, "response_count": self.chaos.response_count,
            "calls": len(self.calls), "deliveries": len(self.deliveries),
        })

    async def _control_post(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            count = int(data.get("count", 1))
            if "next_callback" in data:
                self.chaos.next_callback = CallbackMode(data["next_callback"])
                self.chaos.callback_count = count
            if "late_seconds" in data:
                self.chaos.late_seconds = float(data["late_seconds"])
            if "next_response" in data:
                self.chaos.next_response = ResponseFault(data["next_response"])
                self.chaos.response_count = count
            if "hang_seconds" in data:
                self.chaos.hang_seconds = float(data["hang_seconds"])
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await self._control_get(request)

    # --- callbacks ----------------------------------------------------------------------

    def forge(self, callback: Callback) -> Callback:
        """A callback with a wrong signature; subclasses that sign override this."""
        return Callback(callback.url, callback.body, {**callback.headers, "x-forged": "1"})

    def send_callbacks(
        self, callbacks: Sequence[Callback], *, accept: AcceptAnswer = accepted_on_2xx,
        attempts: int = 1, retry_delay_s: float = 0.2,
    ) -> asyncio.Task[list[Delivery]]:
        """Send one payment's callbacks in order, honouring the armed chaos mode, in the
        background. `attempts` > 1 re-sends each one until `accept` says the answer is
        the one the provider waits for (Paykassma, KKiaPay)."""
        mode = self.chaos.take_callback_mode()
        task = asyncio.create_task(self._send(list(callbacks), mode, accept, attempts,
                                              retry_delay_s))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, callbacks: list[Callback], mode: CallbackMode, accept: AcceptAnswer,
                    attempts: int, retry_delay_s: float) -> list[Delivery]:
        if mode is CallbackMode.NEVER:
            return []
        if mode is CallbackMode.LATE:
            await asyncio.sleep(self.chaos.late_seconds)
        if mode is CallbackMode.OUT_OF_ORDER:
            callbacks = list(reversed(callbacks))
        if mode is CallbackMode.FORGED:
            callbacks = [self.forge(cb) for cb in callbacks]
        if mode is CallbackMode.TWICE:
            callbacks = [cb for cb in callbacks for _ in range(2)]
        done: list[Delivery] = []
        for cb in callbacks:
            done.extend(await self.deliver(cb, accept=accept, attempts=attempts,
                                           retry_delay_s=retry_delay_s))
        return done

    # Delivery schedule; providers with another one override these two.
    follow_redirects = True

    def pause_after(self, attempt: int, base_s: float) -> float:
        """Pause after failed attempt number `attempt` (1-based): grows by 1.5x."""
        return base_s * 1.5 ** (attempt - 1)

    async def deliver(self, cb: Callback, *, accept: AcceptAnswer = accepted_on_2xx,
                      attempts: int = 1, retry_delay_s: float = 0.2) -> list[Delivery]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        out: list[Delivery] = []
        for attempt in range(1, max(1, attempts) + 1):
            status, answer = 0, b""
            try:
                async with self._session.post(
                    cb.url, data=cb.body, allow_redirects=self.follow_redirects,
                    headers={"Content-Type": "application/json", **cb.headers},
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as resp:
                    status, answer = resp.status, await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                pass
            delivery = Delivery(cb.url, cb.body, status, answer)
            self.deliveries.append(delivery)
            out.append(delivery)
            if accept(status, answer) or attempt >= attempts:
                break
            await asyncio.sleep(self.pause_after(attempt, retry_delay_s))
        return out

def json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
