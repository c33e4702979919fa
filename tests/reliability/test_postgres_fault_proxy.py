# pyright: basic
"""PostgreSQL behind the fault proxy (faults to inject: tests/reliability/README.md):
latency, connections reset mid-request and a black-hole window between the service and its
database, while creates and provider callbacks flow. The service runs in this process (its
gateway fake's books count the charges); only its database connections go through the proxy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit, urlunsplit

import grpc
import pytest

from malipo.config import AccountConfig, PolicyConfig
from malipo.sandbox.gateway import GatewayFake
from tests.harness import Running, running, settings_for
from tests.reliability.faultproxy import FaultProxy
from tests.reliability.ledger import Call, check_ledger, check_same_key_retries, create_call
from tests.reliability.process import fresh_database

pytestmark = pytest.mark.reliability

DEADLINE_S = 2.0
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def postgres_proxy(dsn: str) -> FaultProxy:
    """A proxy to the server of `dsn`: its Unix socket (the embedded server) or TCP address."""
    parts = urlsplit(dsn)
    port = parts.port or 5432
    socket_dir = parse_qs(parts.query).get("host", [""])[0] or (
        parts.hostname if parts.hostname and parts.hostname.startswith("/") else "")
    if socket_dir:
        return FaultProxy("", port, upstream_path=f"{socket_dir}/.s.PGSQL.{port}")
    return FaultProxy(parts.hostname or "127.0.0.1", port)


def through(dsn: str, proxy: FaultProxy) -> str:
    """`dsn` with its host replaced by the proxy's TCP address (same user, database)."""
    parts = urlsplit(dsn)
    auth_part = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit((parts.scheme, f"{auth_part}127.0.0.1:{proxy.port}", parts.path, "",
                       ""))


@pytest.fixture
async def proxied(server_dsn: str, fake: GatewayFake
                  ) -> AsyncIterator[tuple[Running, FaultProxy, str]]:
    """The service on a database of its own, reached through the proxy; and the direct URL."""
    async with fresh_database(server_dsn) as url:
        proxy = postgres_proxy(url)
        await proxy.start()
        account = AccountConfig(provider="gateway", name="default", settings={
            "base_url": fake.base_url, "public_id": fake.public_id,
            "merchant_id": fake.merchant_id, "secret_key": fake.secret_key, "timeout_s": "5"})
        policy = PolicyConfig(start_after_s=0.3, interval_s=0.3, backoff=1.0,
                              max_interval_s=1.0, submit_grace_s=1.0, submit_give_up_s=60.0)
        try:
            async with running(settings_for(through(url, proxy), accounts=[account],
                                            policies={"gateway": policy})) as service:
                yield service, proxy, url
        finally:
            proxy.resume()
            await proxy.stop()


async def test_latency_resets_and_a_black_hole_leave_no_partial_state(
        proxied: tuple[Running, FaultProxy, str], fake: GatewayFake) -> None:
    service, proxy, url = proxied
    calls: list[Call] = []
    flowing = True

    async def client(n: int) -> None:
        while flowing:
            calls.append(await create_call(service.stub, f"pgproxy-{n}-{uuid.uuid4()}",
                                          DEADLINE_S))
            await asyncio.sleep(0.02)

    clients = [asyncio.create_task(client(n)) for n in range(4)]
    await asyncio.sleep(1.0)
    proxy.latency_s = 0.02                  # every chunk, both ways
    await asyncio.sleep(2.0)
    proxy.latency_s = 0.0
    resets = 0
    for _ in range(20):                     # 2 s of connections reset mid-request
        await asyncio.sleep(0.1)
        resets += proxy.cut_all()
    proxy.stall()                           # longer than the callers' deadline
    await asyncio.sleep(DEADLINE_S + 1.0)
    proxy.resume()
    await asyncio.sleep(2.0)
    flowing = False
    await asyncio.gather(*clients)
    assert resets > 0

    # Clients only ever see success or a retryable status; UNAVAILABLE says when to retry.
    codes = {c.code for c in calls}
    assert codes <= {grpc.StatusCode.OK} | RETRYABLE, codes
    assert codes & RETRYABLE, "the faults never reached a request"
    assert all(c.retry_info for c in calls if c.code is grpc.StatusCode.UNAVAILABLE)
    assert max(c.ended - c.started for c in calls) < DEADLINE_S + 0.5
    # Provider callbacks landing in the faults were refused with a retryable 503, never 500.
    assert {d.status for d in fake.deliveries} <= {200, 503}, fake.deliveries

    # Retries with the same key succeed and return the payment of the first OK.
    retried = await check_same_key_retries(service.stub, calls)
    await check_ledger(url, retried, fake)         # direct, not through the proxy
