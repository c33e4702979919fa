"""The relay and the hub survive losing their database connections."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from malipo.domain.events import EventFilter
from malipo.store.failures import DATABASE_ERRORS
from malipo.store.unit_of_work import init_connection
from malipo.streaming import EventHub, EventRelay
from malipo.streaming.relay import listening
from tests.integration.streaming.writers import (
    assert_gap_free,
    collect,
    insert_outbox,
    payload,
    running,
    wait_for,
)


async def test_relay_and_hub_reconnect_after_their_backends_are_killed(
        database_url: str, writers_pool: asyncpg.Pool, tenant: str) -> None:
    app = "malipo-reconnect-test"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4, init=init_connection,
                                     server_settings={"application_name": app})
    try:
        relay = EventRelay(pool, poll_interval_s=0.1, standby_interval_s=0.1)
        hub = EventHub(pool, poll_interval_s=0.1)
        async with running(relay, hub):
            stream = hub.subscribe(EventFilter(tenant=tenant), None)
            receiving = asyncio.create_task(collect(stream, 100))
            await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-1", step=i)
                                               for i in range(50)])
            await wait_for(lambda: relay.moved >= 50)
            killed = await writers_pool.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1", app)
            assert killed >= 2
            await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-1", step=i)
                                               for i in range(50, 100)])
            events = await receiving
    finally:
        await pool.close()
    assert [int(e.message) for e in events] == list(range(100))
    assert_gap_free(events)


async def test_a_listening_connection_that_was_killed_goes_back_to_the_pool_cleanly(
        database_url: str, writers_pool: asyncpg.Pool) -> None:
    """A connection asyncpg has already cleaned up answers every call, even `terminate`,
    with InterfaceError: the block ends without one, and without asyncpg's warning about
    callbacks left on a released connection (an error in this suite, pyproject)."""
    app = "malipo-listening-test"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1,
                                     server_settings={"application_name": app})
    try:
        async with listening(pool, {"malipo_a": _ignore, "malipo_b": _ignore}) as conn:
            await writers_pool.execute(  # returns once the backend is gone
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE application_name = $1", app)
            with pytest.raises(DATABASE_ERRORS):
                await conn.execute("SELECT 1")  # asyncpg learns the backend is gone
        async with pool.acquire() as fresh:  # the pool replaced it, listening to nothing
            assert await fresh.fetch("SELECT pg_listening_channels()") == []
    finally:
        await pool.close()


def _ignore(*_: object) -> None:
    pass
