import asyncpg


async def test_migrations_created_the_event_log(pool: asyncpg.Pool) -> None:
    head = await pool.fetchval("SELECT head FROM event_log_state WHERE id = 1")
    assert head == 0
