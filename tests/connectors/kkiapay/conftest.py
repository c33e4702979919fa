"""KKiaPay connector against its fake over real HTTP, with a stand-in callback listener."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from kkiapay_support import (
    KEYS,
    WEBHOOK_SECRET,
    PaymentFactory,
    Receiver,
    account_for,
    build_payment,
)

from malipo.connectors.kkiapay import KkiapayConnector
from malipo.sandbox.kkiapay import KkiapayFake


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/callbacks/kkiapay/main", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}/callbacks/kkiapay/main"
    yield rec
    await runner.cleanup()


@pytest.fixture(scope="module")
async def fake(receiver: Receiver) -> AsyncIterator[KkiapayFake]:
    provider = KkiapayFake(webhook_secret=WEBHOOK_SECRET, webhook_url=receiver.url,
                           retry_delay_s=0.01, **KEYS)
    await provider.start()
    yield provider
    await provider.stop()


@pytest.fixture
async def connector(fake: KkiapayFake, receiver: Receiver) -> AsyncIterator[KkiapayConnector]:
    conn = KkiapayConnector(account_for(fake))
    receiver.reset()
    receiver.connector = conn
    fake.calls.clear()
    fake.deliveries.clear()
    yield conn
    await conn.close()


@pytest.fixture
def make_payment() -> PaymentFactory:
    return build_payment
