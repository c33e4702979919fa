"""Shared fixtures: one PostgreSQL per test session, a fresh migrated database per module.

Without DATABASE_URL the embedded server is used (every xdist worker joins the same one);
with it, databases are created on that server and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from malipo.store.embedded import start_embedded
from malipo.store.migrations import migrate
from malipo.store.unit_of_work import create_pool

# The log-scrubbing check (tests/reliability/README.md): capture every log record of the
# session and scan it for leaks.
pytest_plugins = ["tests.reliability.logscan"]

ROOT = Path(__file__).resolve().parents[1]


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def server_dsn() -> str:
    """DSN of the session's PostgreSQL server (to its maintenance database)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        return external
    return start_embedded(ROOT / ".pytest-pg")


@pytest.fixture(scope="module")
def database_url(server_dsn: str) -> Iterator[str]:
    """A fresh, migrated database for this module."""
    name = "t_" + uuid.uuid4().hex[:16]

    async def create() -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(with_database(server_dsn, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    yield with_database(server_dsn, name)
    asyncio.run(drop())


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=10)
    yield pool
    await pool.close()
