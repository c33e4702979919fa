"""Helpers shared by the JamboPay connector tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from malipo.app.connector import InboundCallback, ProviderAccount
from malipo.domain.payments import Payment, ProviderUpdate, apply_update
from malipo.sandbox.jambopay import JambopayFake

PayoutFactory = Callable[..., Payment]


def moved(payment: Payment, update: ProviderUpdate) -> Payment:
    """What the service would store after applying `update` (the domain's own rule)."""
    return apply_update(payment, update, datetime.now(UTC)).after


class Listener:
    """Records callbacks as the real listener would hand them to the connector."""

    def __init__(self) -> None:
        self.received: list[InboundCallback] = []
        self.status = 200
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/callbacks/{provider}/{account}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/callbacks/jambopay/test"
        return self.url

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(InboundCallback(
            provider=request.match_info["provider"], account=request.match_info["account"],
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(), query=dict(request.query),
            remote=request.remote or "", received_at=datetime.now(UTC)))
        self._arrived.set()
        return web.Response(status=self.status, text="OK")

    async def wait_for(self, count: int) -> list[InboundCallback]:
        async with asyncio.timeout(5.0):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def account_for(fake: JambopayFake, listener: Listener, **overrides: str) -> ProviderAccount:
    settings = {"base_url": fake.api_base, "username": fake.username,
                "password": fake.password, "app_key": fake.app_key,
                "presentment_ttl_s": "300", "timeout_s": "5", **overrides}
    return ProviderAccount("jambopay", "test", settings, callback_url=listener.url)
