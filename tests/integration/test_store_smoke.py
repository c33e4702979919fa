import asyncpg


async def test_migrations_created_the_event_log(pool: asyncpg.Pool) -> None:
    head = await pool.fetchval("SELECT head FROM event_log_state WHERE id = 1")
    assert head == 0


async def test_the_service_pool_never_jit_compiles(pool: asyncpg.Pool) -> None:
    """A plan PostgreSQL thinks costly (a support read over a large journal) was compiled
    on every call: most of its time. The pool turns JIT off for every connection."""
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW jit") == "off"
