"""The relay's move in one call (migration 0010): movers that queue on the state row's lock
still move each outbox row exactly once, because the move reads the outbox in a snapshot
taken after the lock, not when the call began."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from malipo.store.events import log_state, move_batch
from tests.integration.streaming.writers import insert_outbox, payload


async def _waiting_on_locks(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE '%malipo_move_outbox%'"))


async def test_movers_queued_on_the_lock_move_rows_committed_meanwhile_once(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    await insert_outbox(pool, [payload(tenant, "pay_first", step=i) for i in range(5)])
    waiting = 0

    async def mover() -> int:
        async with writers_pool.acquire() as conn:
            return await move_batch(conn, 100)

    async with pool.acquire() as holder, holder.transaction():
        # A relay mid-batch: the two calls below queue behind it, as a deposed leader's would.
        await holder.execute("SELECT head FROM event_log_state WHERE id = 1 FOR UPDATE")
        movers = [asyncio.create_task(mover()) for _ in range(2)]
        for _ in range(500):
            waiting = await _waiting_on_locks(pool)
            if waiting == 2:
                break
            await asyncio.sleep(0.01)
        # Committed while both wait: neither call's start saw these rows.
        await insert_outbox(writers_pool, [payload(tenant, "pay_later", step=i)
                                           for i in range(5, 8)])
    assert waiting == 2, "the movers never queued on the state row's lock"
    moved = await asyncio.gather(*movers)

    assert sorted(moved) == [0, 8]  # the first took everything; the second found nothing
    rows = await pool.fetch("SELECT sequence, message FROM events WHERE tenant = $1 "
                            "ORDER BY sequence", tenant)
    assert [r["message"] for r in rows] == [str(i) for i in range(8)]
    sequences = [r["sequence"] for r in rows]
    assert sequences == list(range(sequences[0], sequences[0] + 8))
    assert (await log_state(pool)).head == sequences[-1]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_move_inside_a_repeatable_read_transaction_is_refused(
        pool: asyncpg.Pool, tenant: str) -> None:
    """There the move would reuse a snapshot from before the lock wait."""
    await insert_outbox(pool, [payload(tenant, "pay_rr")])
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="READ COMMITTED"):
            async with conn.transaction(isolation="repeatable_read"):
                await move_batch(conn, 100)
        assert await move_batch(conn, 100) == 1  # the same call outside it moves the row
