"""A 2xx answer whose body cannot be read: Kwik may have acted on it, so a submission's
outcome is unknown (UNKNOWN, then polled), never FAILED; a read is simply retried."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from malipo.app.connector import CallContext, ProviderAccount
from malipo.connectors.kwik import KwikConnector
from malipo.domain.errors import ProviderOutcomeUnknown, ProviderUnavailable
from malipo.domain.payments import Payment

PaymentFactory = Callable[..., Payment]


@pytest.fixture
async def garbled() -> AsyncIterator[tuple[str, list[str]]]:
    """A Kwik stand-in that answers every request 200 with an HTML page (a proxy's, say)."""
    seen: list[str] = []

    async def html(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="<html>ok</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", html)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/1.0/", seen
    await runner.cleanup()


@pytest.fixture
async def connector(garbled: tuple[str, list[str]]) -> AsyncIterator[KwikConnector]:
    built = KwikConnector(ProviderAccount("kwik", "main", {
        "base_url": garbled[0], "api_key": "k", "api_secret": "s",
        "payment_methods_id": "pam_debit_order", "batch_window_s": "0.01", "timeout_s": "5"}))
    yield built
    await built.close()


async def test_submit_answered_2xx_with_an_unreadable_body_is_an_unknown_outcome(
    connector: KwikConnector, make_payment: PaymentFactory, garbled: tuple[str, list[str]],
) -> None:
    with pytest.raises(ProviderOutcomeUnknown):
        await connector.create_payment(make_payment(), CallContext())
    assert garbled[1][:1] == ["/1.0/payments/submit"]


async def test_status_answered_2xx_with_an_unreadable_body_is_retried_later(
    connector: KwikConnector, make_payment: PaymentFactory,
) -> None:
    with pytest.raises(ProviderUnavailable):
        await connector.fetch_status(make_payment(), CallContext())
