"""A larger pool for concurrent writers, and a unique tenant per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from malipo.store.unit_of_work import create_pool


@pytest.fixture(scope="module")
async def writers_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=2, max_size=25)
    yield pool
    await pool.close()


@pytest.fixture
def tenant() -> str:
    return "t-" + uuid.uuid4().hex[:8]
