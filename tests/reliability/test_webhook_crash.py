# pyright: basic
"""`malipo serve` killed (SIGKILL) while a webhook POST is on the wire: the next process
takes the endpoint over when the dead one's lease ends, sends the cut-off event again under
the same webhook-id, and every event arrives, in order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from malipo.payments.v1 import webhooks_pb2
from malipo.payments.v1.webhooks_pb2_grpc import WebhookServiceStub
from tests.harness import auth, create_request
from tests.reliability.process import fresh_database, serve
from tests.webhook_receiver import eventually, receivers

pytestmark = pytest.mark.reliability
__all__ = ["receivers"]  # the fixture

FAST = {"MALIPO_WEBHOOK_POLL_S": "0.05", "MALIPO_WEBHOOK_TIMEOUT_S": "2",
        "MALIPO_WEBHOOK_LEASE_S": "4", "MALIPO_WEBHOOK_BACKOFF_FIRST_S": "0.05",
        "MALIPO_WEBHOOK_BACKOFF_MAX_S": "0.2"}


@pytest.fixture
async def database_url(server_dsn: str) -> AsyncIterator[str]:
    async with fresh_database(server_dsn) as url:
        yield url


async def _acme_events(database_url: str, after: int, settled: list[str]) -> list[int] | None:
    """The tenant's events after `after` once every payment in `settled` succeeded."""
    conn = await asyncpg.connect(database_url)
    try:
        done = await conn.fetchval(
            "SELECT count(DISTINCT payment_id) FROM events WHERE payment_id = ANY($1) "
            "AND new_status = 'SUCCEEDED'", settled)
        if done != len(settled):
            return None
        rows = await conn.fetch("SELECT sequence FROM events WHERE tenant = 'acme' "
                                "AND sequence > $1 ORDER BY sequence", after)
        return [r["sequence"] for r in rows]
    finally:
        await conn.close()


async def _pay(served: Any, count: int) -> list[str]:
    channel = served.channel()
    try:
        return [(await served.stub(channel).CreatePayment(
            create_request(f"crash-{uuid.uuid4()}"), metadata=auth(), timeout=10)).payment.id
            for _ in range(count)]
    finally:
        await channel.close()


async def test_sigkill_mid_delivery_loses_no_event_and_keeps_order(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        receivers: Callable[..., Any]) -> None:
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "malipo.toml"
    config.write_text('[[accounts]]\nprovider = "simulator"\n'
                      '[accounts.settings]\nsettle_after_s = "0.3"\n')
    receiver = await receivers(hold_at=4)
    first = await serve(database_url, config, tmp_path, name="first")
    channel = first.channel()
    try:
        created = await WebhookServiceStub(channel).CreateWebhookEndpoint(
            webhooks_pb2.CreateWebhookEndpointRequest(idempotency_key="crash", url=receiver.url),
            metadata=auth(), timeout=10)
    finally:
        await channel.close()
    receiver.secret = created.secret
    start = created.endpoint.delivered_through
    before = await _pay(first, 2)
    await eventually(lambda: _acme_events(database_url, start, before), "payments settled")
    await eventually(lambda: len(receiver.attempts) >= 4, "a POST on the wire")
    first.kill()
    assert await first.wait() != 0
    held = receiver.attempts[3]
    receiver.release.set()  # its answer goes nowhere: the process that asked is dead

    second = await serve(database_url, config, tmp_path, name="second")
    try:
        after = await _pay(second, 1)
        expected: list[int] = []

        async def all_acknowledged() -> bool:
            nonlocal expected
            expected = await _acme_events(database_url, start, before + after) or []
            return bool(expected) and set(expected) <= set(receiver.accepted_sequences())

        await eventually(all_acknowledged, "every event acknowledged")
    finally:
        second.term()
        await second.wait()

    assert all(a.verified for a in receiver.attempts)
    sequences = [a.sequence for a in receiver.attempts]
    assert sequences == sorted(sequences)
    assert list(dict.fromkeys(a.sequence for a in receiver.accepted)) == expected
    assert [a.msg_id for a in receiver.attempts].count(held.msg_id) >= 2
