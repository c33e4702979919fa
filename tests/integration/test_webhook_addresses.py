"""Delivery never connects to an internal address: not one stored in an endpoint's URL (an
endpoint registered before the rule), not one a name resolves to; loopback and, when the
operator allows private networks, internal addresses are connected to.

0.0.0.0 stands for the internal address: Linux connects it to this machine, so a listener
on 127.0.0.1 sees whether delivery connected (and an SSRF that reached it would)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from prometheus_client import REGISTRY

from malipo.store.webhooks import PostgresWebhookEndpoints
from malipo.webhooks.delivery import DeliveryPolicy, WebhookDispatcher
from tests.integration.test_webhook_store import clear, endpoint, events

# One attempt each: the retry is 15 s away or more.
POLICY = DeliveryPolicy(poll_s=0.05, timeout_s=1.0, lease_s=5.0, backoff_first_s=30.0)


class Answers(AbstractResolver):
    """A DNS that answers `answers[host]`, and remembers what it was asked."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        return [ResolveResult(hostname=host, host=self.answers[host.rstrip(".")], port=port,
                              family=socket.AF_INET, proto=0, flags=0)]

    async def close(self) -> None:
        pass


class Listener:
    """A TCP listener on 127.0.0.1 that counts connections and hangs up."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def _accept(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    found = Listener()
    server = await asyncio.start_server(found._accept, "127.0.0.1", 0)  # pyright: ignore[reportPrivateUsage]
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found


def blocked() -> float:
    return REGISTRY.get_sample_value("malipo_webhook_posts_total", {"outcome": "blocked"}) or 0.0


async def deliver(pool: asyncpg.Pool, dispatcher: WebhookDispatcher,
                  urls: list[str]) -> dict[str, str]:
    """Each URL's endpoint given one event and one attempt: url -> last_error."""
    await clear(pool)
    store = PostgresWebhookEndpoints(pool)
    for url in urls:  # straight into the store, as if registered before the rule
        assert await store.add(endpoint("acme", url=url), limit=20) is not None
    await events(pool, "acme")
    running = asyncio.create_task(dispatcher.run())
    try:
        await until(lambda: all_tried(pool, len(urls)))
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    return {r["url"]: r["last_error"] for r in await pool.fetch(
        "SELECT url, last_error FROM webhook_endpoints")}


async def all_tried(pool: asyncpg.Pool, count: int) -> bool:
    return await pool.fetchval(
        "SELECT count(*) FROM webhook_endpoints WHERE attempts > 0") == count


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.05)


async def test_internal_addresses_are_refused_without_connecting(
        pool: asyncpg.Pool, listener: Listener) -> None:
    dns = Answers({"hooks.corp.example": "0.0.0.0", "localhost": "127.0.0.1"})
    literal = f"https://0.0.0.0:{listener.port}/in"
    named = f"https://hooks.corp.example:{listener.port}/in"
    local = f"http://localhost:{listener.port}/in"
    before = blocked()
    errors = await deliver(pool, WebhookDispatcher(pool, POLICY, resolver=dns),
                           [literal, named, local])
    assert "internal address (unspecified) is refused" in errors[literal]
    assert "resolves to an internal address (unspecified)" in errors[named]
    assert "hooks.corp" not in errors[named] and "0.0.0.0" not in errors[named]
    assert "hooks.corp.example" in dns.asked
    assert listener.connections == 1  # only localhost: loopback is allowed by design
    assert errors[local] == "ServerDisconnectedError"
    assert blocked() - before == 2


async def test_the_operator_may_allow_private_networks(
        pool: asyncpg.Pool, listener: Listener) -> None:
    dns = Answers({"hooks.corp.example": "0.0.0.0"})
    policy = DeliveryPolicy(poll_s=0.05, timeout_s=1.0, lease_s=5.0, backoff_first_s=30.0,
                            private_networks=True)
    errors = await deliver(pool, WebhookDispatcher(pool, policy, resolver=dns), [
        f"https://0.0.0.0:{listener.port}/in", f"https://hooks.corp.example:{listener.port}/in"])
    assert listener.connections == 2  # the TLS handshake met a hang-up
    assert not [e for e in errors.values() if "refused" in e]
