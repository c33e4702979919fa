"""The optional JetStream export, against the NATS server at 127.0.0.1:4222 when it runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from datetime import UTC, datetime

import asyncpg
import nats
import pytest
from nats.js.errors import NotFoundError

from malipo.domain.events import StatusEvent
from malipo.domain.money import Money
from malipo.domain.status import Direction, Status
from malipo.store.events import read_range
from malipo.streaming.nats_export import NatsExporter, subject_for
from malipo.streaming.relay import EventRelay
from tests.integration.streaming.writers import insert_outbox, payload, running

NATS_URL = "nats://127.0.0.1:4222"


def _nats_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.nats,
    pytest.mark.skipif(not _nats_reachable(),
                       reason="no NATS server at 127.0.0.1:4222 (start nats-server -js)"),
]


async def test_relay_publishes_each_event_once_with_its_sequence_as_message_id(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    run = uuid.uuid4().hex[:8]
    stream, prefix = f"MALIPO_TEST_{run}", f"malipotest{run}.events"
    exporter = NatsExporter(NATS_URL, stream=stream, prefix=prefix)
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    try:
        try:
            await js.account_info()
        except Exception as exc:
            pytest.skip(f"NATS at {NATS_URL} runs without JetStream: {exc!r}")
        relay = EventRelay(pool, poll_interval_s=0.1, exporter=exporter)
        async with running(relay):
            await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-1", step=i,
                                                       provider="kkiapay") for i in range(30)])
            async with asyncio.timeout(10):
                while relay.exported < 30:
                    await asyncio.sleep(0.05)
        assert await pool.fetchval("SELECT exported_through FROM event_log_state") == 30

        # A crash before the position was stored re-sends: JetStream drops the duplicates.
        events = await read_range(pool, 0, 1000)
        await exporter.publish(events[-10:])
        info = await js.stream_info(stream)
        assert info.state.messages == 30

        sub = await js.subscribe(f"{prefix}.{tenant}.kkiapay", ordered_consumer=True)
        got = [await sub.next_msg(timeout=2) for _ in range(30)]
        bodies = [json.loads(m.data) for m in got]
        assert [b["sequence"] for b in bodies] == list(range(1, 31))
        assert [m.headers["Nats-Msg-Id"] for m in got if m.headers] == [
            str(i) for i in range(1, 31)]
        assert {b["tenant"] for b in bodies} == {tenant}
    finally:
        await exporter.close()
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
        await nc.close()


def test_subjects_are_tenant_then_provider_with_unsafe_characters_replaced() -> None:
    event = StatusEvent(
        sequence=1, event_id="e", tenant="acme.ke", payment_id="p", direction=Direction.PAYOUT,
        provider="m pesa", account="default", old_status=None, new_status=Status.PENDING,
        provider_status="", provider_reference="", amount=Money.of(100, "KES"), reason="",
        message="", fulfilment={}, needs_review=False, occurred_at=datetime.now(UTC))
    assert subject_for(event) == "malipo.events.acme_ke.m_pesa"
