# pyright: basic
"""The event relay outlives every kind of database failure asyncpg raises.

Found by test_database_restart.py: after a restart, a pooled connection can be left in a
protocol state where the next statement raises asyncpg's InternalClientError ("cannot switch
to state 15; another operation (2) is in progress"). The relay only retried OSError,
PostgresError and InterfaceError, so that one ended its task: no event was relayed again
until the process restarted. Here the error is injected, deterministically, through the
pool's connection `init` hook of a real pool on the real database."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from malipo.store.unit_of_work import init_connection
from malipo.streaming.relay import EventRelay

pytestmark = pytest.mark.reliability


async def test_relay_retries_after_asyncpg_internal_client_error(database_url: str) -> None:
    failures = 2

    async def init(conn: asyncpg.Connection) -> None:
        nonlocal failures
        await init_connection(conn)
        if failures:
            failures -= 1
            raise asyncpg.exceptions.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress")

    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=2, init=init)
    assert pool is not None
    # Its own lock: no other relay on this database can be the leader instead.
    relay = EventRelay(pool, poll_interval_s=0.05, lock_key=0x6D616C69706FEE)
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(100):
            if relay.is_leader or task.done():
                break
            await asyncio.sleep(0.05)
        assert not task.done(), f"the relay ended: {task.exception()!r}"
        assert failures == 0 and relay.is_leader
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pool.close()
