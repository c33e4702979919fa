"""Retention: purging a prefix of the log and the cursors it invalidates."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from malipo.domain.errors import InvalidRequest, OutOfRange
from malipo.domain.events import EventFilter
from malipo.store.events import purge_events
from malipo.streaming import EventHub, EventRelay
from tests.integration.streaming.writers import collect, insert_outbox, payload, running


async def test_a_cursor_older_than_retention_is_out_of_range(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    relay, hub = EventRelay(pool, poll_interval_s=0.1), EventHub(pool)
    async with running(relay, hub):
        await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-1", step=i)
                                           for i in range(40)])
        async with asyncio.timeout(5):
            while await pool.fetchval("SELECT head FROM event_log_state") < 40:
                await asyncio.sleep(0.02)
        await pool.execute("UPDATE events SET recorded_at = now() - interval '31 days' "
                           "WHERE sequence <= 25")
        assert await purge_events(pool, timedelta(days=30), chunk=10) == 25
        assert await pool.fetchval("SELECT purged_through FROM event_log_state") == 25
        assert await purge_events(pool, timedelta(days=30)) == 0

        with pytest.raises(OutOfRange) as caught:
            await anext(hub.subscribe(EventFilter(tenant=tenant), 10))
        assert caught.value.oldest_sequence == 26

        # The oldest kept cursor still replays everything after it.
        kept = await collect(hub.subscribe(EventFilter(tenant=tenant), 25), 15)
        assert [e.sequence for e in kept] == list(range(26, 41))


async def test_a_cursor_ahead_of_the_log_is_refused(pool: asyncpg.Pool, tenant: str) -> None:
    hub = EventHub(pool)
    async with running(hub):
        head = await pool.fetchval("SELECT head FROM event_log_state")
        with pytest.raises(InvalidRequest, match="ahead of the event log"):
            await anext(hub.subscribe(EventFilter(tenant=tenant), head + 100))
